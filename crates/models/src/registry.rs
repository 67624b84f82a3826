//! Every model by name (`lenet5`, `vgg16_bn`, `resnet50`, `resnet20`, ...): build one, or
//! list them all with their parameter counts, which are worked out from shapes so listing
//! allocates nothing.

use crate::alexnet::{alexnet, alexnet_lrn, alexnet_lrn_shapes, alexnet_shapes};
use crate::googlenet::GoogLeNet;
use crate::lenet::LeNet5;
use crate::mlp::Mlp;
use crate::resnet::{ResNet, ResNetConfig};
use crate::shapes::ParamShapes;
use crate::vgg::{vgg, vgg_cifar, vgg_cifar_shapes, vgg_shapes, VggDepth};
use crate::zfnet::{zfnet, zfnet_shapes};
use ferrograd_device::Device;
use ferrograd_graph::nn::Module;
use ferrograd_graph::{manual_seed, GraphError, Result};

/// What `ferrograd models` prints for one model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelInfo {
    pub name: &'static str,
    /// `[channels, height, width]` the model is made for.
    pub input_shape: [usize; 3],
    /// The class count `params` is given for (1000 for ImageNet models, 10 otherwise).
    pub num_classes: usize,
    pub params: usize,
    pub description: &'static str,
}

/// The hidden sizes of the registry's `mlp` (MNIST: 784 -> 512 -> 256 -> 10).
pub const MLP_HIDDEN: [usize; 2] = [512, 256];

const MNIST: [usize; 3] = [1, 28, 28];
const MNIST_PADDED: [usize; 3] = [1, 32, 32];
const CIFAR: [usize; 3] = [3, 32, 32];
const IMAGENET: [usize; 3] = [3, 224, 224];

/// Name, input shape, default classes, description.
const MODELS: [(&str, [usize; 3], usize, &str); 35] = [
    ("mlp", MNIST, 10, "multi-layer perceptron 784-512-256-10, ReLU"),
    ("lenet5", MNIST_PADDED, 10, "LeNet-5 (LeCun 1998), max pooling + ReLU"),
    ("lenet5_bn", MNIST_PADDED, 10, "LeNet-5 with BatchNorm after each convolution"),
    ("alexnet", IMAGENET, 1000, "AlexNet, torchvision layout"),
    ("alexnet_lrn", [3, 227, 227], 1000, "AlexNet as in the 2012 paper: LRN, grouped convolutions"),
    ("zfnet", IMAGENET, 1000, "ZFNet (Zeiler & Fergus 2013): 7x7/2 first conv, LRN"),
    ("vgg11", IMAGENET, 1000, "VGG-11 (configuration A)"),
    ("vgg11_bn", IMAGENET, 1000, "VGG-11 with BatchNorm"),
    ("vgg13", IMAGENET, 1000, "VGG-13 (configuration B)"),
    ("vgg13_bn", IMAGENET, 1000, "VGG-13 with BatchNorm"),
    ("vgg16", IMAGENET, 1000, "VGG-16 (configuration D)"),
    ("vgg16_bn", IMAGENET, 1000, "VGG-16 with BatchNorm"),
    ("vgg19", IMAGENET, 1000, "VGG-19 (configuration E)"),
    ("vgg19_bn", IMAGENET, 1000, "VGG-19 with BatchNorm"),
    ("vgg11_cifar", CIFAR, 10, "VGG-11 features + Linear(512, classes), 32x32"),
    ("vgg11_bn_cifar", CIFAR, 10, "VGG-11-BN features + Linear(512, classes), 32x32"),
    ("vgg13_cifar", CIFAR, 10, "VGG-13 features + Linear(512, classes), 32x32"),
    ("vgg13_bn_cifar", CIFAR, 10, "VGG-13-BN features + Linear(512, classes), 32x32"),
    ("vgg16_cifar", CIFAR, 10, "VGG-16 features + Linear(512, classes), 32x32"),
    ("vgg16_bn_cifar", CIFAR, 10, "VGG-16-BN features + Linear(512, classes), 32x32"),
    ("vgg19_cifar", CIFAR, 10, "VGG-19 features + Linear(512, classes), 32x32"),
    ("vgg19_bn_cifar", CIFAR, 10, "VGG-19-BN features + Linear(512, classes), 32x32"),
    ("googlenet", IMAGENET, 1000, "GoogLeNet / Inception v1, torchvision layout"),
    ("googlenet_aux", IMAGENET, 1000, "GoogLeNet with the two auxiliary classifiers"),
    ("resnet18", IMAGENET, 1000, "ResNet-18, basic blocks [2, 2, 2, 2]"),
    ("resnet34", IMAGENET, 1000, "ResNet-34, basic blocks [3, 4, 6, 3]"),
    ("resnet50", IMAGENET, 1000, "ResNet-50, bottlenecks [3, 4, 6, 3]"),
    ("resnet101", IMAGENET, 1000, "ResNet-101, bottlenecks [3, 4, 23, 3]"),
    ("resnet152", IMAGENET, 1000, "ResNet-152, bottlenecks [3, 8, 36, 3]"),
    ("resnet20", CIFAR, 10, "CIFAR ResNet-20 (He 2015, 4.2), option A shortcuts"),
    ("resnet32", CIFAR, 10, "CIFAR ResNet-32, option A shortcuts"),
    ("resnet44", CIFAR, 10, "CIFAR ResNet-44, option A shortcuts"),
    ("resnet56", CIFAR, 10, "CIFAR ResNet-56, option A shortcuts"),
    ("resnet110", CIFAR, 10, "CIFAR ResNet-110, option A shortcuts"),
    ("resnet18_cifar", CIFAR, 10, "ResNet-18 for 32x32: 3x3 stem, no max pool"),
];

