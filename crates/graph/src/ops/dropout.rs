//! Dropout: zero each element with probability `p` and scale the rest by `1/(1-p)`
//! (inverted dropout), so evaluation needs no rescaling.

use crate::error::{invalid, Result};
use crate::tensor::{scale, Tensor};
use ferrograd_device::kernels::elementwise::{binary, BinaryOp};
use ferrograd_device::kernels::random::bernoulli;

/// Dropout with an explicit `seed` (the mask is a pure function of it, on every device).
/// Outside `training`, or with `p == 0`, the input is returned unchanged.
pub fn dropout(x: &Tensor, p: f32, training: bool, seed: u64) -> Result<Tensor> {
    if !(0.0..=1.0).contains(&p) {
        return invalid("dropout", format!("probability {p} outside [0, 1]"));
    }
    if !training || p == 0.0 {
        return Ok(x.clone());
    }
    let keep = bernoulli(&x.device(), &x.shape(), seed, 1.0 - p)?;
    let mask = if p < 1.0 { scale(&keep, 1.0 / (1.0 - p))? } else { keep };
    // the mask is f32 (the autocast policy): an f16 input is cast to it
    let x = x.in_f32()?;
    let out = binary(BinaryOp::Mul, &x.data(), &mask)?;
    Ok(Tensor::from_op("dropout", out, &[&x], move |g, _| Ok(vec![Some(binary(BinaryOp::Mul, g, &mask)?)])))
}
