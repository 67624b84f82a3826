//! `cast` between f32 and f16 as an op: the gradient flows back cast to the input's dtype,
//! as PyTorch's `.half()` / `.float()` do.

use crate::error::Result;
use crate::tensor::Tensor;
use ferrograd_device::kernels::copy::cast;
use ferrograd_device::{Array, DType};

impl Tensor {
    /// The values as `dtype` (f32 or f16; the same tensor when it is `dtype` already).
    pub fn cast(&self, dtype: DType) -> Result<Tensor> {
        let from = self.dtype();
        if from == dtype {
            return Ok(self.clone());
        }
        let out = cast(&self.data(), dtype)?;
        Ok(Tensor::from_op("cast", out, &[self], move |g: &Array, _| Ok(vec![Some(cast(g, from)?)])))
    }

    /// `cast(F16)`.
    pub fn half(&self) -> Result<Tensor> {
        self.cast(DType::F16)
    }

    /// `cast(F32)`.
    pub fn float(&self) -> Result<Tensor> {
        self.cast(DType::F32)
    }

    /// f16 values as f32 through the cast op, anything else as it is: how an f16 activation
    /// enters an op the autocast policy keeps in f32, or one that moves 32-bit words.
    pub(crate) fn in_f32(&self) -> Result<Tensor> {
        if self.dtype() == DType::F16 {
            self.float()
        } else {
            Ok(self.clone())
        }
    }
}
