//! Matrix products: `matmul` (2-D or batched; the batch dims must be equal, or one side's a
//! suffix of the other's: 2-D, or per group as `[G, M, K] @ [N, G, K, P]`) with optional
//! transposes, and `linear` (`x @ w^T + b`, PyTorch's layout). Under autocast `linear` stores
//! its output in f16; each gradient is stored as its tensor is (a weight's in f32, an f16
//! activation's in f16).

use crate::amp::autocast::{half_if, half_operands, operand};
use crate::error::{invalid, Result};
use crate::ops::same_device;
use crate::tensor::Tensor;
use ferrograd_device::kernels::elementwise::{unary_grad, UnaryOp};
use ferrograd_device::kernels::epilogue::{fusable, Bias, Epilogue};
use ferrograd_device::kernels::matmul::{matmul, matmul_batch_sum, matmul_fused_stored, matmul_group_sums};
use ferrograd_device::kernels::reduce::sum_to_shape;
use ferrograd_device::{Array, DType};

/// The gradient of `operand` as `op(x) · op(y)`: summed over the batch inside the product when
/// the operand is 2-D and was applied to a batch (a shared weight), or over the leading batch
/// dims per group when its batch dims are a suffix of the batch's (a grouped weight), so no
/// per-batch gradients are materialised (those sums are f32); otherwise stored as `out`.
fn gradient(operand: &Array, x: &Array, y: &Array, tx: bool, ty: bool, out: DType) -> Result<Array> {
    let (nd, xd) = (operand.ndim(), x.ndim());
    if nd == 2 && xd > 2 {
        Ok(matmul_batch_sum(x, y, tx, ty)?)
    } else if nd < xd {
        let groups: usize = operand.shape()[..nd - 2].iter().product();
        let as_groups = |a: &Array| {
            let [r, c] = [a.shape()[xd - 2], a.shape()[xd - 1]];
            a.reshape(&[a.numel() / (groups * r * c).max(1), groups, r, c])
        };
        Ok(matmul_group_sums(&as_groups(x)?, &as_groups(y)?, tx, ty)?.reshape(operand.shape())?)
    } else {
        Ok(matmul_fused_stored(x, y, tx, ty, &Default::default(), out)?)
    }
}

/// The gradients of `op(a) · op(b)` for upstream `g`: each only if needed, stored as `out`
/// says (the dtypes of the tensors `a` and `b` are operands of).
#[allow(clippy::too_many_arguments)]
fn product_grads(
    a: &Array,
    b: &Array,
    g: &Array,
    trans_a: bool,
    trans_b: bool,
    needs: [bool; 2],
    out: [DType; 2],
) -> Result<(Option<Array>, Option<Array>)> {
    let ga = if !needs[0] {
        None
    } else if trans_a {
        Some(gradient(a, b, g, trans_b, true, out[0])?)
    } else {
        Some(gradient(a, g, b, false, !trans_b, out[0])?)
    };
    let gb = if !needs[1] {
        None
    } else if trans_b {
        Some(gradient(b, g, a, true, trans_a, out[1])?)
    } else {
        Some(gradient(b, a, g, !trans_a, false, out[1])?)
    };
    Ok((ga, gb))
}

/// What the backward pass of a fused activation keeps: the activation and the op's output
/// (the activations [`fusable`] allows need nothing else); nothing without one.
pub(crate) fn save_activation(activation: Option<UnaryOp>, y: &Array) -> Option<(UnaryOp, Array)> {
    activation.map(|op| (op, y.clone()))
}

/// The upstream gradient `g` through the saved activation: `g · act'(y)`, or `g` itself.
pub(crate) fn through_activation(saved: &Option<(UnaryOp, Array)>, g: &Array) -> Result<Array> {
    Ok(match saved {
        Some((op, y)) => unary_grad(*op, y, y, g)?,
        None => g.clone(),
    })
}

/// An error unless `activation` can be fused into a product.
pub(crate) fn check_fusable(op: &'static str, activation: Option<UnaryOp>) -> Result<()> {
    match activation {
        Some(a) if !fusable(a) => invalid(op, format!("{a:?} cannot be fused (its gradient needs its input)")),
        _ => Ok(()),
    }
}

impl Tensor {
    /// `op(self) @ op(other)` where `op` transposes the last two dims when its flag is set.
    pub fn matmul_t(&self, other: &Tensor, trans_a: bool, trans_b: bool) -> Result<Tensor> {
        let half = half_operands(&same_device("matmul", &[self, other])?);
        let (a, b) = (operand(self, half)?, operand(other, half)?);
        let out = matmul(&a, &b, trans_a, trans_b)?;
        let stored = [self.dtype(), other.dtype()];
        let backward = move |g: &Array, needs: &[bool]| -> Result<Vec<Option<Array>>> {
            let g = half_if(g.clone(), half)?;
            let (ga, gb) = product_grads(&a, &b, &g, trans_a, trans_b, [needs[0], needs[1]], stored)?;
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
        self.linear_act(weight, bias, None)
    }

    /// `activation(self @ weight^T + bias)` as one product whose store adds the bias and applies
    /// the activation (relu, leaky relu with a positive slope, tanh or sigmoid).
    pub fn linear_act(&self, weight: &Tensor, bias: Option<&Tensor>, activation: Option<UnaryOp>) -> Result<Tensor> {
        check_fusable("linear", activation)?;
        let mut inputs = vec![self, weight];
        inputs.extend(bias);
        let half = half_operands(&same_device("linear", &inputs)?);
        let (x, w) = (operand(self, half)?, operand(weight, half)?);
        let b = bias.map(|b| b.data());
        let epilogue = Epilogue { bias: b.as_ref().map(Bias::PerColumn), activation };
        let y = matmul_fused_stored(&x, &w, false, true, &epilogue, if half { DType::F16 } else { DType::F32 })?;
        let saved = save_activation(activation, &y);
        let out_features = w.shape()[0];
        let stored = [self.dtype(), weight.dtype()];
        let backward = move |g: &Array, needs: &[bool]| -> Result<Vec<Option<Array>>> {
            let g = through_activation(&saved, g)?;
            let g16 = half_if(g.clone(), half)?;
            let (gx, gw) = product_grads(&x, &w, &g16, false, true, [needs[0], needs[1]], stored)?;
            let mut grads = vec![gx, gw];
            if needs.len() > 2 {
                grads.push(if needs[2] { Some(sum_to_shape(&g, &[out_features])?) } else { None });
            }
            Ok(grads)
        };
        Ok(Tensor::from_op("linear", y, &inputs, backward))
    }
}
