//! Fused in-place optimizer updates with PyTorch's semantics (torch.optim.SGD,
//! torch.optim.Adam / AdamW) over many parameters per launch ([`multi`]), optionally skipped
//! on the device by the loss scaler's found-inf and writing each parameter's f16 copy, plus
//! the in-place `axpy` (gradient accumulation) and `scale`. WGSL: the rules in
//! `shaders/optim_rules.wgsl`, `axpy` and `scale` in `shaders/optim.wgsl`.
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

crate::shader!(OPTIM, "optim", "optim_rules");

pub mod multi;

const NESTEROV: u32 = 1;
const FIRST_STEP: u32 = 2;
const DECOUPLED: u32 = 4;
const COUNT_PARITY: u32 = 8;

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

/// The words of `optim_rules.wgsl`'s `Params`: n, flags, then its ten f32 fields in order.
pub(crate) fn words(n: usize, flags: u32, f: [f32; 10]) -> Vec<u32> {
    let mut w = vec![n as u32, flags];
    w.extend(f.map(f32::to_bits));
    w
}

/// The parameter block of an SGD step.
pub(crate) fn sgd_words(n: usize, p: &SgdParams, first_step: bool) -> Vec<u32> {
    let flags = if p.nesterov { NESTEROV } else { 0 } | if first_step { FIRST_STEP } else { 0 };
    words(n, flags, [p.lr, p.momentum, p.dampening, p.weight_decay, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])
}

/// The parameter block of an Adam step, its host-side bias corrections worked out in f64.
pub(crate) fn adam_words(n: usize, p: &AdamParams) -> Vec<u32> {
    let (step_size, bc2_sqrt) = reference::adam_bias_correction(p);
    let decay = 1.0 - p.lr as f64 * p.weight_decay as f64;
    let flags = if p.decoupled_weight_decay { DECOUPLED } else { 0 };
    let f = [p.lr, 0.0, 0.0, p.weight_decay, p.beta1, p.beta2, p.eps, step_size as f32, bc2_sqrt as f32, decay as f32];
    words(n, flags, f)
}

/// One flat dispatch over every element (in windows for an array larger than one binding).
fn launch(g: &GpuContext, entry: &'static str, p: &[u32], arrays: &[&Array]) -> Result<()> {
    let operands: Vec<_> = arrays.iter().map(|a| (a.gpu_buffer().unwrap(), 4)).collect();
    g.dispatch_flat(&Kernel::new(&OPTIM, entry), arrays[0].numel(), &operands, 256, |w| {
        [&[w.len as u32], &p[1..]].concat()
    })
}

/// One parameter's arrays for an SGD step: `momentum_buf` is required when momentum != 0;
/// `half`, the parameter's f16 copy, is rewritten from the updated values in the same launch.
#[derive(Clone, Copy)]
pub struct SgdTensors<'a> {
    pub param: &'a Array,
    pub grad: &'a Array,
    pub momentum_buf: Option<&'a Array>,
    pub half: Option<&'a Array>,
}

/// One parameter's arrays for an Adam step (`m`, `v`: exp_avg, exp_avg_sq; `half` as in
/// [`SgdTensors`]).
#[derive(Clone, Copy)]
pub struct AdamTensors<'a> {
    pub param: &'a Array,
    pub grad: &'a Array,
    pub m: &'a Array,
    pub v: &'a Array,
    pub half: Option<&'a Array>,
}

/// Where Adam's step count lives.
#[derive(Clone, Copy)]
pub enum AdamCount<'a> {
    /// on the host: every parameter is at step `AdamParams::step`, and the bias corrections
    /// are worked out in f64 on the host
    Host,
    /// on the device: `counts` ([2 * parameters] u32) holds two cells per parameter, tensor
    /// `k`'s pair being `pairs[k]`; cell `(AdamParams::step - 1) % 2` holds the count before
    /// this step, the kernel writes the count after it into the other (advanced only when
    /// the step is not skipped) and computes the bias corrections from it in f32.
    Device { counts: &'a Array, pairs: &'a [usize] },
}

