//! Fused cross-entropy on logits, with PyTorch's label smoothing:
//! `loss = (1 - eps) * (-log p_target) + eps * mean_c(-log p_c)`. WGSL: `shaders/loss.wgsl`.
//!
//! Targets are checked on the CPU device (an out-of-range one is a shape error) but not on
//! a GPU, where checking would need a wait: there an out-of-range target gives NaN for that
//! sample's loss and for its row of the gradient.

use crate::array::Array;
use crate::device::Device;
use crate::dtype::DType;
use crate::error::{shape_err, Result};
use crate::gpu::{grid_1d, Kernel};
use crate::kernels::common::{param_bytes, require_dtype, same_device};
use crate::kernels::softmax::{row_dispatch, row_schedule, RowSchedule};

crate::shader!(LOSS, "loss", "row_logsumexp");

/// Checks logits/log-probs `[N, C]` (C > 0) against targets `[N]`; returns (N, C).
fn check(kernel: &'static str, scores: &Array, targets: &Array) -> Result<(usize, usize)> {
    require_dtype(kernel, scores, DType::F32)?;
    require_dtype(kernel, targets, DType::U32)?;
    match (scores.shape(), targets.shape()) {
        (&[n, c], &[nt]) if n == nt && c > 0 => Ok((n, c)),
        (s, t) => shape_err(kernel, format!("expected scores [N, C>0] and targets [N], got {s:?} and {t:?}")),
    }
}

/// Per-sample loss `[N]` and the log-probabilities `[N, C]` (kept for the backward pass) of
/// `logits` `[N, C]` against class indices `targets` `[N]` (u32).
pub fn cross_entropy(logits: &Array, targets: &Array, label_smoothing: f32) -> Result<(Array, Array)> {
    cross_entropy_with(logits, targets, label_smoothing, None)
}

/// [`cross_entropy`] with the row schedule forced (`None`: [`row_schedule`]), for tests.
pub fn cross_entropy_with(
    logits: &Array,
    targets: &Array,
    label_smoothing: f32,
    schedule: Option<RowSchedule>,
) -> Result<(Array, Array)> {
    const K: &str = "cross_entropy";
    let device = same_device(K, &[logits, targets])?;
    let (n, c) = check(K, logits, targets)?;
    match &device {
        Device::Cpu => {
            let (loss, lp) =
                reference::cross_entropy(&logits.cpu_data(), &targets.cpu_data(), c, label_smoothing as f64)?;
            Ok((Array::cpu(loss, &[n], DType::F32), Array::cpu(lp, &[n, c], DType::F32)))
        }
        Device::Gpu(g) => {
            let loss = Array::empty(&device, &[n], DType::F32, K)?;
            let lp = Array::empty(&device, &[n, c], DType::F32, K)?;
            let p = [n as u32, c as u32, label_smoothing.to_bits(), f32::NAN.to_bits()];
            let bufs = [logits, targets, &loss, &lp].map(|a| a.gpu_buffer().unwrap());
            let schedule = schedule.unwrap_or_else(|| row_schedule(g, c));
            let (entry, grid) = row_dispatch(K, schedule, ("forward", "forward_rows"), [n, c])?;
            g.dispatch(&Kernel::new(&LOSS, entry), param_bytes(&p), &bufs, grid)?;
            Ok((loss, lp))
        }
    }
}

/// Gradient with respect to the logits `[N, C]`, from the `log_probs` that `cross_entropy`
/// returned and the upstream gradient `grad` `[N]` of the per-sample losses.
pub fn cross_entropy_backward(log_probs: &Array, targets: &Array, label_smoothing: f32, grad: &Array) -> Result<Array> {
    const K: &str = "cross_entropy_backward";
    let device = same_device(K, &[log_probs, targets, grad])?;
    let (n, c) = check(K, log_probs, targets)?;
    require_dtype(K, grad, DType::F32)?;
    if grad.shape() != [n] {
        return shape_err(K, format!("grad {:?} does not match log_probs {:?}", grad.shape(), log_probs.shape()));
    }
    match &device {
        Device::Cpu => {
            let d = reference::cross_entropy_backward(
                &log_probs.cpu_data(),
                &targets.cpu_data(),
                c,
                label_smoothing as f64,
                &grad.cpu_data(),
            )?;
            Ok(Array::cpu(d, &[n, c], DType::F32))
        }
        Device::Gpu(g) => {
            let out = Array::empty(&device, &[n, c], DType::F32, K)?;
            let p = [n as u32, c as u32, label_smoothing.to_bits(), f32::NAN.to_bits()];
            let bufs = [log_probs, targets, grad, &out].map(|a| a.gpu_buffer().unwrap());
            g.dispatch(&Kernel::new(&LOSS, "backward"), param_bytes(&p), &bufs, grid_1d(n * c, 256))?;
            Ok(out)
        }
    }
}

/// CPU twins, in f64, written from the definitions (rows `cols` wide).
pub mod reference {
    use crate::error::{shape_err, Result};

    fn target_of(kernel: &'static str, t: f64, cols: usize) -> Result<usize> {
        if t < cols as f64 {
            Ok(t as usize)
        } else {
            shape_err(kernel, format!("target {t} out of range for {cols} classes"))
        }
    }

    /// (loss per sample, log-probabilities); an out-of-range target is an error.
    pub fn cross_entropy(logits: &[f64], targets: &[f64], cols: usize, eps: f64) -> Result<(Vec<f64>, Vec<f64>)> {
        let lp = crate::kernels::softmax::reference::forward(true, logits, cols);
        let mut loss = Vec::with_capacity(targets.len());
        for (row, &t) in lp.chunks(cols).zip(targets) {
            let t = target_of("cross_entropy", t, cols)?;
            let smooth = -row.iter().sum::<f64>() / cols as f64;
            loss.push((1.0 - eps) * -row[t] + eps * smooth);
        }
        Ok((loss, lp))
    }

    /// d loss / d logits: `grad_n * (p_c - (1 - eps) [c == t] - eps / C)`.
    pub fn cross_entropy_backward(
        log_probs: &[f64],
        targets: &[f64],
        cols: usize,
        eps: f64,
        grad: &[f64],
    ) -> Result<Vec<f64>> {
        let mut out = Vec::with_capacity(log_probs.len());
        for ((row, &t), &g) in log_probs.chunks(cols).zip(targets).zip(grad) {
            let t = target_of("cross_entropy_backward", t, cols)?;
            out.extend(row.iter().enumerate().map(|(c, lp)| {
                let hit = if c == t { 1.0 - eps } else { 0.0 };
                g * (lp.exp() - hit - eps / cols as f64)
            }));
        }
        Ok(out)
    }
}
