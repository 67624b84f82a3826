//! Convolution data movement: `im2col` lays every receptive field out as a column so a
//! 2-D convolution becomes one matmul, and `col2im`, its adjoint, folds columns back onto
//! the input (summing overlaps) for the backward pass. Groups are the caller's business
//! (slice the channels). WGSL: `shaders/conv.wgsl`.

use crate::array::Array;
use crate::device::Device;
use crate::dtype::DType;
use crate::error::{shape_err, DeviceError, Result};
use crate::gpu::{grid_1d, GpuContext, Kernel};
use crate::kernels::common::{cpu_stored, float_storage, param_bytes};

crate::storage_shaders!(CONV, CONV_F16, "conv");

/// Window geometry of a 2-D convolution or pooling, per spatial axis `[h, w]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dGeometry {
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    pub padding: [usize; 2],
    pub dilation: [usize; 2],
}

impl Conv2dGeometry {
    /// A square window with equal stride and padding on both axes, no dilation.
    pub fn new(kernel: usize, stride: usize, padding: usize) -> Conv2dGeometry {
        Conv2dGeometry { kernel: [kernel; 2], stride: [stride; 2], padding: [padding; 2], dilation: [1; 2] }
    }

    /// Output height and width for an `h` x `w` input, as PyTorch computes them:
    /// `(h + 2*pad - dilation*(kernel-1) - 1) / stride + 1`. An error when that is empty.
    pub fn out_hw(&self, h: usize, w: usize) -> Result<[usize; 2]> {
        self.out_hw_for("conv2d", h, w)
    }

    pub(crate) fn out_hw_for(&self, kernel: &'static str, h: usize, w: usize) -> Result<[usize; 2]> {
        if self.kernel.contains(&0) || self.stride.contains(&0) || self.dilation.contains(&0) {
            return shape_err(kernel, format!("{self:?}: kernel, stride and dilation must be positive"));
        }
        let mut out = [0; 2];
        for (a, size) in [h, w].into_iter().enumerate() {
            let span = self.dilation[a] * (self.kernel[a] - 1) + 1;
            let padded = size + 2 * self.padding[a];
            if padded < span {
                return shape_err(
                    kernel,
                    format!("{self:?} on a {h}x{w} input: the window ({span}) exceeds the padded input ({padded})"),
                );
            }
            out[a] = (padded - span) / self.stride[a] + 1;
        }
        Ok(out)
    }

    /// Whether the window steps one pixel at a time along the width (stride and dilation 1),
    /// so neighbouring output columns read neighbouring input columns (conv.wgsl's vec4 kernels).
    pub(crate) fn unit_width_steps(&self) -> bool {
        self.stride[1] == 1 && self.dilation[1] == 1
    }

    /// Geometry words shared by conv.wgsl and pool.wgsl: c, h, w, oh, ow, kh, kw, sh, sw, ph, pw, dh, dw.
    pub(crate) fn words(
        &self,
        kernel: &'static str,
        c: usize,
        h: usize,
        w: usize,
        out: [usize; 2],
    ) -> Result<Vec<u32>> {
        let v = [
            c,
            h,
            w,
            out[0],
            out[1],
            self.kernel[0],
            self.kernel[1],
            self.stride[0],
            self.stride[1],
            self.padding[0],
            self.padding[1],
            self.dilation[0],
            self.dilation[1],
        ];
        v.iter().map(|&x| to_u32(kernel, x)).collect()
    }
}

/// `x` as a u32 shader parameter, or an error naming the kernel.
pub(crate) fn to_u32(kernel: &'static str, x: usize) -> Result<u32> {
    u32::try_from(x).map_err(|_| DeviceError::Shape { kernel, detail: format!("size {x} exceeds u32") })
}

/// `[N, C, H, W]` of a 4-D array, or an error naming the kernel.
pub(crate) fn nchw(kernel: &'static str, what: &str, shape: &[usize]) -> Result<[usize; 4]> {
    match shape {
        &[n, c, h, w] => Ok([n, c, h, w]),
        _ => shape_err(kernel, format!("{what} must be 4-D [N, C, H, W], got {shape:?}")),
    }
}

fn launch(
    g: &GpuContext,
    entry: &'static str,
    geometry: &Conv2dGeometry,
    words: Vec<u32>,
    input: &Array,
    out: &Array,
    threads: usize,
) -> Result<()> {
    let mut p = vec![to_u32(entry, threads)?];
    p.extend(words);
    p.extend([0, 0]);
    let bufs = [input.expect_gpu(entry)?, out.expect_gpu(entry)?];
    let shader = if out.dtype() == DType::F16 { &CONV_F16 } else { &CONV };
    let kernel = Kernel::new(shader, entry);
    let unit = [("UNIT_STRIDE", 1.0)];
    let kernel = if entry.starts_with("col2im") && geometry.stride == [1, 1] { kernel.with(&unit) } else { kernel };
    g.dispatch(&kernel, param_bytes(&p), &bufs, grid_1d(threads, 256))
}

/// How many images' worth of `floats_per_image` f32 values fit in one storage binding of
/// `device` (every image on the CPU; at least one).
pub fn images_per_binding(device: &Device, floats_per_image: usize) -> usize {
    match device {
        Device::Cpu => usize::MAX,
        Device::Gpu(g) => {
            let limit = g.binding_limit();
            let per_image = (floats_per_image as u64 * DType::F32.size() as u64).max(1);
            usize::try_from(limit / per_image).unwrap_or(usize::MAX).max(1)
        }
    }
}

