//! Multi-layer perceptron: flatten, then `Linear -> ReLU` for each hidden size, then a
//! `Linear` to the classes. Parameters are `layers.0`, `layers.2`, ... (the ReLUs hold the
//! odd indices of the `Sequential`, as in PyTorch).

use crate::shapes::ParamShapes;
use ferrograd_device::Device;
use ferrograd_graph::nn::{Linear, Module, Relu, Sequential};
use ferrograd_graph::{Result, Tensor};

pub struct Mlp {
    layers: Sequential,
}

impl Mlp {
    /// `in_features -> hidden[0] -> ... -> num_classes`, ReLU between layers.
    pub fn new(device: &Device, in_features: usize, hidden: &[usize], num_classes: usize) -> Result<Mlp> {
        let mut layers = Sequential::new();
        let mut width = in_features;
        for &h in hidden {
            layers = layers.add(Linear::new(device, width, h, true)?).add(Relu);
            width = h;
        }
        layers = layers.add(Linear::new(device, width, num_classes, true)?);
        Ok(Mlp { layers })
    }

    pub fn shapes(in_features: usize, hidden: &[usize], num_classes: usize) -> ParamShapes {
        let mut s = ParamShapes::new();
        let widths: Vec<usize> = std::iter::once(in_features).chain(hidden.iter().copied()).collect();
        for (i, pair) in widths.windows(2).enumerate() {
            s.linear(&format!("layers.{}", 2 * i), pair[0], pair[1]);
        }
        s.linear(&format!("layers.{}", 2 * hidden.len()), widths[widths.len() - 1], num_classes);
        s
    }
}

impl Module for Mlp {
    /// Any input `[batch, ...]` whose trailing dims hold `in_features` values.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.layers.forward(&x.flatten(1, -1)?)
    }

    fn children(&self) -> Vec<(String, &dyn Module)> {
        ferrograd_graph::children![self; layers]
    }
}
