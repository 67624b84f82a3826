//! ferrograd-device: the wgpu context, buffer pool, pipeline cache, batched dispatch, and
//! every kernel with its CPU reference.
//!
//! Conventions for kernels (see `docs/ARCHITECTURE.md`):
//! - WGSL lives in `shaders/<family>.wgsl`; binding 0 is the entry point's uniform
//!   parameter block, storage buffers follow at bindings 1, 2, ... in launcher order.
//! - A launcher takes `Array`s, checks shapes/dtypes/devices (errors name the kernel and
//!   the shapes), allocates outputs with `Array::empty` and records a dispatch; it never
//!   waits for the GPU.
//! - `reference` submodules hold the CPU twins in f64; `Device::Cpu` runs them.

pub mod array;
pub mod device;
pub mod dtype;
pub mod error;
pub mod gpu;
pub mod kernels;
pub mod testing;

pub use array::Array;
pub use device::Device;
pub use dtype::DType;
pub use error::{DeviceError, Result};
pub use gpu::{list_adapters, Stats};
