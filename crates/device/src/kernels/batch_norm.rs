//! Batch norm in two launches each way (WGSL: `shaders/batch_norm.wgsl`): `batch_norm_stats`
//! (the batch's per-channel mean and biased variance, and the running statistics' update)
//! and `batch_norm_apply` forward; `batch_norm_backward` (the per-channel sums, which are the
//! bias and weight gradients, then the input gradient) backward. `x` is `[N, C, ...]`, f32 or
//! f16 (as are `y`, `dy` and `dx`, which share its type); the statistics, weight, bias and their
//! gradients are f32, and the math is f32.

use crate::array::Array;
use crate::device::Device;
use crate::dtype::DType;
use crate::error::{shape_err, Result};
use crate::gpu::{grid_1d, GpuContext, Kernel};
use crate::kernels::common::{cpu_stored, float_storage, param_bytes, require_dtype, same_device};

crate::storage_shaders!(BATCH_NORM, BATCH_NORM_F16, "batch_norm", "workgroup_sum");

/// `[N, C, S]` of `x` (S: the product of the dims after C), checked against `[C]` arrays.
fn dims(kernel: &'static str, x: &Array, per_channel: &[(&str, &Array)]) -> Result<[usize; 3]> {
    let shape = x.shape();
    if shape.len() < 2 || shape[0] == 0 || shape[1] == 0 {
        return shape_err(kernel, format!("x {shape:?} must be [N, C, ...] with N and C positive"));
    }
    let (n, c) = (shape[0], shape[1]);
    float_storage(kernel, &[x])?;
    for (name, a) in per_channel {
        require_dtype(kernel, a, DType::F32)?;
        if a.shape() != [c] {
            return shape_err(kernel, format!("{name} {:?} for x {shape:?} (expected [{c}])", a.shape()));
        }
    }
    let u32_ok = u32::try_from(x.numel()).is_ok();
    if !u32_ok {
        return shape_err(kernel, format!("x {shape:?} has more than 2^32 elements"));
    }
    Ok([n, c, x.numel() / (n * c)])
}

fn words([n, c, s]: [usize; 3], eps: f32, momentum: f32) -> Vec<u32> {
    vec![n as u32, c as u32, s as u32, (n * s) as u32, eps.to_bits(), momentum.to_bits(), 0, 0]
}

