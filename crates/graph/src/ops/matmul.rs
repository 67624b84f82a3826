//! Matrix products: `matmul` (2-D or batched; the batch dims must be equal or one side 2-D)
//! with optional transposes, and `linear` (`x @ w^T + b`, PyTorch's layout).

use crate::error::Result;
use crate::ops::same_device;
use crate::tensor::Tensor;
use ferrograd_device::kernels::matmul::matmul;
use ferrograd_device::kernels::reduce::{reduce, ReduceOp};
use ferrograd_device::Array;

/// Sum a batched gradient over its leading dims so it matches a 2-D operand.
fn sum_batches(g: Array, want: &[usize]) -> Result<Array> {
    if g.shape() == want {
        return Ok(g);
    }
    let lead: Vec<usize> = (0..g.ndim() - 2).collect();
    Ok(reduce(ReduceOp::Sum, &g, &lead, false)?.reshape(want)?)
}

/// Rows of a batched matrix stacked into one 2-D matrix `[batch * rows, cols]`.
fn flatten_rows(a: &Array) -> Result<Array> {
    let cols = a.shape()[a.ndim() - 1];
    Ok(a.reshape(&[a.numel() / cols.max(1), cols])?)
}

impl Tensor {
    /// `op(self) @ op(other)` where `op` transposes the last two dims when its flag is set.
    pub fn matmul_t(&self, other: &Tensor, trans_a: bool, trans_b: bool) -> Result<Tensor> {
        same_device("matmul", &[self, other])?;
        let (a, b) = (self.data(), other.data());
        let out = matmul(&a, &b, trans_a, trans_b)?;
        let backward = move |g: &Array, needs: &[bool]| -> Result<Vec<Option<Array>>> {
            let ga = if needs[0] {
                let ga = if trans_a { matmul(&b, g, trans_b, true)? } else { matmul(g, &b, false, !trans_b)? };
                Some(sum_batches(ga, a.shape())?)
            } else {
                None
            };
            let gb = if needs[1] {
                let gb = if b.ndim() == 2 && a.ndim() > 2 && !trans_a {
                    // a 2-D weight against batched rows: one product over all rows at once
                    let (a2, g2) = (flatten_rows(&a)?, flatten_rows(g)?);
                    if trans_b {
                        matmul(&g2, &a2, true, false)?
                    } else {
                        matmul(&a2, &g2, true, false)?
                    }
                } else if trans_b {
                    matmul(g, &a, true, trans_a)?
                } else {
                    matmul(&a, g, !trans_a, false)?
                };
                Some(sum_batches(gb, b.shape())?)
            } else {
                None
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
