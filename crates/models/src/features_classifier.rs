//! `features -> [adaptive average pool] -> flatten -> classifier`: the shape shared by
//! AlexNet, ZFNet and VGG, with torchvision's names (`features.N`, `classifier.N`).

use ferrograd_graph::nn::{AdaptiveAvgPool2d, Module, Sequential};
use ferrograd_graph::{Result, Tensor};

pub struct FeaturesClassifier {
    /// The convolutional part; `features.forward_range` runs a prefix of it (feature maps).
    pub features: Sequential,
    /// Makes the classifier's input size independent of the image size (torchvision's
    /// `avgpool`); absent in the CIFAR VGG, whose features end at 1x1.
    pub avgpool: Option<AdaptiveAvgPool2d>,
    pub classifier: Box<dyn Module>,
}

impl Module for FeaturesClassifier {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut y = self.features.forward(x)?;
        if let Some(pool) = &self.avgpool {
            y = pool.forward(&y)?;
        }
        self.classifier.forward(&y.flatten(1, -1)?)
    }

    fn children(&self) -> Vec<(String, &dyn Module)> {
        vec![("features".to_string(), &self.features as &dyn Module), ("classifier".to_string(), &self.classifier)]
    }
}
