//! ResNet's residual blocks (He, Zhang, Ren & Sun, 2015) with torchvision's names:
//! `BasicBlock` (two 3x3 convolutions) and `Bottleneck` (1x1 -> 3x3 -> 1x1 with 4x
//! expansion, stride on the 3x3 as in torchvision's "v1.5"), each with a shortcut that
//! matches shapes when the block changes resolution or width.

use crate::layers::conv;
use crate::shapes::{join, ParamShapes};
use ferrograd_device::kernels::conv::Conv2dGeometry;
use ferrograd_device::Device;
use ferrograd_graph::nn::{BatchNorm2d, Conv2d, Module, Sequential};
use ferrograd_graph::{Result, Tensor};

/// How a block's shortcut matches a change of shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShortcutKind {
    /// Option B: a strided 1x1 convolution + BatchNorm (`downsample.0`, `downsample.1`).
    Projection,
    /// Option A (the paper's CIFAR networks): take every `stride`-th pixel and pad the new
    /// channels with zeros, half before and half after; no parameters.
    ZeroPad,
}

/// The shortcut of one block.
enum Shortcut {
    Identity,
    Projection(Sequential),
    ZeroPad { stride: usize, channels_before: usize, channels_after: usize },
}

impl Shortcut {
    fn new(device: &Device, kind: ShortcutKind, in_ch: usize, out_ch: usize, stride: usize) -> Result<Shortcut> {
        if stride == 1 && in_ch == out_ch {
            return Ok(Shortcut::Identity);
        }
        Ok(match kind {
            ShortcutKind::Projection => Shortcut::Projection(
                Sequential::new()
                    .add(conv(device, in_ch, out_ch, 1, stride, 0, false)?)
                    .add(BatchNorm2d::new_2d(device, out_ch)?),
            ),
            ShortcutKind::ZeroPad => {
                let extra = out_ch.saturating_sub(in_ch);
                Shortcut::ZeroPad { stride, channels_before: extra / 2, channels_after: extra - extra / 2 }
            }
        })
    }

    fn shapes(s: &mut ParamShapes, prefix: &str, kind: ShortcutKind, in_ch: usize, out_ch: usize, stride: usize) {
        if kind == ShortcutKind::Projection && (stride != 1 || in_ch != out_ch) {
            s.conv(&join(prefix, "downsample.0"), in_ch, out_ch, 1, 1, false);
            s.batch_norm(&join(prefix, "downsample.1"), out_ch);
        }
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            Shortcut::Identity => Ok(x.clone()),
            Shortcut::Projection(seq) => seq.forward(x),
            Shortcut::ZeroPad { stride, channels_before, channels_after } => {
                // A 1x1 average pool with stride s is exactly x[:, :, ::s, ::s].
                let sub = x.avg_pool2d(&Conv2dGeometry::new(1, *stride, 0), true)?;
                let shape = sub.shape();
                let device = sub.device();
                let before = Tensor::zeros(&device, &[shape[0], *channels_before, shape[2], shape[3]])?;
                let after = Tensor::zeros(&device, &[shape[0], *channels_after, shape[2], shape[3]])?;
                Tensor::cat(&[&before, &sub, &after], 1)
            }
        }
    }

    fn children(&self) -> Vec<(String, &dyn Module)> {
        match self {
            Shortcut::Projection(seq) => vec![("downsample".to_string(), seq as &dyn Module)],
            _ => Vec::new(),
        }
    }
}

/// Which residual block a ResNet stacks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockKind {
    Basic,
    Bottleneck,
}

impl BlockKind {
    /// Output channels per unit of width (`planes`).
    pub fn expansion(self) -> usize {
        match self {
            BlockKind::Basic => 1,
            BlockKind::Bottleneck => 4,
        }
    }

