//! Batch norm in training whose statistics span every replica's batch (PyTorch's
//! `SyncBatchNorm`), forward and backward side by side. Each replica computes its own batch's
//! per-channel mean and variance with the fused kernel; the replicas sum `count * mean`,
//! `count * (var + mean^2)` and `count` (one host round trip: a GPU wait and one
//! [`ReplicaSum`]), and normalise with the global statistics. Backward sums the per-channel
//! `sum(dy)` and `sum(dy * xhat)` the same way and corrects the input gradient by them.
//!
//! Each replica's gradient is that of its own mean loss: the trainer averages the replicas'
//! gradients weighted by their examples. So the sums through the statistics are weighted the
//! same way (`count_r / count_total`), which keeps batches of unequal size exact.

use crate::error::{GraphError, Result};
use crate::no_grad;
use crate::ops::norm::RunningStats;
use crate::replicas::ReplicaSum;
use crate::tensor::Tensor;
use ferrograd_device::kernels::batch_norm::{batch_norm_apply, batch_norm_backward, batch_norm_stats};
use ferrograd_device::Array;
use std::sync::Arc;

const OP: &str = "sync_batch_norm";

fn replica_err(detail: String) -> GraphError {
    GraphError::Invalid { op: OP, detail }
}

/// Several `[C]` arrays read back in one wait, as f64.
fn read_channels(arrays: &[&Array]) -> Result<Vec<f64>> {
    let _no_grad = no_grad();
    let tensors: Vec<Tensor> = arrays.iter().map(|&a| Tensor::new(a.clone())).collect();
    Tensor::cat(&tensors.iter().collect::<Vec<_>>(), 0)?.to_vec_f64()
}

/// `[C]` values onto `like`'s device (f32 on a GPU, exact on the CPU device).
fn upload(like: &Array, values: &[f64]) -> Result<Array> {
    Ok(Array::from_f64(&like.device(), values, &[values.len()])?)
}

/// `x` (`[N, C, ...]`) normalised with the statistics of all replicas' batches, then
/// `* weight + bias`; `running` is updated with those statistics, so it is the same everywhere.
pub fn batch_norm_synced(
    x: &Tensor,
    running: RunningStats<'_>,
    weight: &Tensor,
    bias: &Tensor,
    eps: f32,
    sum: Arc<dyn ReplicaSum>,
) -> Result<Tensor> {
    // composed from f32 ops: an f16 activation is cast first
    let x = &x.in_f32()?;
    let shape = x.shape();
    let c = shape[1];
    let count = (x.numel() / c.max(1)) as f64;
    let xd = x.data();
    let (local_mean, local_var, _) = batch_norm_stats(&xd, None, 0.0)?;
    let local = read_channels(&[&local_mean, &local_var])?;
    let mut sums: Vec<f64> = (0..c).map(|ch| count * local[ch]).collect();
    sums.extend((0..c).map(|ch| count * (local[c + ch] + local[ch] * local[ch])));
    sums.push(count);
    sum.sum_over_replicas(&mut sums).map_err(replica_err)?;
    let total = sums[2 * c];
    let mean: Vec<f64> = sums[..c].iter().map(|s| s / total).collect();
    let var: Vec<f64> = (0..c).map(|ch| (sums[c + ch] / total - mean[ch] * mean[ch]).max(0.0)).collect();
    let (mean_a, var_a) = (upload(&xd, &mean)?, upload(&xd, &var)?);
    {
        let _no_grad = no_grad();
        let m = running.momentum;
        let unbiased = total / (total - 1.0).max(1.0);
        let blend = |old: &Tensor, batch: &Array, scale: f64| -> Result<Array> {
            let batch = Tensor::new(batch.clone()).mul_scalar((scale * m as f64) as f32)?;
            Ok(old.mul_scalar(1.0 - m)?.add(&batch)?.data())
        };
        running.mean.set_data(blend(running.mean, &mean_a, 1.0)?);
        running.var.set_data(blend(running.var, &var_a, unbiased)?);
    }
    let (wd, bd) = (weight.data(), bias.data());
    let y = batch_norm_apply(&xd, &mean_a, &var_a, Some((&wd, &bd)), eps)?;
    Ok(Tensor::from_op(OP, y, &[x, weight, bias], move |g, needs| {
        // with constant statistics the kernel gives w / sigma * dy and the local sums
        let (dx_plain, dw, db) = batch_norm_backward(&xd, g, &mean_a, &var_a, Some(&wd), eps, false)?;
        let local = read_channels(&[&db, &dw, &wd])?;
        let mut sums: Vec<f64> = local[..2 * c].iter().map(|s| count * s).collect();
        sum.sum_over_replicas(&mut sums).map_err(replica_err)?;
        // dx = w / sigma * (dy - A - xhat * B), A and B the weighted global means of dy and
        // dy * xhat; the correction is batch_norm_apply's affine map with weight w/sigma*B
        // and bias w/sigma*A
        let scale = count * total;
        // the variance as the kernels read it
        let stored = |v: f64| if xd.device().is_gpu() { v as f32 as f64 } else { v };
        let (mut slope, mut offset) = (vec![0.0; c], vec![0.0; c]);
        for ch in 0..c {
            let inv = 1.0 / (stored(var[ch]) + eps as f64).sqrt();
            let w = local[2 * c + ch];
            offset[ch] = w * inv * sums[ch] / scale;
            slope[ch] = w * inv * sums[c + ch] / scale;
        }
        let (slope, offset) = (upload(&xd, &slope)?, upload(&xd, &offset)?);
        let through_stats = batch_norm_apply(&xd, &mean_a, &var_a, Some((&slope, &offset)), eps)?;
        let dx = {
            let _no_grad = no_grad();
            Tensor::new(dx_plain).sub(&Tensor::new(through_stats))?.data()
        };
        Ok(vec![needs[0].then_some(dx), needs[1].then_some(dw), needs[2].then_some(db)])
    }))
}
