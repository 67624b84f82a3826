//! Elementwise ops: unary functions, binary ops with NumPy broadcasting, and ops with a
//! scalar. A broadcast input's gradient is summed back to its shape (`sum_to_shape`).

use crate::error::Result;
use crate::ops::same_device;
use crate::tensor::{scale, Tensor};
use ferrograd_device::kernels::elementwise::{binary, binary_scalar, unary, unary_grad, BinaryOp, ScalarSide, UnaryOp};
use ferrograd_device::kernels::reduce::sum_to_shape;
use ferrograd_device::{Array, DType};

/// `g` summed over the dimensions that broadcasting added to reach `shape`.
pub(crate) fn unbroadcast(g: Array, shape: &[usize]) -> Result<Array> {
    if g.shape() == shape {
        return Ok(g);
    }
    Ok(sum_to_shape(&g, shape)?)
}

fn mul(a: &Array, b: &Array) -> Result<Array> {
    Ok(binary(BinaryOp::Mul, a, b)?)
}

fn scalar(op: BinaryOp, a: &Array, s: f32) -> Result<Array> {
    Ok(binary_scalar(op, a, s, ScalarSide::Right)?)
}

impl Tensor {
    /// Apply a unary function (the building block of `relu`, `exp`, ...).
    pub fn unary(&self, op: UnaryOp) -> Result<Tensor> {
        let x = self.data();
        let y = unary(op, &x)?;
        let saved_y = y.clone();
        Ok(Tensor::from_op("unary", y, &[self], move |g, _| Ok(vec![Some(unary_grad(op, &x, &saved_y, g)?)])))
    }

