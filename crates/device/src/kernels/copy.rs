//! Tensor copies: `permute` (transpose is a permute), `concat`, `narrow` and its backward,
//! `index_select` (embedding lookup) and its backward, and `cast` between f32 and f16.
//! The moves work on any 32-bit dtype (f32, u32) bit for bit. WGSL: `shaders/copy.wgsl`,
//! and `shaders/copy_f16.wgsl` for the casts (used only where the adapter has f16).
//!
//! Out-of-range indices: the CPU twin returns an error; the GPU kernels never read out of
//! bounds — `index_select` writes NaN for such an index and `index_select_backward` drops it.

use crate::array::Array;
use crate::device::Device;
use crate::dtype::DType;
use crate::error::{shape_err, DeviceError, Result};
use crate::gpu::{grid_1d, Kernel, Shader};
use crate::kernels::common::{pack_dims, param_bytes, require_dtype, same_device, strides};
use crate::kernels::conv::to_u32;

crate::shader!(COPY, "copy");
crate::shader!(COPY_F16, "copy_f16");

/// Arrays the moves accept: 32-bit elements.
fn require_words(kernel: &'static str, a: &Array) -> Result<()> {
    match a.dtype() {
        DType::F32 | DType::U32 => Ok(()),
        d => {
            Err(DeviceError::DType { kernel, detail: format!("expected f32 or u32, got {d} (shape {:?})", a.shape()) })
        }
    }
}

fn check_axis(kernel: &'static str, shape: &[usize], axis: usize) -> Result<()> {
    if axis >= shape.len() {
        return shape_err(kernel, format!("axis {axis} out of range for shape {shape:?}"));
    }
    Ok(())
}

/// `shape` seen as `[outer, shape[axis], inner]`.
fn split(shape: &[usize], axis: usize) -> (usize, usize, usize) {
    (shape[..axis].iter().product(), shape[axis], shape[axis + 1..].iter().product())
}

/// A 1-D U32 index array.
fn check_indices(kernel: &'static str, indices: &Array) -> Result<()> {
    require_dtype(kernel, indices, DType::U32)?;
    if indices.ndim() != 1 {
        return shape_err(kernel, format!("indices must be 1-D, got {:?}", indices.shape()));
    }
    Ok(())
}

/// Record one dispatch of `entry` over `arrays` (storage bindings 1, 2, ... in order).
fn run(shader: &'static Shader, entry: &'static str, p: &[u32], arrays: &[&Array], groups: [u32; 3]) -> Result<()> {
    let device = same_device(entry, arrays)?;
    let Device::Gpu(ctx) = device else {
        return shape_err(entry, "GPU kernel launched on CPU arrays");
    };
    let bufs = arrays.iter().map(|a| a.expect_gpu(entry)).collect::<Result<Vec<_>>>()?;
    ctx.dispatch(&Kernel::new(shader, entry), param_bytes(p), &bufs, groups)
}

/// Block copy between rows of `src_block` and `dst_block` words (see copy.wgsl).
fn block(
    entry: &'static str,
    threads: usize,
    src_block: usize,
    dst_block: usize,
    offset: usize,
    src: &Array,
    dst: &Array,
) -> Result<()> {
    let p = [threads, src_block, dst_block, offset].iter().map(|&v| to_u32(entry, v)).collect::<Result<Vec<_>>>()?;
    run(&COPY, entry, &p, &[src, dst], grid_1d(threads, 256))
}

