//! Plain feed-forward stacks described as a list of [`Stage`]s, from which both the
//! `Sequential` of graph layers and its parameter shapes are made, so that AlexNet, ZFNet
//! and VGG state their layouts once. Also the one convolution constructor every family uses.

use crate::shapes::ParamShapes;
use ferrograd_device::Device;
use ferrograd_graph::nn::{
    BatchNorm2d, Conv2d, Dropout, Linear, LocalResponseNorm, MaxPool2d, Module, Relu, Sequential,
};
use ferrograd_graph::ops::conv::Conv2dOptions;
use ferrograd_graph::Result;

/// One layer of a `Sequential`; its index there is its position in the list.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Stage {
    /// Square `Conv2d` with bias.
    Conv {
        out: usize,
        kernel: usize,
        stride: usize,
        padding: usize,
        groups: usize,
    },
    BatchNorm,
    Relu,
    /// Square max pooling window.
    MaxPool {
        kernel: usize,
        stride: usize,
        padding: usize,
    },
    /// AlexNet's `LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2)`.
    Lrn,
    Dropout(f32),
    Linear(usize),
}

/// A 3x3 padding-1 convolution (VGG's only kind) with bias.
pub(crate) fn conv3x3(out: usize) -> Stage {
    Stage::Conv { out, kernel: 3, stride: 1, padding: 1, groups: 1 }
}

/// Build `stages` on `device` for an input of `width` channels (or features); also returns
/// the output width.
pub(crate) fn sequential(device: &Device, mut width: usize, stages: &[Stage]) -> Result<(Sequential, usize)> {
    let mut seq = Sequential::new();
    for stage in stages {
        let layer: Box<dyn Module> = match *stage {
            Stage::Conv { out, kernel, stride, padding, groups } => {
                let conv = grouped_conv(device, width, out, kernel, stride, padding, groups, true)?;
                width = out;
                Box::new(conv)
            }
            Stage::BatchNorm => Box::new(BatchNorm2d::new_2d(device, width)?),
            Stage::Relu => Box::new(Relu),
            Stage::MaxPool { kernel, stride, padding } => Box::new(MaxPool2d::new(kernel, stride, padding)),
            Stage::Lrn => Box::new(LocalResponseNorm::new(5, 1e-4, 0.75, 2.0)),
            Stage::Dropout(p) => Box::new(Dropout::new(p)),
            Stage::Linear(out) => {
                let linear = Linear::new(device, width, out, true)?;
                width = out;
                Box::new(linear)
            }
        };
        seq.push(layer);
    }
    Ok((seq, width))
}

/// The parameters `sequential` makes, named `prefix.<index>.weight` etc.; returns the
/// output width.
pub(crate) fn stage_shapes(s: &mut ParamShapes, prefix: &str, mut width: usize, stages: &[Stage]) -> usize {
    for (i, stage) in stages.iter().enumerate() {
        let name = format!("{prefix}.{i}");
        match *stage {
            Stage::Conv { out, kernel, groups, .. } => {
                s.conv(&name, width, out, kernel, groups, true);
                width = out;
            }
            Stage::BatchNorm => s.batch_norm(&name, width),
            Stage::Linear(out) => {
                s.linear(&name, width, out);
                width = out;
            }
            Stage::Relu | Stage::MaxPool { .. } | Stage::Lrn | Stage::Dropout(_) => {}
        }
    }
    width
}

/// A square `Conv2d` (`kernel x kernel`, equal stride and padding on both axes).
pub(crate) fn conv(
    device: &Device,
    in_channels: usize,
    out_channels: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
    bias: bool,
) -> Result<Conv2d> {
    grouped_conv(device, in_channels, out_channels, kernel, stride, padding, 1, bias)
}

#[allow(clippy::too_many_arguments)]
fn grouped_conv(
    device: &Device,
    in_channels: usize,
    out_channels: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
    groups: usize,
    bias: bool,
) -> Result<Conv2d> {
    let options = Conv2dOptions { groups, ..Conv2dOptions::new(stride, padding) };
    Conv2d::with_options(device, in_channels, out_channels, [kernel; 2], options, bias)
}
