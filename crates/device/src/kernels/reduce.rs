//! Reductions on f32: sum, mean, max and min over any set of axes, argmax over one axis, and
//! `sum_to_shape` (the backward of broadcasting). WGSL: `shaders/reduce.wgsl`.
//!
//! Schedule: a thread per output when each output combines few elements; otherwise a
//! workgroup per output with a shared-memory tree, and when the outputs are too few to fill
//! the GPU (batch-norm statistics, full sums) each output is split into chunks of
//! `CHUNK` elements whose partial results a second pass combines.

use crate::array::Array;
use crate::device::Device;
use crate::dtype::DType;
use crate::error::{shape_err, Result};
use crate::gpu::{grid_1d, GpuContext, Kernel};
use crate::kernels::common::{broadcast_shapes, float_storage, pack_dims, param_bytes, require_dtype, strides};

crate::storage_shaders!(REDUCE, REDUCE_F16, "reduce");

/// Reduced elements per output up to which one thread computes a whole output.
const THREAD_MAX: usize = 64;
/// With at least this many outputs, a thread per output already fills the GPU, and it is
/// the faster schedule for moderate reductions (bias gradients summed over a batch):
/// workgroup-memory trees are slow on software rasterisers like lavapipe.
const MANY_OUTPUTS: usize = 2048;
/// ... as long as each output combines at most this many elements. On a CPU adapter the same
/// holds for any number of outputs: its workgroup trees cost more than a few outputs' loops
/// (a linear layer's bias gradient, 120 sums of 128, took 3 ms as trees on lavapipe).
const THREAD_MAX_MANY: usize = 1024;
/// Reduced elements per workgroup when an output is split across workgroups (32 per thread).
const CHUNK: usize = 8192;
/// Outputs from which one workgroup each is enough to fill a GPU (no split).
const ENOUGH_OUTPUTS: usize = 512;
const WG: usize = 256;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReduceOp {
    Sum,
    Mean,
    Max,
    Min,
}

impl ReduceOp {
    pub const ALL: [ReduceOp; 4] = [ReduceOp::Sum, ReduceOp::Mean, ReduceOp::Max, ReduceOp::Min];

    /// The shader's combining op (a mean is a sum scaled afterwards).
    fn code(self) -> u32 {
        match self {
            ReduceOp::Sum | ReduceOp::Mean => 0,
            ReduceOp::Max => 1,
            ReduceOp::Min => 2,
        }
    }

    /// The identity of the combining op.
    fn init(self) -> f32 {
        match self {
            ReduceOp::Sum | ReduceOp::Mean => 0.0,
            ReduceOp::Max => f32::NEG_INFINITY,
            ReduceOp::Min => f32::INFINITY,
        }
    }
}

/// An input read as `[outputs, reduced]`: (size, stride) groups of the kept axes and of the
/// reduced axes, adjacent axes of the same kind merged and size-1 axes dropped.
struct Layout {
    kept: Groups,
    red: Groups,
}

/// (size, element stride) of each axis group.
type Groups = Vec<(usize, usize)>;

impl Layout {
    fn new(shape: &[usize], reduced: &[bool]) -> Layout {
        let st = strides(shape);
        let (mut kept, mut red): (Groups, Groups) = (vec![], vec![]);
        let mut last_reduced = None;
        for d in 0..shape.len() {
            if shape[d] == 1 {
                continue;
            }
            let group = if reduced[d] { &mut red } else { &mut kept };
            match group.last_mut() {
                // contiguous axes: the previous group's stride is this axis' extent
                Some(g) if last_reduced == Some(reduced[d]) => *g = (g.0 * shape[d], st[d]),
                _ => group.push((shape[d], st[d])),
            }
            last_reduced = Some(reduced[d]);
        }
        Layout { kept, red }
    }