/// A model name resolved to its architecture.
enum Arch {
    Mlp(&'static [usize]),
    LeNet5 { batch_norm: bool },
    AlexNet,
    AlexNetLrn,
    ZfNet,
    Vgg { depth: VggDepth, batch_norm: bool, cifar: bool },
    GoogLeNet { aux: bool },
    ResNet(ResNetConfig),
}

fn parse(name: &str) -> Option<Arch> {
    Some(match name {
        "mlp" => Arch::Mlp(&MLP_HIDDEN),
        "lenet5" => Arch::LeNet5 { batch_norm: false },
        "lenet5_bn" => Arch::LeNet5 { batch_norm: true },
        "alexnet" => Arch::AlexNet,
        "alexnet_lrn" => Arch::AlexNetLrn,
        "zfnet" => Arch::ZfNet,
        "googlenet" => Arch::GoogLeNet { aux: false },
        "googlenet_aux" => Arch::GoogLeNet { aux: true },
        "resnet18_cifar" => Arch::ResNet(ResNetConfig::resnet18_cifar()),
        _ => {
            if let Some(rest) = name.strip_prefix("vgg") {
                let (rest, cifar) = rest.strip_suffix("_cifar").map_or((rest, false), |r| (r, true));
                let (depth, batch_norm) = rest.strip_suffix("_bn").map_or((rest, false), |r| (r, true));
                let depth = match depth {
                    "11" => VggDepth::Vgg11,
                    "13" => VggDepth::Vgg13,
                    "16" => VggDepth::Vgg16,
                    "19" => VggDepth::Vgg19,
                    _ => return None,
                };
                return Some(Arch::Vgg { depth, batch_norm, cifar });
            }
            let depth: usize = name.strip_prefix("resnet")?.parse().ok()?;
            Arch::ResNet(ResNetConfig::imagenet(depth).or_else(|| ResNetConfig::cifar(depth))?)
        }
    })
}

fn arch(name: &str) -> Result<Arch> {
    match MODELS.iter().any(|m| m.0 == name).then(|| parse(name)).flatten() {
        Some(a) => Ok(a),
        None => Err(GraphError::Invalid {
            op: "models::build",
            detail: format!("unknown model {name:?}; known: {}", names().join(", ")),
        }),
    }
}

/// Every model name, in listing order.
pub fn names() -> Vec<&'static str> {
    MODELS.iter().map(|m| m.0).collect()
}

