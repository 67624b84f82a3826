//! Softmax and log-softmax over the last axis, numerically stable, and their backward
//! passes. One workgroup per row, so rows of any width (e.g. a 50 000-word vocabulary) work.
//! WGSL: `shaders/softmax.wgsl`.

use crate::array::Array;
use crate::device::Device;
use crate::dtype::DType;
use crate::error::{shape_err, DeviceError, Result};
use crate::gpu::{grid_1d, GpuContext, Kernel};
use crate::kernels::common::{param_bytes, require_dtype, same_device};

crate::shader!(SOFTMAX, "softmax", "row_logsumexp");

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

/// How the rows of a row-wise kernel (softmax, cross-entropy) are spread over the GPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RowSchedule {
    /// a workgroup per row, combining through workgroup memory (long rows on real GPUs)
    Workgroup,
    /// a thread per row (short rows; every row on a CPU adapter)
    Thread,
}

/// Columns up to which a thread per row beats a workgroup on any adapter.
pub const THREAD_ROW_FAST_COLS: usize = 64;

/// The widest row the thread-per-row kernels take: lavapipe ends a shader loop after some
/// ten thousand iterations (rows of 50,000 came out wrong), and these loop over a row 3 times.
pub const THREAD_ROW_MAX_COLS: usize = 2048;

/// The schedule for rows of `cols` on `g`: a thread per row when rows are short, or on a CPU
/// adapter up to [`THREAD_ROW_MAX_COLS`] (lavapipe runs workgroup barriers lane by lane: a
/// small Transformer's attention softmax took 290 ms a call with a workgroup per row).
pub fn row_schedule(g: &GpuContext, cols: usize) -> RowSchedule {
    let cpu = g.is_cpu_adapter();
    if cols <= THREAD_ROW_FAST_COLS || (cpu && cols <= THREAD_ROW_MAX_COLS) {
        RowSchedule::Thread
    } else {
        RowSchedule::Workgroup
    }
}

/// Entry point and grid for `rows` rows: `entries` are the workgroup-per-row kernel (256
/// threads) and the thread-per-row one (64-wide groups).
/// A forced `Thread` schedule on rows wider than [`THREAD_ROW_MAX_COLS`] is an error.
pub(crate) fn row_dispatch(
    kernel: &'static str,
    schedule: RowSchedule,
    entries: (&'static str, &'static str),
    [rows, cols]: [usize; 2],
) -> Result<(&'static str, [u32; 3])> {
    match schedule {
        RowSchedule::Workgroup => Ok((entries.0, grid_1d(rows * 256, 256))),
        RowSchedule::Thread if cols <= THREAD_ROW_MAX_COLS => Ok((entries.1, grid_1d(rows, 64))),
        RowSchedule::Thread => Err(DeviceError::Unsupported {
            kernel,
            detail: format!("a thread per row takes rows of at most {THREAD_ROW_MAX_COLS}, not {cols}"),
        }),
    }
}

fn forward(kernel: &'static str, kind: Kind, x: &Array, schedule: Option<RowSchedule>) -> Result<Array> {
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
                let schedule = schedule.unwrap_or_else(|| row_schedule(g, cols));
                let (entry, grid) = row_dispatch(kernel, schedule, ("forward", "forward_rows"), [rows, cols])?;
                g.dispatch(&Kernel::new(&SOFTMAX, entry).with(&code), param_bytes(&p), &bufs, grid)?;
            }
            Ok(y)
        }
    }
}

fn backward(kernel: &'static str, kind: Kind, y: &Array, grad: &Array, schedule: Option<RowSchedule>) -> Result<Array> {
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
                let schedule = schedule.unwrap_or_else(|| row_schedule(g, cols));
                let (entry, grid) = row_dispatch(kernel, schedule, ("backward", "backward_rows"), [rows, cols])?;
                g.dispatch(&Kernel::new(&SOFTMAX, entry).with(&code), param_bytes(&p), &bufs, grid)?;
            }
            Ok(dx)
        }
    }
}

/// `exp(x - max) / sum(exp(x - max))` along the last axis.
pub fn softmax(x: &Array) -> Result<Array> {
    softmax_with(x, false, None)
}

/// `x - max - log(sum(exp(x - max)))` along the last axis.
pub fn log_softmax(x: &Array) -> Result<Array> {
    softmax_with(x, true, None)
}

/// Gradient of `softmax` given its output `y` and the upstream gradient:
/// `y * (grad - sum(grad * y))` per row.
pub fn softmax_backward(y: &Array, grad: &Array) -> Result<Array> {
    softmax_backward_with(y, grad, false, None)
}

/// Gradient of `log_softmax` given its output `y` and the upstream gradient:
/// `grad - exp(y) * sum(grad)` per row.
pub fn log_softmax_backward(y: &Array, grad: &Array) -> Result<Array> {
    softmax_backward_with(y, grad, true, None)
}

/// Softmax (log-softmax when `log`) with the row schedule forced (`None`: [`row_schedule`]);
/// tests use it to reach both kernels on any adapter.
pub fn softmax_with(x: &Array, log: bool, schedule: Option<RowSchedule>) -> Result<Array> {
    match log {
        false => forward("softmax", Kind::Softmax, x, schedule),
        true => forward("log_softmax", Kind::LogSoftmax, x, schedule),
    }
}

/// The backward of [`softmax_with`], from its output `y`.
pub fn softmax_backward_with(y: &Array, grad: &Array, log: bool, schedule: Option<RowSchedule>) -> Result<Array> {
    match log {
        false => backward("softmax_backward", Kind::Softmax, y, grad, schedule),
        true => backward("log_softmax_backward", Kind::LogSoftmax, y, grad, schedule),
    }
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
