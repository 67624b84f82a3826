//! torchvision's weight initialisations, applied to a built model by walking its
//! parameters: a 4-D `weight` is a convolution's, a 2-D one a `Linear`'s, and `<layer>.bias`
//! goes with `<layer>.weight`. BatchNorm keeps its default (weight 1, bias 0).

use ferrograd_graph::nn::init::{kaiming_normal_, normal_, zeros_, FanMode, Nonlinearity};
use ferrograd_graph::nn::Module;
use ferrograd_graph::{Result, Tensor};

/// How one kind of layer (convolutions or linears) is initialised.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum WeightInit {
    /// Keep PyTorch's layer default (Kaiming-uniform with a = sqrt(5), bias U(±1/sqrt(fan_in))).
    Default,
    /// Kaiming-normal, fan-out, ReLU gain; bias zero (torchvision's ResNet and VGG convolutions).
    KaimingFanOut,
    /// N(0, std) weight and zero bias (VGG's linears: 0.01).
    Normal(f64),
    /// N(0, std) weight, bias left at its default (GoogLeNet's truncated normal, std 0.01:
    /// the truncation at ±2 is 200 standard deviations out, so it never bites).
    NormalKeepBias(f64),
}

pub(crate) fn init_weights(model: &dyn Module, conv: WeightInit, linear: WeightInit) -> Result<()> {
    let params = model.named_parameters();
    for (name, weight) in &params {
        let Some(layer) = name.strip_suffix(".weight") else { continue };
        let rule = match weight.ndim() {
            4 => conv,
            2 => linear,
            _ => continue,
        };
        let bias = params.iter().find(|(n, _)| n.strip_suffix(".bias") == Some(layer)).map(|(_, b)| b);
        apply(rule, weight, bias)?;
    }
    Ok(())
}

fn apply(rule: WeightInit, weight: &Tensor, bias: Option<&Tensor>) -> Result<()> {
    let zero_bias = match rule {
        WeightInit::Default => return Ok(()),
        WeightInit::KaimingFanOut => {
            kaiming_normal_(weight, FanMode::FanOut, Nonlinearity::Relu)?;
            true
        }
        WeightInit::Normal(std) => {
            normal_(weight, 0.0, std)?;
            true
        }
        WeightInit::NormalKeepBias(std) => {
            normal_(weight, 0.0, std)?;
            false
        }
    };
    match bias {
        Some(b) if zero_bias => zeros_(b),
        _ => Ok(()),
    }
}
