//! Losses, all with mean reduction (PyTorch's default): cross-entropy on logits (with
//! label smoothing), NLL on log-probabilities, MSE, and BCE-with-logits. Class targets are
//! u32 tensors; scores are `[N, C]` (or `[..., C]`, flattened to rows).

use crate::error::{shape_err, Result};
use crate::ops::same_device;
use crate::tensor::{scale, Tensor};
use ferrograd_device::kernels::fill;
use ferrograd_device::kernels::loss::{cross_entropy as ce_kernel, cross_entropy_backward};
use ferrograd_device::{Array, DType};

/// Scores `[..., C]` as rows `[N, C]` and targets as `[N]`, checked against each other.
fn rows(op: &'static str, scores: &Tensor, targets: &Tensor) -> Result<(Tensor, Array)> {
    same_device(op, &[scores, targets])?;
    let (s, t) = (scores.shape(), targets.shape());
    let c = s.last().copied().unwrap_or(0);
    let n: usize = t.iter().product();
    if s.len() < 2 || s[..s.len() - 1] != t[..] || c == 0 {
        return shape_err(op, format!("scores {s:?} and targets {t:?}: expected [..., C] and [...]"));
    }
    Ok((scores.reshape_to(&[n, c])?, targets.data().reshape(&[n])?))
}

/// Per-sample cross-entropy `[N]` of logits `[N, C]` against u32 targets `[N]`.
pub fn cross_entropy_per_sample(logits: &Tensor, targets: &Tensor, label_smoothing: f32) -> Result<Tensor> {
    crate::range::Allowed::Fraction.check("label_smoothing", label_smoothing as f64)?;
    let (logits, t) = rows("cross_entropy", &logits.in_f32()?, targets)?;
    let (loss, log_probs) = ce_kernel(&logits.data(), &t, label_smoothing)?;
    Ok(Tensor::from_op("cross_entropy", loss, &[&logits], move |g, _| {
        Ok(vec![Some(cross_entropy_backward(&log_probs, &t, label_smoothing, g)?)])
    }))
}

/// Mean cross-entropy of `logits [..., C]` against class indices `targets [...]` (u32),
/// with PyTorch's label smoothing (`0.0` for none). Shape `[]`.
pub fn cross_entropy(logits: &Tensor, targets: &Tensor, label_smoothing: f32) -> Result<Tensor> {
    cross_entropy_per_sample(logits, targets, label_smoothing)?.mean_all()
}

/// One-hot rows `[N, C]` (f32, no gradient) of u32 `targets [N]`, built on the device
/// without a readback: the cross-entropy gradient of all-zero probabilities is `-onehot`.
pub fn one_hot(targets: &Tensor, classes: usize) -> Result<Tensor> {
    let t = targets.data();
    let n = t.numel();
    let t = t.reshape(&[n])?;
    let device = t.device();
    let zero_probs = fill::full(&device, &[n, classes], DType::F32, -1e30)?;
    let ones = fill::full(&device, &[n], DType::F32, 1.0)?;
    Ok(Tensor::new(scale(&cross_entropy_backward(&zero_probs, &t, 0.0, &ones)?, -1.0)?))
}

/// Mean negative log-likelihood of `log_probs [..., C]` at `targets [...]` (u32).
pub fn nll_loss(log_probs: &Tensor, targets: &Tensor) -> Result<Tensor> {
    let (lp, _) = rows("nll_loss", &log_probs.in_f32()?, targets)?;
    let c = lp.shape()[1];
    let hot = one_hot(targets, c)?;
    lp.mul(&hot)?.sum(&[1], false)?.mean_all()?.neg()
}

/// Mean of `(input - target)^2`.
pub fn mse_loss(input: &Tensor, target: &Tensor) -> Result<Tensor> {
    if input.shape() != target.shape() {
        return shape_err("mse_loss", format!("input {:?} and target {:?} differ", input.shape(), target.shape()));
    }
    input.in_f32()?.sub(&target.in_f32()?)?.square()?.mean_all()
}

/// Mean of `-[y log sigmoid(x) + (1-y) log(1 - sigmoid(x))]`, computed stably as
/// `max(x, 0) - x*y + log(1 + exp(-|x|))`.
pub fn binary_cross_entropy_with_logits(logits: &Tensor, target: &Tensor) -> Result<Tensor> {
    if logits.shape() != target.shape() {
        return shape_err(
            "binary_cross_entropy_with_logits",
            format!("logits {:?} and target {:?} differ", logits.shape(), target.shape()),
        );
    }
    let (logits, target) = (&logits.in_f32()?, &target.in_f32()?);
    let softplus_neg_abs = logits.abs()?.neg()?.exp()?.add_scalar(1.0)?.log()?;
    logits.relu()?.sub(&logits.mul(target)?)?.add(&softplus_neg_abs)?.mean_all()
}