    pub fn relu(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Relu)
    }
    pub fn leaky_relu(&self, negative_slope: f32) -> Result<Tensor> {
        self.unary(UnaryOp::LeakyRelu(negative_slope))
    }
    pub fn tanh(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Tanh)
    }
    pub fn sigmoid(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Sigmoid)
    }
    /// Exact (erf) GELU, PyTorch's default.
    pub fn gelu(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Gelu)
    }
    pub fn exp(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Exp)
    }
    pub fn log(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Log)
    }
    pub fn sqrt(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Sqrt)
    }
    pub fn neg(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Neg)
    }
    pub fn abs(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Abs)
    }
    pub fn square(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Square)
    }
    pub fn recip(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Recip)
    }
    pub fn sin(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Sin)
    }
    pub fn cos(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Cos)
    }

    /// `self op other` with NumPy broadcasting (arithmetic, maximum/minimum, pow).
    /// Comparison ops give 0/1 and carry no gradient.
    pub fn binary(&self, op: BinaryOp, other: &Tensor) -> Result<Tensor> {
        same_device(op.name(), &[self, other])?;
        let (da, db) = (self.dtype(), other.dtype());
        if da != db && (da == DType::F16 || db == DType::F16) {
            // f16 with f32 promotes to f32, as PyTorch's type promotion does
            return self.in_f32()?.binary(op, &other.in_f32()?);
        }
        let (a, b) = (self.data(), other.data());
        let out = binary(op, &a, &b)?;
        let saved_out = out.clone();
        let (sa, sb) = (a.shape().to_vec(), b.shape().to_vec());
        let backward = move |g: &Array, needs: &[bool]| -> Result<Vec<Option<Array>>> {
            let (ga, gb) = match op {
                BinaryOp::Add => (Some(g.clone()), Some(g.clone())),
                BinaryOp::Sub => (Some(g.clone()), Some(scale(g, -1.0)?)),
                BinaryOp::Mul => {
                    (if needs[0] { Some(mul(g, &b)?) } else { None }, if needs[1] { Some(mul(g, &a)?) } else { None })
                }
                BinaryOp::Div => {
                    let ga = binary(BinaryOp::Div, g, &b)?;
                    // d(a/b)/db = -(a/b)/b = -out/b, so gb = -ga * out
                    let gb = if needs[1] { Some(scale(&mul(&ga, &saved_out)?, -1.0)?) } else { None };
                    (Some(ga), gb)
                }
                BinaryOp::Max | BinaryOp::Min => {
                    // the larger (smaller) side takes the gradient; ties split it, as PyTorch does
                    let (strict, weak) =
                        if op == BinaryOp::Max { (BinaryOp::Gt, BinaryOp::Ge) } else { (BinaryOp::Lt, BinaryOp::Le) };
                    let mask = binary(BinaryOp::Add, &binary(strict, &a, &b)?, &binary(weak, &a, &b)?)?;
                    let ga = mul(g, &scale(&mask, 0.5)?)?;
                    let gb = binary(BinaryOp::Sub, g, &ga)?;
                    (Some(ga), Some(gb))
                }
                BinaryOp::Pow => {
                    let ga = if needs[0] {
                        let bm1 = scalar(BinaryOp::Sub, &b, 1.0)?;
                        Some(mul(&mul(g, &b)?, &binary(BinaryOp::Pow, &a, &bm1)?)?)
                    } else {
                        None
                    };
                    let gb = if needs[1] { Some(mul(&mul(g, &saved_out)?, &unary(UnaryOp::Log, &a)?)?) } else { None };
                    (ga, gb)
                }
                _ => (None, None),
            };
            let ga = match ga.filter(|_| needs[0]) {
                Some(x) => Some(unbroadcast(x, &sa)?),
                None => None,
            };
            let gb = match gb.filter(|_| needs[1]) {
                Some(x) => Some(unbroadcast(x, &sb)?),
                None => None,
            };
            Ok(vec![ga, gb])
        };
        if matches!(op, BinaryOp::Gt | BinaryOp::Ge | BinaryOp::Lt | BinaryOp::Le | BinaryOp::Eq) {
            return Ok(Tensor::new(out));
        }
        Ok(Tensor::from_op(op.name(), out, &[self, other], backward))
    }

    pub fn add(&self, other: &Tensor) -> Result<Tensor> {
        self.binary(BinaryOp::Add, other)
    }
    pub fn sub(&self, other: &Tensor) -> Result<Tensor> {
        self.binary(BinaryOp::Sub, other)
    }
    pub fn mul(&self, other: &Tensor) -> Result<Tensor> {
        self.binary(BinaryOp::Mul, other)
    }
    pub fn div(&self, other: &Tensor) -> Result<Tensor> {
        self.binary(BinaryOp::Div, other)
    }
    pub fn maximum(&self, other: &Tensor) -> Result<Tensor> {
        self.binary(BinaryOp::Max, other)
    }
    pub fn minimum(&self, other: &Tensor) -> Result<Tensor> {
        self.binary(BinaryOp::Min, other)
    }
    /// `self ^ other` (elementwise; defined for positive bases).
    pub fn pow(&self, other: &Tensor) -> Result<Tensor> {
        self.binary(BinaryOp::Pow, other)
    }
    /// 1.0 where `self > other`, else 0.0 (no gradient).
    pub fn gt(&self, other: &Tensor) -> Result<Tensor> {
        self.binary(BinaryOp::Gt, other)
    }
    pub fn lt(&self, other: &Tensor) -> Result<Tensor> {
        self.binary(BinaryOp::Lt, other)
    }
    pub fn eq_elementwise(&self, other: &Tensor) -> Result<Tensor> {
        self.binary(BinaryOp::Eq, other)
    }

    /// `self op s` (`ScalarSide::Right`) or `s op self` (`Left`).
    pub fn binary_scalar(&self, op: BinaryOp, s: f32, side: ScalarSide) -> Result<Tensor> {
        let a = self.data();
        let out = binary_scalar(op, &a, s, side)?;
        let saved_out = out.clone();
        let right = side == ScalarSide::Right;
        let backward = move |g: &Array, _: &[bool]| -> Result<Vec<Option<Array>>> {
            let ga = match (op, right) {
                (BinaryOp::Add, _) | (BinaryOp::Sub, true) => g.clone(),
                (BinaryOp::Sub, false) => scale(g, -1.0)?,
                (BinaryOp::Mul, _) => scale(g, s)?,
                (BinaryOp::Div, true) => scale(g, 1.0 / s)?,
                // d(s/a)/da = -(s/a)/a
                (BinaryOp::Div, false) => scale(&mul(g, &binary(BinaryOp::Div, &saved_out, &a)?)?, -1.0)?,
                (BinaryOp::Pow, true) => mul(&scale(g, s)?, &scalar(BinaryOp::Pow, &a, s - 1.0)?)?,
                (BinaryOp::Pow, false) => mul(g, &scale(&saved_out, s.ln())?)?,
                // clamp: the gradient passes where the input was kept, as torch.clamp
                (BinaryOp::Max, _) => mul(g, &scalar(BinaryOp::Ge, &a, s)?)?,
                (BinaryOp::Min, _) => mul(g, &scalar(BinaryOp::Le, &a, s)?)?,
                _ => return Ok(vec![None]),
            };
            Ok(vec![Some(ga)])
        };
        if matches!(op, BinaryOp::Gt | BinaryOp::Ge | BinaryOp::Lt | BinaryOp::Le | BinaryOp::Eq) {
            return Ok(Tensor::new(out));
        }
        Ok(Tensor::from_op(op.name(), out, &[self], backward))
    }

    pub fn add_scalar(&self, s: f32) -> Result<Tensor> {
        self.binary_scalar(BinaryOp::Add, s, ScalarSide::Right)
    }
    pub fn sub_scalar(&self, s: f32) -> Result<Tensor> {
        self.binary_scalar(BinaryOp::Sub, s, ScalarSide::Right)
    }
    /// `s - self`
    pub fn rsub_scalar(&self, s: f32) -> Result<Tensor> {
        self.binary_scalar(BinaryOp::Sub, s, ScalarSide::Left)
    }
    pub fn mul_scalar(&self, s: f32) -> Result<Tensor> {
        self.binary_scalar(BinaryOp::Mul, s, ScalarSide::Right)
    }
    pub fn div_scalar(&self, s: f32) -> Result<Tensor> {
        self.binary_scalar(BinaryOp::Div, s, ScalarSide::Right)
    }
    /// `s / self`
    pub fn rdiv_scalar(&self, s: f32) -> Result<Tensor> {
        self.binary_scalar(BinaryOp::Div, s, ScalarSide::Left)
    }
    /// `self ^ s`
    pub fn pow_scalar(&self, s: f32) -> Result<Tensor> {
        self.binary_scalar(BinaryOp::Pow, s, ScalarSide::Right)
    }
    /// `max(self, min)` elementwise.
    pub fn clamp_min(&self, min: f32) -> Result<Tensor> {
        self.binary_scalar(BinaryOp::Max, min, ScalarSide::Right)
    }
    /// `min(self, max)` elementwise.
    pub fn clamp_max(&self, max: f32) -> Result<Tensor> {
        self.binary_scalar(BinaryOp::Min, max, ScalarSide::Right)
    }
    pub fn clamp(&self, min: f32, max: f32) -> Result<Tensor> {
        self.clamp_min(min)?.clamp_max(max)
    }
}
