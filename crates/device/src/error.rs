//! Errors a caller can cause or meet: each names the kernel and what was wrong.

use thiserror::Error;

#[derive(Debug, Error, Clone, PartialEq)]
pub enum DeviceError {
    #[error("{kernel}: shape error: {detail}")]
    Shape { kernel: &'static str, detail: String },
    #[error("{kernel}: dtype error: {detail}")]
    DType { kernel: &'static str, detail: String },
    #[error("{kernel}: arrays live on different devices ({left} vs {right})")]
    DeviceMismatch { kernel: &'static str, left: String, right: String },
    #[error("{kernel}: buffer of {bytes} bytes exceeds the adapter's limit of {limit} bytes (shape {shape:?})")]
    TooLarge { kernel: &'static str, bytes: u64, limit: u64, shape: Vec<usize> },
    #[error("{kernel}: out of GPU memory allocating {bytes} bytes")]
    OutOfMemory { kernel: &'static str, bytes: u64 },
    #[error(
        "no GPU adapter found (install a Vulkan driver, e.g. Mesa's lavapipe: `apt-get install mesa-vulkan-drivers`)"
    )]
    NoAdapter,
    #[error(
        "no GPU adapter whose name contains {want:?}; the adapters are {names:?} (`ferrograd devices` lists them)"
    )]
    NoMatchingAdapter { want: String, names: Vec<String> },
    #[error("unknown device {spec:?}: expected gpu (the best adapter), gpu:NAME (the adapter whose name contains NAME) or cpu")]
    UnknownDevice { spec: String },
    #[error("{kernel}: not supported on this adapter: {detail}")]
    Unsupported { kernel: &'static str, detail: String },
    #[error("{context}: wgpu error: {message}")]
    Wgpu { context: String, message: String },
}

pub type Result<T, E = DeviceError> = std::result::Result<T, E>;

/// Shorthand for a shape error naming the kernel.
pub fn shape_err<T>(kernel: &'static str, detail: impl Into<String>) -> Result<T> {
    Err(DeviceError::Shape { kernel, detail: detail.into() })
}
