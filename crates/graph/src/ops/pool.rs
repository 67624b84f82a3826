//! Pooling over `[N, C, H, W]`: max (backward routes through the saved argmax indices),
//! average, and adaptive average.

use crate::error::Result;
use crate::tensor::Tensor;
use ferrograd_device::kernels::conv::Conv2dGeometry;
use ferrograd_device::kernels::pool::{
    adaptive_avg_pool2d, adaptive_avg_pool2d_backward, avg_pool2d, avg_pool2d_backward, max_pool2d, max_pool2d_backward,
};

impl Tensor {
    /// Max over each window (padding counts as -inf).
    pub fn max_pool2d(&self, g: &Conv2dGeometry) -> Result<Tensor> {
        let x = self.data();
        let (out, indices) = max_pool2d(&x, g)?;
        let (g, shape) = (*g, x.shape().to_vec());
        Ok(Tensor::from_op("max_pool2d", out, &[self], move |grad, _| {
            Ok(vec![Some(max_pool2d_backward(grad, &indices, &g, &shape)?)])
        }))
    }

    /// Mean over each window; `count_include_pad` divides by the full window size (PyTorch's default).
    pub fn avg_pool2d(&self, g: &Conv2dGeometry, count_include_pad: bool) -> Result<Tensor> {
        let x = self.data();
        let out = avg_pool2d(&x, g, count_include_pad)?;
        let (g, shape) = (*g, x.shape().to_vec());
        Ok(Tensor::from_op("avg_pool2d", out, &[self], move |grad, _| {
            Ok(vec![Some(avg_pool2d_backward(grad, &g, &shape, count_include_pad)?)])
        }))
    }

    /// Average into an `[oh, ow]` grid of PyTorch's adaptive windows.
    pub fn adaptive_avg_pool2d(&self, out_hw: [usize; 2]) -> Result<Tensor> {
        let x = self.data();
        let out = adaptive_avg_pool2d(&x, out_hw)?;
        let shape = x.shape().to_vec();
        Ok(Tensor::from_op("adaptive_avg_pool2d", out, &[self], move |grad, _| {
            Ok(vec![Some(adaptive_avg_pool2d_backward(grad, &shape)?)])
        }))
    }
}
