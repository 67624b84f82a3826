//! Elementwise kernels: unary ops with their gradients side by side, and binary ops with
//! NumPy broadcasting or a scalar operand, on f32 or f16 storage (every operand and the result
//! share it; the math is f32). WGSL: `shaders/elementwise.wgsl`.

use crate::array::Array;
use crate::device::Device;
use crate::dtype::DType;
use crate::error::Result;
use crate::gpu::Shader;
use crate::gpu::{grid_1d, GpuContext, Kernel};
use crate::kernels::common::{
    broadcast_shapes, broadcast_strides, collapse_dims, cpu_stored, float_storage, pack_dims, param_bytes, same_device,
};

crate::storage_shaders!(ELEMENTWISE, ELEMENTWISE_F16, "elementwise");

fn shader(dtype: DType) -> &'static Shader {
    if dtype == DType::F16 {
        &ELEMENTWISE_F16
    } else {
        &ELEMENTWISE
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum UnaryOp {
    Relu,
    /// negative slope
    LeakyRelu(f32),
    Tanh,
    Sigmoid,
    Exp,
    Log,
    Sqrt,
    Neg,
    Abs,
    /// exact (erf) GELU, as PyTorch's default
    Gelu,
    Square,
    Recip,
    Sin,
    Cos,
}

impl UnaryOp {
    pub const ALL: [UnaryOp; 14] = [
        UnaryOp::Relu,
        UnaryOp::LeakyRelu(0.01),
        UnaryOp::Tanh,
        UnaryOp::Sigmoid,
        UnaryOp::Exp,
        UnaryOp::Log,
        UnaryOp::Sqrt,
        UnaryOp::Neg,
        UnaryOp::Abs,
        UnaryOp::Gelu,
        UnaryOp::Square,
        UnaryOp::Recip,
        UnaryOp::Sin,
        UnaryOp::Cos,
    ];

    fn code(self) -> u32 {
        match self {
            UnaryOp::Relu => 0,
            UnaryOp::LeakyRelu(_) => 1,
            UnaryOp::Tanh => 2,
            UnaryOp::Sigmoid => 3,
            UnaryOp::Exp => 4,
            UnaryOp::Log => 5,
            UnaryOp::Sqrt => 6,
            UnaryOp::Neg => 7,
            UnaryOp::Abs => 8,
            UnaryOp::Gelu => 9,
            UnaryOp::Square => 10,
            UnaryOp::Recip => 11,
            UnaryOp::Sin => 12,
            UnaryOp::Cos => 13,
        }
    }

    fn alpha(self) -> f32 {
        match self {
            UnaryOp::LeakyRelu(a) => a,
            _ => 0.0,
        }
    }

    /// Whether the op is only defined for positive inputs (tests feed those).
    pub fn needs_positive(self) -> bool {
        matches!(self, UnaryOp::Log | UnaryOp::Sqrt)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
    Max,
    Min,
    /// `a^b`, defined for a > 0
    Pow,
    /// comparisons give 1.0 or 0.0
    Gt,
    Ge,
    Lt,
    Le,
    Eq,
}

impl BinaryOp {
    pub const ALL: [BinaryOp; 12] = [
        BinaryOp::Add,
        BinaryOp::Sub,
        BinaryOp::Mul,
        BinaryOp::Div,
        BinaryOp::Max,
        BinaryOp::Min,
        BinaryOp::Pow,
        BinaryOp::Gt,
        BinaryOp::Ge,
        BinaryOp::Lt,
        BinaryOp::Le,
        BinaryOp::Eq,
    ];

    fn code(self) -> u32 {
        self as u32
    }

    pub fn name(self) -> &'static str {
        match self {
            BinaryOp::Add => "add",
            BinaryOp::Sub => "sub",
            BinaryOp::Mul => "mul",
            BinaryOp::Div => "div",
            BinaryOp::Max => "maximum",
            BinaryOp::Min => "minimum",
            BinaryOp::Pow => "pow",
            BinaryOp::Gt => "gt",
            BinaryOp::Ge => "ge",
            BinaryOp::Lt => "lt",
            BinaryOp::Le => "le",
            BinaryOp::Eq => "eq",
        }
    }
}

/// Which side of a binary op the scalar stands on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScalarSide {
    /// `a op s`
    Right,
    /// `s op a`
    Left,
}

/// Parameter block of `elementwise.wgsl` (see its `Params`).
fn params(n: usize, alpha: f32, ndim: usize, mode: u32, dims: [[u32; 8]; 3]) -> Vec<u32> {
    let mut p = vec![n as u32, alpha.to_bits(), ndim as u32, mode];
    for d in dims {
        p.extend_from_slice(&d);
    }
    p
}

