//! `Embedding`: a `[num_embeddings, dim]` table looked up by u32 indices (init N(0, 1), as PyTorch).

use crate::error::Result;
use crate::nn::{init, Module};
use crate::ops::embedding::embedding;
use crate::tensor::Tensor;
use ferrograd_device::Device;

pub struct Embedding {
    pub weight: Tensor,
}

impl Embedding {
    pub fn new(device: &Device, num_embeddings: usize, dim: usize) -> Result<Embedding> {
        Ok(Embedding { weight: Tensor::parameter(init::normal(device, &[num_embeddings, dim], 0.0, 1.0)?) })
    }
}

impl Module for Embedding {
    /// `indices` (u32, any shape) -> `[..., dim]`.
    fn forward(&self, indices: &Tensor) -> Result<Tensor> {
        embedding(indices, &self.weight)
    }

    fn own_parameters(&self) -> Vec<(String, Tensor)> {
        vec![("weight".into(), self.weight.clone())]
    }
}
