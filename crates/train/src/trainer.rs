//! A generic classification trainer: any `Module` that maps `[N, C, H, W]` images to `[N, K]`
//! logits, any optimizer and learning-rate schedule (per optimizer step), a training loader
//! and an optional test loader. Each epoch it trains, evaluates, appends to `metrics.csv`,
//! redraws `loss.png` / `accuracy.png`, and saves `checkpoint.safetensors` (model state under
//! its own names, optimizer state under `optimizer.`); at the end it writes `summary.json`.
//!
//! The loss and the correct count are accumulated on the device and read back every
//! `read_every` steps, so a step waits for the GPU at most once. A NaN or infinite loss stops
//! the run with a message and leaves the last good checkpoint in place.

use crate::checkpoint::{self, CheckpointMeta};
use crate::error::{Result, TrainError};
use crate::loader::{Batch, DataLoader};
use crate::metrics::{read_metrics, MetricsRow, MetricsWriter};
use crate::plot::plot_training_curves;
use crate::preflight;
use crate::progress::Progress;
use crate::summary::Summary;
use ferrograd_device::Device;
use ferrograd_graph::functional::{cross_entropy, one_hot};
use ferrograd_graph::nn::Module;
use ferrograd_graph::optim::{clip_grad_norm, LrSchedule, Optimizer};
use ferrograd_graph::{no_grad, Tensor};
use std::path::{Path, PathBuf};
use std::time::Instant;

pub const CHECKPOINT_FILE: &str = "checkpoint.safetensors";
pub const METRICS_FILE: &str = "metrics.csv";
pub const SUMMARY_FILE: &str = "summary.json";
/// Prefix of the optimizer's entries in a checkpoint.
pub const OPTIMIZER_PREFIX: &str = "optimizer.";

#[derive(Clone, Debug)]
pub struct TrainerConfig {
    /// stored in checkpoints and checked on resume (e.g. "lenet5")
    pub model_name: String,
    pub dataset_name: String,
    /// total epochs, counting those done before a resume
    pub epochs: usize,
    pub out_dir: PathBuf,
    /// continue from `out_dir/checkpoint.safetensors`
    pub resume: bool,
    /// read the accumulated loss back every this many steps (the only GPU wait of a step)
    pub read_every: usize,
    pub label_smoothing: f32,
    pub clip_grad_norm: Option<f64>,
    /// on resume, start the optimizer afresh instead of requiring its state in the checkpoint
    pub reset_optimizer: bool,
}

impl TrainerConfig {
    pub fn new(model_name: &str, dataset_name: &str, epochs: usize, out_dir: &Path) -> TrainerConfig {
        TrainerConfig {
            model_name: model_name.into(),
            dataset_name: dataset_name.into(),
            epochs,
            out_dir: out_dir.to_path_buf(),
            resume: false,
            read_every: 10,
            label_smoothing: 0.0,
            clip_grad_norm: None,
            reset_optimizer: false,
        }
    }
}

/// Mean loss and accuracy (a fraction) of `model` over every batch of `loader`, in eval mode
/// without gradients; one GPU wait at the end.
pub fn evaluate(model: &dyn Module, loader: &DataLoader, device: &Device) -> Result<(f64, f64)> {
    model.eval();
    let _no_grad = no_grad();
    let mut acc = Accumulator::default();
    for batch in loader.epoch(0)? {
        let (x, y) = upload(&batch, device)?;
        let logits = model.forward(&x)?;
        let loss = cross_entropy(&logits, &y, 0.0)?;
        acc.add(batch_stats(&logits, &loss, &y)?, batch.len())?;
    }
    let (loss_sum, correct, n) = acc.read()?;
    Ok((loss_sum / n.max(1) as f64, correct / n.max(1) as f64))
}