/// The model called `name` for `num_classes` classes and `in_channels`-channel images, on
/// `device`, its weights drawn after `manual_seed(seed)` (which restarts the global stream).
pub fn build(
    name: &str,
    num_classes: usize,
    in_channels: usize,
    device: &Device,
    seed: u64,
) -> Result<Box<dyn Module>> {
    let arch = arch(name)?;
    manual_seed(seed);
    Ok(match arch {
        Arch::Mlp(hidden) => Box::new(Mlp::new(device, in_channels * 28 * 28, hidden, num_classes)?),
        Arch::LeNet5 { batch_norm: false } => Box::new(LeNet5::new(device, num_classes, in_channels)?),
        Arch::LeNet5 { batch_norm: true } => Box::new(LeNet5::with_batch_norm(device, num_classes, in_channels)?),
        Arch::AlexNet => Box::new(alexnet(device, num_classes, in_channels)?),
        Arch::AlexNetLrn => Box::new(alexnet_lrn(device, num_classes, in_channels)?),
        Arch::ZfNet => Box::new(zfnet(device, num_classes, in_channels)?),
        Arch::Vgg { depth, batch_norm, cifar: false } => {
            Box::new(vgg(device, depth, batch_norm, num_classes, in_channels)?)
        }
        Arch::Vgg { depth, batch_norm, cifar: true } => {
            Box::new(vgg_cifar(device, depth, batch_norm, num_classes, in_channels)?)
        }
        Arch::GoogLeNet { aux } => Box::new(GoogLeNet::new(device, num_classes, in_channels, aux)?),
        Arch::ResNet(config) => Box::new(ResNet::new(device, &config, num_classes, in_channels)?),
    })
}

/// The parameter names and shapes `build(name, num_classes, in_channels, ..)` would make.
pub fn shapes(name: &str, num_classes: usize, in_channels: usize) -> Result<ParamShapes> {
    Ok(match arch(name)? {
        Arch::Mlp(hidden) => Mlp::shapes(in_channels * 28 * 28, hidden, num_classes),
        Arch::LeNet5 { batch_norm } => LeNet5::shapes(num_classes, in_channels, batch_norm),
        Arch::AlexNet => alexnet_shapes(num_classes, in_channels),
        Arch::AlexNetLrn => alexnet_lrn_shapes(num_classes, in_channels),
        Arch::ZfNet => zfnet_shapes(num_classes, in_channels),
        Arch::Vgg { depth, batch_norm, cifar: false } => vgg_shapes(depth, batch_norm, num_classes, in_channels),
        Arch::Vgg { depth, batch_norm, cifar: true } => vgg_cifar_shapes(depth, batch_norm, num_classes, in_channels),
        Arch::GoogLeNet { aux } => GoogLeNet::shapes(num_classes, in_channels, aux),
        Arch::ResNet(config) => config.shapes(num_classes, in_channels),
    })
}

/// The model called `name` with its default input and classes.
pub fn info(name: &str) -> Option<ModelInfo> {
    let &(name, input_shape, num_classes, description) = MODELS.iter().find(|m| m.0 == name)?;
    let params = shapes(name, num_classes, input_shape[0]).ok()?.count();
    Some(ModelInfo { name, input_shape, num_classes, params, description })
}

/// Every model with its default input shape, classes and parameter count.
pub fn list() -> Vec<ModelInfo> {
    MODELS.iter().filter_map(|m| info(m.0)).collect()
}
