//! Data-parallel training across processes, the way PyTorch's DistributedDataParallel does it:
//! one process per GPU, each holding a full replica of the model and reading its own shard of
//! every global batch ([`crate::loader::DataLoader::sharded`]); after backward the gradients are
//! averaged over the replicas ([`gradients::sync_gradients`]), so every replica takes the same
//! optimizer step. The transport is a [`Collective`]: MPI (`mpi.rs`, the `distributed` feature)
//! or, for one process, [`Solo`].
//!
//! [`Replicas`] adds what a plain collective lacks: agreement on failure. Every collective it
//! runs starts with a status exchange; a replica that failed (bad data, out of memory) takes
//! part in the others' next exchange with its error instead ([`Replicas::finish`]), so every
//! replica returns that error instead of waiting forever for the one that left.

pub mod data_parallel;
pub mod gradients;
#[cfg(feature = "distributed")]
pub mod mpi;

use crate::error::{Result, TrainError};
use std::sync::Mutex;
use std::time::Duration;

/// Collective operations over the processes of a job; every process calls each one, in the
/// same order, with buffers of the same length.
pub trait Collective: Send + Sync {
    fn rank(&self) -> usize;
    fn size(&self) -> usize;
    /// This process's index among those on its host (to pick one of the host's GPUs).
    fn local_rank(&self) -> usize;
    /// Element-wise sums over all processes, in place.
    fn sum_f64(&self, values: &mut [f64]);
    fn sum_f32(&self, values: &mut [f32]);
    /// `values` of process `root` copied into every process's `values`.
    fn broadcast_f32(&self, root: usize, values: &mut [f32]);
    fn broadcast_bytes(&self, root: usize, bytes: &mut [u8]);
}

/// The collective of a job of one process: every operation leaves its buffer as it is.
pub struct Solo;

impl Collective for Solo {
    fn rank(&self) -> usize {
        0
    }
    fn size(&self) -> usize {
        1
    }
    fn local_rank(&self) -> usize {
        0
    }
    fn sum_f64(&self, _: &mut [f64]) {}
    fn sum_f32(&self, _: &mut [f32]) {}
    fn broadcast_f32(&self, _: usize, _: &mut [f32]) {}
    fn broadcast_bytes(&self, _: usize, _: &mut [u8]) {}
}

/// What the gradient all-reduce cost so far (wall time and bytes this process sent).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CommStats {
    pub syncs: u64,
    pub all_reduce: Duration,
    pub bytes: u64,
}

/// The processes of a data-parallel job, with failure agreement on top of a [`Collective`].
pub struct Replicas {
    comm: Box<dyn Collective>,
    /// the failure every replica agreed on; after it no collective runs again
    failure: Mutex<Option<(usize, String)>>,
    stats: Mutex<CommStats>,
}

impl std::fmt::Debug for Replicas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Replicas {{ rank: {}, size: {} }}", self.rank(), self.size())
    }
}

impl Replicas {
    pub fn new(comm: Box<dyn Collective>) -> Replicas {
        Replicas { comm, failure: Mutex::new(None), stats: Mutex::new(CommStats::default()) }
    }

    pub fn rank(&self) -> usize {
        self.comm.rank()
    }

    pub fn size(&self) -> usize {
        self.comm.size()
    }

    pub fn local_rank(&self) -> usize {
        self.comm.local_rank()
    }

    /// Rank 0 alone writes progress, metrics, plots, checkpoints and the summary.
    pub fn is_root(&self) -> bool {
        self.rank() == 0
    }

