//! ResNet (He, Zhang, Ren & Sun, 2015, "Deep Residual Learning for Image Recognition"),
//! with torchvision's names (`conv1`, `bn1`, `layer1.0.conv1`, `layer2.0.downsample.0`,
//! `fc`) and weight init (Kaiming-normal fan-out convolutions, BatchNorm 1/0):
//! - ImageNet: ResNet-18/34 (basic blocks) and 50/101/152 (bottlenecks), a 7x7 stride-2
//!   stem and a 3x3 max pool, four stages of width 64/128/256/512;
//! - CIFAR (section 4.2 of the paper): ResNet-6n+2 (20, 32, 44, 56, 110): a 3x3 stem with
//!   16 channels, three stages of n basic blocks with 16/32/64 channels, and option A
//!   (parameter-free zero-padding) shortcuts, as in the paper; ResNet-20 has 269,722
//!   parameters for 10 classes;
//! - ResNet-18 for 32x32 images: a 3x3 stride-1 stem, no max pool, projection shortcuts.

use crate::init::{init_weights, WeightInit};
use crate::layers::conv;
use crate::resnet_blocks::{BlockKind, ShortcutKind};
use crate::shapes::ParamShapes;
use ferrograd_device::kernels::conv::Conv2dGeometry;
use ferrograd_device::Device;
use ferrograd_graph::nn::{BatchNorm2d, Conv2d, Linear, Module, Sequential};
use ferrograd_graph::{Result, Tensor};

/// Everything that distinguishes one ResNet from another.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResNetConfig {
    pub block: BlockKind,
    /// Blocks per stage; stage `i` has width `widths[i]` and halves the resolution unless it is the first.
    pub blocks: Vec<usize>,
    pub widths: Vec<usize>,
    /// The ImageNet stem (7x7 stride 2 + max pool) or the CIFAR one (3x3 stride 1).
    pub imagenet_stem: bool,
    pub shortcut: ShortcutKind,
}

impl ResNetConfig {
    /// torchvision's ResNet-18/34/50/101/152; `None` for another depth.
    pub fn imagenet(depth: usize) -> Option<ResNetConfig> {
        let (block, blocks) = match depth {
            18 => (BlockKind::Basic, vec![2, 2, 2, 2]),
            34 => (BlockKind::Basic, vec![3, 4, 6, 3]),
            50 => (BlockKind::Bottleneck, vec![3, 4, 6, 3]),
            101 => (BlockKind::Bottleneck, vec![3, 4, 23, 3]),
            152 => (BlockKind::Bottleneck, vec![3, 8, 36, 3]),
            _ => return None,
        };
        Some(ResNetConfig::torchvision(block, blocks))
    }

    fn torchvision(block: BlockKind, blocks: Vec<usize>) -> ResNetConfig {
        ResNetConfig {
            block,
            blocks,
            widths: vec![64, 128, 256, 512],
            imagenet_stem: true,
            shortcut: ShortcutKind::Projection,
        }
    }

    /// The paper's CIFAR ResNet of depth 6n+2 (20, 32, 44, 56, 110, ...); `None` otherwise.
    pub fn cifar(depth: usize) -> Option<ResNetConfig> {
        let n = depth.saturating_sub(2) / 6;
        if n == 0 || 6 * n + 2 != depth {
            return None;
        }
        Some(ResNetConfig {
            block: BlockKind::Basic,
            blocks: vec![n; 3],
            widths: vec![16, 32, 64],
            imagenet_stem: false,
            shortcut: ShortcutKind::ZeroPad,
        })
    }

    /// ResNet-18 for 32x32 images (3x3 stem, no max pool).
    pub fn resnet18_cifar() -> ResNetConfig {
        ResNetConfig { imagenet_stem: false, ..ResNetConfig::torchvision(BlockKind::Basic, vec![2, 2, 2, 2]) }
    }

    /// `(in_channels, planes, stride)` of every block, stage by stage.
    fn blocks(&self) -> Vec<Vec<(usize, usize, usize)>> {
        let mut in_ch = self.widths[0];
        let mut stages = Vec::new();
        for (i, (&n, &planes)) in self.blocks.iter().zip(&self.widths).enumerate() {
            let mut stage = Vec::new();
            for b in 0..n {
                stage.push((in_ch, planes, if i > 0 && b == 0 { 2 } else { 1 }));
                in_ch = planes * self.block.expansion();
            }
            stages.push(stage);
        }
        stages
    }

    fn stem_kernel(&self) -> (usize, usize, usize) {
        if self.imagenet_stem {
            (7, 2, 3)
        } else {
            (3, 1, 1)
        }
    }

    fn features(&self) -> usize {
        self.widths[self.widths.len() - 1] * self.block.expansion()
    }

    /// Parameter names and shapes, without building.
    pub fn shapes(&self, num_classes: usize, in_channels: usize) -> ParamShapes {
        let mut s = ParamShapes::new();
        s.conv("conv1", in_channels, self.widths[0], self.stem_kernel().0, 1, false);
        s.batch_norm("bn1", self.widths[0]);
        for (i, stage) in self.blocks().iter().enumerate() {
            for (b, &(in_ch, planes, stride)) in stage.iter().enumerate() {
                self.block.shapes(&mut s, &format!("layer{}.{b}", i + 1), self.shortcut, in_ch, planes, stride);
            }
        }
        s.linear("fc", self.features(), num_classes);
        s
    }
}

pub struct ResNet {
    pub conv1: Conv2d,
    pub bn1: BatchNorm2d,
    max_pool: bool,
    /// `layer1`, `layer2`, ...: the stages, each a `Sequential` of blocks.
    pub layers: Vec<Sequential>,
    pub fc: Linear,
}

impl ResNet {
    pub fn new(device: &Device, config: &ResNetConfig, num_classes: usize, in_channels: usize) -> Result<ResNet> {
        let (kernel, stride, padding) = config.stem_kernel();
        let mut layers = Vec::new();
        for stage in config.blocks() {
            let mut seq = Sequential::new();
            for (in_ch, planes, stride) in stage {
                seq.push(config.block.build(device, config.shortcut, in_ch, planes, stride)?);
            }
            layers.push(seq);
        }
        let model = ResNet {
            conv1: conv(device, in_channels, config.widths[0], kernel, stride, padding, false)?,
            bn1: BatchNorm2d::new_2d(device, config.widths[0])?,
            max_pool: config.imagenet_stem,
            layers,
            fc: Linear::new(device, config.features(), num_classes, true)?,
        };
        init_weights(&model, WeightInit::KaimingFanOut, WeightInit::Default)?;
        Ok(model)
    }
}

impl Module for ResNet {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut y = self.bn1.forward(&self.conv1.forward(x)?)?.relu()?;
        if self.max_pool {
            y = y.max_pool2d(&Conv2dGeometry::new(3, 2, 1))?;
        }
        for layer in &self.layers {
            y = layer.forward(&y)?;
        }
        self.fc.forward(&y.adaptive_avg_pool2d([1, 1])?.flatten(1, -1)?)
    }

    fn children(&self) -> Vec<(String, &dyn Module)> {
        let mut c = ferrograd_graph::children![self; conv1, bn1];
        c.extend(self.layers.iter().enumerate().map(|(i, l)| (format!("layer{}", i + 1), l as &dyn Module)));
        c.push(("fc".to_string(), &self.fc));
        c
    }
}
