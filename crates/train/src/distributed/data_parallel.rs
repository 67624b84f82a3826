//! Data-parallel training in a loop of your own: [`DataParallel`] wraps a model the way
//! PyTorch's `DistributedDataParallel` does. Build it once (it copies rank 0's weights to every
//! replica), feed each replica its shard of the global batch (`DataLoader::sharded`), and call
//! [`DataParallel::sync_gradients`] between `backward` and the optimizer's step.
//! `examples/data_parallel.rs` is the whole loop; `trainer::fit` uses it too.

use super::gradients::{broadcast_from_root, sync_gradients};
use super::Replicas;
use crate::error::Result;
use ferrograd_graph::nn::Module;
use ferrograd_graph::Tensor;
use std::sync::Arc;

pub struct DataParallel {
    replicas: Arc<Replicas>,
    /// the model's parameters and buffers (handles sharing the model's storage)
    parameters: Vec<Tensor>,
    buffers: Vec<Tensor>,
}

impl DataParallel {
    /// Wraps `model`, setting its parameters and buffers to rank 0's on every replica.
    pub fn new(replicas: Arc<Replicas>, model: &dyn Module) -> Result<DataParallel> {
        let buffers = model.named_buffers().into_iter().map(|(_, t)| t).collect();
        let ddp = DataParallel { replicas, parameters: model.parameters(), buffers };
        broadcast_from_root(&ddp.replicas, &ddp.parameters)?;
        ddp.broadcast_buffers()?;
        Ok(ddp)
    }

    pub fn replicas(&self) -> &Arc<Replicas> {
        &self.replicas
    }

    /// Averages the gradients over the replicas (weighted by `examples`, this replica's batch
    /// size), so every replica's optimizer takes the same step.
    pub fn sync_gradients(&self, examples: usize) -> Result<()> {
        sync_gradients(&self.replicas, &self.parameters, examples)
    }

    /// Sets the buffers (batch norm's running statistics) to rank 0's: without `--sync-bn` each
    /// replica keeps statistics of its own shards, and rank 0's are the ones saved and evaluated.
    pub fn broadcast_buffers(&self) -> Result<()> {
        broadcast_from_root(&self.replicas, &self.buffers)
    }
}
