//! ferrograd-models: the classic CNNs built from `ferrograd-graph` layers, one file per
//! family, with torchvision's parameter names (so a safetensors state dict moves between
//! the two) and, for ImageNet-shaped models, torchvision's exact parameter counts.
//!
//! [`registry::build`] makes any of them by name; [`registry::list`] lists them.

pub mod alexnet;
pub mod features_classifier;
pub mod googlenet;
mod init;
mod layers;
pub mod lenet;
pub mod mlp;
pub mod registry;
pub mod resnet;
pub mod resnet_blocks;
pub mod seq2seq;
pub mod shapes;
pub mod transformer_seq2seq;
pub mod vgg;
pub mod zfnet;

pub use googlenet::{GoogLeNet, GoogLeNetOutput};
pub use lenet::LeNet5;
pub use mlp::Mlp;
pub use registry::{build, list, ModelInfo};
pub use resnet::{ResNet, ResNetConfig};
pub use shapes::ParamShapes;
