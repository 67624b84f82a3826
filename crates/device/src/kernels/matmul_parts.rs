//! Products whose operands or result are larger than one storage binding (a 4096x25088 f32
//! weight is 411 MB; lavapipe binds 128 MiB): split along one dimension into products that
//! fit, then joined. A large matrix is cut only into runs of its rows, which a buffer copy
//! takes (`Array::rows`, `Array::write_rows`) whatever its size; the other operands, which
//! fit, are sliced by a kernel where needed.
//!
//! The dimension cut is the stored rows of the large operand: M for C or an untransposed A;
//! K for a transposed A or an untransposed B, the pieces then summed; N for a transposed B,
//! the pieces joined side by side. A linear layer's `x · W^T` cuts N, `g · W` cuts K and
//! `g^T · x` (its weight gradient) cuts M.

use crate::array::Array;
use crate::dtype::DType;
use crate::error::{DeviceError, Result};
use crate::gpu::GpuContext;
use crate::kernels::copy::{concat, narrow};
use crate::kernels::elementwise::{binary, BinaryOp};
use crate::kernels::epilogue::{Bias, Epilogue};
use crate::kernels::matmul::{matmul_fused_using, Precision, Problem, Variant};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dim {
    M,
    N,
    K,
}

/// Whether the product of `a` and `b` (shapes checked in `p`) binds an array over the limit.
pub(crate) fn needs_parts(g: &GpuContext, a: &Array, b: &Array, p: &Problem) -> bool {
    let limit = g.binding_limit();
    let c_bytes = (p.batch * p.m * p.n * 4) as u64;
    [a, b].iter().any(|x| x.gpu_buffer().is_some_and(|buf| buf.capacity() > limit)) || c_bytes > limit
}

/// `op(a) · op(b)` with `epilogue`, as products that each fit one binding per operand.
#[allow(clippy::too_many_arguments)]
pub(crate) fn product_in_parts(
    g: &GpuContext,
    a: &Array,
    b: &Array,
    p: &Problem,
    precision: Precision,
    variant: Option<Variant>,
    epilogue: &Epilogue,
) -> Result<Array> {
    let limit = g.binding_limit();
    // refused as too large, naming the largest array, as an unsplit product would be
    let refuse = || {
        let c = (p.out_shape.clone(), (p.batch * p.m * p.n * 4) as u64);
        let (shape, bytes) =
            [(a.shape().to_vec(), (a.numel() * 4) as u64), (b.shape().to_vec(), (b.numel() * 4) as u64), c]
                .into_iter()
                .max_by_key(|x| x.1)
                .unwrap_or_default();
        Err(DeviceError::TooLarge { kernel: "matmul", bytes, limit, shape })
    };
    // a batched product, or two large operands along different dimensions, cannot be split
    if a.ndim() != 2 || b.ndim() != 2 {
        return refuse();
    }
    // each operand's stored rows, and how many bytes one step along them holds
    let a_rows = if p.trans_a { Dim::K } else { Dim::M };
    let b_rows = if p.trans_b { Dim::N } else { Dim::K };
    let large = |x: &Array| (x.numel() * 4) as u64 > limit;
    let c_large = (p.m * p.n * 4) as u64 > limit;
    let dim = if c_large {
        Dim::M
    } else if large(a) {
        a_rows
    } else {
        b_rows
    };
    if (large(a) && a_rows != dim) || (large(b) && b_rows != dim) {
        return refuse();
    }
    let (len, step_bytes) = match dim {
        Dim::M => (p.m, [large(a).then_some(p.k), c_large.then_some(p.n)]),
        Dim::N => (p.n, [large(b).then_some(p.k), None]),
        Dim::K => (p.k, [large(a).then_some(p.m), large(b).then_some(p.n)]),
    };
    let widest = step_bytes.iter().flatten().max().copied().unwrap_or(1) as u64 * 4;
    let piece = ((limit / widest) as usize).clamp(1, len);

    // a slice along `dim` of an operand whose stored rows are `rows`: rows copied, or columns cut
    let slice = |x: &Array, rows: Dim, start: usize, n: usize| -> Result<Array> {
        if rows == dim {
            x.rows(start, n)
        } else {
            narrow(x, 1, start, n)
        }
    };
    let a_cols = if p.trans_a { Dim::M } else { Dim::K };
    let b_cols = if p.trans_b { Dim::K } else { Dim::N };
    let mut pieces = Vec::new();
    for start in (0..len).step_by(piece) {
        let n = piece.min(len - start);
        let a_part = if a_rows == dim || a_cols == dim { slice(a, a_rows, start, n)? } else { a.clone() };
        let b_part = if b_rows == dim || b_cols == dim { slice(b, b_rows, start, n)? } else { b.clone() };
        let bias = match epilogue.bias {
            Some(Bias::PerRow(v)) if dim == Dim::M => Some(v.rows(start, n)?),
            Some(Bias::PerColumn(v)) if dim == Dim::N => Some(v.rows(start, n)?),
            _ => None,
        };
        let part_epilogue = match (dim, epilogue.bias, &bias) {
            // a sum over K applies the epilogue after the sum
            (Dim::K, _, _) => Epilogue::default(),
            (_, Some(Bias::PerRow(_)), Some(v)) => Epilogue { bias: Some(Bias::PerRow(v)), ..*epilogue },
            (_, Some(Bias::PerColumn(_)), Some(v)) => Epilogue { bias: Some(Bias::PerColumn(v)), ..*epilogue },
            _ => *epilogue,
        };
        pieces.push((
            start,
            matmul_fused_using(&a_part, &b_part, p.trans_a, p.trans_b, precision, variant, &part_epilogue)?,
        ));
    }
    match dim {
        Dim::M => {
            let c = Array::empty(&a.device(), &p.out_shape, DType::F32, "matmul")?;
            for (start, part) in &pieces {
                c.write_rows(*start, part)?;
            }
            Ok(c)
        }
        Dim::N => concat(&pieces.iter().map(|(_, c)| c).collect::<Vec<_>>(), 1),
        Dim::K => {
            let mut sum = pieces[0].1.clone();
            for (_, part) in &pieces[1..] {
                sum = binary(BinaryOp::Add, &sum, part)?;
            }
            epilogue.apply_separately(sum, 1)
        }
    }
}
