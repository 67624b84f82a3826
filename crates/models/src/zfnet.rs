//! ZFNet (Zeiler & Fergus, 2013, "Visualizing and Understanding Convolutional Networks"):
//! AlexNet revised after looking at its features: a 7x7 stride-2 first convolution instead
//! of 11x11 stride 4, a stride-2 second convolution, 3x3 stride-2 overlapping max pooling
//! followed by local response normalisation after the first two layers, and dense
//! (ungrouped) 384-384-256 upper layers. Sizes for a 224x224 input, as in the paper's
//! figure 3: 110 -> 55 -> 26 -> 13 -> 13 -> 13 -> 6. The classifier is AlexNet's, behind
//! the same 6x6 adaptive pool (so 64x64 inputs work too); names `features.N`,
//! `classifier.N`.

use crate::alexnet::{build, shapes, AlexNet};
use crate::layers::Stage;
use crate::shapes::ParamShapes;
use ferrograd_device::Device;
use ferrograd_graph::Result;

pub type ZfNet = AlexNet;

fn features() -> Vec<Stage> {
    use Stage::{Conv, Lrn, MaxPool, Relu};
    // Pooling pads by 1 so that 110 -> 55 and 26 -> 13 as in the paper.
    let pool = MaxPool { kernel: 3, stride: 2, padding: 1 };
    vec![
        Conv { out: 96, kernel: 7, stride: 2, padding: 1, groups: 1 },
        Relu,
        pool,
        Lrn,
        Conv { out: 256, kernel: 5, stride: 2, padding: 0, groups: 1 },
        Relu,
        pool,
        Lrn,
        Conv { out: 384, kernel: 3, stride: 1, padding: 1, groups: 1 },
        Relu,
        Conv { out: 384, kernel: 3, stride: 1, padding: 1, groups: 1 },
        Relu,
        Conv { out: 256, kernel: 3, stride: 1, padding: 1, groups: 1 },
        Relu,
        MaxPool { kernel: 3, stride: 2, padding: 0 },
    ]
}

pub fn zfnet(device: &Device, num_classes: usize, in_channels: usize) -> Result<ZfNet> {
    build(device, in_channels, &features(), num_classes)
}

pub fn zfnet_shapes(num_classes: usize, in_channels: usize) -> ParamShapes {
    shapes(in_channels, &features(), num_classes)
}
