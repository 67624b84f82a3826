//! Normalisation: batch norm (batch statistics and running averages in training, running
//! statistics in eval) and layer norm, each by fused kernels, and local response norm
//! (AlexNet), composed from differentiable ops so its gradient follows from the parts.

use crate::error::{invalid, shape_err, Result};
use crate::tensor::Tensor;
use ferrograd_device::kernels::batch_norm::{batch_norm_apply, batch_norm_backward, batch_norm_stats};
use ferrograd_device::kernels::conv::Conv2dGeometry;
use ferrograd_device::kernels::layer_norm::{layer_norm as layer_norm_rows, layer_norm_backward};

/// Running statistics of a batch-norm layer, updated in training (`momentum` weighs the
/// new batch: `running = (1 - momentum) * running + momentum * batch`, the variance unbiased).
pub struct RunningStats<'a> {
    pub mean: &'a Tensor,
    pub var: &'a Tensor,
    pub momentum: f32,
}

/// `x` normalised per channel (dim 1) of `[N, C, ...]`, then `* weight + bias` (`[C]` each).
/// In `training`, batch statistics are used (biased variance) and `running` (if given)
/// is updated; otherwise `running` is required and used. Two launches forward (statistics,
/// then normalise) and two backward (`ferrograd_device::kernels::batch_norm`).
pub fn batch_norm(
    x: &Tensor,
    running: Option<RunningStats<'_>>,
    weight: Option<&Tensor>,
    bias: Option<&Tensor>,
    training: bool,
    eps: f32,
) -> Result<Tensor> {
    let shape = x.shape();
    if shape.len() < 2 {
        return shape_err("batch_norm", format!("input {shape:?} needs [N, C, ...]"));
    }
    let mut inputs = vec![x];
    let affine = match (weight, bias) {
        (Some(w), Some(b)) => {
            inputs.extend([w, b]);
            Some((w.data(), b.data()))
        }
        (None, None) => None,
        _ => return invalid("batch_norm", "give both weight and bias, or neither"),
    };
    let xd = x.data();
    let (mean, var) = if training {
        let count = x.numel() / shape[1].max(1);
        if count < 2 {
            return invalid("batch_norm", format!("training needs more than 1 value per channel, got input {shape:?}"));
        }
        let stored = running.as_ref().map(|r| (r.mean.data(), r.var.data()));
        let (mean, var, updated) =
            batch_norm_stats(&xd, stored.as_ref().map(|(m, v)| (m, v)), running.as_ref().map_or(0.0, |r| r.momentum))?;
        if let (Some(r), Some((m, v))) = (&running, updated) {
            r.mean.set_data(m);
            r.var.set_data(v);
        }
        (mean, var)
    } else {
        let Some(r) = running else {
            return invalid("batch_norm", "eval mode needs running statistics");
        };
        (r.mean.data(), r.var.data())
    };
    let y = batch_norm_apply(&xd, &mean, &var, affine.as_ref().map(|(w, b)| (w, b)), eps)?;
    let weight = affine.map(|(w, _)| w);
    Ok(Tensor::from_op("batch_norm", y, &inputs, move |g, needs| {
        let (dx, dw, db) = batch_norm_backward(&xd, g, &mean, &var, weight.as_ref(), eps, training)?;
        let mut grads = vec![needs[0].then_some(dx)];
        if weight.is_some() {
            grads.extend([needs[1].then_some(dw), needs[2].then_some(db)]);
        }
        Ok(grads)
    }))
}

fn affine(y: Tensor, weight: Option<&Tensor>, bias: Option<&Tensor>, shape: &[usize]) -> Result<Tensor> {
    let y = match weight {
        Some(w) => y.mul(&w.reshape_to(shape)?)?,
        None => y,
    };
    match bias {
        Some(b) => y.add(&b.reshape_to(shape)?),
        None => Ok(y),
    }
}

