//! Matrix products: `matmul` (2-D or batched; the batch dims must be equal or one side 2-D)
//! with optional transposes, and `linear` (`x @ w^T + b`, PyTorch's layout).

use crate::error::Result;
use crate::ops::same_device;
use crate::tensor::Tensor;
use ferrograd_device::kernels::matmul::{matmul, matmul_batch_sum};
use ferrograd_device::Array;

/// The gradient of `operand` as `op(x) · op(y)`: summed over the batch inside the product when
/// the operand is 2-D and was applied to a batch (a shared weight), so no per-batch
/// gradients are materialised.
fn gradient(operand: &Array, x: &Array, y: &Array, tx: bool, ty: bool) -> Result<Array> {
    if operand.ndim() == 2 && x.ndim() > 2 {
        Ok(matmul_batch_sum(x, y, tx, ty)?)
    } else {
        Ok(matmul(x, y, tx, ty)?)
    }
}

impl Tensor {
    /// `op(self) @ op(other)` where `op` transposes the last two dims when its flag is set.
    pub fn matmul_t(&self, other: &Tensor, trans_a: bool, trans_b: bool) -> Result<Tensor> {
        same_device("matmul", &[self, other])?;
        let (a, b) = (self.data(), other.data());
        let out = matmul(&a, &b, trans_a, trans_b)?;
        let backward = move |g: &Array, needs: &[bool]| -> Result<Vec<Option<Array>>> {
            let ga = if !needs[0] {
                None
            } else if trans_a {
                Some(gradient(&a, &b, g, trans_b, true)?)
            } else {
                Some(gradient(&a, g, &b, false, !trans_b)?)
            };
            let gb = if !needs[1] {
                None
            } else if trans_b {
                Some(gradient(&b, g, &a, true, trans_a)?)
            } else {
                Some(gradient(&b, &a, g, !trans_a, false)?)
            };
            Ok(vec![ga, gb])
        };
        Ok(Tensor::from_op("matmul", out, &[self, other], backward))
    }

    /// `self @ other` (2-D, or batched with equal batch dims or one side 2-D).
    pub fn matmul(&self, other: &Tensor) -> Result<Tensor> {
        self.matmul_t(other, false, false)
    }

    /// `self @ weight^T + bias` with `weight` shaped `[out, in]` (PyTorch's `F.linear`);
    /// `self` may have any number of leading dims.
    pub fn linear(&self, weight: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
        let y = self.matmul_t(weight, false, true)?;
        match bias {
            Some(b) => y.add(b),
            None => Ok(y),
        }
    }
}
