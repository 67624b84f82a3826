//! Softmax and log-softmax along one dim (the kernels work on the last dim; other dims
//! are moved there and back).

use crate::error::Result;
use crate::ops::axis;
use crate::tensor::Tensor;
use ferrograd_device::kernels::softmax::{log_softmax, log_softmax_backward, softmax, softmax_backward};

impl Tensor {
    fn along_last(&self, dim: isize, f: impl Fn(&Tensor) -> Result<Tensor>) -> Result<Tensor> {
        let n = self.ndim();
        let d = axis("softmax", dim, n)?;
        if d == n - 1 {
            return f(self);
        }
        let moved = self.transpose(d as isize, -1)?;
        f(&moved)?.transpose(d as isize, -1)
    }

    /// `exp(x) / sum(exp(x))` along `dim`.
    pub fn softmax(&self, dim: isize) -> Result<Tensor> {
        self.in_f32()?.along_last(dim, |x| {
            let y = softmax(&x.data())?;
            let saved = y.clone();
            Ok(Tensor::from_op("softmax", y, &[x], move |g, _| Ok(vec![Some(softmax_backward(&saved, g)?)])))
        })
    }

    /// `x - log(sum(exp(x)))` along `dim`, computed stably.
    pub fn log_softmax(&self, dim: isize) -> Result<Tensor> {
        self.in_f32()?.along_last(dim, |x| {
            let y = log_softmax(&x.data())?;
            let saved = y.clone();
            Ok(Tensor::from_op("log_softmax", y, &[x], move |g, _| Ok(vec![Some(log_softmax_backward(&saved, g)?)])))
        })
    }
}
