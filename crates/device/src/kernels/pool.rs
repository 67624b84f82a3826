//! 2-D pooling on NCHW arrays: max (with argmax indices), average, and adaptive average,
//! each with its backward. Windows reuse `Conv2dGeometry` (dilation 1, ceil_mode off,
//! padding at most half the window, as PyTorch requires). Backward passes are gathers, so
//! they are deterministic. Values are f32 or f16 (compared and summed in f32). WGSL:
//! `shaders/pool.wgsl`.

use crate::array::Array;
use crate::device::Device;
use crate::dtype::DType;
use crate::error::{shape_err, Result};
use crate::gpu::{grid_1d, Kernel};
use crate::kernels::common::{cpu_stored, float_storage, param_bytes, require_dtype, same_device};
use crate::kernels::conv::{nchw, to_u32, Conv2dGeometry};

crate::storage_shaders!(POOL, POOL_F16, "pool");

/// Output size of a pooling window on an `h` x `w` input, after checking the geometry.
fn pool_out_hw(kernel: &'static str, g: &Conv2dGeometry, h: usize, w: usize) -> Result<[usize; 2]> {
    if g.dilation != [1, 1] {
        return shape_err(kernel, format!("{g:?}: pooling takes no dilation"));
    }
    if (0..2).any(|a| 2 * g.padding[a] > g.kernel[a]) {
        return shape_err(kernel, format!("{g:?}: padding must be at most half the window"));
    }
    g.out_hw_for(kernel, h, w)
}

/// The shape a gradient of the output must have, checked against `grad`.
fn check_grad(kernel: &'static str, grad: &Array, want: &[usize], input_shape: &[usize]) -> Result<()> {
    if grad.shape() != want {
        return shape_err(
            kernel,
            format!("grad_out {:?} does not match input {input_shape:?} (expected {want:?})", grad.shape()),
        );
    }
    Ok(())
}

/// Parameter block of pool.wgsl: threads, the geometry words, include_pad, padding.
fn params(kernel: &'static str, threads: usize, geometry: Vec<u32>, include_pad: bool) -> Result<Vec<u32>> {
    let mut p = vec![to_u32(kernel, threads)?];
    p.extend(geometry);
    p.extend([include_pad as u32, 0]);
    Ok(p)
}

/// Records `entry` over `arrays`, whose values (the first array's and the last's) are stored as
/// `dtype`, f32 or f16.
fn launch(entry: &'static str, dtype: DType, p: &[u32], arrays: &[&Array], threads: usize) -> Result<()> {
    let Device::Gpu(ctx) = same_device(entry, arrays)? else {
        return shape_err(entry, "GPU kernel launched on CPU arrays");
    };
    let bufs = arrays.iter().map(|a| a.expect_gpu(entry)).collect::<Result<Vec<_>>>()?;
    let shader = if dtype == DType::F16 { &POOL_F16 } else { &POOL };
    ctx.dispatch(&Kernel::new(shader, entry), param_bytes(p), &bufs, grid_1d(threads, 256))
}

/// Whether the windows tile the input exactly: stride = kernel, no padding, H = OH*KH, W = OW*KW.
fn tiles(g: &Conv2dGeometry, h: usize, w: usize, oh: usize, ow: usize) -> bool {
    g.stride == g.kernel && g.padding == [0, 0] && h == oh * g.kernel[0] && w == ow * g.kernel[1]
}

/// Whether pool.wgsl's `*_pairs` kernels apply: 2x2 windows tiling an input whose width is a
/// multiple of 4 (two windows' columns are one aligned vec4 per row).
fn pairs_fit(g: &Conv2dGeometry, h: usize, w: usize, oh: usize, ow: usize) -> bool {
    g.kernel == [2, 2] && tiles(g, h, w, oh, ow) && w.is_multiple_of(4)
}

/// Max pooling: the output `[N, C, OH, OW]` and, as U32, the argmax of each window as an
/// index into its H*W plane (`ih*W + iw`). Padding counts as -inf; the first maximum wins.
pub fn max_pool2d(x: &Array, g: &Conv2dGeometry) -> Result<(Array, Array)> {
    let dtype = float_storage("max_pool2d", &[x])?;
    let [n, c, h, w] = nchw("max_pool2d", "x", x.shape())?;
    let [oh, ow] = pool_out_hw("max_pool2d", g, h, w)?;
    let shape = [n, c, oh, ow];
    match x.device() {
        Device::Cpu => {
            let (out, idx) = reference::max_pool2d(&x.cpu_data(), x.shape(), g);
            Ok((cpu_stored(out, &shape, dtype), Array::cpu(idx, &shape, DType::U32)))
        }
        ref d @ Device::Gpu(_) => {
            let out = Array::empty(d, &shape, dtype, "max_pool2d")?;
            let idx = Array::empty(d, &shape, DType::U32, "max_pool2d")?;
            let (entry, threads) = if pairs_fit(g, h, w, oh, ow) {
                ("max_pool2d_pairs", out.numel() / 2)
            } else {
                ("max_pool2d", out.numel())
            };
            let p = params("max_pool2d", threads, g.words("max_pool2d", c, h, w, [oh, ow])?, false)?;
            launch(entry, dtype, &p, &[x, &out, &idx], threads)?;
            Ok((out, idx))
        }
    }
}

