//! Normalisation layers: `BatchNorm` (1d and 2d are the same layer on `[N, C]`/`[N, C, L]`
//! and `[N, C, H, W]`), `LayerNorm`, `LocalResponseNorm`.

use crate::error::{shape_err, Result};
use crate::nn::{Mode, Module};
use crate::ops::norm::{batch_norm, layer_norm, local_response_norm, RunningStats};
use crate::ops::sync_norm::batch_norm_synced;
use crate::replicas::sync_batch_norm;
use crate::tensor::Tensor;
use ferrograd_device::kernels::fill;
use ferrograd_device::{Array, DType, Device};

/// Batch normalisation over dim 1 with running statistics (PyTorch's defaults:
/// `eps` 1e-5, `momentum` 0.1, affine, running variance unbiased).
/// State: `weight`, `bias`, `running_mean`, `running_var`, `num_batches_tracked`.
pub struct BatchNorm {
    pub weight: Tensor,
    pub bias: Tensor,
    pub running_mean: Tensor,
    pub running_var: Tensor,
    pub eps: f32,
    pub momentum: f32,
    /// training batches seen: a u32 scalar kept on the CPU device (counted without the GPU)
    pub num_batches_tracked: Tensor,
    /// expected input rank (2 or 3 for 1d, 4 for 2d), checked in `forward`
    ranks: &'static [usize],
    mode: Mode,
}

pub type BatchNorm1d = BatchNorm;
pub type BatchNorm2d = BatchNorm;

impl BatchNorm {
    fn make(device: &Device, channels: usize, ranks: &'static [usize]) -> Result<BatchNorm> {
        let full = |v: f32| -> Result<Array> { Ok(fill::full(device, &[channels], DType::F32, v)?) };
        Ok(BatchNorm {
            weight: Tensor::parameter(full(1.0)?),
            bias: Tensor::parameter(full(0.0)?),
            running_mean: Tensor::new(full(0.0)?),
            running_var: Tensor::new(full(1.0)?),
            eps: 1e-5,
            momentum: 0.1,
            num_batches_tracked: Tensor::new(Array::cpu(vec![0.0], &[], DType::U32)),
            ranks,
            mode: Mode::new(),
        })
    }

    /// For `[N, C]` or `[N, C, L]` inputs.
    pub fn new_1d(device: &Device, channels: usize) -> Result<BatchNorm> {
        BatchNorm::make(device, channels, &[2, 3])
    }

    /// For `[N, C, H, W]` inputs.
    pub fn new_2d(device: &Device, channels: usize) -> Result<BatchNorm> {
        BatchNorm::make(device, channels, &[4])
    }
}

impl Module for BatchNorm {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let c = self.weight.numel();
        let s = x.shape();
        if !self.ranks.contains(&s.len()) || s[1] != c {
            return shape_err(
                "BatchNorm",
                format!("input {s:?}: expected rank {:?} with {c} channels in dim 1", self.ranks),
            );
        }
        let training = self.mode.training();
        if training {
            // a counter moved to a GPU (to_device, load) is read once and comes back to the CPU
            let n = self.num_batches_tracked.data().item()?;
            self.num_batches_tracked.set_data(Array::cpu(vec![n + 1.0], &[], DType::U32));
        }
        let stats = RunningStats { mean: &self.running_mean, var: &self.running_var, momentum: self.momentum };
        match sync_batch_norm().filter(|_| training) {
            Some(sum) => batch_norm_synced(x, stats, &self.weight, &self.bias, self.eps, sum),
            None => batch_norm(x, Some(stats), Some(&self.weight), Some(&self.bias), training, self.eps),
        }
    }

    fn own_parameters(&self) -> Vec<(String, Tensor)> {
        vec![("weight".into(), self.weight.clone()), ("bias".into(), self.bias.clone())]
    }

    fn own_buffers(&self) -> Vec<(String, Tensor)> {
        vec![
            ("running_mean".into(), self.running_mean.clone()),
            ("running_var".into(), self.running_var.clone()),
            ("num_batches_tracked".into(), self.num_batches_tracked.clone()),
        ]
    }

    fn set_own_training(&self, training: bool) {
        self.mode.set(training)
    }
}

/// Layer normalisation over the trailing `normalized_shape` (eps 1e-5, affine).
pub struct LayerNorm {
    pub weight: Tensor,
    pub bias: Tensor,
    pub normalized_shape: Vec<usize>,
    pub eps: f32,
}

impl LayerNorm {
    pub fn new(device: &Device, normalized_shape: &[usize]) -> Result<LayerNorm> {
        let full =
            |v: f32| -> Result<Tensor> { Ok(Tensor::parameter(fill::full(device, normalized_shape, DType::F32, v)?)) };
        Ok(LayerNorm { weight: full(1.0)?, bias: full(0.0)?, normalized_shape: normalized_shape.to_vec(), eps: 1e-5 })
    }
}

impl Module for LayerNorm {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        layer_norm(x, &self.normalized_shape, Some(&self.weight), Some(&self.bias), self.eps)
    }

    fn own_parameters(&self) -> Vec<(String, Tensor)> {
        vec![("weight".into(), self.weight.clone()), ("bias".into(), self.bias.clone())]
    }
}

/// PyTorch's `LocalResponseNorm(size, alpha=1e-4, beta=0.75, k=1)`.
pub struct LocalResponseNorm {
    pub size: usize,
    pub alpha: f32,
    pub beta: f32,
    pub k: f32,
}

impl LocalResponseNorm {
    pub fn new(size: usize, alpha: f32, beta: f32, k: f32) -> LocalResponseNorm {
        LocalResponseNorm { size, alpha, beta, k }
    }
}

impl Module for LocalResponseNorm {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        local_response_norm(x, self.size, self.alpha, self.beta, self.k)
    }
}