/// `x [N, C, H, W]` -> columns `[N, C*KH*KW, OH*OW]`, row `c*KH*KW + kh*KW + kw`, zero padding.
/// The columns are stored as `x` is (f32 or f16).
pub fn im2col(x: &Array, g: &Conv2dGeometry) -> Result<Array> {
    let dtype = float_storage("im2col", &[x])?;
    let [n, c, h, w] = nchw("im2col", "x", x.shape())?;
    let [oh, ow] = g.out_hw_for("im2col", h, w)?;
    let shape = [n, c * g.kernel[0] * g.kernel[1], oh * ow];
    match x.device() {
        Device::Cpu => Ok(cpu_stored(reference::im2col(&x.cpu_data(), x.shape(), g), &shape, dtype)),
        ref d @ Device::Gpu(ref ctx) => {
            let out = Array::empty(d, &shape, dtype, "im2col")?;
            let words = g.words("im2col", c, h, w, [oh, ow])?;
            let unit_w = ow.is_multiple_of(4) && w.is_multiple_of(4) && g.unit_width_steps();
            let (entry, threads) = match (unit_w, (oh * ow).is_multiple_of(4)) {
                (true, _) => ("im2col4_unit_w", n * c * oh * ow / 4),
                (false, true) => ("im2col4", n * c * oh * ow / 4),
                _ => ("im2col", n * c * oh * ow),
            };
            launch(ctx, entry, g, words, x, &out, threads)?;
            Ok(out)
        }
    }
}

/// The adjoint of `im2col`: columns `[N, C*KH*KW, OH*OW]` -> `[N, C, H, W]` (`input_shape`),
/// each pixel the sum of every column entry copied from it. Deterministic (a gather). The
/// result is stored as `cols` are (f32 or f16; the sums are f32).
pub fn col2im(cols: &Array, g: &Conv2dGeometry, input_shape: &[usize]) -> Result<Array> {
    let dtype = float_storage("col2im", &[cols])?;
    let [n, c, h, w] = nchw("col2im", "input_shape", input_shape)?;
    let [oh, ow] = g.out_hw_for("col2im", h, w)?;
    let want = [n, c * g.kernel[0] * g.kernel[1], oh * ow];
    if cols.shape() != want {
        return shape_err(
            "col2im",
            format!("cols {:?} do not match input {input_shape:?} under {g:?} (expected {want:?})", cols.shape()),
        );
    }
    match cols.device() {
        Device::Cpu => Ok(cpu_stored(reference::col2im(&cols.cpu_data(), g, input_shape), input_shape, dtype)),
        ref d @ Device::Gpu(ref ctx) => {
            let out = Array::empty(d, input_shape, dtype, "col2im")?;
            let words = g.words("col2im", c, h, w, [oh, ow])?;
            if g.unit_width_steps() && w.is_multiple_of(4) && ow.is_multiple_of(4) {
                launch(ctx, "col2im4_unit_w", g, words, cols, &out, out.numel() / 4)?;
            } else {
                launch(ctx, "col2im", g, words, cols, &out, out.numel())?;
            }
            Ok(out)
        }
    }
}

/// CPU twins, in f64, written from the definitions (col2im as the scatter-add it is the
/// adjoint of, so the GPU gather is checked against an independent formulation).
pub mod reference {
    use super::Conv2dGeometry;

    /// The input pixel that window position (o, k) reads along one axis, if not padding.
    fn source(g: &Conv2dGeometry, axis: usize, o: usize, k: usize, size: usize) -> Option<usize> {
        let at = (o * g.stride[axis] + k * g.dilation[axis]).checked_sub(g.padding[axis])?;
        (at < size).then_some(at)
    }

    /// Calls `f(input offset, cols offset)` for every non-padding entry of the columns.
    fn for_each_pair(g: &Conv2dGeometry, shape: &[usize], mut f: impl FnMut(usize, usize)) {
        let (n, c, h, w) = (shape[0], shape[1], shape[2], shape[3]);
        let [kh, kw] = g.kernel;
        let [oh, ow] = g.out_hw(h, w).expect("geometry checked by the launcher");
        for b in 0..n {
            for ch in 0..c {
                for i in 0..kh {
                    for j in 0..kw {
                        let row = (b * c + ch) * kh * kw + i * kw + j;
                        for y in 0..oh {
                            for x in 0..ow {
                                if let (Some(sy), Some(sx)) = (source(g, 0, y, i, h), source(g, 1, x, j, w)) {
                                    f(((b * c + ch) * h + sy) * w + sx, (row * oh + y) * ow + x);
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    pub fn im2col(x: &[f64], shape: &[usize], g: &Conv2dGeometry) -> Vec<f64> {
        let [oh, ow] = g.out_hw(shape[2], shape[3]).expect("geometry checked by the launcher");
        let mut out = vec![0.0; shape[0] * shape[1] * g.kernel[0] * g.kernel[1] * oh * ow];
        for_each_pair(g, shape, |i, o| out[o] = x[i]);
        out
    }

    pub fn col2im(cols: &[f64], g: &Conv2dGeometry, input_shape: &[usize]) -> Vec<f64> {
        let mut out = vec![0.0; input_shape.iter().product()];
        for_each_pair(g, input_shape, |i, o| out[i] += cols[o]);
        out
    }
}
