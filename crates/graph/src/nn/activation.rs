//! Parameterless activation layers and `Flatten`.

use crate::error::Result;
use crate::nn::Module;
use crate::tensor::Tensor;
use ferrograd_device::kernels::elementwise::UnaryOp;

macro_rules! activation {
    ($(#[$doc:meta])* $name:ident, $op:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, Default)]
        pub struct $name;
        impl Module for $name {
            fn forward(&self, x: &Tensor) -> Result<Tensor> {
                x.unary($op)
            }

            fn activation(&self) -> Option<UnaryOp> {
                Some($op)
            }
        }
    };
}

activation!(Relu, UnaryOp::Relu);
activation!(Tanh, UnaryOp::Tanh);
activation!(Sigmoid, UnaryOp::Sigmoid);
activation!(
    /// Exact (erf) GELU.
    Gelu,
    UnaryOp::Gelu
);

/// `max(x, 0) + slope * min(x, 0)`.
#[derive(Clone, Copy, Debug)]
pub struct LeakyRelu(pub f32);

impl Default for LeakyRelu {
    /// PyTorch's default slope, 0.01.
    fn default() -> Self {
        LeakyRelu(0.01)
    }
}

impl Module for LeakyRelu {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.leaky_relu(self.0)
    }

    fn activation(&self) -> Option<UnaryOp> {
        Some(UnaryOp::LeakyRelu(self.0))
    }
}

/// The input unchanged.
#[derive(Clone, Copy, Debug, Default)]
pub struct Identity;

impl Module for Identity {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(x.clone())
    }
}

/// Merge dims `start..=end` (default `1..=-1`: everything but the batch dim).
#[derive(Clone, Copy, Debug)]
pub struct Flatten {
    pub start: isize,
    pub end: isize,
}

impl Default for Flatten {
    fn default() -> Self {
        Flatten { start: 1, end: -1 }
    }
}

impl Module for Flatten {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.flatten(self.start, self.end)
    }
}
