//! The one thing the graph knows about data-parallel training: a way to sum a few numbers over
//! every replica of the model (one per process), which synchronised batch norm needs in the
//! middle of its forward and backward passes. The graph knows no transport; `ferrograd-train`'s
//! `distributed` module plugs one in (MPI) with [`set_sync_batch_norm`].

use std::sync::{Arc, RwLock};

/// Sums over the replicas, element by element and in place; every replica calls it with
/// vectors of the same length, in the same order. An error is the failure of some replica
/// (every replica sees it), not a local one.
pub trait ReplicaSum: Send + Sync {
    fn sum_over_replicas(&self, values: &mut [f64]) -> Result<(), String>;
}

static SYNC_BATCH_NORM: RwLock<Option<Arc<dyn ReplicaSum>>> = RwLock::new(None);

/// Makes every batch-norm layer in training compute its statistics over all replicas' batches
/// (PyTorch's `SyncBatchNorm`), or, with `None`, over its own batch again (the default).
pub fn set_sync_batch_norm(sum: Option<Arc<dyn ReplicaSum>>) {
    *SYNC_BATCH_NORM.write().unwrap_or_else(|e| e.into_inner()) = sum;
}

/// The replica sum batch norm uses, when synchronised.
pub fn sync_batch_norm() -> Option<Arc<dyn ReplicaSum>> {
    SYNC_BATCH_NORM.read().unwrap_or_else(|e| e.into_inner()).clone()
}