    /// One block taking `in_ch` channels to `planes * expansion`, striding by `stride`.
    pub(crate) fn build(
        self,
        device: &Device,
        shortcut: ShortcutKind,
        in_ch: usize,
        planes: usize,
        stride: usize,
    ) -> Result<Box<dyn Module>> {
        let out = planes * self.expansion();
        let shortcut = Shortcut::new(device, shortcut, in_ch, out, stride)?;
        Ok(match self {
            BlockKind::Basic => Box::new(BasicBlock {
                conv1: conv(device, in_ch, planes, 3, stride, 1, false)?,
                bn1: BatchNorm2d::new_2d(device, planes)?,
                conv2: conv(device, planes, planes, 3, 1, 1, false)?,
                bn2: BatchNorm2d::new_2d(device, planes)?,
                shortcut,
            }),
            BlockKind::Bottleneck => Box::new(Bottleneck {
                conv1: conv(device, in_ch, planes, 1, 1, 0, false)?,
                bn1: BatchNorm2d::new_2d(device, planes)?,
                conv2: conv(device, planes, planes, 3, stride, 1, false)?,
                bn2: BatchNorm2d::new_2d(device, planes)?,
                conv3: conv(device, planes, out, 1, 1, 0, false)?,
                bn3: BatchNorm2d::new_2d(device, out)?,
                shortcut,
            }),
        })
    }

    pub(crate) fn shapes(
        self,
        s: &mut ParamShapes,
        prefix: &str,
        shortcut: ShortcutKind,
        in_ch: usize,
        planes: usize,
        stride: usize,
    ) {
        let out = planes * self.expansion();
        match self {
            BlockKind::Basic => {
                s.conv(&join(prefix, "conv1"), in_ch, planes, 3, 1, false);
                s.batch_norm(&join(prefix, "bn1"), planes);
                s.conv(&join(prefix, "conv2"), planes, planes, 3, 1, false);
                s.batch_norm(&join(prefix, "bn2"), planes);
            }
            BlockKind::Bottleneck => {
                s.conv(&join(prefix, "conv1"), in_ch, planes, 1, 1, false);
                s.batch_norm(&join(prefix, "bn1"), planes);
                s.conv(&join(prefix, "conv2"), planes, planes, 3, 1, false);
                s.batch_norm(&join(prefix, "bn2"), planes);
                s.conv(&join(prefix, "conv3"), planes, out, 1, 1, false);
                s.batch_norm(&join(prefix, "bn3"), out);
            }
        }
        Shortcut::shapes(s, prefix, shortcut, in_ch, out, stride);
    }
}

/// `relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))`.
struct BasicBlock {
    conv1: Conv2d,
    bn1: BatchNorm2d,
    conv2: Conv2d,
    bn2: BatchNorm2d,
    shortcut: Shortcut,
}

impl Module for BasicBlock {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = self.bn1.forward(&self.conv1.forward(x)?)?.relu()?;
        let y = self.bn2.forward(&self.conv2.forward(&y)?)?;
        y.add(&self.shortcut.forward(x)?)?.relu()
    }

    fn children(&self) -> Vec<(String, &dyn Module)> {
        let mut c = ferrograd_graph::children![self; conv1, bn1, conv2, bn2];
        c.extend(self.shortcut.children());
        c
    }
}

/// 1x1 reduce, 3x3 (strided), 1x1 expand, each with BatchNorm; ReLU after the sum.
struct Bottleneck {
    conv1: Conv2d,
    bn1: BatchNorm2d,
    conv2: Conv2d,
    bn2: BatchNorm2d,
    conv3: Conv2d,
    bn3: BatchNorm2d,
    shortcut: Shortcut,
}

impl Module for Bottleneck {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = self.bn1.forward(&self.conv1.forward(x)?)?.relu()?;
        let y = self.bn2.forward(&self.conv2.forward(&y)?)?.relu()?;
        let y = self.bn3.forward(&self.conv3.forward(&y)?)?;
        y.add(&self.shortcut.forward(x)?)?.relu()
    }

    fn children(&self) -> Vec<(String, &dyn Module)> {
        let mut c = ferrograd_graph::children![self; conv1, bn1, conv2, bn2, conv3, bn3];
        c.extend(self.shortcut.children());
        c
    }
}