/// The f16 copy's checks: F16, the parameter's shape, on its device.
fn check_half(kernel: &'static str, param: &Array, half: Option<&Array>) -> Result<()> {
    let Some(h) = half else { return Ok(()) };
    same_device(kernel, &[param, h])?;
    require_dtype(kernel, h, DType::F16)?;
    if h.shape() != param.shape() {
        return shape_err(kernel, format!("f16 copy {:?} of param {:?}", h.shape(), param.shape()));
    }
    Ok(())
}

/// The device of every array of a multi-tensor step (all on one), `skip` checked as a
/// scaler state, and the f16 capability where an f16 copy is written on a GPU.
fn check_step(kernel: &'static str, devices: &[Device], half: bool, skip: Option<&Array>) -> Result<Option<Device>> {
    let Some(first) = devices.first() else { return Ok(None) };
    if let Some(d) = devices.iter().find(|d| *d != first) {
        return Err(crate::error::DeviceError::DeviceMismatch {
            kernel,
            left: format!("{first:?}"),
            right: format!("{d:?}"),
        });
    }
    if let Some(state) = skip {
        crate::kernels::amp::check_state(kernel, state)?;
        if state.device() != *first {
            return Err(crate::error::DeviceError::DeviceMismatch {
                kernel,
                left: format!("{first:?}"),
                right: format!("the scaler state on {:?}", state.device()),
            });
        }
    }
    if let (Device::Gpu(g), true) = (first, half) {
        if !g.caps().f16 {
            return Err(crate::error::DeviceError::Unsupported {
                kernel,
                detail: "an f16 copy needs SHADER_F16".into(),
            });
        }
    }
    Ok(Some(first.clone()))
}

/// Whether `skip` (a scaler state) has found-inf set, on the CPU device.
fn cpu_skipped(skip: Option<&Array>) -> bool {
    skip.is_some_and(|s| s.cpu_data()[crate::kernels::amp::FOUND_INF] != 0.0)
}

fn write_half_cpu(param: &Array, half: Option<&Array>) {
    if let Some(h) = half {
        *h.cpu_data_mut() = crate::kernels::copy::reference::round_f16(&param.cpu_data());
    }
}

/// One SGD step in place over every tensor of `tensors`, in `ceil(n / K)` launches per kind
/// of tensor (with and without an f16 copy; K: [`multi::Variant::max_slots`]).
/// `first_step`: the momentum buffers are set to the gradient instead of updated, as PyTorch
/// does when it creates them. With `skip` (a scaler state, `kernels::amp`) nothing changes
/// when its found-inf is set, decided on the device.
pub fn sgd_step(tensors: &[SgdTensors], p: &SgdParams, first_step: bool, skip: Option<&Array>) -> Result<()> {
    const K: &str = "sgd_step";
    let mut devices = Vec::with_capacity(tensors.len());
    for t in tensors {
        let mut arrays = vec![("param", t.param), ("grad", t.grad)];
        match (p.momentum != 0.0, t.momentum_buf) {
            (false, _) => {}
            (true, Some(b)) => arrays.push(("momentum_buf", b)),
            (true, None) => return shape_err(K, format!("momentum {} needs a momentum buffer", p.momentum)),
        }
        devices.push(check(K, &arrays)?);
        check_half(K, t.param, t.half)?;
    }
    let half = tensors.iter().any(|t| t.half.is_some());
    let momentum = p.momentum != 0.0;
    match check_step(K, &devices, half, skip)? {
        None => {}
        Some(Device::Cpu) => {
            if cpu_skipped(skip) {
                return Ok(());
            }
            for t in tensors {
                let mut b = t.momentum_buf.filter(|_| momentum).map(|b| b.cpu_data_mut());
                let b = b.as_deref_mut().map(|v| &mut v[..]);
                reference::sgd_step(&mut t.param.cpu_data_mut(), &t.grad.cpu_data(), b, p, first_step);
                write_half_cpu(t.param, t.half);
            }
        }
        Some(Device::Gpu(g)) => {
            let rule = if momentum { multi::Rule::SgdMomentum } else { multi::Rule::Sgd };
            let q = sgd_words(0, p, first_step);
            let shared: Vec<_> = skip.iter().map(|s| s.gpu_buffer().unwrap()).collect();
            for half in [false, true] {
                let mut slots = Vec::new();
                for t in tensors.iter().filter(|t| t.half.is_some() == half) {
                    let mut arrays = vec![(t.param.gpu_buffer().unwrap(), 4), (t.grad.gpu_buffer().unwrap(), 4)];
                    arrays.extend(t.momentum_buf.filter(|_| momentum).map(|b| (b.gpu_buffer().unwrap(), 4)));
                    arrays.extend(t.half.map(|h| (h.gpu_buffer().unwrap(), 2)));
                    slots.extend(multi::slots_of(&g, t.param.numel(), arrays, 0));
                }
                let variant = multi::Variant { rule, half, skip: skip.is_some() };
                multi::launch(&g, variant, &q, &shared, &slots)?;
            }
        }
    }
    Ok(())
}

