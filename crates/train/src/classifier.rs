//! Image classification as a [`TrainTask`]: any `Module` that maps `[N, C, H, W]` images to
//! `[N, K]` logits, trained with cross-entropy (optionally label-smoothed) on a data loader's
//! batches and evaluated on a test loader (loss and accuracy), by [`crate::trainer::fit`].
//! As a replica of a data-parallel job its loaders are sharded and the evaluation's sums are
//! added over the replicas.

use crate::distributed::Replicas;
use crate::error::{Result, TrainError};
use crate::loader::{Batch, Batches, DataLoader};
use crate::preflight;
use crate::stats_window::StatsWindow;
use crate::trainer::{Evaluation, StepOutput, TrainTask};
use ferrograd_device::Device;
use ferrograd_graph::functional::{cross_entropy, one_hot};
use ferrograd_graph::nn::Module;
use ferrograd_graph::range::Allowed;
use ferrograd_graph::{no_grad, Tensor};
use std::sync::Arc;

pub struct Classifier<'a> {
    pub model: &'a dyn Module,
    pub train: &'a DataLoader,
    pub test: Option<&'a DataLoader>,
    pub label_smoothing: f32,
    pub device: Device,
    /// set when this is one replica of a data-parallel job: the test counts are summed over them
    pub replicas: Option<Arc<Replicas>>,
    batches: Option<Batches>,
    /// the test set in batches that fit the device, where `test`'s do not (preflight)
    fitted_test: Option<DataLoader>,
}

impl<'a> Classifier<'a> {
    pub fn new(model: &'a dyn Module, train: &'a DataLoader, test: Option<&'a DataLoader>, device: &Device) -> Self {
        Classifier {
            model,
            train,
            test,
            label_smoothing: 0.0,
            device: device.clone(),
            replicas: None,
            batches: None,
            fitted_test: None,
        }
    }
}

impl TrainTask for Classifier<'_> {
    fn model(&self) -> &dyn Module {
        self.model
    }

    fn unit(&self) -> &'static str {
        "images"
    }

    fn steps_per_epoch(&self) -> usize {
        self.train.batches_per_epoch()
    }

    fn preflight(&mut self) -> Result<Option<String>> {
        Allowed::Fraction.check("label_smoothing", self.label_smoothing as f64)?;
        preflight::check_train_batch(self.model, self.train, &self.device, self.label_smoothing)?;
        let Some(test) = self.test else { return Ok(None) };
        let (fitted, note) = preflight::fit_eval_batches(self.model, test, &self.device)?;
        if note.is_some() {
            self.fitted_test = Some(fitted);
        }
        Ok(note)
    }

    fn start_epoch(&mut self, epoch: usize) -> Result<()> {
        self.batches = Some(self.train.epoch(epoch)?);
        Ok(())
    }

    fn step(&mut self, _step: u64) -> Result<StepOutput> {
        let batch = self.batches.as_mut().and_then(Iterator::next);
        let batch = batch.ok_or_else(|| TrainError::Config("the loader ended before the epoch's last step".into()))?;
        let (x, y) = upload(&batch, &self.device)?;
        let logits = self.model.forward(&x)?;
        let loss = cross_entropy(&logits, &y, self.label_smoothing)?;
        let stats = {
            let _no_grad = no_grad();
            batch_stats(&logits.detach(), &loss.detach(), &y)?
        };
        Ok(StepOutput { loss, stats, examples: batch.len(), units: batch.len() })
    }

    fn evaluate(&mut self, tick: &mut dyn FnMut(usize, usize)) -> Result<Evaluation> {
        self.batches = None;
        let Some(test) = self.fitted_test.as_ref().or(self.test) else { return Ok(Evaluation::default()) };
        let local = evaluate_with(self.model, test, &self.device, tick);
        let (sums, n) = match &self.replicas {
            Some(r) => {
                let (mut sums, n) = r.agree(local)?;
                sums.resize(2, 0.0); // a replica that had no test example has no sums
                sums.push(n);
                r.sum_f64(&mut sums)?;
                let n = sums.pop().unwrap_or(0.0);
                (sums, n)
            }
            None => local?,
        };
        let (loss, accuracy) = means(&sums, n);
        Ok(Evaluation { loss: Some(loss), accuracy: Some(accuracy) })
    }
}

/// Mean loss and accuracy (a fraction) of `model` over every batch of `loader`, in eval mode
/// without gradients; one GPU wait at the end.
pub fn evaluate(model: &dyn Module, loader: &DataLoader, device: &Device) -> Result<(f64, f64)> {
    let (sums, n) = evaluate_with(model, loader, device, &mut |_, _| {})?;
    Ok(means(&sums, n))
}

/// Mean loss and accuracy from `[loss * n, correct]` sums over `n` examples.
fn means(sums: &[f64], n: f64) -> (f64, f64) {
    let n = n.max(1.0);
    (sums.first().map_or(f64::NAN, |l| l / n), sums.get(1).map_or(f64::NAN, |c| c / n))
}

fn evaluate_with(
    model: &dyn Module,
    loader: &DataLoader,
    device: &Device,
    tick: &mut dyn FnMut(usize, usize),
) -> Result<(Vec<f64>, f64)> {
    model.eval();
    let _no_grad = no_grad();
    let mut window = StatsWindow::default();
    let total = loader.batches_per_epoch();
    for (i, batch) in loader.epoch(0)?.enumerate() {
        if batch.is_empty() {
            continue; // a replica's empty shard of a last batch smaller than the job
        }
        let (x, y) = upload(&batch, device)?;
        let logits = model.forward(&x)?;
        let loss = cross_entropy(&logits, &y, 0.0)?;
        window.add(&batch_stats(&logits, &loss, &y)?, batch.len())?;
        tick(i + 1, total);
    }
    let (sums, n) = window.read()?;
    Ok((sums, n as f64))
}

fn upload(batch: &Batch, device: &Device) -> Result<(Tensor, Tensor)> {
    let x = Tensor::from_f32(device, &batch.images, &batch.shape)?;
    let y = Tensor::from_u32(device, &batch.labels, &[batch.len()])?;
    Ok((x, y))
}

/// `[mean loss * n, number of correct predictions]` of a batch, on the device. A prediction
/// is correct when the label's logit equals the row's maximum (all in f32: there is no
/// u32-to-f32 cast kernel for comparing `argmax` with the labels).
fn batch_stats(logits: &Tensor, mean_loss: &Tensor, labels: &Tensor) -> Result<Tensor> {
    let n = labels.numel() as f32;
    let shape = logits.shape();
    if shape.len() != 2 {
        return Err(TrainError::Config(format!("the model's output {shape:?} is not [N, classes] logits")));
    }
    let is_max = logits.eq_elementwise(&logits.max(&[1], true)?)?;
    let correct = is_max.mul(&one_hot(labels, shape[1])?)?.sum_all()?;
    Ok(Tensor::stack(&[&mean_loss.mul_scalar(n)?, &correct], 0)?)
}
