//! Weight initialisation as PyTorch's `torch.nn.init`. The `*_` functions overwrite a
//! tensor's values in place (like PyTorch's); draws come from the global seed stream.

use crate::error::{invalid, Result};
use crate::random;
use crate::tensor::Tensor;
use ferrograd_device::kernels::fill;
use ferrograd_device::{Array, DType, Device};

/// Which fan Kaiming init scales by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FanMode {
    FanIn,
    FanOut,
}

/// Nonlinearities for [`calculate_gain`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Nonlinearity {
    Linear,
    Sigmoid,
    Tanh,
    Relu,
    LeakyRelu(f64),
}

/// PyTorch's `calculate_gain`.
pub fn calculate_gain(nl: Nonlinearity) -> f64 {
    match nl {
        Nonlinearity::Linear | Nonlinearity::Sigmoid => 1.0,
        Nonlinearity::Tanh => 5.0 / 3.0,
        Nonlinearity::Relu => 2f64.sqrt(),
        Nonlinearity::LeakyRelu(a) => (2.0 / (1.0 + a * a)).sqrt(),
    }
}

/// `(fan_in, fan_out)` of a weight shaped `[out, in, k...]`, as PyTorch computes them.
pub fn fans(shape: &[usize]) -> Result<(usize, usize)> {
    if shape.len() < 2 {
        return invalid("init", format!("fan in/out need at least 2 dims, got {shape:?}"));
    }
    let receptive: usize = shape[2..].iter().product();
    Ok((shape[1] * receptive, shape[0] * receptive))
}

fn fan(shape: &[usize], mode: FanMode) -> Result<usize> {
    let (i, o) = fans(shape)?;
    Ok(if mode == FanMode::FanIn { i } else { o })
}

pub fn uniform(device: &Device, shape: &[usize], low: f64, high: f64) -> Result<Array> {
    random::uniform(device, shape, low as f32, high as f32)
}

pub fn normal(device: &Device, shape: &[usize], mean: f64, std: f64) -> Result<Array> {
    random::normal(device, shape, mean as f32, std as f32)
}

pub fn constant(device: &Device, shape: &[usize], value: f64) -> Result<Array> {
    Ok(fill::full(device, shape, DType::F32, value as f32)?)
}

/// `U(-b, b)` with `b = gain * sqrt(3 / fan)`, gain from `a` as a leaky-ReLU slope
/// (PyTorch's `kaiming_uniform_`; Linear and Conv use `a = sqrt(5)`, giving `b = 1/sqrt(fan_in)`).
pub fn kaiming_uniform(device: &Device, shape: &[usize], a: f64, mode: FanMode) -> Result<Array> {
    let bound = calculate_gain(Nonlinearity::LeakyRelu(a)) * (3.0 / fan(shape, mode)? as f64).sqrt();
    uniform(device, shape, -bound, bound)
}

/// `N(0, gain / sqrt(fan))` (PyTorch's `kaiming_normal_`).
pub fn kaiming_normal(device: &Device, shape: &[usize], mode: FanMode, nl: Nonlinearity) -> Result<Array> {
    let std = calculate_gain(nl) / (fan(shape, mode)? as f64).sqrt();
    normal(device, shape, 0.0, std)
}

/// `U(-b, b)` with `b = gain * sqrt(6 / (fan_in + fan_out))`.
pub fn xavier_uniform(device: &Device, shape: &[usize], gain: f64) -> Result<Array> {
    let (i, o) = fans(shape)?;
    let bound = gain * (6.0 / (i + o) as f64).sqrt();
    uniform(device, shape, -bound, bound)
}

/// `N(0, gain * sqrt(2 / (fan_in + fan_out)))`.
pub fn xavier_normal(device: &Device, shape: &[usize], gain: f64) -> Result<Array> {
    let (i, o) = fans(shape)?;
    normal(device, shape, 0.0, gain * (2.0 / (i + o) as f64).sqrt())
}

/// The default Linear/Conv bias: `U(-1/sqrt(fan_in), 1/sqrt(fan_in))` with the weight's fan-in.
pub fn default_bias(device: &Device, weight_shape: &[usize], len: usize) -> Result<Array> {
    let (fan_in, _) = fans(weight_shape)?;
    let bound = if fan_in > 0 { 1.0 / (fan_in as f64).sqrt() } else { 0.0 };
    uniform(device, &[len], -bound, bound)
}

fn overwrite(t: &Tensor, make: impl FnOnce(&Device, &[usize]) -> Result<Array>) -> Result<()> {
    t.set_data(make(&t.device(), &t.shape())?);
    Ok(())
}

pub fn kaiming_uniform_(t: &Tensor, a: f64, mode: FanMode) -> Result<()> {
    overwrite(t, |d, s| kaiming_uniform(d, s, a, mode))
}
pub fn kaiming_normal_(t: &Tensor, mode: FanMode, nl: Nonlinearity) -> Result<()> {
    overwrite(t, |d, s| kaiming_normal(d, s, mode, nl))
}
pub fn xavier_uniform_(t: &Tensor, gain: f64) -> Result<()> {
    overwrite(t, |d, s| xavier_uniform(d, s, gain))
}
pub fn xavier_normal_(t: &Tensor, gain: f64) -> Result<()> {
    overwrite(t, |d, s| xavier_normal(d, s, gain))
}
pub fn uniform_(t: &Tensor, low: f64, high: f64) -> Result<()> {
    overwrite(t, |d, s| uniform(d, s, low, high))
}
pub fn normal_(t: &Tensor, mean: f64, std: f64) -> Result<()> {
    overwrite(t, |d, s| normal(d, s, mean, std))
}
pub fn constant_(t: &Tensor, value: f64) -> Result<()> {
    overwrite(t, |d, s| constant(d, s, value))
}
pub fn zeros_(t: &Tensor) -> Result<()> {
    constant_(t, 0.0)
}
pub fn ones_(t: &Tensor) -> Result<()> {
    constant_(t, 1.0)
}
