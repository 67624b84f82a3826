//! Checks and packing shared by the launchers.

use crate::array::Array;
use crate::device::Device;
use crate::dtype::DType;
use crate::error::{DeviceError, Result};

/// Most dimensions a kernel's shape parameters can carry.
pub const MAX_DIMS: usize = 8;

/// The device all `arrays` share, or an error naming the kernel.
pub fn same_device(kernel: &'static str, arrays: &[&Array]) -> Result<Device> {
    let first = arrays[0].device();
    for a in &arrays[1..] {
        let d = a.device();
        if !d.same(&first) {
            return Err(DeviceError::DeviceMismatch { kernel, left: first.name(), right: d.name() });
        }
    }
    Ok(first)
}

pub fn require_dtype(kernel: &'static str, a: &Array, dtype: DType) -> Result<()> {
    if a.dtype() != dtype {
        return Err(DeviceError::DType {
            kernel,
            detail: format!("expected {dtype}, got {} (shape {:?})", a.dtype(), a.shape()),
        });
    }
    Ok(())
}

/// The storage type `arrays` share, f32 or f16 (kernels written over the `storage_shaders!`
/// alias), or an error naming the kernel.
pub fn float_storage(kernel: &'static str, arrays: &[&Array]) -> Result<DType> {
    let dtype = arrays[0].dtype();
    if !matches!(dtype, DType::F32 | DType::F16) || arrays.iter().any(|a| a.dtype() != dtype) {
        let got: Vec<String> = arrays.iter().map(|a| format!("{} {:?}", a.dtype(), a.shape())).collect();
        return Err(DeviceError::DType {
            kernel,
            detail: format!("expected all f32 or all f16, got {}", got.join(", ")),
        });
    }
    Ok(dtype)
}

/// A CPU result stored as `dtype`: f16 values are rounded as a GPU store rounds them.
pub fn cpu_stored(values: Vec<f64>, shape: &[usize], dtype: DType) -> Array {
    let values = if dtype == DType::F16 { crate::kernels::copy::reference::round_f16(&values) } else { values };
    Array::cpu(values, shape, dtype)
}

/// Dimensions padded to `MAX_DIMS` u32s, for a uniform `array<vec4<u32>, 2>`.
pub fn pack_dims(kernel: &'static str, dims: &[usize]) -> Result<[u32; MAX_DIMS]> {
    if dims.len() > MAX_DIMS {
        return Err(DeviceError::Shape {
            kernel,
            detail: format!("{} dimensions (at most {MAX_DIMS}): {dims:?}", dims.len()),
        });
    }
    let mut out = [1u32; MAX_DIMS];
    for (o, &d) in out.iter_mut().zip(dims) {
        *o = u32::try_from(d)
            .map_err(|_| DeviceError::Shape { kernel, detail: format!("dimension {d} exceeds u32") })?;
    }
    Ok(out)
}

/// Row-major strides of a contiguous shape.
pub fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

/// NumPy broadcasting of two shapes.
pub fn broadcast_shapes(kernel: &'static str, a: &[usize], b: &[usize]) -> Result<Vec<usize>> {
    let n = a.len().max(b.len());
    let mut out = vec![0; n];
    for i in 0..n {
        let da = if i + a.len() >= n { a[i + a.len() - n] } else { 1 };
        let db = if i + b.len() >= n { b[i + b.len() - n] } else { 1 };
        out[i] = match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => {
                return Err(DeviceError::Shape { kernel, detail: format!("shapes {a:?} and {b:?} do not broadcast") });
            }
        };
    }
    Ok(out)
}

/// Strides that read `shape` as if broadcast to `out` (0 along broadcast dimensions).
pub fn broadcast_strides(shape: &[usize], out: &[usize]) -> Vec<usize> {
    let lead = out.len() - shape.len();
    let own = strides(shape);
    (0..out.len()).map(|i| if i < lead || shape[i - lead] == 1 { 0 } else { own[i - lead] }).collect()
}

/// `shape` with the strides of several operands, merging neighbouring dimensions that every
/// operand walks as one (stride of the outer = stride of the inner x its size) and dropping
/// dimensions of size 1 (leaving at least one): the same elements in as few dimensions as possible, so an index
/// kernel divides less (a bias `[1, C, 1, 1]` on `[N, C, H, W]` becomes `[N, C, H*W]`).
pub fn collapse_dims<const K: usize>(shape: &[usize], strides: [&[usize]; K]) -> (Vec<usize>, [Vec<usize>; K]) {
    let mut out_shape: Vec<usize> = Vec::with_capacity(shape.len());
    let mut out_strides: [Vec<usize>; K] = std::array::from_fn(|_| Vec::with_capacity(shape.len()));
    for (d, &size) in shape.iter().enumerate() {
        if size == 1 {
            continue;
        }
        let mergeable = out_shape
            .last()
            .is_some_and(|_| out_strides.iter().zip(strides).all(|(o, s)| *o.last().unwrap_or(&0) == s[d] * size));
        if mergeable {
            *out_shape.last_mut().unwrap_or(&mut 0) *= size;
            for (o, s) in out_strides.iter_mut().zip(strides) {
                *o.last_mut().unwrap_or(&mut 0) = s[d];
            }
        } else {
            out_shape.push(size);
            for (o, s) in out_strides.iter_mut().zip(strides) {
                o.push(s[d]);
            }
        }
    }
    if out_shape.is_empty() {
        // one element: kernels expect at least one dimension
        out_shape.push(1);
        out_strides.iter_mut().for_each(|o| o.push(0));
    }
    (out_shape, out_strides)
}

/// u32 words as the byte slice a dispatch takes for its parameters.
pub fn param_bytes(words: &[u32]) -> &[u8] {
    bytemuck::cast_slice(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collapse_merges_what_every_operand_walks_as_one() {
        // bias [1, C, 1, 1] on [N, C, H, W]: a contiguous, b along C only
        let (shape, [sa, sb]) = collapse_dims(&[2, 3, 4, 5], [&[60, 20, 5, 1], &[0, 1, 0, 0]]);
        assert_eq!((shape, sa, sb), (vec![2, 3, 20], vec![60, 20, 1], vec![0, 1, 0]));
        // [B, 1, T, D] + [D]: two dims, the size-1 dim gone
        let (shape, [_, sb]) = collapse_dims(&[4, 1, 6, 8], [&[48, 48, 8, 1], &[0, 0, 0, 1]]);
        assert_eq!((shape, sb), (vec![24, 8], vec![0, 1]));
        let (shape, [sa, sb]) = collapse_dims(&[4, 6], [&[6, 1], &[6, 1]]);
        assert_eq!((shape, sa, sb), (vec![24], vec![1], vec![1]));
        let (shape, [sa]) = collapse_dims(&[1, 1], [&[1, 1]]);
        assert_eq!((shape, sa), (vec![1], vec![0]));
    }
}