    pub fn comm_stats(&self) -> CommStats {
        *self.stats.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn add_comm(&self, all_reduce: Duration, bytes: u64) {
        let mut stats = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        stats.syncs += 1;
        stats.all_reduce += all_reduce;
        stats.bytes += bytes;
    }

    fn agreed_error(&self) -> Option<TrainError> {
        let failure = self.failure.lock().unwrap_or_else(|e| e.into_inner());
        failure.as_ref().map(|(rank, message)| TrainError::Replica { rank: *rank, message: message.clone() })
    }

    /// `local` when every replica's is `Ok`; otherwise every replica gets the error of the
    /// lowest failed rank. One small all-reduce (and a broadcast when one failed).
    pub fn agree<T>(&self, local: Result<T>) -> Result<T> {
        if let Some(e) = self.agreed_error() {
            return Err(e);
        }
        let size = self.size();
        let mut failed = vec![0.0; size];
        if local.is_err() {
            failed[self.rank()] = 1.0;
        }
        self.comm.sum_f64(&mut failed);
        let Some(root) = failed.iter().position(|&f| f > 0.0) else { return local };
        let mine = match &local {
            Err(TrainError::Replica { message, .. }) if self.rank() == root => message.clone().into_bytes(),
            Err(e) if self.rank() == root => format!("{e:#}").into_bytes(),
            _ => Vec::new(),
        };
        let mut len = (mine.len() as u64).to_le_bytes();
        self.comm.broadcast_bytes(root, &mut len);
        let mut bytes = mine;
        bytes.resize(u64::from_le_bytes(len) as usize, 0);
        self.comm.broadcast_bytes(root, &mut bytes);
        let message = String::from_utf8_lossy(&bytes).into_owned();
        *self.failure.lock().unwrap_or_else(|e| e.into_inner()) = Some((root, message.clone()));
        Err(TrainError::Replica { rank: root, message })
    }

    /// Element-wise sums over the replicas, after agreeing that none failed.
    pub fn sum_f64(&self, values: &mut [f64]) -> Result<()> {
        self.agree(Ok(()))?;
        self.comm.sum_f64(values);
        Ok(())
    }

    /// Sums `f32` values in messages of at most `bucket` values, after agreement.
    pub(crate) fn sum_f32_buckets(&self, values: &mut [f32], bucket: usize) -> Result<()> {
        self.agree(Ok(()))?;
        for chunk in values.chunks_mut(bucket.max(1)) {
            self.comm.sum_f32(chunk);
        }
        Ok(())
    }

    /// Root's `values` in every replica, after agreement.
    pub(crate) fn broadcast_f32(&self, values: &mut [f32]) -> Result<()> {
        self.agree(Ok(()))?;
        self.comm.broadcast_f32(0, values);
        Ok(())
    }

    /// Waits until every replica gets here (whatever failed before: no agreement first).
    pub fn barrier(&self) {
        self.comm.sum_f64(&mut [0.0]);
    }

    /// The end of a replica's work, ok or failed: a failed replica hands its error to the
    /// others (at whatever exchange they are in); an ok one makes sure no other failed before
    /// it leaves. Every replica returns the same outcome.
    pub fn finish<T>(&self, result: Result<T>) -> Result<T> {
        if let Some(e) = self.agreed_error() {
            return Err(e);
        }
        self.agree(result)
    }
}

/// Synchronised batch norm sums its statistics through the replicas.
impl ferrograd_graph::replicas::ReplicaSum for Replicas {
    fn sum_over_replicas(&self, values: &mut [f64]) -> std::result::Result<(), String> {
        self.sum_f64(values).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_replica_agrees_with_itself() {
        let r = Replicas::new(Box::new(Solo));
        assert_eq!((r.rank(), r.size(), r.is_root()), (0, 1, true));
        let mut v = [1.0, 2.0];
        r.sum_f64(&mut v).unwrap();
        assert_eq!(v, [1.0, 2.0]);
        let err = r.finish::<()>(Err(TrainError::Config("bad".into()))).unwrap_err().to_string();
        assert_eq!(err, "rank 0 failed: invalid option: bad");
        // after a failure every later exchange returns it without communicating
        assert_eq!(r.sum_f64(&mut v).unwrap_err().to_string(), err);
    }
}
