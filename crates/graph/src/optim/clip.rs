//! Gradient clipping by the global L2 norm (PyTorch's `clip_grad_norm_`), all on the device.

use crate::error::Result;
use crate::tensor::Tensor;
use ferrograd_device::kernels::elementwise::{binary, binary_scalar, unary, BinaryOp, ScalarSide, UnaryOp};
use ferrograd_device::kernels::reduce::{reduce, ReduceOp};
use ferrograd_device::Array;

/// Scale every gradient by `min(1, max_norm / (total_norm + 1e-6))`, where `total_norm`
/// is the L2 norm of all gradients together. Returns `total_norm` (shape `[]`) without
/// reading it back; `None` when no parameter has a gradient.
pub fn clip_grad_norm(params: &[Tensor], max_norm: f64) -> Result<Option<Array>> {
    crate::range::Allowed::Positive.check("clip_grad_norm", max_norm)?;
    let grads: Vec<(&Tensor, Array)> = params.iter().filter_map(|p| p.grad().map(|g| (p, g))).collect();
    let mut total: Option<Array> = None;
    for (_, g) in &grads {
        let sq = reduce(ReduceOp::Sum, &unary(UnaryOp::Square, g)?, &[], false)?;
        total = Some(match total {
            None => sq,
            Some(t) => binary(BinaryOp::Add, &t, &sq)?,
        });
    }
    let Some(total) = total else { return Ok(None) };
    let norm = unary(UnaryOp::Sqrt, &total)?.reshape(&[])?;
    let denom = binary_scalar(BinaryOp::Add, &norm, 1e-6, ScalarSide::Right)?;
    let coef = binary_scalar(BinaryOp::Div, &denom, max_norm as f32, ScalarSide::Left)?;
    let coef = binary_scalar(BinaryOp::Min, &coef, 1.0, ScalarSide::Right)?;
    for (p, g) in grads {
        p.set_grad(Some(binary(BinaryOp::Mul, &g, &coef)?));
    }
    Ok(Some(norm))
}
