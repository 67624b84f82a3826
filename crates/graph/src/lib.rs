//! ferrograd-graph: `Tensor` with define-by-run reverse-mode autodiff, the ops, `nn`
//! layers, losses and optimizers — a small PyTorch.
//!
//! # Tensors and autodiff
//! A [`Tensor`] is an `Array` on a `Device` (CPU f64 reference or a GPU) plus autodiff
//! state. Ops are methods (`x.matmul(&w)?`, `x.relu()?`, `x.sum(&[1], true)?`) that
//! record kernels (nothing waits) and, when an input requires grad, a tape node. Then
//! `loss.backward()?` walks the tape in reverse and *adds* into each leaf's `.grad()`
//! (call `zero_grad` between steps). Only `item()`, `to_vec()` and friends read back.
//!
//! - leaves: [`Tensor::parameter`] (requires grad), [`Tensor::new`] / `from_f32` / `zeros`
//!   / `randn` (no grad); `requires_grad_(true)` to opt in later.
//! - [`no_grad()`] returns a guard that stops recording on this thread; `detach()` cuts a tensor
//!   from the tape; `backward_with(seed)` for non-scalar roots.
//! - every user mistake is a [`GraphError`] naming the op and the shapes.
//!
//! Ops by family (`ops::*`, forward and backward side by side): elementwise (unary,
//! broadcasting binary, scalar), reductions (`sum/mean/max/min`, `argmax`, `expand`),
//! `matmul`/`matmul_t`/`linear`, `softmax`/`log_softmax`, `reshape`/`view`/`flatten`/
//! `permute`/`transpose`, `cat`/`stack`/`split`/`chunk`/`narrow`/`select`/`index_select`,
//! `conv2d` (stride, padding, dilation, groups), `max_pool2d`/`avg_pool2d`/
//! `adaptive_avg_pool2d`, and in [`functional`]: batch/layer/local-response norm, dropout,
//! embedding, and the losses (cross-entropy with label smoothing, NLL, MSE, BCE-with-logits).
//!
//! # Modules
//! [`nn::Module`]: implement `forward` and list `children` (or `own_parameters` /
//! `own_buffers`); names, `state_dict`, `load_state_dict`, `train`/`eval`, `to_device`
//! come for free, in PyTorch's naming (`features.0.weight`, `layer1.0.bn1.running_mean`).
//!
//! ```ignore
//! use ferrograd_graph::prelude::*;
//!
//! struct Mlp { fc1: Linear, fc2: Linear }
//! impl Module for Mlp {
//!     fn forward(&self, x: &Tensor) -> ferrograd_graph::Result<Tensor> {
//!         self.fc2.forward(&self.fc1.forward(x)?.relu()?)
//!     }
//!     fn children(&self) -> Vec<(String, &dyn Module)> { children![self; fc1, fc2] }
//! }
//! let d = Device::gpu()?;
//! let model = Mlp { fc1: Linear::new(&d, 784, 128, true)?, fc2: Linear::new(&d, 128, 10, true)? };
//! let mut opt = Sgd::new(model.named_parameters(), SgdConfig { lr: 0.1, momentum: 0.9, ..Default::default() })?;
//! let loss = cross_entropy(&model.forward(&x)?, &labels, 0.0)?;   // labels: u32 tensor
//! opt.zero_grad();
//! loss.backward()?;
//! opt.step()?;
//! println!("{}", loss.item()?);                                     // the step's one wait
//! ```
//!
//! # Optimizers
//! [`optim`]: `Sgd` (momentum, dampening, Nesterov, weight decay), `Adam`, `Adam::adamw`,
//! `clip_grad_norm` (norm computed with kernels, returned unread), schedules (`StepLr`,
//! `MultiStepLr`, `CosineAnnealingLr`, `LinearWarmup`, `OneCycleLr`); optimizer state by
//! name (`fc.bias.exp_avg`, `conv1.weight.momentum_buffer`, `<param>.step`).
//!
//! # Mixed precision
//! [`amp`]: an `autocast` scope (products on f16 operands, f32 accumulation), f32 master
//! weights with f16 copies the optimizers refresh, and a device-side `GradScaler`.
//!
//! # Testing new ops
//! [`gradcheck`]: `gradcheck` (finite differences in f64 on the CPU) and `gpu_matches_cpu`.

pub mod amp;
pub mod autograd;
pub mod demo;
pub mod error;
pub mod gradcheck;
pub mod nn;
pub mod ops;
pub mod optim;
pub mod random;
pub mod range;
pub mod replicas;
pub mod tensor;

pub use autograd::{is_grad_enabled, no_grad, NoGradGuard};
pub use error::{GraphError, Result};
pub use random::manual_seed;
pub use tensor::Tensor;

/// Free-function ops (PyTorch's `torch.nn.functional`).
pub mod functional {
    pub use crate::ops::dropout::dropout;
    pub use crate::ops::embedding::embedding;
    pub use crate::ops::loss::{
        binary_cross_entropy_with_logits, cross_entropy, cross_entropy_per_sample, mse_loss, nll_loss, one_hot,
    };
    pub use crate::ops::norm::{batch_norm, layer_norm, local_response_norm, RunningStats};
}

/// What a model or training program imports: `use ferrograd_graph::prelude::*;`.
pub mod prelude {
    pub use crate::amp::{autocast, backward_and_step, GradScaler, Precision};
    pub use crate::children;
    pub use crate::functional::{binary_cross_entropy_with_logits, cross_entropy, mse_loss, nll_loss};
    pub use crate::nn::{
        self, AdaptiveAvgPool2d, AvgPool2d, BatchNorm1d, BatchNorm2d, Conv2d, Dropout, Embedding, Flatten, Gelu,
        Identity, LayerNorm, LeakyRelu, Linear, LocalResponseNorm, MaxPool2d, Module, Relu, Sequential, Sigmoid, Tanh,
    };
    pub use crate::ops::conv::Conv2dOptions;
    pub use crate::optim::{clip_grad_norm, Adam, AdamConfig, LrSchedule, Optimizer, Sgd, SgdConfig};
    pub use crate::{manual_seed, no_grad, GraphError, Tensor};
}