/// Reorder the axes: output axis `d` is input axis `perm[d]`.
pub fn permute(x: &Array, perm: &[usize]) -> Result<Array> {
    const K: &str = "permute";
    require_words(K, x)?;
    let mut seen = vec![false; x.ndim()];
    if perm.len() != x.ndim() || perm.iter().any(|&p| p >= x.ndim() || std::mem::replace(&mut seen[p], true)) {
        return shape_err(K, format!("{perm:?} is not a permutation of the axes of {:?}", x.shape()));
    }
    let shape: Vec<usize> = perm.iter().map(|&p| x.shape()[p]).collect();
    match x.device() {
        Device::Cpu => Ok(Array::cpu(reference::permute(&x.cpu_data(), x.shape(), perm), &shape, x.dtype())),
        ref d @ Device::Gpu(_) => {
            let out = Array::empty(d, &shape, x.dtype(), K)?;
            let in_strides = strides(x.shape());
            let src_strides: Vec<usize> = perm.iter().map(|&p| in_strides[p]).collect();
            let mut p = vec![to_u32(K, out.numel())?, shape.len() as u32, 0, 0];
            p.extend(pack_dims(K, &shape)?);
            p.extend(pack_dims(K, &src_strides)?);
            run(&COPY, K, &p, &[x, &out], grid_1d(out.numel(), 256))?;
            Ok(out)
        }
    }
}

/// Join arrays along `axis`; all other dimensions, the dtype and the device must agree.
pub fn concat(xs: &[&Array], axis: usize) -> Result<Array> {
    const K: &str = "concat";
    let Some(first) = xs.first() else {
        return shape_err(K, "no arrays to concatenate");
    };
    let device = same_device(K, xs)?;
    let shapes: Vec<&[usize]> = xs.iter().map(|a| a.shape()).collect();
    check_axis(K, first.shape(), axis)?;
    for a in xs {
        require_words(K, a)?;
        require_dtype(K, a, first.dtype())?;
        let same_rank = a.ndim() == first.ndim();
        if !same_rank || (0..a.ndim()).any(|d| d != axis && a.shape()[d] != first.shape()[d]) {
            return shape_err(K, format!("shapes {shapes:?} differ off axis {axis}"));
        }
    }
    let mut shape = first.shape().to_vec();
    shape[axis] = xs.iter().map(|a| a.shape()[axis]).sum();
    let (_, total, inner) = split(&shape, axis);
    match &device {
        Device::Cpu => {
            let data: Vec<_> = xs.iter().map(|a| a.cpu_data()).collect();
            let parts: Vec<(&[f64], &[usize])> = data.iter().zip(&shapes).map(|(d, s)| (&d[..], *s)).collect();
            Ok(Array::cpu(reference::concat(&parts, axis), &shape, first.dtype()))
        }
        Device::Gpu(_) => {
            let out = Array::empty(&device, &shape, first.dtype(), K)?;
            let mut offset = 0;
            for a in xs {
                let rows = a.shape()[axis];
                block("place", a.numel(), rows * inner, total * inner, offset * inner, a, &out)?;
                offset += rows;
            }
            Ok(out)
        }
    }
}

/// The slice `start..start + len` of `x` along `axis`.
pub fn narrow(x: &Array, axis: usize, start: usize, len: usize) -> Result<Array> {
    const K: &str = "narrow";
    require_words(K, x)?;
    check_axis(K, x.shape(), axis)?;
    if start + len > x.shape()[axis] {
        return shape_err(K, format!("{start}..{} exceeds axis {axis} of {:?}", start + len, x.shape()));
    }
    let mut shape = x.shape().to_vec();
    shape[axis] = len;
    let (_, full, inner) = split(x.shape(), axis);
    match x.device() {
        Device::Cpu => Ok(Array::cpu(reference::narrow(&x.cpu_data(), x.shape(), axis, start, len), &shape, x.dtype())),
        ref d @ Device::Gpu(_) => {
            let out = Array::empty(d, &shape, x.dtype(), K)?;
            block("take", out.numel(), full * inner, len * inner, start * inner, x, &out)?;
            Ok(out)
        }
    }
}

