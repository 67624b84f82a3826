//! GoogLeNet / Inception v1 (Szegedy et al., 2014, "Going Deeper with Convolutions") in
//! torchvision's layout, names and init: every convolution is a `BasicConv2d` (conv without
//! bias + BatchNorm with eps 0.001 + ReLU, names `conv1.conv`, `conv1.bn`, ...), nine
//! Inception modules (`inception3a.branch1.conv`, `inception3a.branch2.0.conv`, ...), an
//! adaptive average pool, dropout 0.2 and `fc`. As in torchvision, the "5x5" branch uses a
//! 3x3 convolution and pooling windows round up (ceil mode). 6,624,904 parameters for
//! 1000 classes; 13,004,888 with the two auxiliary classifiers (`aux1`, `aux2`), which
//! only run in training mode through [`GoogLeNet::forward_with_aux`].

use crate::init::{init_weights, WeightInit};
use crate::layers::conv;
use crate::shapes::{join, ParamShapes};
use ferrograd_device::kernels::conv::Conv2dGeometry;
use ferrograd_device::Device;
use ferrograd_graph::nn::{BatchNorm2d, Conv2d, Dropout, Linear, MaxPool2d, Mode, Module, Sequential};
use ferrograd_graph::{Result, Tensor};

/// torchvision's BatchNorm epsilon in GoogLeNet.
const BN_EPS: f32 = 1e-3;

/// Inception module widths: `(1x1, 3x3 reduce, 3x3, "5x5" reduce, "5x5", pool projection)`.
type InceptionWidths = (usize, usize, usize, usize, usize, usize);

/// Input channels and widths of the nine modules, 3a ... 5b.
const INCEPTIONS: [(&str, usize, InceptionWidths); 9] = [
    ("inception3a", 192, (64, 96, 128, 16, 32, 32)),
    ("inception3b", 256, (128, 128, 192, 32, 96, 64)),
    ("inception4a", 480, (192, 96, 208, 16, 48, 64)),
    ("inception4b", 512, (160, 112, 224, 24, 64, 64)),
    ("inception4c", 512, (128, 128, 256, 24, 64, 64)),
    ("inception4d", 512, (112, 144, 288, 32, 64, 64)),
    ("inception4e", 528, (256, 160, 320, 32, 128, 128)),
    ("inception5a", 832, (256, 160, 320, 32, 128, 128)),
    ("inception5b", 832, (384, 192, 384, 48, 128, 128)),
];

/// `relu(bn(conv(x)))`, convolution without bias.
struct BasicConv2d {
    conv: Conv2d,
    bn: BatchNorm2d,
}

impl BasicConv2d {
    fn new(device: &Device, in_ch: usize, out_ch: usize, kernel: usize, stride: usize, padding: usize) -> Result<Self> {
        let mut bn = BatchNorm2d::new_2d(device, out_ch)?;
        bn.eps = BN_EPS;
        Ok(BasicConv2d { conv: conv(device, in_ch, out_ch, kernel, stride, padding, false)?, bn })
    }

    fn shapes(s: &mut ParamShapes, name: &str, in_ch: usize, out_ch: usize, kernel: usize) {
        s.conv(&join(name, "conv"), in_ch, out_ch, kernel, 1, false);
        s.batch_norm(&join(name, "bn"), out_ch);
    }
}

impl Module for BasicConv2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.bn.forward(&self.conv.forward(x)?)?.relu()
    }

    fn children(&self) -> Vec<(String, &dyn Module)> {
        ferrograd_graph::children![self; conv, bn]
    }
}

/// Four parallel branches concatenated along channels.
struct Inception {
    branch1: BasicConv2d,
    branch2: Sequential,
    branch3: Sequential,
    branch4: Sequential,
}

impl Inception {
    fn new(device: &Device, in_ch: usize, w: InceptionWidths) -> Result<Inception> {
        let (c1, c3r, c3, c5r, c5, pool) = w;
        Ok(Inception {
            branch1: BasicConv2d::new(device, in_ch, c1, 1, 1, 0)?,
            branch2: Sequential::new()
                .add(BasicConv2d::new(device, in_ch, c3r, 1, 1, 0)?)
                .add(BasicConv2d::new(device, c3r, c3, 3, 1, 1)?),
            branch3: Sequential::new()
                .add(BasicConv2d::new(device, in_ch, c5r, 1, 1, 0)?)
                .add(BasicConv2d::new(device, c5r, c5, 3, 1, 1)?),
            // Stride 1: ceil mode changes nothing here.
            branch4: Sequential::new()
                .add(MaxPool2d::new(3, 1, 1))
                .add(BasicConv2d::new(device, in_ch, pool, 1, 1, 0)?),
        })
    }

