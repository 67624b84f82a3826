//! Normalisation: batch norm (batch statistics and running averages in training, running
//! statistics in eval), layer norm, and local response norm (AlexNet), composed from
//! differentiable ops so their gradients follow from the parts.

use crate::autograd::no_grad;
use crate::error::{invalid, shape_err, Result};
use crate::tensor::{scale, Tensor};
use ferrograd_device::kernels::conv::Conv2dGeometry;
use ferrograd_device::kernels::elementwise::{binary, BinaryOp};

/// Running statistics of a batch-norm layer, updated in training (`momentum` weighs the
/// new batch: `running = (1 - momentum) * running + momentum * batch`, the variance unbiased).
pub struct RunningStats<'a> {
    pub mean: &'a Tensor,
    pub var: &'a Tensor,
    pub momentum: f32,
}

/// `x` normalised per channel (dim 1) of `[N, C, ...]`, then `* weight + bias` (`[C]` each).
/// In `training`, batch statistics are used (biased variance) and `running` (if given)
/// is updated; otherwise `running` is required and used.
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
    let c = shape[1];
    let mut bshape = vec![1; shape.len()];
    bshape[1] = c;
    let axes: Vec<isize> = (0..shape.len() as isize).filter(|&a| a != 1).collect();
    let count = x.numel() / c.max(1);
    let (mean, var) = if training {
        if count < 2 {
            return invalid("batch_norm", format!("training needs more than 1 value per channel, got input {shape:?}"));
        }
        let mean = x.mean(&axes, true)?;
        let var = x.sub(&mean)?.square()?.mean(&axes, true)?;
        if let Some(r) = &running {
            let _g = no_grad();
            let m = r.momentum;
            let unbiased = scale(&var.data().reshape(&[c])?, count as f32 / (count - 1) as f32)?;
            for (buf, batch) in [(r.mean, mean.data().reshape(&[c])?), (r.var, unbiased)] {
                let new = binary(BinaryOp::Add, &scale(&buf.data(), 1.0 - m)?, &scale(&batch, m)?)?;
                buf.set_data(new);
            }
        }
        (mean, var)
    } else {
        let Some(r) = running else {
            return invalid("batch_norm", "eval mode needs running statistics");
        };
        (r.mean.reshape_to(&bshape)?, r.var.reshape_to(&bshape)?)
    };
    let y = x.sub(&mean)?.div(&var.add_scalar(eps)?.sqrt()?)?;
    affine(y, weight, bias, &bshape)
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
/// `* weight + bias` (each `normalized_shape`).
pub fn layer_norm(
    x: &Tensor,
    normalized_shape: &[usize],
    weight: Option<&Tensor>,
    bias: Option<&Tensor>,
    eps: f32,
) -> Result<Tensor> {
    let shape = x.shape();
    let k = normalized_shape.len();
    if k == 0 || shape.len() < k || shape[shape.len() - k..] != *normalized_shape {
        return shape_err("layer_norm", format!("input {shape:?} does not end in {normalized_shape:?}"));
    }
    let axes: Vec<isize> = (1..=k as isize).map(|a| -a).collect();
    let mean = x.mean(&axes, true)?;
    let xc = x.sub(&mean)?;
    let var = xc.square()?.mean(&axes, true)?;
    let y = xc.div(&var.add_scalar(eps)?.sqrt()?)?;
    affine(y, weight, bias, normalized_shape)
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
