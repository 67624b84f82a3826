//! Parameter names and shapes of a model, worked out from its configuration alone, with no
//! tensor allocated: how `list()` and `ferrograd models` report a 143M-parameter VGG
//! instantly, and what a state dict must contain before it is loaded. The tests hold every
//! constructed model's `named_parameters()` equal to these lists, name by name.

/// Trainable parameters (not buffers such as BatchNorm running statistics) in
/// `state_dict` order, each with its PyTorch name and shape.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ParamShapes {
    entries: Vec<(String, Vec<usize>)>,
}

impl ParamShapes {
    pub fn new() -> ParamShapes {
        ParamShapes::default()
    }

    pub fn entries(&self) -> &[(String, Vec<usize>)] {
        &self.entries
    }

    /// Total number of scalars.
    pub fn count(&self) -> usize {
        self.entries.iter().map(|(_, s)| s.iter().product::<usize>()).sum()
    }

    fn push(&mut self, name: String, shape: Vec<usize>) {
        self.entries.push((name, shape));
    }

    /// A square `Conv2d`: `weight [out, in/groups, k, k]` and, with `bias`, `bias [out]`.
    pub fn conv(
        &mut self,
        name: &str,
        in_channels: usize,
        out_channels: usize,
        kernel: usize,
        groups: usize,
        bias: bool,
    ) {
        self.push(format!("{name}.weight"), vec![out_channels, in_channels / groups, kernel, kernel]);
        if bias {
            self.push(format!("{name}.bias"), vec![out_channels]);
        }
    }

    /// An affine `BatchNorm1d/2d`: `weight [c]`, `bias [c]`.
    pub fn batch_norm(&mut self, name: &str, channels: usize) {
        self.push(format!("{name}.weight"), vec![channels]);
        self.push(format!("{name}.bias"), vec![channels]);
    }

    /// A `Linear` with bias: `weight [out, in]`, `bias [out]`.
    pub fn linear(&mut self, name: &str, in_features: usize, out_features: usize) {
        self.push(format!("{name}.weight"), vec![out_features, in_features]);
        self.push(format!("{name}.bias"), vec![out_features]);
    }
}

/// `prefix.name`, or `name` alone at the top level.
pub(crate) fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}
