//! `Conv2d`: weight `[out, in/groups, kh, kw]`, optional bias `[out]`.

use crate::error::{invalid, Result};
use crate::nn::{init, Module};
use crate::ops::conv::Conv2dOptions;
use crate::tensor::Tensor;
use ferrograd_device::kernels::elementwise::UnaryOp;
use ferrograd_device::kernels::epilogue::fusable;
use ferrograd_device::Device;

pub struct Conv2d {
    pub weight: Tensor,
    pub bias: Option<Tensor>,
    pub options: Conv2dOptions,
}

impl Conv2d {
    /// A square `kernel` with equal `stride`/`padding`, no groups or dilation, with a bias.
    pub fn new(
        device: &Device,
        in_ch: usize,
        out_ch: usize,
        kernel: usize,
        stride: usize,
        padding: usize,
    ) -> Result<Conv2d> {
        Conv2d::with_options(device, in_ch, out_ch, [kernel; 2], Conv2dOptions::new(stride, padding), true)
    }

    /// Any kernel and options; PyTorch's default init (Kaiming-uniform a = sqrt(5), bias `U(±1/sqrt(fan_in))`).
    pub fn with_options(
        device: &Device,
        in_ch: usize,
        out_ch: usize,
        kernel: [usize; 2],
        options: Conv2dOptions,
        bias: bool,
    ) -> Result<Conv2d> {
        let g = options.groups;
        if g == 0 || !in_ch.is_multiple_of(g) || !out_ch.is_multiple_of(g) {
            return invalid("Conv2d", format!("in {in_ch} and out {out_ch} channels must be divisible by groups {g}"));
        }
        let shape = [out_ch, in_ch / g, kernel[0], kernel[1]];
        let weight = Tensor::parameter(init::kaiming_uniform(device, &shape, 5f64.sqrt(), init::FanMode::FanIn)?);
        let bias = if bias { Some(Tensor::parameter(init::default_bias(device, &shape, out_ch)?)) } else { None };
        Ok(Conv2d { weight, bias, options })
    }
}

impl Module for Conv2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.conv2d(&self.weight, self.bias.as_ref(), &self.options)
    }

    fn forward_then(&self, x: &Tensor, activation: UnaryOp) -> Option<Result<Tensor>> {
        fusable(activation).then(|| x.conv2d_act(&self.weight, self.bias.as_ref(), &self.options, Some(activation)))
    }

    fn own_parameters(&self) -> Vec<(String, Tensor)> {
        let mut p = vec![("weight".to_string(), self.weight.clone())];
        if let Some(b) = &self.bias {
            p.push(("bias".to_string(), b.clone()));
        }
        p
    }
}