/// Records `entry` over every element of `out`, `p` being its parameters with the element
/// count first. With `wide` (`entry` has a twin named `entry` + "4") and a count that is a
/// multiple of 4, the twin runs instead, four elements per thread. Broadcasting binary ops
/// (`Params::mode` 1) index their inputs by strides, so they bind whole; every other op is flat
/// and takes arrays over the binding limit in windows (of vec4s for the twin).
fn launch(
    g: &GpuContext,
    entry: &'static str,
    wide: Option<&'static str>,
    code: u32,
    p: &[u32],
    inputs: &[&Array],
    out: &Array,
) -> Result<()> {
    const BROADCAST: u32 = 1;
    let size = out.dtype().size();
    let (entry, items, item_bytes) = match wide {
        Some(wide) if out.numel().is_multiple_of(4) => (wide, out.numel() / 4, 4 * size),
        _ => (entry, out.numel(), size),
    };
    let constants = [("OP", code as f64)];
    let kernel = Kernel::new(shader(out.dtype()), entry).with(&constants);
    let mut bufs: Vec<_> = inputs.iter().map(|a| a.gpu_buffer().unwrap()).collect();
    bufs.push(out.gpu_buffer().unwrap());
    let params = |len: usize| [&[len as u32], &p[1..]].concat();
    if p[3] == BROADCAST {
        return g.dispatch(&kernel, param_bytes(&params(items)), &bufs, grid_1d(items, 256));
    }
    let operands: Vec<_> = bufs.into_iter().map(|b| (b, item_bytes)).collect();
    g.dispatch_flat(&kernel, items, &operands, 256, |w| params(w.len))
}

pub fn unary(op: UnaryOp, x: &Array) -> Result<Array> {
    let dtype = float_storage("unary", &[x])?;
    match x.device() {
        Device::Cpu => Ok(cpu_stored(reference::unary(op, &x.cpu_data()), x.shape(), dtype)),
        ref d @ Device::Gpu(ref g) => {
            let out = Array::empty(d, x.shape(), dtype, "unary")?;
            let p = params(x.numel(), op.alpha(), 0, 0, [[0; 8]; 3]);
            launch(g, "unary", Some("unary4"), op.code(), &p, &[x], &out)?;
            Ok(out)
        }
    }
}

/// Gradient of `unary(op, x)` given its output `y` and the upstream gradient `g`.
pub fn unary_grad(op: UnaryOp, x: &Array, y: &Array, grad: &Array) -> Result<Array> {
    let device = same_device("unary_grad", &[x, y, grad])?;
    let dtype = float_storage("unary_grad", &[x, y, grad])?;
    for a in [x, y, grad] {
        if a.shape() != x.shape() {
            return crate::error::shape_err(
                "unary_grad",
                format!("x {:?}, y {:?}, grad {:?} differ", x.shape(), y.shape(), grad.shape()),
            );
        }
    }
    match &device {
        Device::Cpu => {
            Ok(cpu_stored(reference::unary_grad(op, &x.cpu_data(), &y.cpu_data(), &grad.cpu_data()), x.shape(), dtype))
        }
        Device::Gpu(g) => {
            let out = Array::empty(&device, x.shape(), dtype, "unary_grad")?;
            let p = params(x.numel(), op.alpha(), 0, 0, [[0; 8]; 3]);
            launch(g, "unary_grad", Some("unary_grad4"), op.code(), &p, &[x, y, grad], &out)?;
            Ok(out)
        }
    }
}

/// `a op b` with NumPy broadcasting.
pub fn binary(op: BinaryOp, a: &Array, b: &Array) -> Result<Array> {
    let device = same_device(op.name(), &[a, b])?;
    let dtype = float_storage(op.name(), &[a, b])?;
    let shape = broadcast_shapes(op.name(), a.shape(), b.shape())?;
    match &device {
        Device::Cpu => {
            let v = reference::binary(op, &a.cpu_data(), a.shape(), &b.cpu_data(), b.shape(), &shape);
            Ok(cpu_stored(v, &shape, dtype))
        }
        Device::Gpu(g) => {
            let out = Array::empty(&device, &shape, dtype, op.name())?;
            let same = a.shape() == b.shape();
            let p = if same {
                params(out.numel(), 0.0, 0, 0, [[0; 8]; 3])
            } else {
                let (sa, sb) = (broadcast_strides(a.shape(), &shape), broadcast_strides(b.shape(), &shape));
                let (dims, [sa, sb]) = collapse_dims(&shape, [&sa, &sb]);
                let pack = |v: &[usize]| pack_dims(op.name(), v);
                params(out.numel(), 0.0, dims.len(), 1, [pack(&dims)?, pack(&sa)?, pack(&sb)?])
            };
            launch(g, "binary", same.then_some("binary4"), op.code(), &p, &[a, b], &out)?;
            Ok(out)
        }
    }
}

/// `a op s` (or `s op a`) for a scalar `s`.
pub fn binary_scalar(op: BinaryOp, a: &Array, s: f32, side: ScalarSide) -> Result<Array> {
    let dtype = float_storage(op.name(), &[a])?;
    match a.device() {
        Device::Cpu => Ok(cpu_stored(reference::binary_scalar(op, &a.cpu_data(), s as f64, side), a.shape(), dtype)),
        ref d @ Device::Gpu(ref g) => {
            let out = Array::empty(d, a.shape(), dtype, op.name())?;
            let mode = if side == ScalarSide::Left { 3 } else { 2 };
            let p = params(a.numel(), s, 0, mode, [[0; 8]; 3]);
            launch(g, "binary_scalar", None, op.code(), &p, &[a], &out)?;
            Ok(out)
        }
    }
}

