//! Fused in-place optimizer updates, one dispatch over all elements of one parameter, with
//! PyTorch's semantics (torch.optim.SGD, torch.optim.Adam / AdamW), plus the in-place
//! `axpy` (gradient accumulation) and `scale` (gradient clipping). WGSL: `shaders/optim.wgsl`.
//!
//! On the CPU device the updates write through `cpu_data_mut()`. Hyperparameters are not
//! validated here (PyTorch checks them when the optimizer is built, e.g. Nesterov needs
//! momentum > 0 and zero dampening): that belongs to the graph-level optimizer.

use crate::array::Array;
use crate::device::Device;
use crate::dtype::DType;
use crate::error::{shape_err, Result};
use crate::gpu::{GpuContext, Kernel};
use crate::kernels::common::{require_dtype, same_device};

crate::shader!(OPTIM, "optim");

const NESTEROV: u32 = 1;
const FIRST_STEP: u32 = 2;
const DECOUPLED: u32 = 4;

/// torch.optim.SGD's hyperparameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SgdParams {
    pub lr: f32,
    pub momentum: f32,
    pub dampening: f32,
    pub weight_decay: f32,
    pub nesterov: bool,
}

/// torch.optim.Adam's hyperparameters (AdamW when `decoupled_weight_decay`); `step` counts
/// from 1 and sets the bias corrections.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamParams {
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub weight_decay: f32,
    pub decoupled_weight_decay: bool,
    pub step: u32,
}

/// Checks that the arrays are f32, on one device, of one shape, and share no storage
/// (`names` label them in errors; the first is the one written).
pub(crate) fn check(kernel: &'static str, arrays: &[(&str, &Array)]) -> Result<Device> {
    let device = same_device(kernel, &arrays.iter().map(|a| a.1).collect::<Vec<_>>())?;
    let (first_name, first) = arrays[0];
    for (i, &(name, a)) in arrays.iter().enumerate() {
        require_dtype(kernel, a, DType::F32)?;
        if a.shape() != first.shape() {
            return shape_err(kernel, format!("{first_name} {:?} and {name} {:?} differ", first.shape(), a.shape()));
        }
        if let Some((other, _)) = arrays[..i].iter().find(|(_, b)| b.same_storage(a)) {
            return shape_err(kernel, format!("{other} and {name} share storage (shape {:?})", a.shape()));
        }
    }
    Ok(device)
}

/// The words of `optim.wgsl`'s `Params`: n, flags, then its ten f32 fields in order.
pub(crate) fn words(n: usize, flags: u32, f: [f32; 10]) -> Vec<u32> {
    let mut w = vec![n as u32, flags];
    w.extend(f.map(f32::to_bits));
    w
}

/// The parameter block of an SGD step (also `amp.wgsl`'s).
pub(crate) fn sgd_words(n: usize, p: &SgdParams, first_step: bool) -> Vec<u32> {
    let flags = if p.nesterov { NESTEROV } else { 0 } | if first_step { FIRST_STEP } else { 0 };
    words(n, flags, [p.lr, p.momentum, p.dampening, p.weight_decay, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])
}

/// The parameter block of an Adam step, its bias corrections worked out in f64 (also `amp.wgsl`'s).
pub(crate) fn adam_words(n: usize, p: &AdamParams) -> Vec<u32> {
    let (lr, t) = (p.lr as f64, p.step as i32);
    let step_size = lr / (1.0 - (p.beta1 as f64).powi(t));
    let bc2_sqrt = (1.0 - (p.beta2 as f64).powi(t)).sqrt();
    let decay = 1.0 - lr * p.weight_decay as f64;
    let flags = if p.decoupled_weight_decay { DECOUPLED } else { 0 };
    let f = [p.lr, 0.0, 0.0, p.weight_decay, p.beta1, p.beta2, p.eps, step_size as f32, bc2_sqrt as f32, decay as f32];
    words(n, flags, f)
}

/// One flat dispatch over every element (in windows for a parameter larger than one binding).
fn launch(g: &GpuContext, entry: &'static str, p: &[u32], arrays: &[&Array]) -> Result<()> {
    let operands: Vec<_> = arrays.iter().map(|a| (a.gpu_buffer().unwrap(), 4)).collect();
    g.dispatch_flat(&Kernel::new(&OPTIM, entry), arrays[0].numel(), &operands, 256, |w| {
        [&[w.len as u32], &p[1..]].concat()
    })
}

/// One SGD step in place on `param` (and `momentum_buf`, required when momentum != 0).
/// `first_step`: the buffer is set to the gradient instead of updated, as PyTorch does when
/// it creates the buffer.
pub fn sgd_step(
    param: &Array,
    grad: &Array,
    momentum_buf: Option<&Array>,
    p: &SgdParams,
    first_step: bool,
) -> Result<()> {
    const K: &str = "sgd_step";
    let buf = match (p.momentum != 0.0, momentum_buf) {
        (false, _) => None,
        (true, Some(b)) => Some(b),
        (true, None) => return shape_err(K, format!("momentum {} needs a momentum buffer", p.momentum)),
    };
    let mut arrays = vec![("param", param), ("grad", grad)];
    arrays.extend(buf.map(|b| ("momentum_buf", b)));
    let device = check(K, &arrays)?;
    match &device {
        Device::Cpu => {
            let mut b = buf.map(|b| b.cpu_data_mut());
            reference::sgd_step(
                &mut param.cpu_data_mut(),
                &grad.cpu_data(),
                b.as_deref_mut().map(|v| &mut v[..]),
                p,
                first_step,
            );
        }
        Device::Gpu(g) => {
            let w = sgd_words(param.numel(), p, first_step);
            match buf {
                Some(b) => launch(g, "sgd_momentum", &w, &[param, grad, b])?,
                None => launch(g, "sgd", &w, &[param, grad])?,
            }
        }
    }
    Ok(())
}