/// Gradient of `narrow`: `grad` placed at `start` along `axis` of `full_shape`, zeros elsewhere.
pub fn narrow_backward(grad: &Array, full_shape: &[usize], axis: usize, start: usize) -> Result<Array> {
    const K: &str = "narrow_backward";
    require_words(K, grad)?;
    check_axis(K, full_shape, axis)?;
    let len = grad.shape().get(axis).copied().unwrap_or(0);
    let mut want = full_shape.to_vec();
    want[axis] = len;
    if grad.shape() != want || start + len > full_shape[axis] {
        return shape_err(
            K,
            format!("grad {:?} at {start} along axis {axis} does not fit {full_shape:?}", grad.shape()),
        );
    }
    let (_, full, inner) = split(full_shape, axis);
    match grad.device() {
        Device::Cpu => Ok(Array::cpu(
            reference::narrow_backward(&grad.cpu_data(), full_shape, axis, start),
            full_shape,
            grad.dtype(),
        )),
        ref d @ Device::Gpu(_) => {
            let out = Array::empty(d, full_shape, grad.dtype(), K)?;
            block("place_or_zero", out.numel(), len * inner, full * inner, start * inner, grad, &out)?;
            Ok(out)
        }
    }
}

/// Rows of `x` along `axis` picked by the 1-D U32 `indices` (repeats allowed).
pub fn index_select(x: &Array, axis: usize, indices: &Array) -> Result<Array> {
    const K: &str = "index_select";
    let device = same_device(K, &[x, indices])?;
    require_words(K, x)?;
    check_indices(K, indices)?;
    check_axis(K, x.shape(), axis)?;
    let count = indices.numel();
    let mut shape = x.shape().to_vec();
    shape[axis] = count;
    let (_, rows, inner) = split(x.shape(), axis);
    match &device {
        Device::Cpu => {
            let idx = cpu_indices(K, indices, rows)?;
            Ok(Array::cpu(reference::index_select(&x.cpu_data(), x.shape(), axis, &idx), &shape, x.dtype()))
        }
        Device::Gpu(_) => {
            let out = Array::empty(&device, &shape, x.dtype(), K)?;
            let p = [out.numel(), rows, count, inner].iter().map(|&v| to_u32(K, v)).collect::<Result<Vec<_>>>()?;
            run(&COPY, K, &p, &[x, indices, &out], grid_1d(out.numel(), 256))?;
            Ok(out)
        }
    }
}

/// A CPU index array as usizes, or an error naming the first index out of range.
fn cpu_indices(kernel: &'static str, indices: &Array, rows: usize) -> Result<Vec<usize>> {
    let idx: Vec<usize> = indices.cpu_data().iter().map(|&v| v as usize).collect();
    if let Some((j, &bad)) = idx.iter().enumerate().find(|(_, &v)| v >= rows) {
        return shape_err(kernel, format!("index {bad} at position {j} is out of range for an axis of {rows}"));
    }
    Ok(idx)
}

/// Gradient of `index_select`: each row of `full_shape` along `axis` gets the sum of the
/// gradients of every position that selected it (repeated indices add up), in position
/// order, so the result is deterministic.
///
/// GPU cost, with L indices and R rows: a stable LSD radix sort of (index, position)
/// (ceil(bits(R)/8) passes of three dispatches, each O(L) plus a 256-wide rank scan per
/// element), a binary search per row (O(R log L)), and a gather of O(outer*(R + L)*inner)
/// reads. Temporaries: 4L + 256*ceil(L/256) + R + 1 words. A row selected k times costs k
/// sequential reads per output element (a padding token repeated 60k times is slow but exact).
pub fn index_select_backward(grad: &Array, full_shape: &[usize], axis: usize, indices: &Array) -> Result<Array> {
    const K: &str = "index_select_backward";
    let device = same_device(K, &[grad, indices])?;
    require_dtype(K, grad, DType::F32)?;
    check_indices(K, indices)?;
    check_axis(K, full_shape, axis)?;
    let count = indices.numel();
    let mut want = full_shape.to_vec();
    want[axis] = count;
    if grad.shape() != want {
        return shape_err(
            K,
            format!("grad {:?} does not match {full_shape:?} with {count} indices on axis {axis}", grad.shape()),
        );
    }
    let (outer, rows, inner) = split(full_shape, axis);
    match &device {
        Device::Cpu => {
            let idx = cpu_indices(K, indices, rows)?;
            Ok(Array::cpu(
                reference::index_select_backward(&grad.cpu_data(), full_shape, axis, &idx),
                full_shape,
                DType::F32,
            ))
        }
        Device::Gpu(_) if count == 0 => Array::zeros(&device, full_shape),
        Device::Gpu(_) => {
            let out = Array::empty(&device, full_shape, DType::F32, K)?;
            if out.numel() > 0 {
                sort_and_gather(&device, grad, indices, [outer, rows, inner], &out)?;
            }
            Ok(out)
        }
    }
}

