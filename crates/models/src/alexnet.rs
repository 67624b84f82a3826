//! AlexNet (Krizhevsky, Sutskever & Hinton, 2012), two layouts:
//! - [`alexnet`]: torchvision's `alexnet` (the "one weird trick" single-GPU variant:
//!   64-192-384-256-256 channels, no normalisation), 61,100,840 parameters for 1000 classes;
//! - [`alexnet_lrn`]: the 2012 paper's network: 96-256-384-384-256 channels, ReLU then
//!   LocalResponseNorm after the first two convolutions, and the paper's two-GPU split kept
//!   as `groups = 2` on conv2, conv4 and conv5 (60,965,224 parameters); 227x227 input.
//!
//! Both end in a 6x6 adaptive average pool, so smaller images (>= 63 pixels) work too.

use crate::features_classifier::FeaturesClassifier;
use crate::layers::{sequential, stage_shapes, Stage};
use crate::shapes::ParamShapes;
use ferrograd_device::Device;
use ferrograd_graph::nn::AdaptiveAvgPool2d;
use ferrograd_graph::Result;

pub type AlexNet = FeaturesClassifier;

fn conv(out: usize, kernel: usize, stride: usize, padding: usize, groups: usize) -> Stage {
    Stage::Conv { out, kernel, stride, padding, groups }
}

const POOL: Stage = Stage::MaxPool { kernel: 3, stride: 2, padding: 0 };

fn torchvision_features() -> Vec<Stage> {
    use Stage::Relu;
    vec![
        conv(64, 11, 4, 2, 1),
        Relu,
        POOL,
        conv(192, 5, 1, 2, 1),
        Relu,
        POOL,
        conv(384, 3, 1, 1, 1),
        Relu,
        conv(256, 3, 1, 1, 1),
        Relu,
        conv(256, 3, 1, 1, 1),
        Relu,
        POOL,
    ]
}

fn paper_features() -> Vec<Stage> {
    use Stage::{Lrn, Relu};
    vec![
        conv(96, 11, 4, 0, 1),
        Relu,
        Lrn,
        POOL,
        conv(256, 5, 1, 2, 2),
        Relu,
        Lrn,
        POOL,
        conv(384, 3, 1, 1, 1),
        Relu,
        conv(384, 3, 1, 1, 2),
        Relu,
        conv(256, 3, 1, 1, 2),
        Relu,
        POOL,
    ]
}

/// AlexNet's head, also ZFNet's: dropout before each of the two 4096-wide layers.
pub(crate) fn classifier(num_classes: usize) -> Vec<Stage> {
    use Stage::{Dropout, Linear, Relu};
    vec![Dropout(0.5), Linear(4096), Relu, Dropout(0.5), Linear(4096), Relu, Linear(num_classes)]
}

/// Build a features + 6x6 pool + AlexNet-classifier network (AlexNet, ZFNet).
pub(crate) fn build(device: &Device, in_channels: usize, features: &[Stage], num_classes: usize) -> Result<AlexNet> {
    let (features, channels) = sequential(device, in_channels, features)?;
    let (classifier, _) = sequential(device, channels * 36, &classifier(num_classes))?;
    Ok(FeaturesClassifier { features, avgpool: Some(AdaptiveAvgPool2d([6, 6])), classifier: Box::new(classifier) })
}

/// Parameter shapes of a network made by [`build`].
pub(crate) fn shapes(in_channels: usize, features: &[Stage], num_classes: usize) -> ParamShapes {
    let mut s = ParamShapes::new();
    let channels = stage_shapes(&mut s, "features", in_channels, features);
    stage_shapes(&mut s, "classifier", channels * 36, &classifier(num_classes));
    s
}

/// torchvision's AlexNet (224x224 input).
pub fn alexnet(device: &Device, num_classes: usize, in_channels: usize) -> Result<AlexNet> {
    build(device, in_channels, &torchvision_features(), num_classes)
}

pub fn alexnet_shapes(num_classes: usize, in_channels: usize) -> ParamShapes {
    shapes(in_channels, &torchvision_features(), num_classes)
}

/// The 2012 paper's AlexNet with LRN and grouped convolutions (227x227 input).
pub fn alexnet_lrn(device: &Device, num_classes: usize, in_channels: usize) -> Result<AlexNet> {
    build(device, in_channels, &paper_features(), num_classes)
}

pub fn alexnet_lrn_shapes(num_classes: usize, in_channels: usize) -> ParamShapes {
    shapes(in_channels, &paper_features(), num_classes)
}