/// One Adam (or AdamW) step in place over every tensor of `tensors` (parameter and moment
/// estimates), in launches as [`sgd_step`]'s, the step count as `count` says; with `skip`
/// nothing changes (the device counts do not advance) when its found-inf is set.
pub fn adam_step(tensors: &[AdamTensors], p: &AdamParams, count: AdamCount, skip: Option<&Array>) -> Result<()> {
    const K: &str = "adam_step";
    if p.step == 0 {
        return shape_err(K, "step counts from 1, got 0");
    }
    let mut devices = Vec::with_capacity(tensors.len() + 1);
    for t in tensors {
        devices.push(check(K, &[("param", t.param), ("grad", t.grad), ("m", t.m), ("v", t.v)])?);
        check_half(K, t.param, t.half)?;
    }
    if let AdamCount::Device { counts, pairs } = count {
        require_dtype(K, counts, DType::U32)?;
        if pairs.len() != tensors.len() {
            return shape_err(K, format!("{} count pairs for {} tensors", pairs.len(), tensors.len()));
        }
        if let Some(&k) = pairs.iter().find(|&&k| 2 * k + 1 >= counts.numel()) {
            return shape_err(K, format!("count pair {k} beyond the counts {:?}", counts.shape()));
        }
        if !tensors.is_empty() {
            devices.push(counts.device());
        }
    }
    let half = tensors.iter().any(|t| t.half.is_some());
    let parity = (p.step - 1) % 2;
    match check_step(K, &devices, half, skip)? {
        None => {}
        Some(Device::Cpu) => {
            let skipped = cpu_skipped(skip);
            for (k, t) in tensors.iter().enumerate() {
                let (step_size, bc2_sqrt) = match count {
                    AdamCount::Host => reference::adam_bias_correction(p),
                    AdamCount::Device { counts, pairs } => {
                        let mut c = counts.cpu_data_mut();
                        let before = c[2 * pairs[k] + parity as usize] as u32;
                        c[2 * pairs[k] + 1 - parity as usize] = (before + !skipped as u32) as f64;
                        let (s, b) = reference::adam_bias_correction_f32(p, before + 1);
                        (s as f64, b as f64)
                    }
                };
                if !skipped {
                    reference::adam_update(
                        &mut t.param.cpu_data_mut(),
                        &t.grad.cpu_data(),
                        &mut t.m.cpu_data_mut(),
                        &mut t.v.cpu_data_mut(),
                        p,
                        step_size,
                        bc2_sqrt,
                    );
                    write_half_cpu(t.param, t.half);
                }
            }
        }
        Some(Device::Gpu(g)) => {
            let mut q = adam_words(0, p);
            let mut shared: Vec<_> = skip.iter().map(|s| s.gpu_buffer().unwrap()).collect();
            if let AdamCount::Device { counts, .. } = count {
                q[1] |= if parity == 1 { COUNT_PARITY } else { 0 };
                shared.push(counts.gpu_buffer().unwrap());
            }
            let device_count = matches!(count, AdamCount::Device { .. });
            for half in [false, true] {
                let mut slots = Vec::new();
                for (k, t) in tensors.iter().enumerate().filter(|(_, t)| t.half.is_some() == half) {
                    let pair = match count {
                        AdamCount::Device { pairs, .. } => pairs[k] as u32,
                        AdamCount::Host => 0,
                    };
                    let mut arrays: Vec<_> =
                        [t.param, t.grad, t.m, t.v].iter().map(|a| (a.gpu_buffer().unwrap(), 4)).collect();
                    arrays.extend(t.half.map(|h| (h.gpu_buffer().unwrap(), 2)));
                    slots.extend(multi::slots_of(&g, t.param.numel(), arrays, pair));
                }
                let variant = multi::Variant { rule: multi::Rule::Adam { device_count }, half, skip: skip.is_some() };
                multi::launch(&g, variant, &q, &shared, &slots)?;
            }
        }
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
    /// p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps), the corrections in f64.
    pub fn adam_step(param: &mut [f64], grad: &[f64], m: &mut [f64], v: &mut [f64], p: &AdamParams) {
        let (step_size, bc2_sqrt) = adam_bias_correction(p);
        adam_update(param, grad, m, v, p, step_size, bc2_sqrt);
    }

    /// The host's bias corrections of step `p.step`, in f64: (lr / (1 - b1^t), sqrt(1 - b2^t)).
    pub fn adam_bias_correction(p: &AdamParams) -> (f64, f64) {
        let t = p.step as i32;
        let (bc1, bc2) = (1.0 - (p.beta1 as f64).powi(t), 1.0 - (p.beta2 as f64).powi(t));
        (p.lr as f64 / bc1, bc2.sqrt())
    }

    /// The device's bias corrections of step `t`, in f32 as the kernel works them out
    /// (`optim_rules.wgsl`'s `adam_bias_correction`: powers by repeated squaring).
    pub fn adam_bias_correction_f32(p: &AdamParams, t: u32) -> (f32, f32) {
        let powi = |b: f32| {
            let (mut r, mut x, mut e) = (1.0f32, b, t);
            while e != 0 {
                if e & 1 != 0 {
                    r *= x;
                }
                x *= x;
                e >>= 1;
            }
            r
        };
        (p.lr / (1.0 - powi(p.beta1)), (1.0 - powi(p.beta2)).sqrt())
    }

    /// One Adam / AdamW update with the given bias corrections (`step_size` = lr / (1 - b1^t),
    /// `bc2_sqrt` = sqrt(1 - b2^t)).
    pub fn adam_update(
        param: &mut [f64],
        grad: &[f64],
        m: &mut [f64],
        v: &mut [f64],
        p: &AdamParams,
        step_size: f64,
        bc2_sqrt: f64,
    ) {
        let (lr, b1, b2, eps, wd) = (p.lr as f64, p.beta1 as f64, p.beta2 as f64, p.eps as f64, p.weight_decay as f64);
        for i in 0..param.len() {
            let mut g = grad[i];
            if p.decoupled_weight_decay {
                param[i] *= 1.0 - lr * wd;
            } else {
                g += wd * param[i];
            }
            m[i] = b1 * m[i] + (1.0 - b1) * g;
            v[i] = b2 * v[i] + (1.0 - b2) * g * g;
            param[i] -= step_size * m[i] / (v[i].sqrt() / bc2_sqrt + eps);
        }
    }

    pub fn axpy(dst: &mut [f64], src: &[f64], alpha: f64) {
        dst.iter_mut().zip(src).for_each(|(d, s)| *d += alpha * s);
    }

    pub fn scale(dst: &mut [f64], s: f64) {
        dst.iter_mut().for_each(|d| *d *= s);
    }
}
