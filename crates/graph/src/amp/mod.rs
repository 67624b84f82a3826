//! Mixed precision in the manner of PyTorch's AMP: an [`autocast`] scope in which the products
//! (convolutions, linear layers, matmuls) run on f16 operands with f32 accumulation, f32
//! master weights whose f16 copies the optimizers refresh in their own update launch, and a
//! [`GradScaler`] whose scale, overflow check and step skipping all live on the device.
//!
//! ```ignore
//! let mut scaler = GradScaler::new(&device)?;
//! let loss = {
//!     let _amp = autocast(Precision::Mixed);
//!     cross_entropy(&model.forward(&x)?, &y, 0.0)?
//! };
//! opt.zero_grad();
//! scaler.backward(&loss)?;          // seed = the scale, no readback
//! scaler.unscale(opt.params())?;    // grads /= scale, found-inf set on the device
//! scaler.step(&mut opt)?;           // skipped on the device when found-inf is set
//! scaler.update()?;                 // halve on overflow, double after 2000 good steps
//! ```

pub mod autocast;
pub mod scaler;

pub use autocast::{autocast, autocast_enabled, AutocastGuard, Precision};
pub use scaler::{backward_and_step, scaled_backward, unscale_and_step, GradScaler};