/// Records `entry`, or its four-wide twin `wide` when the spatial size `s` is a multiple of 4,
/// for values (the first array's type) stored as f32 or f16.
/// `threads`: one per element (the twin takes four each), or `None` for a workgroup per
/// channel.
#[allow(clippy::too_many_arguments)]
fn launch(
    g: &GpuContext,
    [entry, wide]: [&'static str; 2],
    constants: &[(&'static str, f64)],
    p: &[u32],
    arrays: &[&Array],
    [_, c, s]: [usize; 3],
    threads: Option<usize>,
) -> Result<()> {
    let four = s.is_multiple_of(4);
    let entry = if four { wide } else { entry };
    let grid = match threads {
        Some(n) if four => grid_1d(n / 4, 256),
        Some(n) => grid_1d(n, 256),
        None => grid_1d(c * 256, 256),
    };
    let bufs = arrays.iter().map(|a| a.expect_gpu(entry)).collect::<Result<Vec<_>>>()?;
    let shader = if arrays[0].dtype() == DType::F16 { &BATCH_NORM_F16 } else { &BATCH_NORM };
    g.dispatch(&Kernel::new(shader, entry).with(constants), param_bytes(p), &bufs, grid)
}

/// Batch mean, biased variance, and the updated running (mean, var) when they were given.
pub type BatchStats = (Array, Array, Option<(Array, Array)>);

/// The batch's statistics in training: `(mean, biased variance)`, each `[C]`, and, when
/// `running` `(mean, var)` is given, the updated running statistics
/// `(1 - momentum) * running + momentum * batch` (the variance unbiased, as PyTorch keeps it).
pub fn batch_norm_stats(x: &Array, running: Option<(&Array, &Array)>, momentum: f32) -> Result<BatchStats> {
    const K: &str = "batch_norm_stats";
    let mut checked = vec![];
    if let Some((m, v)) = running {
        checked.extend([("running mean", m), ("running var", v)]);
    }
    let d @ [n, c, s] = dims(K, x, &checked)?;
    if n * s < 2 {
        return shape_err(K, format!("training needs more than 1 value per channel, got x {:?}", x.shape()));
    }
    let device = same_device(K, &[&[x], &checked.iter().map(|p| p.1).collect::<Vec<_>>()[..]].concat())?;
    match &device {
        Device::Cpu => {
            let (mean, var) = reference::stats(&x.cpu_data(), d);
            let running = running.map(|(rm, rv)| {
                let (rm, rv) = reference::running(&rm.cpu_data(), &rv.cpu_data(), &mean, &var, n * s, momentum);
                (Array::cpu(rm, &[c], DType::F32), Array::cpu(rv, &[c], DType::F32))
            });
            Ok((Array::cpu(mean, &[c], DType::F32), Array::cpu(var, &[c], DType::F32), running))
        }
        Device::Gpu(g) => {
            let out = || Array::empty(&device, &[c], DType::F32, K);
            let (mean, var, new_rm, new_rv) = (out()?, out()?, out()?, out()?);
            // without running statistics x fills their (unused) input slots
            let (rm, rv) = running.unwrap_or((x, x));
            let arrays = [x, rm, rv, &mean, &var, &new_rm, &new_rv];
            launch(g, ["bn_stats", "bn_stats4"], &[], &words(d, 0.0, momentum), &arrays, d, None)?;
            Ok((mean, var, running.map(|_| (new_rm, new_rv))))
        }
    }
}

/// `(x - mean) / sqrt(var + eps) * weight + bias` per channel; `affine` is `(weight, bias)`.
pub fn batch_norm_apply(
    x: &Array,
    mean: &Array,
    var: &Array,
    affine: Option<(&Array, &Array)>,
    eps: f32,
) -> Result<Array> {
    const K: &str = "batch_norm_apply";
    let mut checked = vec![("mean", mean), ("var", var)];
    if let Some((w, b)) = affine {
        checked.extend([("weight", w), ("bias", b)]);
    }
    let d = dims(K, x, &checked)?;
    let device = same_device(K, &[&[x], &checked.iter().map(|p| p.1).collect::<Vec<_>>()[..]].concat())?;
    match &device {
        Device::Cpu => {
            let wb = affine.map(|(w, b)| (w.cpu_data().to_vec(), b.cpu_data().to_vec()));
            let y = reference::apply(&x.cpu_data(), &mean.cpu_data(), &var.cpu_data(), wb.as_ref(), eps, d);
            Ok(cpu_stored(y, x.shape(), x.dtype()))
        }
        Device::Gpu(g) => {
            let y = Array::empty(&device, x.shape(), x.dtype(), K)?;
            let (w, b) = affine.unwrap_or((x, x));
            let constants = [("AFFINE", affine.is_some() as u32 as f64)];
            let arrays = [x, mean, var, w, b, &y];
            launch(g, ["bn_apply", "bn_apply4"], &constants, &words(d, eps, 0.0), &arrays, d, Some(x.numel()))?;
            Ok(y)
        }
    }
}

/// The gradients of `batch_norm_apply` with respect to `x`, the weight and the bias, given the
/// output gradient `dy`: `(dx, dweight, dbias)`, where `dweight = sum(dy * xhat)` and
/// `dbias = sum(dy)` per channel. `batch_stats`: `mean` and `var` are the batch's own (from
/// `batch_norm_stats`), so `dx` includes the gradient through them; otherwise they are constants.
pub fn batch_norm_backward(
    x: &Array,
    dy: &Array,
    mean: &Array,
    var: &Array,
    weight: Option<&Array>,
    eps: f32,
    batch_stats: bool,
) -> Result<(Array, Array, Array)> {
    const K: &str = "batch_norm_backward";
    let mut checked = vec![("mean", mean), ("var", var)];
    checked.extend(weight.map(|w| ("weight", w)));
    let d @ [_, c, _] = dims(K, x, &checked)?;
    if dy.shape() != x.shape() {
        return shape_err(K, format!("dy {:?} and x {:?} differ", dy.shape(), x.shape()));
    }
    float_storage(K, &[x, dy])?;
    let device = same_device(K, &[&[x, dy], &checked.iter().map(|p| p.1).collect::<Vec<_>>()[..]].concat())?;
    match &device {
        Device::Cpu => {
            let w = weight.map(|w| w.cpu_data().to_vec());
            let (dx, dw, db) = reference::backward(
                &x.cpu_data(),
                &dy.cpu_data(),
                &mean.cpu_data(),
                &var.cpu_data(),
                w.as_deref(),
                eps,
                batch_stats,
                d,
            );
            let per_channel = |v| Array::cpu(v, &[c], DType::F32);
            Ok((cpu_stored(dx, x.shape(), x.dtype()), per_channel(dw), per_channel(db)))
        }
        Device::Gpu(g) => {
            let p = words(d, eps, 0.0);
            let (db, dw) = (Array::empty(&device, &[c], DType::F32, K)?, Array::empty(&device, &[c], DType::F32, K)?);
            launch(g, ["bn_grad_sums", "bn_grad_sums4"], &[], &p, &[x, dy, mean, var, &db, &dw], d, None)?;
            let dx = Array::empty(&device, x.shape(), x.dtype(), K)?;
            let constants = [("TRAINING", batch_stats as u32 as f64), ("AFFINE", weight.is_some() as u32 as f64)];
            let arrays = [x, dy, mean, var, weight.unwrap_or(x), &db, &dw, &dx];
            launch(g, ["bn_grad_input", "bn_grad_input4"], &constants, &p, &arrays, d, Some(x.numel()))?;
            Ok((dx, dw, db))
        }
    }
}

/// CPU twins in f64, from the definitions: per channel over the N x S values,
/// `xhat = (x - mean) / sqrt(var + eps)`, `y = w * xhat + b`, and for batch statistics
/// `dx = w / sqrt(var + eps) * (dy - mean(dy) - xhat * mean(dy * xhat))`.
pub mod reference {
    /// Offsets in x of channel `ch`'s values.
    fn channel(ch: usize, [n, c, s]: [usize; 3]) -> impl Iterator<Item = usize> {
        (0..n).flat_map(move |b| (0..s).map(move |i| (b * c + ch) * s + i))
    }

    pub fn stats(x: &[f64], d: [usize; 3]) -> (Vec<f64>, Vec<f64>) {
        let count = (d[0] * d[2]) as f64;
        let mean: Vec<f64> = (0..d[1]).map(|ch| channel(ch, d).map(|i| x[i]).sum::<f64>() / count).collect();
        let var = (0..d[1]).map(|ch| channel(ch, d).map(|i| (x[i] - mean[ch]).powi(2)).sum::<f64>() / count).collect();
        (mean, var)
    }

    pub fn running(rm: &[f64], rv: &[f64], mean: &[f64], var: &[f64], count: usize, m: f32) -> (Vec<f64>, Vec<f64>) {
        let m = m as f64;
        let unbiased = count as f64 / (count - 1) as f64;
        let rm = rm.iter().zip(mean).map(|(r, b)| (1.0 - m) * r + m * b).collect();
        let rv = rv.iter().zip(var).map(|(r, v)| (1.0 - m) * r + m * v * unbiased).collect();
        (rm, rv)
    }

    pub fn apply(
        x: &[f64],
        mean: &[f64],
        var: &[f64],
        affine: Option<&(Vec<f64>, Vec<f64>)>,
        eps: f32,
        d: [usize; 3],
    ) -> Vec<f64> {
        let mut y = vec![0.0; x.len()];
        for ch in 0..d[1] {
            let inv = 1.0 / (var[ch] + eps as f64).sqrt();
            let (w, b) = affine.map_or((1.0, 0.0), |(w, b)| (w[ch], b[ch]));
            for i in channel(ch, d) {
                y[i] = (x[i] - mean[ch]) * inv * w + b;
            }
        }
        y
    }

    #[allow(clippy::too_many_arguments)]
    pub fn backward(
        x: &[f64],
        dy: &[f64],
        mean: &[f64],
        var: &[f64],
        weight: Option<&[f64]>,
        eps: f32,
        batch_stats: bool,
        d: [usize; 3],
    ) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
        let count = (d[0] * d[2]) as f64;
        let (mut dx, mut dw, mut db) = (vec![0.0; x.len()], vec![0.0; d[1]], vec![0.0; d[1]]);
        for ch in 0..d[1] {
            let inv = 1.0 / (var[ch] + eps as f64).sqrt();
            let xhat = |i: usize| (x[i] - mean[ch]) * inv;
            db[ch] = channel(ch, d).map(|i| dy[i]).sum();
            dw[ch] = channel(ch, d).map(|i| dy[i] * xhat(i)).sum();
            let w = weight.map_or(1.0, |w| w[ch]);
            for i in channel(ch, d) {
                let through_stats = if batch_stats { (db[ch] + xhat(i) * dw[ch]) / count } else { 0.0 };
                dx[i] = w * inv * (dy[i] - through_stats);
            }
        }
        (dx, dw, db)
    }
}