/// Gradient of `max_pool2d` with respect to its input of `input_shape`: each pixel gets the
/// sum of the gradients of the windows whose argmax it is. `indices` must come from
/// `max_pool2d`: on the CPU an index outside its window is an error; the GPU kernel never
/// reads out of bounds and simply ignores such an index.
pub fn max_pool2d_backward(
    grad_out: &Array,
    indices: &Array,
    g: &Conv2dGeometry,
    input_shape: &[usize],
) -> Result<Array> {
    const K: &str = "max_pool2d_backward";
    let device = same_device(K, &[grad_out, indices])?;
    let dtype = float_storage(K, &[grad_out])?;
    require_dtype(K, indices, DType::U32)?;
    let [n, c, h, w] = nchw(K, "input_shape", input_shape)?;
    let [oh, ow] = pool_out_hw(K, g, h, w)?;
    check_grad(K, grad_out, &[n, c, oh, ow], input_shape)?;
    check_grad(K, indices, &[n, c, oh, ow], input_shape)?;
    match &device {
        Device::Cpu => {
            let dx = reference::max_pool2d_backward(&grad_out.cpu_data(), &indices.cpu_data(), g, input_shape)
                .map_err(|detail| crate::error::DeviceError::Shape { kernel: K, detail })?;
            Ok(cpu_stored(dx, input_shape, dtype))
        }
        Device::Gpu(_) => {
            let dx = Array::empty(&device, input_shape, dtype, K)?;
            let (entry, threads) = if pairs_fit(g, h, w, oh, ow) {
                ("max_pool2d_backward_pairs", grad_out.numel() / 2)
            } else if tiles(g, h, w, oh, ow) {
                ("max_pool2d_backward_tiled", grad_out.numel())
            } else {
                (K, dx.numel())
            };
            let p = params(K, threads, g.words(K, c, h, w, [oh, ow])?, false)?;
            launch(entry, dtype, &p, &[grad_out, indices, &dx], threads)?;
            Ok(dx)
        }
    }
}

/// Average pooling; `count_include_pad` divides by KH*KW, otherwise by the in-bounds count.
pub fn avg_pool2d(x: &Array, g: &Conv2dGeometry, count_include_pad: bool) -> Result<Array> {
    let dtype = float_storage("avg_pool2d", &[x])?;
    let [n, c, h, w] = nchw("avg_pool2d", "x", x.shape())?;
    let [oh, ow] = pool_out_hw("avg_pool2d", g, h, w)?;
    let shape = [n, c, oh, ow];
    match x.device() {
        Device::Cpu => {
            Ok(cpu_stored(reference::avg_pool2d(&x.cpu_data(), x.shape(), g, count_include_pad), &shape, dtype))
        }
        ref d @ Device::Gpu(_) => {
            let out = Array::empty(d, &shape, dtype, "avg_pool2d")?;
            let p = params("avg_pool2d", out.numel(), g.words("avg_pool2d", c, h, w, [oh, ow])?, count_include_pad)?;
            launch("avg_pool2d", dtype, &p, &[x, &out], out.numel())?;
            Ok(out)
        }
    }
}

/// Gradient of `avg_pool2d` with respect to its input of `input_shape`.
pub fn avg_pool2d_backward(
    grad_out: &Array,
    g: &Conv2dGeometry,
    input_shape: &[usize],
    count_include_pad: bool,
) -> Result<Array> {
    const K: &str = "avg_pool2d_backward";
    let dtype = float_storage(K, &[grad_out])?;
    let [n, c, h, w] = nchw(K, "input_shape", input_shape)?;
    let [oh, ow] = pool_out_hw(K, g, h, w)?;
    check_grad(K, grad_out, &[n, c, oh, ow], input_shape)?;
    match grad_out.device() {
        Device::Cpu => Ok(cpu_stored(
            reference::avg_pool2d_backward(&grad_out.cpu_data(), g, input_shape, count_include_pad),
            input_shape,
            dtype,
        )),
        ref d @ Device::Gpu(_) => {
            let dx = Array::empty(d, input_shape, dtype, K)?;
            let p = params(K, dx.numel(), g.words(K, c, h, w, [oh, ow])?, count_include_pad)?;
            launch(K, dtype, &p, &[grad_out, &dx], dx.numel())?;
            Ok(dx)
        }
    }
}

