//! `Linear`: `y = x @ weight^T + bias`, weight `[out_features, in_features]`.

use crate::error::Result;
use crate::nn::{init, Module};
use crate::tensor::Tensor;
use ferrograd_device::kernels::elementwise::UnaryOp;
use ferrograd_device::kernels::epilogue::fusable;
use ferrograd_device::Device;

pub struct Linear {
    pub weight: Tensor,
    pub bias: Option<Tensor>,
}

impl Linear {
    /// PyTorch's default init: Kaiming-uniform (a = sqrt(5)) weight, bias `U(±1/sqrt(in))`.
    pub fn new(device: &Device, in_features: usize, out_features: usize, bias: bool) -> Result<Linear> {
        let shape = [out_features, in_features];
        let weight = Tensor::parameter(init::kaiming_uniform(device, &shape, 5f64.sqrt(), init::FanMode::FanIn)?);
        let bias = if bias { Some(Tensor::parameter(init::default_bias(device, &shape, out_features)?)) } else { None };
        Ok(Linear { weight, bias })
    }
}

impl Module for Linear {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.linear(&self.weight, self.bias.as_ref())
    }

    fn forward_then(&self, x: &Tensor, activation: UnaryOp) -> Option<Result<Tensor>> {
        fusable(activation).then(|| x.linear_act(&self.weight, self.bias.as_ref(), Some(activation)))
    }

    fn own_parameters(&self) -> Vec<(String, Tensor)> {
        let mut p = vec![("weight".to_string(), self.weight.clone())];
        if let Some(b) = &self.bias {
            p.push(("bias".to_string(), b.clone()));
        }
        p
    }
}