/// `x` normalised over its last `normalized_shape.len()` dims (biased variance), then
/// `* weight + bias` (each `normalized_shape`): one launch forward and two backward
/// (`ferrograd_device::kernels::layer_norm`; one backward without weight and bias). A weight
/// without a bias, or a bias without a weight, is applied by the elementwise ops after it.
pub fn layer_norm(
    x: &Tensor,
    normalized_shape: &[usize],
    weight: Option<&Tensor>,
    bias: Option<&Tensor>,
    eps: f32,
) -> Result<Tensor> {
    // f32 storage (the autocast policy keeps layer norm in f32)
    let x = &x.in_f32()?;
    let shape = x.shape();
    let k = normalized_shape.len();
    if k == 0 || shape.len() < k || shape[shape.len() - k..] != *normalized_shape {
        return shape_err("layer_norm", format!("input {shape:?} does not end in {normalized_shape:?}"));
    }
    let (w, b) = match (weight, bias) {
        (Some(w), Some(b)) => (w, b),
        (None, None) => return normalise_rows(x, normalized_shape, None, eps),
        _ => return affine(normalise_rows(x, normalized_shape, None, eps)?, weight, bias, normalized_shape),
    };
    for (name, t) in [("weight", w), ("bias", b)] {
        if t.shape() != normalized_shape {
            return shape_err(
                "layer_norm",
                format!("{name} {:?} for normalized shape {normalized_shape:?}", t.shape()),
            );
        }
    }
    normalise_rows(x, normalized_shape, Some((w, b)), eps)
}

/// The fused layer norm of `x`'s rows of `normalized_shape`, with its backward beside it.
fn normalise_rows(
    x: &Tensor,
    normalized_shape: &[usize],
    affine: Option<(&Tensor, &Tensor)>,
    eps: f32,
) -> Result<Tensor> {
    let d: usize = normalized_shape.iter().product();
    let mut inputs = vec![x];
    inputs.extend(affine.into_iter().flat_map(|(w, b)| [w, b]));
    let xd = x.data();
    let params = affine.map(|(w, b)| (w.data(), b.data()));
    let (y, stats) = layer_norm_rows(&xd, d, params.as_ref().map(|(w, b)| (w, b)), eps)?;
    let weight = params.map(|(w, _)| w);
    let param_shape = normalized_shape.to_vec();
    Ok(Tensor::from_op("layer_norm", y, &inputs, move |g, needs| {
        let (dx, dparams) = layer_norm_backward(&xd, g, &stats, d, weight.as_ref())?;
        let mut grads = vec![needs[0].then_some(dx)];
        if let Some((dw, db)) = dparams {
            grads.extend([needs[1].then(|| dw.reshape(&param_shape)).transpose()?]);
            grads.extend([needs[2].then(|| db.reshape(&param_shape)).transpose()?]);
        }
        Ok(grads)
    }))
}

/// PyTorch's `local_response_norm` over channels (dim 1) of `[N, C, ...]`:
/// `b_c = a_c / (k + alpha/size * sum_{c' in window(c)} a_{c'}^2)^beta`, where the window
/// is `size` channels starting `size/2` before `c`, zero-padded at the ends.
pub fn local_response_norm(x: &Tensor, size: usize, alpha: f32, beta: f32, k: f32) -> Result<Tensor> {
    let shape = x.shape();
    if shape.len() < 3 || size == 0 {
        return invalid("local_response_norm", format!("input {shape:?} needs [N, C, ...] and size {size} > 0"));
    }
    let (n, c) = (shape[0], shape[1]);
    let rest: usize = shape[2..].iter().product();
    // the channel window as a (size x 1) average pool over [N, 1, C, rest]
    let g = Conv2dGeometry { kernel: [size, 1], stride: [1, 1], padding: [size / 2, 0], dilation: [1, 1] };
    let window_mean = x.square()?.reshape_to(&[n, 1, c, rest])?.avg_pool2d(&g, true)?.narrow(2, 0, c)?;
    let denom = window_mean.reshape_to(&shape)?.mul_scalar(alpha)?.add_scalar(k)?.pow_scalar(-beta)?;
    x.mul(&denom)
}