    fn shapes(s: &mut ParamShapes, name: &str, in_ch: usize, w: InceptionWidths) {
        let (c1, c3r, c3, c5r, c5, pool) = w;
        BasicConv2d::shapes(s, &join(name, "branch1"), in_ch, c1, 1);
        BasicConv2d::shapes(s, &join(name, "branch2.0"), in_ch, c3r, 1);
        BasicConv2d::shapes(s, &join(name, "branch2.1"), c3r, c3, 3);
        BasicConv2d::shapes(s, &join(name, "branch3.0"), in_ch, c5r, 1);
        BasicConv2d::shapes(s, &join(name, "branch3.1"), c5r, c5, 3);
        BasicConv2d::shapes(s, &join(name, "branch4.1"), in_ch, pool, 1);
    }
}

impl Module for Inception {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let b1 = self.branch1.forward(x)?;
        let b2 = self.branch2.forward(x)?;
        let b3 = self.branch3.forward(x)?;
        let b4 = self.branch4.forward(x)?;
        Tensor::cat(&[&b1, &b2, &b3, &b4], 1)
    }

    fn children(&self) -> Vec<(String, &dyn Module)> {
        ferrograd_graph::children![self; branch1, branch2, branch3, branch4]
    }
}

/// Auxiliary classifier: 4x4 adaptive average pool, 1x1 conv to 128, fc 2048 -> 1024, fc.
struct InceptionAux {
    conv: BasicConv2d,
    fc1: Linear,
    dropout: Dropout,
    fc2: Linear,
}

impl InceptionAux {
    fn new(device: &Device, in_ch: usize, num_classes: usize) -> Result<InceptionAux> {
        Ok(InceptionAux {
            conv: BasicConv2d::new(device, in_ch, 128, 1, 1, 0)?,
            fc1: Linear::new(device, 2048, 1024, true)?,
            dropout: Dropout::new(0.7),
            fc2: Linear::new(device, 1024, num_classes, true)?,
        })
    }

    fn shapes(s: &mut ParamShapes, name: &str, in_ch: usize, num_classes: usize) {
        BasicConv2d::shapes(s, &join(name, "conv"), in_ch, 128, 1);
        s.linear(&join(name, "fc1"), 2048, 1024);
        s.linear(&join(name, "fc2"), 1024, num_classes);
    }
}

impl Module for InceptionAux {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = self.conv.forward(&x.adaptive_avg_pool2d([4, 4])?)?;
        let y = self.fc1.forward(&y.flatten(1, -1)?)?.relu()?;
        self.fc2.forward(&self.dropout.forward(&y)?)
    }

    fn children(&self) -> Vec<(String, &dyn Module)> {
        ferrograd_graph::children![self; conv, fc1, dropout, fc2]
    }
}

/// Max pooling with PyTorch's `ceil_mode=True` and no padding: windows that would run off
/// the right or bottom edge are kept, clipped to the input. Done by padding those edges
/// with zeros and pooling normally, which is exact here because every input is the output
/// of a ReLU (>= 0) and each clipped window still holds at least one real value.
fn max_pool_ceil(x: &Tensor, kernel: usize, stride: usize) -> Result<Tensor> {
    let shape = x.shape();
    let extra = |size: usize| {
        let mut out = size.saturating_sub(kernel).div_ceil(stride) + 1;
        // PyTorch drops a last window that would start past the input.
        if (out - 1) * stride >= size {
            out -= 1;
        }
        ((out - 1) * stride + kernel).saturating_sub(size)
    };
    let (pad_h, pad_w) = (extra(shape[2]), extra(shape[3]));
    let device = x.device();
    let mut y = x.clone();
    if pad_w > 0 {
        let zeros = Tensor::zeros(&device, &[shape[0], shape[1], shape[2], pad_w])?;
        y = Tensor::cat(&[&y, &zeros], 3)?;
    }
    if pad_h > 0 {
        let zeros = Tensor::zeros(&device, &[shape[0], shape[1], pad_h, shape[3] + pad_w])?;
        y = Tensor::cat(&[&y, &zeros], 2)?;
    }
    y.max_pool2d(&Conv2dGeometry::new(kernel, stride, 0))
}

/// Logits and, in training mode with aux heads, the auxiliary logits (after 4a and 4d).
pub struct GoogLeNetOutput {
    pub logits: Tensor,
    pub aux1: Option<Tensor>,
    pub aux2: Option<Tensor>,
}

