//! ferrograd: deep-learning training on WGSL compute shaders through wgpu.
//!
//! `use ferrograd::prelude::*;` is all a program needs.

pub use ferrograd_device as device;
pub use ferrograd_graph as graph;
pub use ferrograd_models as models;
pub use ferrograd_train as train;

pub mod prelude {
    pub use ferrograd_device::{Array, DType, Device, DeviceError};
    pub use ferrograd_graph::prelude::*;
}
