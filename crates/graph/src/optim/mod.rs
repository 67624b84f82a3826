//! Optimizers (updates run on the device through fused kernels; nothing waits), gradient
//! clipping, and learning-rate schedules.
//!
//! ```ignore
//! let mut opt = Sgd::new(model.named_parameters(), SgdConfig { lr: 0.1, momentum: 0.9, ..Default::default() });
//! opt.zero_grad();
//! loss.backward()?;
//! clip_grad_norm(&model.parameters(), 1.0)?;
//! opt.step()?;
//! ```
//!
//! State is exposed by name for checkpoints: `<param>.momentum_buffer` (SGD),
//! `<param>.exp_avg` / `<param>.exp_avg_sq` (Adam/AdamW) and `<param>.step`.

pub mod adam;
pub mod clip;
pub mod schedule;
pub mod sgd;

pub use adam::{Adam, AdamConfig};
pub use clip::clip_grad_norm;
pub use schedule::{ConstantLr, CosineAnnealingLr, LinearWarmup, LrSchedule, MultiStepLr, OneCycleLr, StepLr};
pub use sgd::{Sgd, SgdConfig};

use crate::error::{GraphError, Result};
use crate::tensor::Tensor;
use ferrograd_device::{Array, DType, Device};

pub trait Optimizer {
    /// Apply one update to every parameter that has a gradient.
    fn step(&mut self) -> Result<()>;

    /// The parameters, with their names.
    fn params(&self) -> &[(String, Tensor)];

    fn lr(&self) -> f64;
    fn set_lr(&mut self, lr: f64);

    /// [`Optimizer::step`], skipped on the device when the mixed-precision scaler state
    /// (`ferrograd_device::kernels::amp`) has found inf/NaN in the gradients; nothing is read back.
    fn step_unless_overflow(&mut self, scaler_state: &Array) -> Result<()>;

    /// Optimizer state by name (per-parameter buffers and step counts).
    fn state_dict(&self) -> Vec<(String, Array)>;

    /// Restore state saved by `state_dict` (moved to each parameter's device).
    fn load_state_dict(&mut self, state: &[(String, Array)]) -> Result<()>;

    /// Whether every setting (learning rate, momentum, ...) is in range; `step` checks too,
    /// as the learning rate changes through `set_lr`.
    fn validate(&self) -> Result<()> {
        Ok(())
    }

    /// Clear every parameter's gradient.
    fn zero_grad(&self) {
        for (_, p) in self.params() {
            p.zero_grad();
        }
    }
}

/// Parameters given without names get `"0"`, `"1"`, ...
pub fn unnamed(params: Vec<Tensor>) -> Vec<(String, Tensor)> {
    params.into_iter().enumerate().map(|(i, t)| (i.to_string(), t)).collect()
}

/// A step count as a CPU u32 scalar array (as it appears in `state_dict`).
pub(crate) fn step_array(step: u64) -> Array {
    Array::cpu(vec![step as f64], &[], DType::U32)
}

/// The entry `name` of `state`, checked against `shape` and moved to `device`.
pub(crate) fn state_entry(
    state: &[(String, Array)],
    name: &str,
    shape: &[usize],
    device: &Device,
) -> Result<Option<Array>> {
    let Some((_, a)) = state.iter().find(|(n, _)| n == name) else { return Ok(None) };
    if a.shape() != shape {
        return Err(GraphError::StateDict(format!("{name}: shape {:?} in the state, {shape:?} expected", a.shape())));
    }
    Ok(Some(crate::tensor::owned_copy(a, device)?))
}

/// The step count `name` of `state`, if present (reading it may wait once: loading only).
pub(crate) fn state_step(state: &[(String, Array)], name: &str) -> Result<Option<u64>> {
    match state.iter().find(|(n, _)| n == name) {
        Some((_, a)) => Ok(Some(a.item()? as u64)),
        None => Ok(None),
    }
}