pub struct GoogLeNet {
    conv1: BasicConv2d,
    conv2: BasicConv2d,
    conv3: BasicConv2d,
    /// 3a, 3b, 4a, 4b, 4c, 4d, 4e, 5a, 5b.
    inceptions: Vec<Inception>,
    aux: Option<(InceptionAux, InceptionAux)>,
    dropout: Dropout,
    fc: Linear,
    mode: Mode,
}

impl GoogLeNet {
    /// torchvision's `googlenet(aux_logits=...)` for 224x224 input (anything from 32x32 works).
    pub fn new(device: &Device, num_classes: usize, in_channels: usize, aux_logits: bool) -> Result<GoogLeNet> {
        let aux = if aux_logits {
            Some((InceptionAux::new(device, 512, num_classes)?, InceptionAux::new(device, 528, num_classes)?))
        } else {
            None
        };
        let model = GoogLeNet {
            conv1: BasicConv2d::new(device, in_channels, 64, 7, 2, 3)?,
            conv2: BasicConv2d::new(device, 64, 64, 1, 1, 0)?,
            conv3: BasicConv2d::new(device, 64, 192, 3, 1, 1)?,
            inceptions: INCEPTIONS
                .iter()
                .map(|&(_, in_ch, w)| Inception::new(device, in_ch, w))
                .collect::<Result<_>>()?,
            aux,
            dropout: Dropout::new(0.2),
            fc: Linear::new(device, 1024, num_classes, true)?,
            mode: Mode::new(),
        };
        init_weights(&model, WeightInit::NormalKeepBias(0.01), WeightInit::NormalKeepBias(0.01))?;
        Ok(model)
    }

    pub fn shapes(num_classes: usize, in_channels: usize, aux_logits: bool) -> ParamShapes {
        let mut s = ParamShapes::new();
        BasicConv2d::shapes(&mut s, "conv1", in_channels, 64, 7);
        BasicConv2d::shapes(&mut s, "conv2", 64, 64, 1);
        BasicConv2d::shapes(&mut s, "conv3", 64, 192, 3);
        for (name, in_ch, w) in INCEPTIONS {
            Inception::shapes(&mut s, name, in_ch, w);
        }
        if aux_logits {
            InceptionAux::shapes(&mut s, "aux1", 512, num_classes);
            InceptionAux::shapes(&mut s, "aux2", 528, num_classes);
        }
        s.linear("fc", 1024, num_classes);
        s
    }

    /// The main logits, plus the auxiliary ones when the model has aux heads and is in
    /// training mode (torchvision's `GoogLeNetOutputs`; weight them 0.3 in the loss).
    pub fn forward_with_aux(&self, x: &Tensor) -> Result<GoogLeNetOutput> {
        self.run(x, self.mode.training())
    }

    fn run(&self, x: &Tensor, with_aux: bool) -> Result<GoogLeNetOutput> {
        let aux = self.aux.as_ref().filter(|_| with_aux);
        let mut y = self.conv1.forward(x)?;
        y = max_pool_ceil(&y, 3, 2)?;
        y = self.conv3.forward(&self.conv2.forward(&y)?)?;
        y = max_pool_ceil(&y, 3, 2)?;
        let (mut aux1, mut aux2) = (None, None);
        for (i, inception) in self.inceptions.iter().enumerate() {
            y = inception.forward(&y)?;
            match (INCEPTIONS[i].0, aux) {
                ("inception3b", _) => y = max_pool_ceil(&y, 3, 2)?,
                ("inception4a", Some((a1, _))) => aux1 = Some(a1.forward(&y)?),
                ("inception4d", Some((_, a2))) => aux2 = Some(a2.forward(&y)?),
                ("inception4e", _) => y = max_pool_ceil(&y, 2, 2)?,
                _ => {}
            }
        }
        let y = y.adaptive_avg_pool2d([1, 1])?.flatten(1, -1)?;
        let logits = self.fc.forward(&self.dropout.forward(&y)?)?;
        Ok(GoogLeNetOutput { logits, aux1, aux2 })
    }
}

impl Module for GoogLeNet {
    /// The main logits only (auxiliary heads are skipped).
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(self.run(x, false)?.logits)
    }

    fn children(&self) -> Vec<(String, &dyn Module)> {
        let mut c = ferrograd_graph::children![self; conv1, conv2, conv3];
        c.extend(INCEPTIONS.iter().zip(&self.inceptions).map(|((name, _, _), m)| (name.to_string(), m as &dyn Module)));
        if let Some((aux1, aux2)) = &self.aux {
            c.push(("aux1".to_string(), aux1));
            c.push(("aux2".to_string(), aux2));
        }
        c.push(("dropout".to_string(), &self.dropout));
        c.push(("fc".to_string(), &self.fc));
        c
    }

    fn set_own_training(&self, training: bool) {
        self.mode.set(training)
    }
}
