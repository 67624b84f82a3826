//! Sequential MNIST, row by row: each 28x28 image is a sequence of 28 steps of 28 pixels, read
//! by an LSTM or GRU whose last output goes through a linear layer to the 10 classes. The
//! model maps images `[N, 1, 28, 28]` to logits, so it trains as an image classifier.

use crate::classifier::Classifier;
use crate::data::select::ImageDatasetKind;
use crate::data::{LoadOptions, Split};
use crate::error::{Result, TrainError};
use crate::loader::{DataLoader, LoaderConfig};
use crate::summary::Summary;
use crate::trainer::{fit, TrainerConfig};
use ferrograd_device::Device;
use ferrograd_graph::error::GraphError;
use ferrograd_graph::nn::recurrent::{CellKind, Recurrent, RecurrentConfig};
use ferrograd_graph::nn::{Linear, Module};
use ferrograd_graph::optim::{Adam, AdamConfig, ConstantLr};
use ferrograd_graph::{manual_seed, Tensor};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// `rnn` (batch-first, input 28 pixels per step) and `fc` (last output to the classes).
pub struct SeqMnistModel {
    pub rnn: Recurrent,
    pub fc: Linear,
}

impl SeqMnistModel {
    pub fn new(device: &Device, cell: CellKind, hidden_size: usize, num_layers: usize) -> Result<SeqMnistModel> {
        let config = RecurrentConfig::new(28, hidden_size).num_layers(num_layers).batch_first(true);
        Ok(SeqMnistModel {
            rnn: Recurrent::new(device, cell, config)?,
            fc: Linear::new(device, hidden_size, 10, true)?,
        })
    }
}

impl Module for SeqMnistModel {
    /// `[N, 1, H, W]` images (or `[N, H, W]`) read as H steps of W pixels -> logits `[N, 10]`.
    fn forward(&self, x: &Tensor) -> ferrograd_graph::Result<Tensor> {
        let s = x.shape();
        let (n, h, w) = match s.as_slice() {
            [n, 1, h, w] | [n, h, w] => (*n, *h, *w),
            _ => {
                return Err(GraphError::Shape {
                    op: "SeqMnistModel",
                    detail: format!("input {s:?}: expected [N, 1, H, W] or [N, H, W]"),
                })
            }
        };
        let out = self.rnn.forward(&x.reshape_to(&[n, h, w])?)?;
        self.fc.forward(&out.select(1, h - 1)?)
    }

    fn children(&self) -> Vec<(String, &dyn Module)> {
        vec![("rnn".into(), &self.rnn), ("fc".into(), &self.fc)]
    }
}

#[derive(Clone, Debug)]
pub struct SeqMnistConfig {
    /// `CellKind::Lstm` or `CellKind::Gru` (the plain RNN works too but barely learns this)
    pub cell: CellKind,
    pub hidden_size: usize,
    pub num_layers: usize,
    pub batch_size: usize,
    pub lr: f64,
    /// train on the first this many training images (`None`: all 60000)
    pub train_limit: Option<usize>,
    /// test on the first this many test images (`None`: all 10000)
    pub test_limit: Option<usize>,
    /// MNIST's folder (`None`: the bundled data/mnist)
    pub data_dir: Option<PathBuf>,
    pub seed: u64,
}

impl SeqMnistConfig {
    /// LSTM, 1 layer x 128, batch 64, Adam 1e-3, all of MNIST.
    pub fn new(cell: CellKind) -> SeqMnistConfig {
        SeqMnistConfig {
            cell,
            hidden_size: 128,
            num_layers: 1,
            batch_size: 64,
            lr: 1e-3,
            train_limit: None,
            test_limit: None,
            data_dir: None,
            seed: 0,
        }
    }

    /// e.g. "seq-lstm"
    pub fn model_name(&self) -> String {
        format!("seq-{}", super::cell_name(self.cell))
    }

    /// A run of `epochs` into `out_dir`, clipping the gradient norm at 1.
    pub fn trainer(&self, epochs: usize, out_dir: &Path) -> TrainerConfig {
        TrainerConfig {
            clip_grad_norm: Some(1.0),
            ..TrainerConfig::new(&self.model_name(), "mnist-rows", epochs, out_dir)
        }
    }
}

/// Trains row-by-row MNIST as an image classifier through [`fit`]; returns its summary.
pub fn train_seq_mnist(config: &SeqMnistConfig, run: &TrainerConfig, device: &Device) -> Result<Summary> {
    if config.batch_size == 0 {
        return Err(TrainError::Config("batch size must be at least 1".into()));
    }
    let load =
        |split, limit| ImageDatasetKind::Mnist.load(split, config.data_dir.as_deref(), &LoadOptions { pad: 0, limit });
    let train = DataLoader::new(
        Arc::new(load(Split::Train, config.train_limit)?),
        LoaderConfig::train(config.batch_size, config.seed),
    )?;
    let test = DataLoader::new(Arc::new(load(Split::Test, config.test_limit)?), LoaderConfig::eval(256))?;
    manual_seed(config.seed);
    let model = SeqMnistModel::new(device, config.cell, config.hidden_size, config.num_layers)?;
    let mut optimizer = Adam::new(model.named_parameters(), AdamConfig { lr: config.lr, ..AdamConfig::default() });
    let mut task = Classifier::new(&model, &train, Some(&test), device);
    fit(&mut task, &mut optimizer, &ConstantLr(config.lr), device, run)
}