    /// The same layout counted in vec4s, where it can be: at most two reduced groups, the
    /// innermost contiguous, and every other size and stride a multiple of 4 along it.
    fn in_vec4s(&self) -> Option<Layout> {
        let &(inner, inner_stride) = self.red.last()?;
        let aligned = |g: &[(usize, usize)]| g.iter().all(|&(_, stride)| stride.is_multiple_of(4));
        let outer = &self.red[..self.red.len() - 1];
        if self.red.len() > 2
            || inner_stride != 1
            || !inner.is_multiple_of(4)
            || !aligned(&self.kept)
            || !aligned(outer)
        {
            return None;
        }
        let quarter = |g: &[(usize, usize)]| g.iter().map(|&(size, stride)| (size, stride / 4)).collect::<Groups>();
        let mut red = quarter(outer);
        red.push((inner / 4, 1));
        Some(Layout { kept: quarter(&self.kept), red })
    }

    fn n_out(&self) -> usize {
        self.kept.iter().map(|g| g.0).product()
    }

    fn n_red(&self) -> usize {
        self.red.iter().map(|g| g.0).product()
    }

    /// Parameter block of `reduce.wgsl` (see its `Params`).
    fn params(&self, chunk: usize, chunks: usize, scale: f32, init: f32) -> Result<Vec<u32>> {
        let sizes = |g: &[(usize, usize)]| g.iter().map(|x| x.0).collect::<Vec<_>>();
        let strides = |g: &[(usize, usize)]| g.iter().map(|x| x.1).collect::<Vec<_>>();
        let mut p = vec![
            self.n_out() as u32,
            self.n_red() as u32,
            chunk as u32,
            chunks as u32,
            scale.to_bits(),
            self.kept.len() as u32,
            self.red.len() as u32,
            init.to_bits(),
        ];
        for dims in [sizes(&self.kept), strides(&self.kept), sizes(&self.red), strides(&self.red)] {
            p.extend_from_slice(&pack_dims("reduce", &dims)?);
        }
        Ok(p)
    }
}

/// Record the reduction of `x` (read through `layout`) into a new flat array of its outputs.
fn launch(g: &GpuContext, device: &Device, op: ReduceOp, x: &Array, layout: &Layout, scale: f32) -> Result<Array> {
    let (n_out, n_red) = (layout.n_out(), layout.n_red());
    let code = [("OP", op.code() as f64)];
    let input = x.gpu_buffer().unwrap();
    let shader = if x.dtype() == DType::F16 { &REDUCE_F16 } else { &REDUCE };
    let thread_per_output =
        n_red <= THREAD_MAX || ((n_out >= MANY_OUTPUTS || g.is_cpu_adapter()) && n_red <= THREAD_MAX_MANY);
    if thread_per_output {
        let out = Array::empty(device, &[n_out], DType::F32, "reduce")?;
        let p = layout.params(0, 1, scale, op.init())?;
        let kernel = Kernel::new(shader, "reduce_thread").with(&code);
        g.dispatch(&kernel, param_bytes(&p), &[input, out.gpu_buffer().unwrap()], grid_1d(n_out, WG as u32))?;
        return Ok(out);
    }
    let chunks = if n_out >= ENOUGH_OUTPUTS { 1 } else { n_red.div_ceil(CHUNK) };
    let (chunk, first_scale) = if chunks == 1 { (n_red, scale) } else { (CHUNK, 1.0) };
    let partial = Array::empty(device, &[n_out * chunks], DType::F32, "reduce")?;
    // the same chunks, walked in vec4s where the layout allows
    let (entry, p) = match layout.in_vec4s() {
        Some(wide) => ("reduce_wg4", wide.params(chunk / 4, chunks, first_scale, op.init())?),
        None => ("reduce_wg", layout.params(chunk, chunks, first_scale, op.init())?),
    };
    let kernel = Kernel::new(shader, entry).with(&code);
    let groups = grid_1d(n_out * chunks * WG, WG as u32);
    g.dispatch(&kernel, param_bytes(&p), &[input, partial.gpu_buffer().unwrap()], groups)?;
    if chunks == 1 {
        return Ok(partial);
    }
    let rows = Layout { kept: vec![(n_out, chunks)], red: vec![(chunks, 1)] };
    launch(g, device, op, &partial, &rows, scale)
}

