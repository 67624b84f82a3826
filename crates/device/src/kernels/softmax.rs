//! Softmax and log-softmax over the last axis, numerically stable, and their backward
//! passes. One workgroup per row, so rows of any width (e.g. a 50 000-word vocabulary) work.
//! WGSL: `shaders/softmax.wgsl`.

use crate::array::Array;
use crate::device::Device;
use crate::dtype::DType;
use crate::error::{shape_err, Result};
use crate::gpu::{grid_1d, Kernel};
use crate::kernels::common::{param_bytes, require_dtype, same_device};

crate::shader!(SOFTMAX, "softmax");

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Softmax,
    LogSoftmax,
}

impl Kind {
    fn code(self) -> u32 {
        self as u32
    }
}

/// (rows, width) of an array read as rows along its last axis.
fn rows_of(kernel: &'static str, x: &Array) -> Result<(usize, usize)> {
    match x.shape().last() {
        Some(&cols) => Ok((x.numel() / cols.max(1), cols)),
        None => shape_err(kernel, "needs at least one axis, got shape []"),
    }
}

fn forward(kernel: &'static str, kind: Kind, x: &Array) -> Result<Array> {
    require_dtype(kernel, x, DType::F32)?;
    let (rows, cols) = rows_of(kernel, x)?;
    match x.device() {
        Device::Cpu => {
            Ok(Array::cpu(reference::forward(kind == Kind::LogSoftmax, &x.cpu_data(), cols), x.shape(), DType::F32))
        }
        ref device @ Device::Gpu(ref g) => {
            let y = Array::empty(device, x.shape(), DType::F32, kernel)?;
            if y.numel() > 0 {
                let code = [("OP", kind.code() as f64)];
                let p = [rows as u32, cols as u32, 0, 0];
                let bufs = [x.gpu_buffer().unwrap(), y.gpu_buffer().unwrap()];
                let kernel = Kernel::new(&SOFTMAX, "forward").with(&code);
                g.dispatch(&kernel, param_bytes(&p), &bufs, grid_1d(rows * 256, 256))?;
            }
            Ok(y)
        }
    }
}

fn backward(kernel: &'static str, kind: Kind, y: &Array, grad: &Array) -> Result<Array> {
    let device = same_device(kernel, &[y, grad])?;
    require_dtype(kernel, y, DType::F32)?;
    require_dtype(kernel, grad, DType::F32)?;
    if y.shape() != grad.shape() {
        return shape_err(kernel, format!("y {:?} and grad {:?} differ", y.shape(), grad.shape()));
    }
    let (rows, cols) = rows_of(kernel, y)?;
    match &device {
        Device::Cpu => {
            let dx = reference::backward(kind == Kind::LogSoftmax, &y.cpu_data(), &grad.cpu_data(), cols);
            Ok(Array::cpu(dx, y.shape(), DType::F32))
        }
        Device::Gpu(g) => {
            let dx = Array::empty(&device, y.shape(), DType::F32, kernel)?;
            if dx.numel() > 0 {
                let code = [("OP", kind.code() as f64)];
                let p = [rows as u32, cols as u32, 0, 0];
                let bufs = [y.gpu_buffer().unwrap(), grad.gpu_buffer().unwrap(), dx.gpu_buffer().unwrap()];
                let kernel = Kernel::new(&SOFTMAX, "backward").with(&code);
                g.dispatch(&kernel, param_bytes(&p), &bufs, grid_1d(rows * 256, 256))?;
            }
            Ok(dx)
        }
    }
}

/// `exp(x - max) / sum(exp(x - max))` along the last axis.
pub fn softmax(x: &Array) -> Result<Array> {
    forward("softmax", Kind::Softmax, x)
}

/// `x - max - log(sum(exp(x - max)))` along the last axis.
pub fn log_softmax(x: &Array) -> Result<Array> {
    forward("log_softmax", Kind::LogSoftmax, x)
}

/// Gradient of `softmax` given its output `y` and the upstream gradient:
/// `y * (grad - sum(grad * y))` per row.
pub fn softmax_backward(y: &Array, grad: &Array) -> Result<Array> {
    backward("softmax_backward", Kind::Softmax, y, grad)
}

/// Gradient of `log_softmax` given its output `y` and the upstream gradient:
/// `grad - exp(y) * sum(grad)` per row.
pub fn log_softmax_backward(y: &Array, grad: &Array) -> Result<Array> {
    backward("log_softmax_backward", Kind::LogSoftmax, y, grad)
}

/// CPU twins, in f64, written from the definitions; rows are `cols` wide.
pub mod reference {
    /// Softmax (or log-softmax when `log`) of each row.
    pub fn forward(log: bool, x: &[f64], cols: usize) -> Vec<f64> {
        let mut out = Vec::with_capacity(x.len());
        for row in x.chunks(cols.max(1)) {
            let m = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let s: f64 = row.iter().map(|v| (v - m).exp()).sum();
            out.extend(row.iter().map(|v| if log { v - m - s.ln() } else { (v - m).exp() / s }));
        }
        out
    }

    /// Backward of `forward` given its output `y` and the upstream gradient `g`.
    pub fn backward(log: bool, y: &[f64], g: &[f64], cols: usize) -> Vec<f64> {
        let mut out = Vec::with_capacity(y.len());
        for (yr, gr) in y.chunks(cols.max(1)).zip(g.chunks(cols.max(1))) {
            if log {
                let s: f64 = gr.iter().sum();
                out.extend(yr.iter().zip(gr).map(|(y, g)| g - y.exp() * s));
            } else {
                let d: f64 = yr.iter().zip(gr).map(|(y, g)| y * g).sum();
                out.extend(yr.iter().zip(gr).map(|(y, g)| y * (g - d)));
            }
        }
        out
    }
}