/// The GPU side of `index_select_backward` (see copy.wgsl).
fn sort_and_gather(
    device: &Device,
    grad: &Array,
    indices: &Array,
    [outer, rows, inner]: [usize; 3],
    out: &Array,
) -> Result<()> {
    const K: &str = "index_select_backward";
    let n = indices.numel();
    let blocks = n.div_ceil(256);
    let u32s = |len: usize| Array::empty(device, &[len], DType::U32, K);
    let (mut keys, mut vals, mut keys_next, mut vals_next) = (u32s(n)?, u32s(n)?, u32s(n)?, u32s(n)?);
    let table = u32s(256 * blocks)?;
    let starts = u32s(rows + 1)?;
    let params = |shift: u32| -> Result<Vec<u32>> {
        let mut p = [n, rows, 0, blocks, inner, outer, out.numel()]
            .iter()
            .map(|&v| to_u32(K, v))
            .collect::<Result<Vec<_>>>()?;
        p[2] = shift;
        p.push(0);
        Ok(p)
    };
    let (per_index, per_block) = (grid_1d(n, 256), grid_1d(blocks, 1));
    run(&COPY, "sort_init", &params(0)?, &[indices, &keys, &vals], per_index)?;
    // keys are at most `rows` (the sentinel for out-of-range indices): sort only their bits
    let key_bits = 32 - to_u32(K, rows)?.leading_zeros();
    for pass in 0..key_bits.div_ceil(8).max(1) {
        let p = params(8 * pass)?;
        run(&COPY, "sort_histogram", &p, &[&keys, &table], per_block)?;
        run(&COPY, "sort_scan", &p, &[&table], [1, 1, 1])?;
        run(&COPY, "sort_scatter", &p, &[&keys, &vals, &table, &keys_next, &vals_next], per_block)?;
        std::mem::swap(&mut keys, &mut keys_next);
        std::mem::swap(&mut vals, &mut vals_next);
    }
    let p = params(0)?;
    run(&COPY, "segment_starts", &p, &[&keys, &starts], grid_1d(rows + 1, 256))?;
    run(&COPY, "gather_rows", &p, &[grad, &vals, &starts, out], grid_1d(out.numel(), 256))
}

/// Convert between f32 and f16 (a no-op sharing storage when `dtype` is already `x`'s).
/// On a GPU this needs the adapter's f16 support (`caps().f16`).
pub fn cast(x: &Array, dtype: DType) -> Result<Array> {
    const K: &str = "cast";
    let entry = match (x.dtype(), dtype) {
        (from, to) if from == to => return Ok(x.clone()),
        (DType::F32, DType::F16) => "f32_to_f16",
        (DType::F16, DType::F32) => "f16_to_f32",
        (from, to) => return Err(DeviceError::DType { kernel: K, detail: format!("no cast from {from} to {to}") }),
    };
    match x.device() {
        Device::Cpu => {
            let v = if dtype == DType::F16 { reference::round_f16(&x.cpu_data()) } else { x.cpu_data().clone() };
            Ok(Array::cpu(v, x.shape(), dtype))
        }
        ref d @ Device::Gpu(ref ctx) => {
            if !ctx.caps().f16 {
                return Err(DeviceError::Unsupported { kernel: K, detail: "adapter has no SHADER_F16".into() });
            }
            let out = Array::empty(d, x.shape(), dtype, K)?;
            let p = [to_u32(K, x.numel())?, 0, 0, 0];
            run(&COPY_F16, entry, &p, &[x, &out], grid_1d(x.numel(), 256))?;
            Ok(out)
        }
    }
}