/// Geometry words for the adaptive kernels: only c, h, w, oh, ow are read.
fn adaptive_words(kernel: &'static str, c: usize, h: usize, w: usize, out: [usize; 2]) -> Result<Vec<u32>> {
    let mut v = [c, h, w, out[0], out[1]].iter().map(|&x| to_u32(kernel, x)).collect::<Result<Vec<_>>>()?;
    v.resize(13, 0);
    Ok(v)
}

fn check_adaptive(kernel: &'static str, h: usize, w: usize, out_hw: [usize; 2]) -> Result<()> {
    if out_hw.contains(&0) || h == 0 || w == 0 {
        return shape_err(kernel, format!("output {out_hw:?} and input {h}x{w} must be non-empty"));
    }
    Ok(())
}

/// Adaptive average pooling to `out_hw`, with PyTorch's windows
/// `[floor(i*H/OH), ceil((i+1)*H/OH))`.
pub fn adaptive_avg_pool2d(x: &Array, out_hw: [usize; 2]) -> Result<Array> {
    const K: &str = "adaptive_avg_pool2d";
    let dtype = float_storage(K, &[x])?;
    let [n, c, h, w] = nchw(K, "x", x.shape())?;
    check_adaptive(K, h, w, out_hw)?;
    let shape = [n, c, out_hw[0], out_hw[1]];
    match x.device() {
        Device::Cpu => Ok(cpu_stored(reference::adaptive_avg_pool2d(&x.cpu_data(), x.shape(), out_hw), &shape, dtype)),
        ref d @ Device::Gpu(_) => {
            let out = Array::empty(d, &shape, dtype, K)?;
            let p = params(K, out.numel(), adaptive_words(K, c, h, w, out_hw)?, false)?;
            launch(K, dtype, &p, &[x, &out], out.numel())?;
            Ok(out)
        }
    }
}

/// Gradient of `adaptive_avg_pool2d` with respect to its input of `input_shape`; the
/// output size is read from `grad_out`.
pub fn adaptive_avg_pool2d_backward(grad_out: &Array, input_shape: &[usize]) -> Result<Array> {
    const K: &str = "adaptive_avg_pool2d_backward";
    let dtype = float_storage(K, &[grad_out])?;
    let [n, c, h, w] = nchw(K, "input_shape", input_shape)?;
    let [gn, gc, oh, ow] = nchw(K, "grad_out", grad_out.shape())?;
    if [gn, gc] != [n, c] {
        return shape_err(K, format!("grad_out {:?} does not match input {input_shape:?}", grad_out.shape()));
    }
    check_adaptive(K, h, w, [oh, ow])?;
    match grad_out.device() {
        Device::Cpu => Ok(cpu_stored(
            reference::adaptive_avg_pool2d_backward(&grad_out.cpu_data(), input_shape, [oh, ow]),
            input_shape,
            dtype,
        )),
        ref d @ Device::Gpu(_) => {
            let dx = Array::empty(d, input_shape, dtype, K)?;
            let p = params(K, dx.numel(), adaptive_words(K, c, h, w, [oh, ow])?, false)?;
            launch(K, dtype, &p, &[grad_out, &dx], dx.numel())?;
            Ok(dx)
        }
    }
}

/// CPU twins, in f64, from the definitions: forward passes loop over windows, backward
/// passes scatter each output's gradient onto its window (the GPU gathers instead).
pub mod reference {
    use crate::kernels::conv::Conv2dGeometry;

    /// Calls `f(plane, oh, ow, in-bounds pixels of the window)` for every output.
    fn for_each_window(
        g: &Conv2dGeometry,
        shape: &[usize],
        mut f: impl FnMut(usize, usize, usize, &mut dyn Iterator<Item = (usize, usize)>),
    ) {
        let (planes, h, w) = (shape[0] * shape[1], shape[2], shape[3]);
        let [oh, ow] = g.out_hw(h, w).expect("geometry checked by the launcher");
        let range = |o: usize, a: usize, size: usize| {
            let start = (o * g.stride[a]) as isize - g.padding[a] as isize;
            let end = (start + g.kernel[a] as isize).min(size as isize);
            start.max(0) as usize..end.max(0) as usize
        };
        for p in 0..planes {
            for y in 0..oh {
                for x in 0..ow {
                    let (ry, rx) = (range(y, 0, h), range(x, 1, w));
                    let mut pixels = ry.flat_map(|iy| rx.clone().map(move |ix| (iy, ix)));
                    f(p, y, x, &mut pixels);
                }
            }
        }
    }

