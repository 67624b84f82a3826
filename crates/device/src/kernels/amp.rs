//! Mixed precision's loss scaler on the device (WGSL: `shaders/amp.wgsl`, used only where the
//! adapter has f16): dynamic loss scaling with `torch.cuda.amp.GradScaler`'s semantics. The
//! optimizer updates that skip a step whose gradients overflowed (and write the parameter's
//! f16 copy) are `kernels::optim`'s, given the state as `skip`.
//!
//! The scaler's state is one `[4]` u32 array on the device: the scale (f32 bits), the growth
//! tracker (good steps since the scale last changed), found-inf (0 or 1) and the number of
//! skipped steps. Kernels read and write it in recording order, so a step that uses it adds
//! launches but no wait; the host reads it only for a checkpoint ([`read_scaler_state`]).

use crate::array::Array;
use crate::device::Device;
use crate::dtype::DType;
use crate::error::{shape_err, DeviceError, Result};
use crate::gpu::{grid_1d, GpuContext, Kernel};
use crate::kernels::common::{param_bytes, require_dtype, same_device};
use crate::kernels::optim::{check, words};

crate::shader!(AMP, "amp", "optim_rules");

const SCALE: usize = 0;
const GROWTH: usize = 1;
pub(crate) const FOUND_INF: usize = 2;
const SKIPPED: usize = 3;

/// GradScaler's schedule: PyTorch's defaults are 2^16, 2, 0.5 and 2000.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScalerSchedule {
    pub growth_factor: f32,
    pub backoff_factor: f32,
    pub growth_interval: u32,
}

impl Default for ScalerSchedule {
    fn default() -> Self {
        ScalerSchedule { growth_factor: 2.0, backoff_factor: 0.5, growth_interval: 2000 }
    }
}

/// The scaler's state as the host sees it (a checkpoint's copy).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScalerState {
    pub scale: f32,
    pub growth_tracker: u32,
    pub found_inf: bool,
    pub skipped_steps: u32,
}

/// A state array on `device` holding `state`.
pub fn scaler_state(device: &Device, state: &ScalerState) -> Result<Array> {
    if !state.scale.is_finite() || state.scale <= 0.0 {
        return shape_err("scaler_state", format!("the loss scale must be finite and positive, got {}", state.scale));
    }
    let words = [state.scale.to_bits(), state.growth_tracker, state.found_inf as u32, state.skipped_steps];
    Array::from_u32(device, &words, &[4])
}

/// Reads the state back (one wait on a GPU).
pub fn read_scaler_state(state: &Array) -> Result<ScalerState> {
    check_state("read_scaler_state", state)?;
    let w = state.to_u32_vec()?;
    Ok(ScalerState {
        scale: f32::from_bits(w[SCALE]),
        growth_tracker: w[GROWTH],
        found_inf: w[FOUND_INF] != 0,
        skipped_steps: w[SKIPPED],
    })
}

/// The scale as a one-element f32 array, without reading it back (a copy of the state's first
/// word, which holds the scale's bits): the seed of a scaled backward pass.
pub fn scale_array(state: &Array) -> Result<Array> {
    check_state("scale_array", state)?;
    match state.device() {
        Device::Cpu => {
            let scale = f32::from_bits(state.cpu_data()[SCALE] as u32);
            Ok(Array::cpu(vec![scale as f64], &[1], DType::F32))
        }
        Device::Gpu(_) => Ok(crate::kernels::copy::narrow(state, 0, SCALE, 1)?.with_dtype(DType::F32)),
    }
}

pub(crate) fn check_state(kernel: &'static str, state: &Array) -> Result<()> {
    require_dtype(kernel, state, DType::U32)?;
    if state.shape() != [4] {
        return shape_err(kernel, format!("the scaler state is [4] u32, got {:?}", state.shape()));
    }
    Ok(())
}