/// CPU twins, in f64, from the definitions. Index arguments are already range-checked.
pub mod reference {
    use crate::kernels::common::strides;

    fn split(shape: &[usize], axis: usize) -> (usize, usize, usize) {
        (shape[..axis].iter().product(), shape[axis], shape[axis + 1..].iter().product())
    }

    pub fn permute(x: &[f64], shape: &[usize], perm: &[usize]) -> Vec<f64> {
        let out_shape: Vec<usize> = perm.iter().map(|&p| shape[p]).collect();
        let (in_strides, out_strides) = (strides(shape), strides(&out_shape));
        (0..x.len())
            .map(|i| {
                let src: usize =
                    (0..perm.len()).map(|d| (i / out_strides[d]) % out_shape[d] * in_strides[perm[d]]).sum();
                x[src]
            })
            .collect()
    }

    /// Concatenation of `(values, shape)` parts along `axis`.
    pub fn concat(parts: &[(&[f64], &[usize])], axis: usize) -> Vec<f64> {
        let outer = split(parts[0].1, axis).0;
        let mut out = Vec::new();
        for o in 0..outer {
            for (data, shape) in parts {
                let (_, rows, inner) = split(shape, axis);
                out.extend_from_slice(&data[o * rows * inner..(o + 1) * rows * inner]);
            }
        }
        out
    }

    pub fn narrow(x: &[f64], shape: &[usize], axis: usize, start: usize, len: usize) -> Vec<f64> {
        let (outer, rows, inner) = split(shape, axis);
        (0..outer)
            .flat_map(|o| x[(o * rows + start) * inner..(o * rows + start + len) * inner].iter().copied())
            .collect()
    }

    pub fn narrow_backward(grad: &[f64], full_shape: &[usize], axis: usize, start: usize) -> Vec<f64> {
        let (outer, rows, inner) = split(full_shape, axis);
        let len = grad.len() / (outer * inner).max(1);
        let mut out = vec![0.0; outer * rows * inner];
        for o in 0..outer {
            out[(o * rows + start) * inner..(o * rows + start + len) * inner]
                .copy_from_slice(&grad[o * len * inner..(o + 1) * len * inner]);
        }
        out
    }

    pub fn index_select(x: &[f64], shape: &[usize], axis: usize, indices: &[usize]) -> Vec<f64> {
        let (outer, rows, inner) = split(shape, axis);
        let mut out = Vec::new();
        for o in 0..outer {
            for &at in indices {
                out.extend_from_slice(&x[(o * rows + at) * inner..(o * rows + at + 1) * inner]);
            }
        }
        out
    }

    pub fn index_select_backward(grad: &[f64], full_shape: &[usize], axis: usize, indices: &[usize]) -> Vec<f64> {
        let (outer, rows, inner) = split(full_shape, axis);
        let mut out = vec![0.0; outer * rows * inner];
        for o in 0..outer {
            for (j, &at) in indices.iter().enumerate() {
                for r in 0..inner {
                    out[(o * rows + at) * inner + r] += grad[(o * indices.len() + j) * inner + r];
                }
            }
        }
        out
    }

    /// Values as f16 holds them (rounded from f32, as the GPU cast rounds).
    pub fn round_f16(x: &[f64]) -> Vec<f64> {
        x.iter().map(|&v| half::f16::from_f32(v as f32).to_f64()).collect()
    }
}