    pub fn max_pool2d(x: &[f64], shape: &[usize], g: &Conv2dGeometry) -> (Vec<f64>, Vec<f64>) {
        let (h, w) = (shape[2], shape[3]);
        let (mut out, mut idx) = (Vec::new(), Vec::new());
        for_each_window(g, shape, |p, _, _, pixels| {
            let mut best: Option<(f64, usize)> = None;
            for (iy, ix) in pixels {
                let v = x[(p * h + iy) * w + ix];
                match best {
                    Some((b, _)) if b.is_nan() || !(v > b || v.is_nan()) => {}
                    _ => best = Some((v, iy * w + ix)),
                }
            }
            let (v, at) = best.expect("padding is at most half the window, so no window is all padding");
            out.push(v);
            idx.push(at as f64);
        });
        (out, idx)
    }

    /// An error if an index is not a pixel of its own window.
    pub fn max_pool2d_backward(
        grad: &[f64],
        indices: &[f64],
        g: &Conv2dGeometry,
        input_shape: &[usize],
    ) -> Result<Vec<f64>, String> {
        let (h, w) = (input_shape[2], input_shape[3]);
        let mut dx = vec![0.0; input_shape.iter().product()];
        let mut o = 0;
        let mut bad = None;
        for_each_window(g, input_shape, |p, _, _, mut pixels| {
            let at = indices[o] as usize;
            if Iterator::any(&mut pixels, |(iy, ix)| iy * w + ix == at) {
                dx[p * h * w + at] += grad[o];
            } else {
                bad.get_or_insert(format!("index {at} at output {o} lies outside its window ({h}x{w} input)"));
            }
            o += 1;
        });
        bad.map_or(Ok(dx), Err)
    }

    pub fn avg_pool2d(x: &[f64], shape: &[usize], g: &Conv2dGeometry, include_pad: bool) -> Vec<f64> {
        let (h, w) = (shape[2], shape[3]);
        let mut out = Vec::new();
        for_each_window(g, shape, |p, _, _, pixels| {
            let (mut sum, mut count) = (0.0, 0);
            for (iy, ix) in pixels {
                sum += x[(p * h + iy) * w + ix];
                count += 1;
            }
            let divisor = if include_pad { g.kernel[0] * g.kernel[1] } else { count };
            out.push(sum / divisor as f64);
        });
        out
    }

    pub fn avg_pool2d_backward(grad: &[f64], g: &Conv2dGeometry, input_shape: &[usize], include_pad: bool) -> Vec<f64> {
        let (h, w) = (input_shape[2], input_shape[3]);
        let mut dx = vec![0.0; input_shape.iter().product()];
        let mut o = 0;
        for_each_window(g, input_shape, |p, _, _, pixels| {
            let pixels: Vec<_> = Iterator::collect(pixels);
            let divisor = if include_pad { g.kernel[0] * g.kernel[1] } else { pixels.len() };
            for (iy, ix) in pixels {
                dx[(p * h + iy) * w + ix] += grad[o] / divisor as f64;
            }
            o += 1;
        });
        dx
    }

    /// PyTorch's adaptive window along one axis: `[floor(o*n/out), ceil((o+1)*n/out))`.
    pub fn adaptive_window(o: usize, n: usize, out: usize) -> std::ops::Range<usize> {
        (o * n / out)..((o + 1) * n).div_ceil(out)
    }

    pub fn adaptive_avg_pool2d(x: &[f64], shape: &[usize], out_hw: [usize; 2]) -> Vec<f64> {
        let (planes, h, w) = (shape[0] * shape[1], shape[2], shape[3]);
        let mut out = Vec::new();
        for p in 0..planes {
            for y in 0..out_hw[0] {
                for xo in 0..out_hw[1] {
                    let (ry, rx) = (adaptive_window(y, h, out_hw[0]), adaptive_window(xo, w, out_hw[1]));
                    let count = (ry.len() * rx.len()) as f64;
                    let sum: f64 = ry
                        .flat_map(|iy| rx.clone().map(move |ix| (iy, ix)))
                        .map(|(iy, ix)| x[(p * h + iy) * w + ix])
                        .sum();
                    out.push(sum / count);
                }
            }
        }
        out
    }

    pub fn adaptive_avg_pool2d_backward(grad: &[f64], input_shape: &[usize], out_hw: [usize; 2]) -> Vec<f64> {
        let (planes, h, w) = (input_shape[0] * input_shape[1], input_shape[2], input_shape[3]);
        let mut dx = vec![0.0; input_shape.iter().product()];
        let mut o = 0;
        for p in 0..planes {
            for y in 0..out_hw[0] {
                for xo in 0..out_hw[1] {
                    let (ry, rx) = (adaptive_window(y, h, out_hw[0]), adaptive_window(xo, w, out_hw[1]));
                    let count = (ry.len() * rx.len()) as f64;
                    for iy in ry {
                        for ix in rx.clone() {
                            dx[(p * h + iy) * w + ix] += grad[o] / count;
                        }
                    }
                    o += 1;
                }
            }
        }
        dx
    }
}
