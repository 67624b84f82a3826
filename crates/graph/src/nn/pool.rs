//! Pooling layers over `[N, C, H, W]`.

use crate::error::Result;
use crate::nn::Module;
use crate::tensor::Tensor;
use ferrograd_device::kernels::conv::Conv2dGeometry;

/// Max pooling; `MaxPool2d::new(k, s, p)` is PyTorch's `MaxPool2d(k, s, p)`.
pub struct MaxPool2d(pub Conv2dGeometry);

impl MaxPool2d {
    pub fn new(kernel: usize, stride: usize, padding: usize) -> MaxPool2d {
        MaxPool2d(Conv2dGeometry::new(kernel, stride, padding))
    }
}

impl Module for MaxPool2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.max_pool2d(&self.0)
    }
}

/// Average pooling (`count_include_pad` defaults to true, as in PyTorch).
pub struct AvgPool2d {
    pub geometry: Conv2dGeometry,
    pub count_include_pad: bool,
}

impl AvgPool2d {
    pub fn new(kernel: usize, stride: usize, padding: usize) -> AvgPool2d {
        AvgPool2d { geometry: Conv2dGeometry::new(kernel, stride, padding), count_include_pad: true }
    }
}

impl Module for AvgPool2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.avg_pool2d(&self.geometry, self.count_include_pad)
    }
}

/// Average into a fixed `[oh, ow]` output grid.
pub struct AdaptiveAvgPool2d(pub [usize; 2]);

impl Module for AdaptiveAvgPool2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.adaptive_avg_pool2d(self.0)
    }
}