fn gpu_of<'a>(kernel: &'static str, device: &'a Device) -> Result<&'a std::sync::Arc<GpuContext>> {
    let Device::Gpu(g) = device else { return shape_err(kernel, "GPU kernel launched on CPU arrays") };
    if !g.caps().f16 {
        return Err(DeviceError::Unsupported { kernel, detail: "adapter has no SHADER_F16".into() });
    }
    Ok(g)
}

fn launch(g: &GpuContext, entry: &'static str, p: &[u32], arrays: &[&Array], n: usize) -> Result<()> {
    let bufs = arrays.iter().map(|a| a.expect_gpu(entry)).collect::<Result<Vec<_>>>()?;
    g.dispatch(&Kernel::new(&AMP, entry), param_bytes(p), &bufs, grid_1d(n, 256))
}

/// `grad *= 1 / scale` in place, setting the state's found-inf where a value is not finite.
pub fn unscale_check(grad: &Array, state: &Array) -> Result<()> {
    const K: &str = "unscale_check";
    check_state(K, state)?;
    let device = same_device(K, &[grad, state])?;
    check(K, &[("grad", grad)])?;
    match &device {
        Device::Cpu => {
            let mut s = state.cpu_data_mut();
            let inv = 1.0 / f32::from_bits(s[SCALE] as u32) as f64;
            let mut g = grad.cpu_data_mut();
            if reference::unscale(&mut g, inv) {
                s[FOUND_INF] = 1.0;
            }
            Ok(())
        }
        Device::Gpu(_) => {
            let g = gpu_of(K, &device)?;
            launch(g, K, &words(grad.numel(), 0, [0.0; 10]), &[grad, state], grad.numel())
        }
    }
}

/// The scale's update after a step (see [`ScalerSchedule`]); clears found-inf.
pub fn update_scale(state: &Array, schedule: &ScalerSchedule) -> Result<()> {
    const K: &str = "update_scale";
    check_state(K, state)?;
    let device = state.device();
    match &device {
        Device::Cpu => {
            let mut s = state.cpu_data_mut();
            let mut host = ScalerState {
                scale: f32::from_bits(s[SCALE] as u32),
                growth_tracker: s[GROWTH] as u32,
                found_inf: s[FOUND_INF] != 0.0,
                skipped_steps: s[SKIPPED] as u32,
            };
            reference::update_scale(&mut host, schedule);
            s[SCALE] = host.scale.to_bits() as f64;
            s[GROWTH] = host.growth_tracker as f64;
            s[FOUND_INF] = 0.0;
            s[SKIPPED] = host.skipped_steps as f64;
            Ok(())
        }
        Device::Gpu(_) => {
            let g = gpu_of(K, &device)?;
            let mut f = [0.0; 10];
            (f[0], f[1]) = (schedule.growth_factor, schedule.backoff_factor);
            let p = words(schedule.growth_interval as usize, 0, f);
            g.dispatch(&Kernel::new(&AMP, K), param_bytes(&p), &[state.expect_gpu(K)?], [1, 1, 1])
        }
    }
}

/// CPU twins, from GradScaler's documented rules.
pub mod reference {
    use super::{ScalerSchedule, ScalerState};

    /// `grad *= inv` in place; whether any value is not finite.
    pub fn unscale(grad: &mut [f64], inv: f64) -> bool {
        let mut found = false;
        for g in grad.iter_mut() {
            *g *= inv;
            found |= !g.is_finite();
        }
        found
    }

    /// On found-inf: scale *= backoff, tracker = 0, one more skipped step. Otherwise the
    /// tracker counts the step; at the growth interval the scale grows (unless that
    /// overflows f32) and the tracker restarts. Found-inf is cleared.
    pub fn update_scale(s: &mut ScalerState, schedule: &ScalerSchedule) {
        if s.found_inf {
            s.scale *= schedule.backoff_factor;
            s.growth_tracker = 0;
            s.skipped_steps += 1;
        } else {
            s.growth_tracker += 1;
            if s.growth_tracker >= schedule.growth_interval {
                let grown = s.scale * schedule.growth_factor;
                if grown.is_finite() {
                    s.scale = grown;
                }
                s.growth_tracker = 0;
            }
        }
        s.found_inf = false;
    }
}
