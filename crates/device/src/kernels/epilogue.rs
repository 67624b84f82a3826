//! What a matrix product writes in place of the bare `op(A)·op(B)`: a bias added per row (a
//! convolution's, one per output channel) or per column (a linear layer's), then an activation.
//! Done in the product's store (`store_c` in `shaders/matmul_common.wgsl`), it saves a launch
//! and a pass over the output for each. Only activations whose gradient their output fixes
//! are fused (relu, leaky relu with a positive slope, tanh, sigmoid), so the backward pass
//! needs no pre-activation values.

use crate::array::Array;
use crate::dtype::DType;
use crate::error::{shape_err, Result};
use crate::kernels::common::require_dtype;
use crate::kernels::elementwise::{binary, unary, BinaryOp, UnaryOp};

/// A bias vector and the axis of C it runs along. A grouped product (see
/// `matmul::Problem::groups`) takes one vector per group, end to end: `bias[g·M + m]`, as a
/// grouped convolution's `[O]` bias is.
#[derive(Clone, Copy)]
pub enum Bias<'a> {
    /// `bias[m]` added to row m (length M; groups x M with groups)
    PerRow(&'a Array),
    /// `bias[n]` added to column n (length N; groups x N with groups)
    PerColumn(&'a Array),
}

/// The bias and activation a product applies as it stores C. The default does neither.
#[derive(Clone, Copy, Default)]
pub struct Epilogue<'a> {
    pub bias: Option<Bias<'a>>,
    pub activation: Option<UnaryOp>,
}

/// Whether `op`'s gradient follows from its output alone (so a product may apply it).
pub fn fusable(op: UnaryOp) -> bool {
    match op {
        UnaryOp::Relu | UnaryOp::Tanh | UnaryOp::Sigmoid => true,
        UnaryOp::LeakyRelu(slope) => slope > 0.0,
        _ => false,
    }
}

impl Epilogue<'_> {
    /// An error unless the bias is an f32 vector of C's row or column count (per group) and
    /// the activation is [`fusable`].
    pub(crate) fn check(&self, kernel: &'static str, m: usize, n: usize, groups: usize) -> Result<()> {
        if let Some(bias) = self.bias {
            let (array, want, axis) = match bias {
                Bias::PerRow(b) => (b, m, "rows"),
                Bias::PerColumn(b) => (b, n, "columns"),
            };
            require_dtype(kernel, array, DType::F32)?;
            if array.shape() != [groups * want] {
                let per = if groups > 1 { format!(" in each of {groups} groups") } else { String::new() };
                return shape_err(kernel, format!("bias {:?} for a product with {want} {axis}{per}", array.shape()));
            }
        }
        match self.activation {
            Some(op) if !fusable(op) => shape_err(kernel, format!("{op:?} cannot be fused into a product")),
            _ => Ok(()),
        }
    }

    /// The bias array, if any.
    pub(crate) fn bias_array(&self) -> Option<&Array> {
        self.bias.map(|b| match b {
            Bias::PerRow(a) | Bias::PerColumn(a) => a,
        })
    }

    /// The shader's override constants (BIAS, ACT) and the leaky relu's slope.
    pub(crate) fn constants(&self) -> ([(&'static str, f64); 2], f32) {
        let bias = match self.bias {
            None => 0,
            Some(Bias::PerRow(_)) => 1,
            Some(Bias::PerColumn(_)) => 2,
        };
        let (act, slope) = match self.activation {
            None => (0, 0.0),
            Some(UnaryOp::Relu) => (1, 0.0),
            Some(UnaryOp::LeakyRelu(s)) => (2, s),
            Some(UnaryOp::Tanh) => (3, 0.0),
            Some(UnaryOp::Sigmoid) => (4, 0.0),
            Some(op) => unreachable!("{op:?} is refused by check()"),
        };
        ([("BIAS", bias as f64), ("ACT", act as f64)], slope)
    }

    /// The epilogue as separate launches on a finished product `c` (`[..., M, N]`, the batch
    /// `groups` to an image), for the kernels that store C by other means (cooperative matrices).
    pub(crate) fn apply_separately(&self, c: Array, groups: usize) -> Result<Array> {
        let mut c = c;
        if let Some(bias) = self.bias {
            let out_shape = c.shape().to_vec();
            let [m, n] = [out_shape[out_shape.len() - 2], out_shape[out_shape.len() - 1]];
            let grouped = [c.numel() / (groups * m * n).max(1), groups, m, n];
            let (b, shape) = match bias {
                Bias::PerRow(b) => (b, [1, groups, m, 1]),
                Bias::PerColumn(b) => (b, [1, groups, 1, n]),
            };
            c = binary(BinaryOp::Add, &c.reshape(&grouped)?, &b.reshape(&shape)?)?.reshape(&out_shape)?;
        }
        match self.activation {
            Some(op) => unary(op, &c),
            None => Ok(c),
        }
    }
}

/// The CPU twin, in f64: `c` (`batch` matrices of `m x n`, `groups` to an image) after the
/// epilogue.
pub mod reference {
    use super::{Bias, Epilogue};
    use crate::kernels::elementwise::reference::unary_one;

    pub fn apply(e: &Epilogue, c: &mut [f64], m: usize, n: usize, groups: usize) {
        let bias = e.bias.map(|b| match b {
            Bias::PerRow(a) => (a.cpu_data().clone(), true),
            Bias::PerColumn(a) => (a.cpu_data().clone(), false),
        });
        for (i, v) in c.iter_mut().enumerate() {
            if let Some((b, per_row)) = &bias {
                let (row, col, group) = ((i / n) % m, i % n, (i / (m * n)) % groups);
                *v += if *per_row { b[group * m + row] } else { b[group * n + col] };
            }
            if let Some(op) = e.activation {
                *v = unary_one(op, *v);
            }
        }
    }
}
