//! LeNet-5 (LeCun, Bottou, Bengio & Haffner, 1998) in the paper's layout on a 32x32 input
//! (MNIST's 28x28 digits padded by 2): conv 5x5 (1 -> 6), pool, conv 5x5 (6 -> 16), pool,
//! then 400 -> 120 -> 84 -> 10 fully connected layers.
//!
//! The paper's subsampling layers (trainable average pooling), sparse C3 connections,
//! scaled tanh and RBF output are replaced by what people train today: 2x2 max pooling,
//! ReLU, a fully connected C3 and a linear output for softmax cross-entropy.
//! Names: `conv1`, `conv2`, `fc1`, `fc2`, `fc3` (61,706 parameters for 10 classes).

use crate::layers::conv;
use crate::shapes::ParamShapes;
use ferrograd_device::kernels::conv::Conv2dGeometry;
use ferrograd_device::kernels::elementwise::UnaryOp;
use ferrograd_device::Device;
use ferrograd_graph::nn::{Conv2d, Linear, Module};
use ferrograd_graph::{Result, Tensor};

pub struct LeNet5 {
    pub conv1: Conv2d,
    pub conv2: Conv2d,
    pub fc1: Linear,
    pub fc2: Linear,
    pub fc3: Linear,
}

impl LeNet5 {
    pub fn new(device: &Device, num_classes: usize, in_channels: usize) -> Result<LeNet5> {
        Ok(LeNet5 {
            conv1: conv(device, in_channels, 6, 5, 1, 0, true)?,
            conv2: conv(device, 6, 16, 5, 1, 0, true)?,
            fc1: Linear::new(device, 16 * 5 * 5, 120, true)?,
            fc2: Linear::new(device, 120, 84, true)?,
            fc3: Linear::new(device, 84, num_classes, true)?,
        })
    }

    pub fn shapes(num_classes: usize, in_channels: usize) -> ParamShapes {
        let mut s = ParamShapes::new();
        s.conv("conv1", in_channels, 6, 5, 1, true);
        s.conv("conv2", 6, 16, 5, 1, true);
        s.linear("fc1", 16 * 5 * 5, 120);
        s.linear("fc2", 120, 84);
        s.linear("fc3", 84, num_classes);
        s
    }
}

impl Module for LeNet5 {
    /// `x [N, C, 32, 32]` -> logits `[N, classes]`.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let pool = Conv2dGeometry::new(2, 2, 0);
        let relu = UnaryOp::Relu;
        let y = self.conv1.forward_act(x, relu)?.max_pool2d(&pool)?;
        let y = self.conv2.forward_act(&y, relu)?.max_pool2d(&pool)?;
        let y = self.fc1.forward_act(&y.flatten(1, -1)?, relu)?;
        let y = self.fc2.forward_act(&y, relu)?;
        self.fc3.forward(&y)
    }

    fn children(&self) -> Vec<(String, &dyn Module)> {
        ferrograd_graph::children![self; conv1, conv2, fc1, fc2, fc3]
    }
}
