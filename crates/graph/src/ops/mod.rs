//! Differentiable ops, one family per file, each op's forward and backward side by side.
//! Every op is a method on `Tensor` (PyTorch style) or a function in `functional`.

pub mod cast;
pub mod conv;
pub mod dropout;
pub mod elementwise;
pub mod embedding;
pub mod join;
pub mod loss;
pub mod matmul;
pub mod norm;
pub mod pool;
pub mod recurrent;
pub mod reduce;
pub mod shape;
pub mod softmax;
pub mod sync_norm;

use crate::error::{invalid, GraphError, Result};
use crate::tensor::Tensor;
use ferrograd_device::Device;

/// A possibly negative axis (`-1` = last) as an index into `ndim` dimensions.
pub(crate) fn axis(op: &'static str, dim: isize, ndim: usize) -> Result<usize> {
    let d = if dim < 0 { dim + ndim as isize } else { dim };
    if d < 0 || d as usize >= ndim {
        return invalid(op, format!("dimension {dim} out of range for {ndim} dimensions"));
    }
    Ok(d as usize)
}

/// The device every tensor lives on, or an error naming the op.
pub(crate) fn same_device(op: &'static str, tensors: &[&Tensor]) -> Result<Device> {
    let first = tensors[0].device();
    for t in &tensors[1..] {
        let d = t.device();
        if !d.same(&first) {
            return Err(GraphError::DeviceMismatch { op, left: first.name(), right: d.name() });
        }
    }
    Ok(first)
}