/// Trains `model` for `config.epochs` epochs; see the module docs for the outputs. A run
/// stopped by a NaN loss returns `Ok` with `stopped` set in the summary.
pub fn train_classifier(
    model: &dyn Module,
    optimizer: &mut dyn Optimizer,
    schedule: &dyn LrSchedule,
    train: &DataLoader,
    test: Option<&DataLoader>,
    device: &Device,
    config: &TrainerConfig,
) -> Result<Summary> {
    // everything that can be refused is refused before anything is written
    config.validate()?;
    optimizer.validate()?;
    preflight::check_train_batch(model, train, device, config.label_smoothing)?;
    let test = test.map(|t| preflight::fit_eval_batches(model, t, device)).transpose()?;
    std::fs::create_dir_all(&config.out_dir).map_err(|e| TrainError::io(&config.out_dir, e))?;
    let ckpt_path = config.out_dir.join(CHECKPOINT_FILE);
    let csv_path = config.out_dir.join(METRICS_FILE);
    let steps_per_epoch = train.batches_per_epoch();
    let mut progress = Progress::new(config.epochs, steps_per_epoch);
    if let Some((_, Some(note))) = &test {
        progress.message(note);
    }

    let (start_epoch, mut step, seconds_before) = if config.resume {
        let (epoch, step, seconds) = resume(model, optimizer, device, config, &ckpt_path)?;
        progress.message(&format!("resumed from {} after epoch {epoch} (step {step})", ckpt_path.display()));
        (epoch, step, seconds)
    } else {
        (0, 0, 0.0)
    };
    let mut metrics =
        if config.resume { MetricsWriter::resume(&csv_path, step)? } else { MetricsWriter::create(&csv_path)? };

    let run_start = Instant::now();
    let mut summary = Summary {
        model: config.model_name.clone(),
        dataset: config.dataset_name.clone(),
        device: device.name(),
        epochs: start_epoch,
        final_train_loss: f64::NAN,
        test_accuracy: None,
        wall_seconds: seconds_before,
        images_per_sec: 0.0,
        stopped: None,
    };
    let (mut images_trained, mut train_seconds) = (0usize, 0.0f64);
    // the loss at each read point, for loss.png and the event file; a resumed run has only
    // its own (the event file is rewritten from metrics.csv, which holds epochs)
    let mut step_losses: Vec<(f64, f64)> = Vec::new();

    for epoch in start_epoch..config.epochs {
        model.train();
        progress.start_epoch(0);
        let epoch_start = Instant::now();
        let mut epoch_acc = (0.0, 0.0, 0usize); // loss sum, correct, examples
        let mut window = Accumulator::default();
        let mut stopped = None;
        for (i, batch) in train.epoch(epoch)?.enumerate() {
            let lr = schedule.lr(step as usize);
            optimizer.set_lr(lr);
            let stats = train_step(model, optimizer, &batch, device, config)?;
            window.add(stats, batch.len())?;
            step += 1;
            let mut shown_loss = None;
            if (i + 1) % config.read_every == 0 || i + 1 == steps_per_epoch {
                let (loss_sum, correct, n) = window.read()?;
                if !loss_sum.is_finite() {
                    stopped = Some(format!(
                        "loss became {loss_sum} by step {step} (epoch {}); last good checkpoint: {}",
                        epoch + 1,
                        if epoch > 0 || config.resume { ckpt_path.display().to_string() } else { "none".into() }
                    ));
                    break;
                }
                epoch_acc = (epoch_acc.0 + loss_sum, epoch_acc.1 + correct, epoch_acc.2 + n);
                shown_loss = Some(loss_sum / n as f64);
                metrics.step_scalars(step, &[("train/step_loss", loss_sum / n as f64), ("train/step_lr", lr)])?;
                step_losses.push((step as f64 / steps_per_epoch as f64, loss_sum / n as f64));
            }
            let elapsed = epoch_start.elapsed().as_secs_f64().max(1e-9);
            progress.step(shown_loss, ((i + 1) * train.config().batch_size) as f64 / elapsed);
        }
        if let Some(reason) = stopped {
            let wall_seconds = seconds_before + run_start.elapsed().as_secs_f64();
            stop_run(&mut progress, &mut summary, reason, wall_seconds, &config.out_dir)?;
            return Ok(summary);
        }
        let epoch_seconds = epoch_start.elapsed().as_secs_f64();
        images_trained += epoch_acc.2;
        train_seconds += epoch_seconds;

        let (test_loss, test_acc) = match &test {
            Some((loader, _)) => evaluate(model, loader, device).map(|(l, a)| (Some(l), Some(a)))?,
            None => (None, None),
        };
        let n = epoch_acc.2.max(1) as f64;
        let row = MetricsRow {
            epoch: epoch + 1,
            step,
            train_loss: epoch_acc.0 / n,
            train_acc: Some(epoch_acc.1 / n),
            test_loss,
            test_acc,
            lr: optimizer.lr(),
            images_per_sec: epoch_acc.2 as f64 / epoch_seconds.max(1e-9),
            seconds: seconds_before + run_start.elapsed().as_secs_f64(),
        };
        metrics.write(&row)?;
        plot_training_curves(
            &read_metrics(&csv_path)?,
            &step_losses,
            &config.out_dir,
            &format!("{} on {}", config.model_name, config.dataset_name),
        )?;
        save_checkpoint(model, optimizer, config, &ckpt_path, epoch + 1, step, row.seconds)?;
        progress.finish_epoch(&row, config.epochs);

        summary.epochs = epoch + 1;
        summary.final_train_loss = row.train_loss;
        summary.test_accuracy = test_acc;
        summary.wall_seconds = row.seconds;
        summary.images_per_sec = images_trained as f64 / train_seconds.max(1e-9);
    }
    progress.finish();
    summary.write(&config.out_dir.join(SUMMARY_FILE))?;
    Ok(summary)
}