/// The shape `reduce` produces.
fn reduced_shape(shape: &[usize], reduced: &[bool], keepdim: bool) -> Vec<usize> {
    shape
        .iter()
        .zip(reduced)
        .filter_map(|(&d, &r)| match (r, keepdim) {
            (false, _) => Some(d),
            (true, true) => Some(1),
            (true, false) => None,
        })
        .collect()
}

/// Which axes `axes` selects (empty = all), checked: in range and not repeated.
fn axis_mask(kernel: &'static str, shape: &[usize], axes: &[usize]) -> Result<Vec<bool>> {
    if axes.is_empty() {
        return Ok(vec![true; shape.len()]);
    }
    let mut mask = vec![false; shape.len()];
    for &a in axes {
        if a >= shape.len() || mask[a] {
            return shape_err(kernel, format!("axes {axes:?} invalid for shape {shape:?}"));
        }
        mask[a] = true;
    }
    Ok(mask)
}

/// `op` over `axes` of `x` (all axes when `axes` is empty); reduced axes are dropped, or
/// kept with size 1 when `keepdim`. A sum over no elements is 0 and a mean NaN; max and min
/// over no elements are an error. `x` is f32 or f16; the sums and the result are f32.
pub fn reduce(op: ReduceOp, x: &Array, axes: &[usize], keepdim: bool) -> Result<Array> {
    float_storage("reduce", &[x])?;
    let mask = axis_mask("reduce", x.shape(), axes)?;
    let shape = reduced_shape(x.shape(), &mask, keepdim);
    let layout = Layout::new(x.shape(), &mask);
    let n_red: usize = x.shape().iter().zip(&mask).filter(|(_, &r)| r).map(|(&d, _)| d).product();
    if n_red == 0 && matches!(op, ReduceOp::Max | ReduceOp::Min) {
        return shape_err("reduce", format!("{op:?} over an empty selection of shape {:?} (axes {axes:?})", x.shape()));
    }
    match x.device() {
        Device::Cpu => Ok(Array::cpu(reference::reduce(op, &x.cpu_data(), x.shape(), &mask), &shape, DType::F32)),
        ref device @ Device::Gpu(ref g) => {
            let out_count: usize = shape.iter().product();
            if out_count == 0 {
                return Array::empty(device, &shape, DType::F32, "reduce");
            }
            let scale = if op == ReduceOp::Mean { (1.0 / n_red as f64) as f32 } else { 1.0 };
            launch(g, device, op, x, &layout, scale)?.reshape(&shape)
        }
    }
}

/// Index (u32) of the largest value along `axis`, the first one on ties.
pub fn argmax(x: &Array, axis: usize, keepdim: bool) -> Result<Array> {
    require_dtype("argmax", x, DType::F32)?;
    let mask = axis_mask("argmax", x.shape(), &[axis])?;
    let shape = reduced_shape(x.shape(), &mask, keepdim);
    let n_red = x.shape()[axis];
    if n_red == 0 {
        return shape_err("argmax", format!("axis {axis} of shape {:?} is empty", x.shape()));
    }
    match x.device() {
        Device::Cpu => Ok(Array::cpu(reference::argmax(&x.cpu_data(), x.shape(), axis), &shape, DType::U32)),
        ref device @ Device::Gpu(ref g) => {
            let out = Array::empty(device, &shape, DType::U32, "argmax")?;
            let n_out = out.numel();
            // the reduced axis is its own group even when it has size 1
            let mut layout = Layout::new(x.shape(), &mask);
            layout.red = vec![(n_red, strides(x.shape())[axis])];
            let p = layout.params(n_red, 1, 1.0, f32::NEG_INFINITY)?;
            let (entry, groups) = if n_red <= THREAD_MAX {
                ("argmax_thread", grid_1d(n_out, WG as u32))
            } else {
                ("argmax_wg", grid_1d(n_out * WG, WG as u32))
            };
            let bufs = [x.gpu_buffer().unwrap(), out.gpu_buffer().unwrap()];
            g.dispatch(&Kernel::new(&REDUCE, entry), param_bytes(&p), &bufs, groups)?;
            Ok(out)
        }
    }
}

