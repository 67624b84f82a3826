//! Errors a user of the graph can cause: each names the op and the shapes involved.

use ferrograd_device::DeviceError;
use thiserror::Error;

#[derive(Debug, Error, Clone, PartialEq)]
pub enum GraphError {
    /// A kernel refused its inputs (its message names the kernel and the shapes).
    #[error(transparent)]
    Device(#[from] DeviceError),
    /// Shapes an op cannot take.
    #[error("{op}: shape error: {detail}")]
    Shape { op: &'static str, detail: String },
    /// An argument out of range (an axis, a probability, a group count, ...).
    #[error("{op}: invalid argument: {detail}")]
    Invalid { op: &'static str, detail: String },
    /// Tensors on different devices given to one op.
    #[error("{op}: tensors live on different devices ({left} vs {right})")]
    DeviceMismatch { op: &'static str, left: String, right: String },
    /// `backward` misuse: a non-scalar root without a seed, a tensor that does not require grad.
    #[error("backward: {0}")]
    Backward(String),
    /// `load_state_dict` / optimizer state: missing or unexpected names, shape mismatches.
    #[error("load_state_dict: {0}")]
    StateDict(String),
    /// A numeric setting (learning rate, momentum, ...) outside its range.
    #[error(transparent)]
    OutOfRange(#[from] crate::range::OutOfRange),
}

pub type Result<T, E = GraphError> = std::result::Result<T, E>;

pub(crate) fn shape_err<T>(op: &'static str, detail: impl Into<String>) -> Result<T> {
    Err(GraphError::Shape { op, detail: detail.into() })
}

pub(crate) fn invalid<T>(op: &'static str, detail: impl Into<String>) -> Result<T> {
    Err(GraphError::Invalid { op, detail: detail.into() })
}