/// Forward, backward and update for one batch; returns the unread `[loss * n, correct]`.
fn train_step(
    model: &dyn Module,
    optimizer: &mut dyn Optimizer,
    batch: &Batch,
    device: &Device,
    config: &TrainerConfig,
) -> Result<Tensor> {
    let (x, y) = upload(batch, device)?;
    let logits = model.forward(&x)?;
    let loss = cross_entropy(&logits, &y, config.label_smoothing)?;
    optimizer.zero_grad();
    loss.backward()?;
    if let Some(max_norm) = config.clip_grad_norm {
        clip_grad_norm(&model.parameters(), max_norm)?;
    }
    optimizer.step()?;
    let _no_grad = no_grad();
    batch_stats(&logits.detach(), &loss.detach(), &y)
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

/// Ends a run whose loss stopped being finite: says why and writes the summary with the reason.
pub(crate) fn stop_run(
    progress: &mut Progress,
    summary: &mut Summary,
    reason: String,
    wall_seconds: f64,
    out_dir: &Path,
) -> Result<()> {
    progress.message(&format!("stopping: {reason}"));
    progress.finish();
    summary.stopped = Some(reason);
    summary.wall_seconds = wall_seconds;
    summary.write(&out_dir.join(SUMMARY_FILE))
}

/// Sums per-batch `[loss sum, correct]` on the device until read.
#[derive(Default)]
struct Accumulator {
    sum: Option<Tensor>,
    examples: usize,
}

impl Accumulator {
    fn add(&mut self, stats: Tensor, examples: usize) -> Result<()> {
        self.sum = Some(match self.sum.take() {
            Some(s) => s.add(&stats)?,
            None => stats,
        });
        self.examples += examples;
        Ok(())
    }

    /// (loss sum, correct, examples) since the last read; one GPU wait. Resets the sums.
    fn read(&mut self) -> Result<(f64, f64, usize)> {
        let values = match self.sum.take() {
            Some(s) => s.to_vec_f64()?,
            None => vec![0.0, 0.0],
        };
        let n = std::mem::take(&mut self.examples);
        Ok((values[0], values[1], n))
    }
}

fn save_checkpoint(
    model: &dyn Module,
    optimizer: &dyn Optimizer,
    config: &TrainerConfig,
    path: &Path,
    epoch: usize,
    step: u64,
    seconds: f64,
) -> Result<()> {
    let mut arrays: Vec<_> = model.state_dict().into_iter().map(|(n, t)| (n, t.data())).collect();
    arrays.extend(optimizer.state_dict().into_iter().map(|(n, a)| (format!("{OPTIMIZER_PREFIX}{n}"), a)));
    let meta = CheckpointMeta {
        model: config.model_name.clone(),
        dataset: config.dataset_name.clone(),
        epoch,
        step,
        extra: [("seconds".to_string(), seconds.to_string())].into(),
    };
    checkpoint::save(path, &arrays, &meta)
}

/// Restores model and optimizer from the checkpoint; returns (epochs done, steps done, seconds).
fn resume(
    model: &dyn Module,
    optimizer: &mut dyn Optimizer,
    device: &Device,
    config: &TrainerConfig,
    path: &Path,
) -> Result<(usize, u64, f64)> {
    if !path.is_file() {
        return Err(TrainError::NotFound(format!("--resume: no checkpoint at {}", path.display())));
    }
    let mut ck = checkpoint::load(path, device)?;
    if !ck.meta.dataset.is_empty() && ck.meta.dataset != config.dataset_name {
        return Err(TrainError::CheckpointMismatch {
            path: path.to_path_buf(),
            detail: format!("trained on {:?}, resuming on {:?}", ck.meta.dataset, config.dataset_name),
        });
    }
    let optimizer_state = ck.take_prefixed(OPTIMIZER_PREFIX);
    let expected: Vec<(String, Vec<usize>)> = model.state_dict().into_iter().map(|(n, t)| (n, t.shape())).collect();
    ck.check_compatible(&config.model_name, &expected)?;
    model.load_state_dict(&ck.arrays, true)?;
    preflight::restore_optimizer(optimizer, &optimizer_state, config.reset_optimizer, path)?;
    let seconds = ck.meta.extra.get("seconds").and_then(|s| s.parse().ok()).unwrap_or(0.0);
    Ok((ck.meta.epoch, ck.meta.step, seconds))
}
