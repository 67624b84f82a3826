//! VGG (Simonyan & Zisserman, 2014): stacks of 3x3 convolutions between 2x2 max pools,
//! configurations A/B/D/E = VGG-11/13/16/19, optionally with BatchNorm after each
//! convolution. torchvision's layout and names: `features.N`, a 7x7 adaptive pool, and
//! `classifier.0/3/6` (4096-4096-classes, dropout after the ReLUs); its weight init:
//! Kaiming-normal (fan-out) convolutions, N(0, 0.01) linears, zero biases.
//!
//! The CIFAR variant ([`vgg_cifar`]) keeps the features (a 32x32 image ends at 1x1x512)
//! and replaces the head with one `Linear(512, classes)` named `classifier`.

use crate::features_classifier::FeaturesClassifier;
use crate::init::{init_weights, WeightInit};
use crate::layers::{conv3x3, sequential, stage_shapes, Stage};
use crate::shapes::ParamShapes;
use ferrograd_device::Device;
use ferrograd_graph::nn::{AdaptiveAvgPool2d, Linear};
use ferrograd_graph::Result;

pub type Vgg = FeaturesClassifier;

/// Depth = number of weight layers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VggDepth {
    Vgg11,
    Vgg13,
    Vgg16,
    Vgg19,
}

impl VggDepth {
    /// The paper's configuration: channel counts, `None` for a max pool.
    fn config(self) -> &'static [Option<usize>] {
        const M: Option<usize> = None;
        const C64: Option<usize> = Some(64);
        const C128: Option<usize> = Some(128);
        const C256: Option<usize> = Some(256);
        const C512: Option<usize> = Some(512);
        match self {
            VggDepth::Vgg11 => &[C64, M, C128, M, C256, C256, M, C512, C512, M, C512, C512, M],
            VggDepth::Vgg13 => &[C64, C64, M, C128, C128, M, C256, C256, M, C512, C512, M, C512, C512, M],
            VggDepth::Vgg16 => {
                &[C64, C64, M, C128, C128, M, C256, C256, C256, M, C512, C512, C512, M, C512, C512, C512, M]
            }
            VggDepth::Vgg19 => &[
                C64, C64, M, C128, C128, M, C256, C256, C256, C256, M, C512, C512, C512, C512, M, C512, C512, C512,
                C512, M,
            ],
        }
    }
}

fn features(depth: VggDepth, batch_norm: bool) -> Vec<Stage> {
    let mut stages = Vec::new();
    for entry in depth.config() {
        match entry {
            Some(c) => {
                stages.push(conv3x3(*c));
                if batch_norm {
                    stages.push(Stage::BatchNorm);
                }
                stages.push(Stage::Relu);
            }
            None => stages.push(Stage::MaxPool { kernel: 2, stride: 2, padding: 0 }),
        }
    }
    stages
}

fn classifier(num_classes: usize) -> Vec<Stage> {
    use Stage::{Dropout, Linear, Relu};
    vec![Linear(4096), Relu, Dropout(0.5), Linear(4096), Relu, Dropout(0.5), Linear(num_classes)]
}

fn init(model: &Vgg) -> Result<()> {
    init_weights(model, WeightInit::KaimingFanOut, WeightInit::Normal(0.01))
}

/// torchvision's `vgg11` ... `vgg19_bn` (224x224 input; anything >= 32x32 works).
pub fn vgg(device: &Device, depth: VggDepth, batch_norm: bool, num_classes: usize, in_channels: usize) -> Result<Vgg> {
    let (features, channels) = sequential(device, in_channels, &features(depth, batch_norm))?;
    let (classifier, _) = sequential(device, channels * 49, &classifier(num_classes))?;
    let model =
        FeaturesClassifier { features, avgpool: Some(AdaptiveAvgPool2d([7, 7])), classifier: Box::new(classifier) };
    init(&model)?;
    Ok(model)
}

pub fn vgg_shapes(depth: VggDepth, batch_norm: bool, num_classes: usize, in_channels: usize) -> ParamShapes {
    let mut s = ParamShapes::new();
    let channels = stage_shapes(&mut s, "features", in_channels, &features(depth, batch_norm));
    stage_shapes(&mut s, "classifier", channels * 49, &classifier(num_classes));
    s
}

/// VGG for 32x32 images: the same features, then `Linear(512, num_classes)`.
pub fn vgg_cifar(
    device: &Device,
    depth: VggDepth,
    batch_norm: bool,
    num_classes: usize,
    in_channels: usize,
) -> Result<Vgg> {
    let (features, channels) = sequential(device, in_channels, &features(depth, batch_norm))?;
    let classifier = Linear::new(device, channels, num_classes, true)?;
    let model = FeaturesClassifier { features, avgpool: None, classifier: Box::new(classifier) };
    init(&model)?;
    Ok(model)
}

pub fn vgg_cifar_shapes(depth: VggDepth, batch_norm: bool, num_classes: usize, in_channels: usize) -> ParamShapes {
    let mut s = ParamShapes::new();
    let channels = stage_shapes(&mut s, "features", in_channels, &features(depth, batch_norm));
    s.linear("classifier", channels, num_classes);
    s
}