/// One Adam (or AdamW) step in place on `param` and the moment estimates `m` and `v`.
pub fn adam_step(param: &Array, grad: &Array, m: &Array, v: &Array, p: &AdamParams) -> Result<()> {
    const K: &str = "adam_step";
    if p.step == 0 {
        return shape_err(K, format!("step counts from 1, got 0 (param {:?})", param.shape()));
    }
    let device = check(K, &[("param", param), ("grad", grad), ("m", m), ("v", v)])?;
    match &device {
        Device::Cpu => reference::adam_step(
            &mut param.cpu_data_mut(),
            &grad.cpu_data(),
            &mut m.cpu_data_mut(),
            &mut v.cpu_data_mut(),
            p,
        ),
        Device::Gpu(g) => launch(g, "adam", &adam_words(param.numel(), p), &[param, grad, m, v])?,
    }
    Ok(())
}

/// `dst += alpha * src` in place. When `src` is `dst` itself this is `dst *= 1 + alpha`.
pub fn axpy(dst: &Array, src: &Array, alpha: f32) -> Result<()> {
    const K: &str = "axpy";
    if dst.same_storage(src) && dst.shape() == src.shape() {
        return scale(dst, 1.0 + alpha);
    }
    match &check(K, &[("dst", dst), ("src", src)])? {
        Device::Cpu => reference::axpy(&mut dst.cpu_data_mut(), &src.cpu_data(), alpha as f64),
        Device::Gpu(g) => {
            let f = [alpha, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0];
            launch(g, "axpy", &words(dst.numel(), 0, f), &[dst, src])?;
        }
    }
    Ok(())
}

/// `dst *= s` in place.
pub fn scale(dst: &Array, s: f32) -> Result<()> {
    match &check("scale", &[("dst", dst)])? {
        Device::Cpu => reference::scale(&mut dst.cpu_data_mut(), s as f64),
        Device::Gpu(g) => {
            let f = [s, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0];
            launch(g, "scale", &words(dst.numel(), 0, f), &[dst])?;
        }
    }
    Ok(())
}

/// CPU twins, in f64, written from PyTorch's documented update rules.
pub mod reference {
    use super::{AdamParams, SgdParams};

    /// torch.optim.SGD: g += wd * p; with momentum, b = g on the first step else
    /// momentum * b + (1 - dampening) * g, and g = g + momentum * b (Nesterov) or b; p -= lr * g.
    pub fn sgd_step(param: &mut [f64], grad: &[f64], mut buf: Option<&mut [f64]>, p: &SgdParams, first_step: bool) {
        let (lr, mom, damp, wd) = (p.lr as f64, p.momentum as f64, p.dampening as f64, p.weight_decay as f64);
        for i in 0..param.len() {
            let mut g = grad[i] + wd * param[i];
            if mom != 0.0 {
                if let Some(buf) = buf.as_deref_mut() {
                    let b = if first_step { g } else { mom * buf[i] + (1.0 - damp) * g };
                    buf[i] = b;
                    g = if p.nesterov { g + mom * b } else { b };
                }
            }
            param[i] -= lr * g;
        }
    }

    /// torch.optim.Adam / AdamW with bias correction:
    /// m = b1 m + (1 - b1) g, v = b2 v + (1 - b2) g^2,
    /// p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps).
    pub fn adam_step(param: &mut [f64], grad: &[f64], m: &mut [f64], v: &mut [f64], p: &AdamParams) {
        let (lr, b1, b2, eps, wd) = (p.lr as f64, p.beta1 as f64, p.beta2 as f64, p.eps as f64, p.weight_decay as f64);
        let t = p.step as i32;
        let (bc1, bc2) = (1.0 - b1.powi(t), 1.0 - b2.powi(t));
        for i in 0..param.len() {
            let mut g = grad[i];
            if p.decoupled_weight_decay {
                param[i] *= 1.0 - lr * wd;
            } else {
                g += wd * param[i];
            }
            m[i] = b1 * m[i] + (1.0 - b1) * g;
            v[i] = b2 * v[i] + (1.0 - b2) * g * g;
            param[i] -= lr / bc1 * m[i] / (v[i].sqrt() / bc2.sqrt() + eps);
        }
    }

    pub fn axpy(dst: &mut [f64], src: &[f64], alpha: f64) {
        dst.iter_mut().zip(src).for_each(|(d, s)| *d += alpha * s);
    }

    pub fn scale(dst: &mut [f64], s: f64) {
        dst.iter_mut().for_each(|d| *d *= s);
    }
}