/// CPU twins, in f64, written from the definitions.
pub mod reference {
    use super::{BinaryOp, ScalarSide, UnaryOp};
    use crate::kernels::common::{broadcast_strides, strides};

    /// Abramowitz & Stegun 7.1.26, the formula the shader uses (|error| < 1.5e-7).
    pub fn erf(x: f64) -> f64 {
        let a = x.abs();
        let t = 1.0 / (1.0 + 0.3275911 * a);
        let poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
        x.signum() * (1.0 - poly * (-a * a).exp())
    }

    pub fn unary_one(op: UnaryOp, x: f64) -> f64 {
        match op {
            UnaryOp::Relu => x.max(0.0),
            UnaryOp::LeakyRelu(a) => {
                if x > 0.0 {
                    x
                } else {
                    a as f64 * x
                }
            }
            UnaryOp::Tanh => x.tanh(),
            UnaryOp::Sigmoid => 1.0 / (1.0 + (-x).exp()),
            UnaryOp::Exp => x.exp(),
            UnaryOp::Log => x.ln(),
            UnaryOp::Sqrt => x.sqrt(),
            UnaryOp::Neg => -x,
            UnaryOp::Abs => x.abs(),
            UnaryOp::Gelu => 0.5 * x * (1.0 + erf(x * std::f64::consts::FRAC_1_SQRT_2)),
            UnaryOp::Square => x * x,
            UnaryOp::Recip => 1.0 / x,
            UnaryOp::Sin => x.sin(),
            UnaryOp::Cos => x.cos(),
        }
    }

    pub fn unary(op: UnaryOp, x: &[f64]) -> Vec<f64> {
        x.iter().map(|&v| unary_one(op, v)).collect()
    }

    pub fn unary_grad(op: UnaryOp, x: &[f64], y: &[f64], g: &[f64]) -> Vec<f64> {
        let d = |x: f64, y: f64| -> f64 {
            match op {
                UnaryOp::Relu => {
                    if x > 0.0 {
                        1.0
                    } else {
                        0.0
                    }
                }
                UnaryOp::LeakyRelu(a) => {
                    if x > 0.0 {
                        1.0
                    } else {
                        a as f64
                    }
                }
                UnaryOp::Tanh => 1.0 - y * y,
                UnaryOp::Sigmoid => y * (1.0 - y),
                UnaryOp::Exp => y,
                UnaryOp::Log => 1.0 / x,
                UnaryOp::Sqrt => 0.5 / y,
                UnaryOp::Neg => -1.0,
                UnaryOp::Abs => x.signum(),
                UnaryOp::Gelu => {
                    let cdf = 0.5 * (1.0 + erf(x * std::f64::consts::FRAC_1_SQRT_2));
                    let pdf = (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt();
                    cdf + x * pdf
                }
                UnaryOp::Square => 2.0 * x,
                UnaryOp::Recip => -y * y,
                UnaryOp::Sin => x.cos(),
                UnaryOp::Cos => -x.sin(),
            }
        };
        x.iter().zip(y).zip(g).map(|((&x, &y), &g)| g * d(x, y)).collect()
    }

    pub fn binary_one(op: BinaryOp, a: f64, b: f64) -> f64 {
        let flag = |c: bool| if c { 1.0 } else { 0.0 };
        match op {
            BinaryOp::Add => a + b,
            BinaryOp::Sub => a - b,
            BinaryOp::Mul => a * b,
            BinaryOp::Div => a / b,
            BinaryOp::Max => a.max(b),
            BinaryOp::Min => a.min(b),
            BinaryOp::Pow => a.powf(b),
            BinaryOp::Gt => flag(a > b),
            BinaryOp::Ge => flag(a >= b),
            BinaryOp::Lt => flag(a < b),
            BinaryOp::Le => flag(a <= b),
            BinaryOp::Eq => flag(a == b),
        }
    }

    pub fn binary(op: BinaryOp, a: &[f64], a_shape: &[usize], b: &[f64], b_shape: &[usize], out: &[usize]) -> Vec<f64> {
        let (sa, sb, so) = (broadcast_strides(a_shape, out), broadcast_strides(b_shape, out), strides(out));
        let n: usize = out.iter().product();
        (0..n)
            .map(|i| {
                let (mut ia, mut ib) = (0, 0);
                for d in 0..out.len() {
                    let c = (i / so[d]) % out[d];
                    ia += c * sa[d];
                    ib += c * sb[d];
                }
                binary_one(op, a[ia], b[ib])
            })
            .collect()
    }

    pub fn binary_scalar(op: BinaryOp, a: &[f64], s: f64, side: ScalarSide) -> Vec<f64> {
        a.iter()
            .map(|&x| match side {
                ScalarSide::Right => binary_one(op, x, s),
                ScalarSide::Left => binary_one(op, s, x),
            })
            .collect()
    }
}
