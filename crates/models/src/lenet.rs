//! LeNet-5 (LeCun, Bottou, Bengio & Haffner, 1998) in the paper's layout on a 32x32 input
//! (MNIST's 28x28 digits padded by 2): conv 5x5 (1 -> 6), pool, conv 5x5 (6 -> 16), pool,
//! then 400 -> 120 -> 84 -> 10 fully connected layers.
//!
//! The paper's subsampling layers (trainable average pooling), sparse C3 connections,
//! scaled tanh and RBF output are replaced by what people train today: 2x2 max pooling,
//! ReLU, a fully connected C3 and a linear output for softmax cross-entropy.
//! Names: `conv1`, `conv2`, `fc1`, `fc2`, `fc3` (61,706 parameters for 10 classes).
//! `lenet5_bn` adds batch norm after each convolution (`bn1`, `bn2`, 61,750 parameters): the
//! smallest model with batch norm, which the data-parallel tests train.

use crate::layers::conv;
use crate::shapes::ParamShapes;
use ferrograd_device::kernels::conv::Conv2dGeometry;
use ferrograd_device::kernels::elementwise::UnaryOp;
use ferrograd_device::Device;
use ferrograd_graph::nn::{BatchNorm2d, Conv2d, Linear, Module};
use ferrograd_graph::{Result, Tensor};

pub struct LeNet5 {
    pub conv1: Conv2d,
    pub conv2: Conv2d,
    /// batch norm after conv1 and conv2 (`lenet5_bn`)
    pub batch_norm: Option<[BatchNorm2d; 2]>,
    pub fc1: Linear,
    pub fc2: Linear,
    pub fc3: Linear,
}

impl LeNet5 {
    pub fn new(device: &Device, num_classes: usize, in_channels: usize) -> Result<LeNet5> {
        Ok(LeNet5 {
            conv1: conv(device, in_channels, 6, 5, 1, 0, true)?,
            conv2: conv(device, 6, 16, 5, 1, 0, true)?,
            batch_norm: None,
            fc1: Linear::new(device, 16 * 5 * 5, 120, true)?,
            fc2: Linear::new(device, 120, 84, true)?,
            fc3: Linear::new(device, 84, num_classes, true)?,
        })
    }

    /// With batch norm after each convolution.
    pub fn with_batch_norm(device: &Device, num_classes: usize, in_channels: usize) -> Result<LeNet5> {
        let batch_norm = Some([BatchNorm2d::new_2d(device, 6)?, BatchNorm2d::new_2d(device, 16)?]);
        Ok(LeNet5 { batch_norm, ..LeNet5::new(device, num_classes, in_channels)? })
    }

    pub fn shapes(num_classes: usize, in_channels: usize, batch_norm: bool) -> ParamShapes {
        let mut s = ParamShapes::new();
        s.conv("conv1", in_channels, 6, 5, 1, true);
        s.conv("conv2", 6, 16, 5, 1, true);
        if batch_norm {
            s.batch_norm("bn1", 6);
            s.batch_norm("bn2", 16);
        }
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
        let block = |conv: &Conv2d, bn: Option<&BatchNorm2d>, x: &Tensor| -> Result<Tensor> {
            let y = match bn {
                Some(bn) => bn.forward(&conv.forward(x)?)?.relu()?,
                None => conv.forward_act(x, relu)?,
            };
            y.max_pool2d(&pool)
        };
        let [bn1, bn2] = self.batch_norm.as_ref().map_or([None, None], |[a, b]| [Some(a), Some(b)]);
        let y = block(&self.conv1, bn1, x)?;
        let y = block(&self.conv2, bn2, &y)?;
        let y = self.fc1.forward_act(&y.flatten(1, -1)?, relu)?;
        let y = self.fc2.forward_act(&y, relu)?;
        self.fc3.forward(&y)
    }

    fn children(&self) -> Vec<(String, &dyn Module)> {
        let mut children = ferrograd_graph::children![self; conv1, conv2];
        if let Some([bn1, bn2]) = &self.batch_norm {
            children.extend([("bn1".to_string(), bn1 as &dyn Module), ("bn2".to_string(), bn2 as &dyn Module)]);
        }
        children.extend(ferrograd_graph::children![self; fc1, fc2, fc3]);
        children
    }
}