/// Sum `x` down to `shape`, the shape it was broadcast from under NumPy rules (the gradient
/// of a broadcasting op). Returns `x` itself (shared storage) when the shapes are equal.
pub fn sum_to_shape(x: &Array, shape: &[usize]) -> Result<Array> {
    if shape == x.shape() {
        return Ok(x.clone());
    }
    let full = broadcast_shapes("sum_to_shape", shape, x.shape())?;
    if full != x.shape() {
        return shape_err("sum_to_shape", format!("shape {shape:?} does not broadcast to {:?}", x.shape()));
    }
    let lead = x.ndim() - shape.len();
    let axes: Vec<usize> = (0..x.ndim()).filter(|&d| d < lead || (shape[d - lead] == 1 && x.shape()[d] != 1)).collect();
    reduce(ReduceOp::Sum, x, &axes, false)?.reshape(shape)
}

/// CPU twins, in f64, written from the definitions.
pub mod reference {
    use super::ReduceOp;
    use crate::kernels::common::strides;

    /// Index of the output element that input element `i` (of `shape`) reduces into.
    fn output_index(i: usize, shape: &[usize], reduced: &[bool]) -> usize {
        let st = strides(shape);
        let mut o = 0;
        for d in 0..shape.len() {
            if !reduced[d] {
                o = o * shape[d] + (i / st[d]) % shape[d];
            }
        }
        o
    }

    /// `op` over the axes where `reduced` is true, outputs in row-major order of the kept axes.
    pub fn reduce(op: ReduceOp, x: &[f64], shape: &[usize], reduced: &[bool]) -> Vec<f64> {
        let n_out: usize = shape.iter().zip(reduced).filter(|(_, &r)| !r).map(|(&d, _)| d).product();
        let count = x.len() / n_out.max(1);
        let init = match op {
            ReduceOp::Sum | ReduceOp::Mean => 0.0,
            ReduceOp::Max => f64::NEG_INFINITY,
            ReduceOp::Min => f64::INFINITY,
        };
        let mut out = vec![init; n_out];
        for (i, &v) in x.iter().enumerate() {
            let o = &mut out[output_index(i, shape, reduced)];
            *o = match op {
                ReduceOp::Sum | ReduceOp::Mean => *o + v,
                ReduceOp::Max => o.max(v),
                ReduceOp::Min => o.min(v),
            };
        }
        if op == ReduceOp::Mean {
            out.iter_mut().for_each(|o| *o /= count as f64);
        }
        out
    }

    /// First index of the largest value along `axis`, as f64.
    pub fn argmax(x: &[f64], shape: &[usize], axis: usize) -> Vec<f64> {
        let reduced: Vec<bool> = (0..shape.len()).map(|d| d == axis).collect();
        let n_out = x.len() / shape[axis].max(1);
        let mut best: Vec<Option<(f64, usize)>> = vec![None; n_out];
        let st = strides(shape);
        for (i, &v) in x.iter().enumerate() {
            let k = (i / st[axis]) % shape[axis];
            let b = &mut best[output_index(i, shape, &reduced)];
            if b.is_none_or(|(bv, _)| v > bv) {
                *b = Some((v, k));
            }
        }
        best.into_iter().map(|b| b.map_or(0.0, |(_, k)| k as f64)).collect()
    }

    /// Sum of `x` (of shape `from`) down to `to`, which broadcasts to `from`.
    pub fn sum_to_shape(x: &[f64], from: &[usize], to: &[usize]) -> Vec<f64> {
        let lead = from.len() - to.len();
        let st = strides(from);
        let mut out = vec![0.0; to.iter().product()];
        for (i, &v) in x.iter().enumerate() {
            let mut o = 0;
            for d in lead..from.len() {
                let c = if to[d - lead] == 1 { 0 } else { (i / st[d]) % from[d] };
                o = o * to[d - lead] + c;
            }
            out[o] += v;
        }
        out
    }
}
