//! Moving a replica's tensors through the collective: the gradient average after backward,
//! and copies of rank 0's parameters and buffers.
//!
//! wgpu offers no path from a GPU buffer to MPI, so every exchange goes through the host: the
//! tensors are joined into one flat array on the device and read back with one wait, exchanged,
//! uploaded, and split again. The gradient all-reduce cannot overlap backward here: the
//! recorder submits nothing until the host reads, so the first gradient bytes reach the host
//! only after the whole backward pass has run; reading bucket by bucket while backward runs
//! would need a submit and a wait per bucket. The buckets bound the size of each MPI message.

use super::Replicas;
use crate::error::Result;
use ferrograd_graph::{no_grad, Tensor};
use std::time::Instant;

/// Gradient values per all-reduce message: 25 MiB of f32, DistributedDataParallel's default.
pub const BUCKET_VALUES: usize = 25 * 1024 * 1024 / 4;

/// `tensors` flattened and joined on the device, read back with one wait.
fn read_flat(tensors: &[Tensor]) -> Result<Vec<f32>> {
    let _no_grad = no_grad();
    let flat: Vec<Tensor> =
        tensors.iter().map(|t| t.reshape_to(&[t.numel()])).collect::<std::result::Result<_, _>>()?;
    Ok(Tensor::cat(&flat.iter().collect::<Vec<_>>(), 0)?.to_vec()?)
}

/// `flat` uploaded and cut into arrays shaped like `like`, in order.
fn split_flat(flat: &[f32], like: &[Tensor]) -> Result<Vec<ferrograd_device::Array>> {
    let _no_grad = no_grad();
    let device = like[0].device();
    let all = Tensor::from_f32(&device, flat, &[flat.len()])?;
    let mut start = 0;
    let mut out = Vec::with_capacity(like.len());
    for t in like {
        out.push(all.narrow(0, start, t.numel())?.reshape_to(&t.shape())?.data());
        start += t.numel();
    }
    Ok(out)
}

/// Replaces each parameter's gradient by the average over the replicas, weighted by their
/// examples: `sum_r examples_r * grad_r / sum_r examples_r`. Each replica's gradient is that of
/// its own batch's mean loss, so this is the gradient of the mean loss over the global batch,
/// exact even when the shards differ in size (a ragged last batch). Parameters without a
/// gradient keep none (they have none on every replica: the replicas run the same graph).
pub fn sync_gradients(replicas: &Replicas, params: &[Tensor], examples: usize) -> Result<()> {
    let with_grad: Vec<&Tensor> = params.iter().filter(|p| p.grad().is_some()).collect();
    let grads: Vec<Tensor> = with_grad.iter().filter_map(|p| p.grad()).map(Tensor::new).collect();
    let local = if grads.is_empty() { Ok(Vec::new()) } else { read_flat(&grads) };
    let mut flat = replicas.agree(local)?;
    let started = Instant::now();
    let mut total = [examples as f64];
    replicas.sum_f64(&mut total)?;
    let weight = (examples as f64 / total[0].max(1.0)) as f32;
    flat.iter_mut().for_each(|g| *g *= weight);
    replicas.sum_f32_buckets(&mut flat, BUCKET_VALUES)?;
    replicas.add_comm(started.elapsed(), (flat.len() * 4) as u64);
    if grads.is_empty() {
        return Ok(());
    }
    for (p, g) in with_grad.iter().zip(split_flat(&flat, &grads)?) {
        p.set_grad(Some(g));
    }
    Ok(())
}

/// Sets every tensor in `tensors` (f32 values, the same shapes on every replica) to rank 0's.
pub fn broadcast_from_root(replicas: &Replicas, tensors: &[Tensor]) -> Result<()> {
    let tensors: Vec<Tensor> = tensors.iter().filter(|t| t.dtype() == ferrograd_device::DType::F32).cloned().collect();
    if tensors.is_empty() {
        return replicas.agree(Ok(()));
    }
    let mut flat = replicas.agree(read_flat(&tensors))?;
    replicas.broadcast_f32(&mut flat)?;
    for (t, data) in tensors.iter().zip(split_flat(&flat, &tensors)?) {
        t.set_data(data);
    }
    Ok(())
}
