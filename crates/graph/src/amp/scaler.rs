//! Dynamic loss scaling with `torch.cuda.amp.GradScaler`'s semantics: the loss's gradient is
//! seeded with the scale (2^16 at first), the gradients are divided by it and checked for
//! inf/NaN, a step whose gradients overflowed is skipped and halves the scale, and 2000 good
//! steps in a row double it. The scale and the found-inf flag live in one device array
//! (`ferrograd_device::kernels::amp`), so none of this reads anything back: a step with the
//! scaler waits on the GPU exactly as often as one without.

use crate::error::Result;
use crate::optim::{clip_grad_norm, Optimizer};
use crate::tensor::Tensor;
use ferrograd_device::kernels::amp::{
    read_scaler_state, scale_array, scaler_state, unscale_check, update_scale, ScalerSchedule, ScalerState,
};
use ferrograd_device::{Array, Device};

/// PyTorch's initial scale.
pub const INIT_SCALE: f32 = 65536.0;

pub struct GradScaler {
    state: Array,
    schedule: ScalerSchedule,
}

impl GradScaler {
    /// A scaler with PyTorch's defaults: scale 2^16, x2 after 2000 good steps, x0.5 on overflow.
    pub fn new(device: &Device) -> Result<GradScaler> {
        let fresh = ScalerState { scale: INIT_SCALE, growth_tracker: 0, found_inf: false, skipped_steps: 0 };
        GradScaler::with_state(device, &fresh, ScalerSchedule::default())
    }

    /// A scaler resuming from `state` (a checkpoint's) with `schedule`.
    pub fn with_state(device: &Device, state: &ScalerState, schedule: ScalerSchedule) -> Result<GradScaler> {
        Ok(GradScaler { state: scaler_state(device, state)?, schedule })
    }

    /// Backpropagate `loss * scale` (the seed is the scale, read on the device).
    pub fn backward(&self, loss: &Tensor) -> Result<()> {
        let seed = scale_array(&self.state)?.reshape(&loss.shape())?;
        loss.backward_with(&seed)
    }

    /// Divide every gradient by the scale in place and note on the device whether any value
    /// is inf or NaN. Call before clipping, so the clip sees true gradients.
    pub fn unscale(&self, params: &[(String, Tensor)]) -> Result<()> {
        for (_, p) in params {
            if let Some(g) = p.grad() {
                unscale_check(&g, &self.state)?;
            }
        }
        Ok(())
    }

    /// The optimizer's step, skipped on the device if [`GradScaler::unscale`] found inf/NaN.
    pub fn step(&self, optimizer: &mut dyn Optimizer) -> Result<()> {
        optimizer.step_unless_overflow(&self.state)
    }

    /// The scale's update for the next step (see the module docs).
    pub fn update(&self) -> Result<()> {
        Ok(update_scale(&self.state, &self.schedule)?)
    }

    /// The state, read back (one wait on a GPU: for checkpoints and tests, not per step).
    pub fn state(&self) -> Result<ScalerState> {
        Ok(read_scaler_state(&self.state)?)
    }

    pub fn schedule(&self) -> &ScalerSchedule {
        &self.schedule
    }
}

/// A training step after its forward pass, the same with or without a scaler: clear the
/// gradients, backpropagate `loss` (scaled, with a scaler: [`scaled_backward`]), then
/// [`unscale_and_step`]. Records kernels only: nothing waits.
pub fn backward_and_step(
    loss: &Tensor,
    optimizer: &mut dyn Optimizer,
    scaler: Option<&GradScaler>,
    clip: Option<f64>,
) -> Result<()> {
    scaled_backward(loss, optimizer, scaler)?;
    unscale_and_step(optimizer, scaler, clip)
}

/// Clears the optimizer's gradients and backpropagates `loss`, multiplied by the scale when
/// there is a scaler. (Data-parallel training averages the gradients here, before
/// [`unscale_and_step`]: the scale is the same on every replica.)
pub fn scaled_backward(loss: &Tensor, optimizer: &mut dyn Optimizer, scaler: Option<&GradScaler>) -> Result<()> {
    optimizer.zero_grad();
    match scaler {
        Some(s) => s.backward(loss),
        None => loss.backward(),
    }
}

/// After [`scaled_backward`]: unscales the gradients and checks them for inf/NaN (with a
/// scaler), clips their norm to `clip`, steps the optimizer (skipped on the device on
/// overflow) and updates the scale.
pub fn unscale_and_step(optimizer: &mut dyn Optimizer, scaler: Option<&GradScaler>, clip: Option<f64>) -> Result<()> {
    if let Some(s) = scaler {
        s.unscale(optimizer.params())?;
    }
    if let Some(max_norm) = clip {
        let params: Vec<Tensor> = optimizer.params().iter().map(|(_, p)| p.clone()).collect();
        clip_grad_norm(&params, max_norm)?;
    }
    match scaler {
        Some(s) => {
            s.step(optimizer)?;
            s.update()
        }
        None => optimizer.step(),
    }
}
