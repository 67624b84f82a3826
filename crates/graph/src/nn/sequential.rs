//! `Sequential`: modules applied in order, named `"0"`, `"1"`, ... in the state dict.

use crate::error::Result;
use crate::nn::Module;
use crate::tensor::Tensor;

#[derive(Default)]
pub struct Sequential {
    layers: Vec<Box<dyn Module>>,
}

impl Sequential {
    pub fn new() -> Sequential {
        Sequential::default()
    }

    /// Append a layer (builder style): `Sequential::new().add(Linear::new(..)?).add(Relu)`.
    #[allow(clippy::should_implement_trait)]
    pub fn add(mut self, layer: impl Module + 'static) -> Sequential {
        self.layers.push(Box::new(layer));
        self
    }

    pub fn push(&mut self, layer: Box<dyn Module>) {
        self.layers.push(layer);
    }

    pub fn len(&self) -> usize {
        self.layers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }

    pub fn get(&self, i: usize) -> Option<&dyn Module> {
        self.layers.get(i).map(|l| &**l)
    }

    /// Run layers `range` only (e.g. the feature extractor of a model, for visualisation).
    /// A layer followed by an activation it can fuse (`Module::forward_then`) runs as one.
    pub fn forward_range(&self, x: &Tensor, range: std::ops::Range<usize>) -> Result<Tensor> {
        let layers = &self.layers[range];
        let mut y = x.clone();
        let mut i = 0;
        while i < layers.len() {
            let fused =
                layers.get(i + 1).and_then(|next| next.activation()).and_then(|a| layers[i].forward_then(&y, a));
            y = match fused {
                Some(out) => {
                    i += 1;
                    out?
                }
                None => layers[i].forward(&y)?,
            };
            i += 1;
        }
        Ok(y)
    }
}

impl From<Vec<Box<dyn Module>>> for Sequential {
    fn from(layers: Vec<Box<dyn Module>>) -> Sequential {
        Sequential { layers }
    }
}

impl Module for Sequential {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_range(x, 0..self.layers.len())
    }

    fn children(&self) -> Vec<(String, &dyn Module)> {
        self.layers.iter().enumerate().map(|(i, l)| (i.to_string(), &**l)).collect()
    }
}
