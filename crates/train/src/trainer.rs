//! The training loop, once for every task. A [`TrainTask`] says what differs between tasks:
//! how a batch becomes a loss, how to evaluate, what the throughput counts, what a checkpoint
//! keeps beyond the model and the optimizer, and which extra files to write. [`fit`] does the
//! rest: the learning rate per step, gradient clipping, the loss read back every `read_every`
//! steps (a step's only wait for the GPU), a stop on a non-finite training or test loss,
//! `metrics.csv`, the curves, `checkpoint.safetensors` after every epoch, exact resume, and
//! `summary.json`. With `config.replicas` it is one replica of a data-parallel job: the gradients
//! are averaged over the replicas after backward, the statistics summed, and rank 0 alone writes.

use crate::checkpoint::{self, CheckpointMeta};
use crate::distributed::data_parallel::DataParallel;
use crate::distributed::Replicas;
use crate::error::{Result, TrainError};
use crate::metrics::{read_metrics, MetricsRow, MetricsWriter};
use crate::plot::plot_training_curves;
use crate::preflight;
use crate::progress::Progress;
use crate::run_dir::{self, Existing};
use crate::stats_window::StatsWindow;
use crate::summary::Summary;
use ferrograd_device::kernels::amp::ScalerState;
use ferrograd_device::{Array, Device};
use ferrograd_graph::amp::{autocast, scaled_backward, unscale_and_step, GradScaler, Precision};
use ferrograd_graph::nn::Module;
use ferrograd_graph::optim::{LrSchedule, Optimizer};
use ferrograd_graph::random::{seed_position, set_seed_position};
use ferrograd_graph::Tensor;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

pub use crate::run_dir::{CHECKPOINT_FILE, METRICS_FILE, SUMMARY_FILE};
/// Prefix of the optimizer's entries in a checkpoint.
pub const OPTIMIZER_PREFIX: &str = "optimizer.";
/// Prefix of a task's own arrays in a checkpoint (the character LM's carried state).
pub const TASK_PREFIX: &str = "task.";
/// Checkpoint metadata the loop itself keeps; a task's metadata must use other keys.
const RUN_KEYS: [&str; 8] =
    ["seconds", "seed", "seed_draws", "planned_steps", "next_lr", LOSS_SCALE, GROWTH_TRACKER, SKIPPED_STEPS];
/// A mixed-precision run's loss scaler in the checkpoint's metadata (not among the arrays, so
/// the arrays stay exactly the model's and the optimizer's: a torchvision model loads them
/// with `strict=True` whatever the precision).
pub const LOSS_SCALE: &str = "loss_scale";
pub const GROWTH_TRACKER: &str = "loss_scale_growth_tracker";
pub const SKIPPED_STEPS: &str = "loss_scale_skipped_steps";

#[derive(Clone, Debug)]
pub struct TrainerConfig {
    /// stored in checkpoints and checked on resume (e.g. "lenet5")
    pub model_name: String,
    pub dataset_name: String,
    /// total epochs, counting those done before a resume
    pub epochs: usize,
    pub out_dir: PathBuf,
    /// what to do when `out_dir` already holds a run
    pub existing: Existing,
    /// read the accumulated loss back every this many steps (the only GPU wait of a step)
    pub read_every: usize,
    pub clip_grad_norm: Option<f64>,
    /// end after this many epochs (counted from the start of the run), as though interrupted:
    /// the schedule still spans `epochs`, and a resume continues it
    pub pause_after: Option<usize>,
    /// on resume, start the optimizer afresh instead of requiring its state in the checkpoint
    pub reset_optimizer: bool,
    /// train as one replica of a data-parallel job (the task reads its shard of each batch)
    pub replicas: Option<Arc<Replicas>>,
    /// `Mixed`: forward passes under [`autocast`] and a [`GradScaler`] (see `graph::amp`)
    pub precision: Precision,
}

impl TrainerConfig {
    pub fn new(model_name: &str, dataset_name: &str, epochs: usize, out_dir: &Path) -> TrainerConfig {
        TrainerConfig {
            model_name: model_name.into(),
            dataset_name: dataset_name.into(),
            epochs,
            out_dir: out_dir.to_path_buf(),
            existing: Existing::Refuse,
            read_every: 10,
            clip_grad_norm: None,
            pause_after: None,
            reset_optimizer: false,
            replicas: None,
            precision: Precision::F32,
        }
    }
}

/// One step's forward pass, nothing read back yet.
pub struct StepOutput {
    /// the batch's mean loss, to differentiate
    pub loss: Tensor,
    /// `[loss * examples]`, or `[loss * examples, correct]` for a task with training accuracy
    pub stats: Tensor,
    pub examples: usize,
    /// what the throughput counts in this batch (images, characters, sequences)
    pub units: usize,
}

/// What an evaluation measured; `None` for what a task does not measure.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Evaluation {
    pub loss: Option<f64>,
    /// fraction in [0, 1]
    pub accuracy: Option<f64>,
}

/// What a checkpoint keeps of a task beyond model and optimizer: arrays (saved under
/// [`TASK_PREFIX`]) and metadata (the model's sizes, a vocabulary, a data position).
#[derive(Debug, Default)]
pub struct TaskState {
    pub arrays: Vec<(String, Array)>,
    pub meta: BTreeMap<String, String>,
}

/// What differs between training tasks.
pub trait TrainTask {
    fn model(&self) -> &dyn Module;
    /// What the throughput counts, plural: "images", "characters", "sequences".
    fn unit(&self) -> &'static str;
    fn steps_per_epoch(&self) -> usize;
    /// Checks made before anything is written (say, that a batch fits the device); may
    /// return a note for the progress output.
    fn preflight(&mut self) -> Result<Option<String>> {
        Ok(None)
    }
    /// Called before the first step of epoch `epoch` (0-based).
    fn start_epoch(&mut self, epoch: usize) -> Result<()>;
    /// The forward pass of optimizer step `step` (0-based, counted over the whole run).
    fn step(&mut self, step: u64) -> Result<StepOutput>;
    /// Evaluates the model, calling `tick(done, total)` as it goes.
    fn evaluate(&mut self, tick: &mut dyn FnMut(usize, usize)) -> Result<Evaluation>;
    /// Files beyond metrics, curves and checkpoint, written after each epoch.
    fn write_outputs(&self, _dir: &Path) -> Result<()> {
        Ok(())
    }
    fn state(&self) -> Result<TaskState> {
        Ok(TaskState::default())
    }
    /// Restores what [`TrainTask::state`] saved (resuming).
    fn restore(&mut self, _state: TaskState) -> Result<()> {
        Ok(())
    }
}

/// Where a run starts: after `epoch` epochs and `step` steps that took `seconds`, with the
/// loss scaler's state if the checkpoint's run had one.
#[derive(Default)]
struct Start {
    epoch: usize,
    step: u64,
    seconds: f64,
    scaler: Option<ScalerState>,
}

/// Trains `task` for `config.epochs` epochs; see the module docs for the outputs. A run stopped
/// by a non-finite loss returns `Ok` with `stopped` set in the summary, the last good
/// checkpoint left in place.
pub fn fit(
    task: &mut dyn TrainTask,
    optimizer: &mut dyn Optimizer,
    schedule: &dyn LrSchedule,
    device: &Device,
    config: &TrainerConfig,
) -> Result<Summary> {
    // everything that can be refused is refused before anything is written
    config.validate()?;
    optimizer.validate()?;
    check_precision(config.precision, device)?;
    let note = task.preflight()?;
    let steps_per_epoch = task.steps_per_epoch();
    if config.read_every == 0 || steps_per_epoch == 0 {
        return Err(TrainError::Config(format!(
            "read_every ({}) and the steps per epoch ({steps_per_epoch}) must be at least 1",
            config.read_every
        )));
    }
    let replicas = config.replicas.as_deref();
    let root = replicas.is_none_or(Replicas::is_root);
    let dir = &config.out_dir;
    let removed = agree(replicas, if root { run_dir::prepare(dir, config.existing) } else { Ok(Vec::new()) })?;
    let mut progress = if root {
        Progress::new(config.epochs, steps_per_epoch, task.unit())
    } else {
        Progress::lines(steps_per_epoch, task.unit(), Box::new(std::io::sink()))
    };
    for path in removed {
        progress.message(&format!("removed {}, left by a checkpoint write that was killed", path.display()));
    }
    if let Some(note) = note {
        progress.message(&note);
    }
    let ckpt_path = dir.join(CHECKPOINT_FILE);
    let csv_path = dir.join(METRICS_FILE);
    let planned_steps = (config.epochs * steps_per_epoch) as u64;
    let start = match config.existing {
        Existing::Resume => resume(task, optimizer, schedule, device, config, planned_steps, &mut progress),
        _ => Ok(Start::default()),
    };
    let start = agree(replicas, start)?;
    let ddp = match &config.replicas {
        Some(r) => Some(DataParallel::new(r.clone(), task.model())?),
        None => None,
    };
    let scaler = match (config.precision, &start.scaler) {
        (Precision::F32, _) => None,
        (Precision::Mixed, None) => Some(GradScaler::new(device)?),
        (Precision::Mixed, Some(state)) => Some(GradScaler::with_state(device, state, Default::default())?),
    };
    let mut metrics = match (root, config.existing) {
        (false, _) => None,
        (true, Existing::Resume) => Some(MetricsWriter::resume(&csv_path, start.step)?),
        (true, _) => Some(MetricsWriter::create(&csv_path)?),
    };
    let mut step = start.step;
    let run_start = Instant::now();
    let seconds = |run_start: &Instant| start.seconds + run_start.elapsed().as_secs_f64();
    let mut summary = Summary {
        model: config.model_name.clone(),
        dataset: config.dataset_name.clone(),
        device: device.name(),
        epochs: start.epoch,
        final_train_loss: f64::NAN,
        test_loss: None,
        test_accuracy: None,
        wall_seconds: start.seconds,
        throughput: 0.0,
        throughput_unit: format!("{}/s", task.unit()),
        stopped: None,
    };
    let (mut units_trained, mut train_seconds) = (0usize, 0.0f64);
    // the loss at each read point, for loss.png (a resumed run has only its own)
    let mut step_losses: Vec<(f64, f64)> = Vec::new();
    let last_good = |epoch: usize| {
        if epoch > 0 {
            ckpt_path.display().to_string()
        } else {
            "none".to_string()
        }
    };

    let last_epoch = config.pause_after.map_or(config.epochs, |p| p.min(config.epochs));
    for epoch in start.epoch..last_epoch {
        task.model().train();
        task.start_epoch(epoch)?;
        progress.start_epoch();
        let epoch_start = Instant::now();
        let (mut window, mut sums, mut examples, mut units) = (StatsWindow::default(), Vec::new(), 0, 0);
        // units since the last read, this replica's (the read sums them over the replicas)
        let mut window_units = 0;
        for i in 0..steps_per_epoch {
            let lr = schedule.lr(step as usize);
            optimizer.set_lr(lr);
            let out = {
                let _amp = autocast(config.precision);
                task.step(step)?
            };
            scaled_backward(&out.loss, optimizer, scaler.as_ref())?;
            if let Some(ddp) = &ddp {
                // the scale is the same on every replica, so the scaled gradients average as the gradients do
                ddp.sync_gradients(out.examples)?;
            }
            unscale_and_step(optimizer, scaler.as_ref(), config.clip_grad_norm)?;
            window.add(&out.stats, out.examples)?;
            units += out.units;
            window_units += out.units;
            step += 1;
            let mut shown_loss = None;
            if (i + 1) % config.read_every == 0 || i + 1 == steps_per_epoch {
                let (read, n, job_units) = read_stats(replicas, window.read(), window_units)?;
                units = units - window_units + job_units;
                window_units = 0;
                let loss = read[0] / n.max(1) as f64;
                if !loss.is_finite() {
                    let reason = format!(
                        "loss became {loss} by step {step} (epoch {}); last good checkpoint: {}",
                        epoch + 1,
                        last_good(epoch)
                    );
                    return stop(&mut progress, summary, reason, seconds(&run_start), root.then_some(dir));
                }
                add_into(&mut sums, &read);
                examples += n;
                shown_loss = Some(loss);
                if let Some(metrics) = &mut metrics {
                    metrics.step_scalars(step, &[("train/step_loss", loss), ("train/step_lr", lr)])?;
                }
                step_losses.push((step as f64 / steps_per_epoch as f64, loss));
            }
            progress.step(shown_loss, units as f64 / epoch_start.elapsed().as_secs_f64().max(1e-9));
        }
        let epoch_seconds = epoch_start.elapsed().as_secs_f64();
        units_trained += units;
        train_seconds += epoch_seconds;

        if let Some(ddp) = &ddp {
            // what rank 0 saves is what every replica evaluates
            ddp.broadcast_buffers()?;
        }
        let eval = {
            let _amp = autocast(config.precision);
            task.evaluate(&mut |done, total| progress.eval(done, total))?
        };
        if let Some(loss) = eval.loss.filter(|l| !l.is_finite()) {
            let reason = format!(
                "test loss became {loss} after epoch {}; last good checkpoint: {}",
                epoch + 1,
                last_good(epoch)
            );
            return stop(&mut progress, summary, reason, seconds(&run_start), root.then_some(dir));
        }
        let n = examples.max(1) as f64;
        let row = MetricsRow {
            epoch: epoch + 1,
            step,
            train_loss: sums[0] / n,
            train_acc: sums.get(1).map(|c| c / n),
            test_loss: eval.loss,
            test_acc: eval.accuracy,
            lr: optimizer.lr(),
            throughput: units as f64 / epoch_seconds.max(1e-9),
            seconds: seconds(&run_start),
        };
        if let Some(metrics) = &mut metrics {
            let written = (|| {
                metrics.write(&row)?;
                let title = format!("{} on {}", config.model_name, config.dataset_name);
                plot_training_curves(&read_metrics(&csv_path)?, &step_losses, dir, &title)?;
                task.write_outputs(dir)?;
                let scaler_state = scaler.as_ref().map(GradScaler::state).transpose()?;
                let at = Position { epoch: epoch + 1, step, seconds: row.seconds, planned_steps };
                save(task, optimizer, schedule, config, &at, scaler_state)
            })();
            agree(replicas, written)?;
        } else {
            agree(replicas, Ok(()))?;
        }
        progress.finish_epoch(&row, config.epochs);

        summary.epochs = epoch + 1;
        summary.final_train_loss = row.train_loss;
        summary.test_loss = eval.loss;
        summary.test_accuracy = eval.accuracy;
        summary.wall_seconds = row.seconds;
        summary.throughput = units_trained as f64 / train_seconds.max(1e-9);
    }
    progress.finish();
    if root {
        summary.write(&dir.join(SUMMARY_FILE))?;
    }
    Ok(summary)
}

/// `local`, or the error of whichever replica failed.
fn agree<T>(replicas: Option<&Replicas>, local: Result<T>) -> Result<T> {
    match replicas {
        Some(r) => r.agree(local),
        None => local,
    }
}

/// A window's statistics, examples and units summed over the replicas.
fn read_stats(
    replicas: Option<&Replicas>,
    local: Result<(Vec<f64>, usize)>,
    units: usize,
) -> Result<(Vec<f64>, usize, usize)> {
    let Some(r) = replicas else { return local.map(|(sums, n)| (sums, n, units)) };
    let (mut sums, n) = r.agree(local)?;
    sums.extend([n as f64, units as f64]);
    r.sum_f64(&mut sums)?;
    let units = sums.pop().map_or(0, |u| u as usize);
    let n = sums.pop().map_or(0, |n| n as usize);
    Ok((sums, n, units))
}

fn add_into(sums: &mut Vec<f64>, add: &[f64]) {
    sums.resize(sums.len().max(add.len()), 0.0);
    sums.iter_mut().zip(add).for_each(|(s, a)| *s += a);
}

/// Ends a run whose loss stopped being finite: says why and writes the summary with the reason
/// into `dir` (rank 0's; `None` on the other replicas).
fn stop(
    progress: &mut Progress,
    mut summary: Summary,
    reason: String,
    wall_seconds: f64,
    dir: Option<&Path>,
) -> Result<Summary> {
    progress.message(&format!("stopping: {reason}"));
    progress.finish();
    summary.stopped = Some(reason);
    summary.wall_seconds = wall_seconds;
    if let Some(dir) = dir {
        summary.write(&dir.join(SUMMARY_FILE))?;
    }
    Ok(summary)
}

/// An error unless the device can run `precision` (mixed precision's kernels need f16).
fn check_precision(precision: Precision, device: &Device) -> Result<()> {
    let has_f16 = device.gpu_context().is_none_or(|g| g.caps().f16);
    if precision == Precision::Mixed && !has_f16 {
        return Err(TrainError::Config(format!(
            "precision mixed needs an adapter with f16 shaders (SHADER_F16); {} has none: use f32",
            device.name()
        )));
    }
    Ok(())
}

/// Where a checkpoint is taken: after `epoch` epochs and `step` steps, `seconds` in, of a run
/// planned for `planned_steps`.
struct Position {
    epoch: usize,
    step: u64,
    seconds: f64,
    planned_steps: u64,
}

fn save(
    task: &dyn TrainTask,
    optimizer: &dyn Optimizer,
    schedule: &dyn LrSchedule,
    config: &TrainerConfig,
    at: &Position,
    scaler: Option<ScalerState>,
) -> Result<()> {
    let Position { epoch, step, seconds, planned_steps } = *at;
    let state = task.state()?;
    if let Some(key) = state.meta.keys().find(|k| RUN_KEYS.contains(&k.as_str())) {
        return Err(TrainError::Config(format!("task checkpoint metadata key {key:?} is the trainer's")));
    }
    let mut arrays: Vec<_> = task.model().state_dict().into_iter().map(|(n, t)| (n, t.data())).collect();
    arrays.extend(optimizer.state_dict().into_iter().map(|(n, a)| (format!("{OPTIMIZER_PREFIX}{n}"), a)));
    arrays.extend(state.arrays.into_iter().map(|(n, a)| (format!("{TASK_PREFIX}{n}"), a)));
    let (seed, draws) = seed_position();
    let mut extra = state.meta;
    for (key, value) in [
        ("seconds", seconds.to_string()),
        ("seed", seed.to_string()),
        ("seed_draws", draws.to_string()),
        ("planned_steps", planned_steps.to_string()),
        ("next_lr", schedule.lr(step as usize).to_string()),
    ] {
        extra.insert(key.into(), value);
    }
    if let Some(s) = scaler {
        extra.insert(LOSS_SCALE.into(), s.scale.to_string());
        extra.insert(GROWTH_TRACKER.into(), s.growth_tracker.to_string());
        extra.insert(SKIPPED_STEPS.into(), s.skipped_steps.to_string());
    }
    let meta =
        CheckpointMeta { model: config.model_name.clone(), dataset: config.dataset_name.clone(), epoch, step, extra };
    checkpoint::save(&config.out_dir.join(CHECKPOINT_FILE), &arrays, &meta)
}

/// Restores model, optimizer, seed stream and task from the checkpoint, and says when the
/// schedule now gives another learning rate than the interrupted run would have.
fn resume(
    task: &mut dyn TrainTask,
    optimizer: &mut dyn Optimizer,
    schedule: &dyn LrSchedule,
    device: &Device,
    config: &TrainerConfig,
    planned_steps: u64,
    progress: &mut Progress,
) -> Result<Start> {
    let path = config.out_dir.join(CHECKPOINT_FILE);
    let mut ck = checkpoint::load(&path, device)?;
    if !ck.meta.dataset.is_empty() && ck.meta.dataset != config.dataset_name {
        return Err(TrainError::CheckpointMismatch {
            path,
            detail: format!("trained on {:?}, resuming on {:?}", ck.meta.dataset, config.dataset_name),
        });
    }
    let optimizer_state = ck.take_prefixed(OPTIMIZER_PREFIX);
    let task_arrays = ck.take_prefixed(TASK_PREFIX);
    checkpoint::load_model(&ck, &config.model_name, task.model())?;
    preflight::restore_optimizer(optimizer, &optimizer_state, config.reset_optimizer, &path)?;
    let number = |key: &str| -> Result<f64> {
        let raw =
            ck.meta.extra.get(key).ok_or_else(|| TrainError::format(&path, format!("metadata has no {key:?}")))?;
        raw.parse().map_err(|_| TrainError::format(&path, format!("metadata {key} = {raw:?} is not a number")))
    };
    let seconds = number("seconds")?;
    let seed: u64 = checkpoint::meta_value(&ck, "seed")?;
    set_seed_position((seed, checkpoint::meta_value(&ck, "seed_draws")?));
    let (saved_steps, saved_lr) = (number("planned_steps")? as u64, number("next_lr")?);
    let (epoch, step) = (ck.meta.epoch, ck.meta.step);
    let lr = schedule.lr(step as usize);
    progress.message(&format!("resumed from {} after epoch {epoch} (step {step})", path.display()));
    if epoch >= config.epochs {
        return Err(TrainError::Config(format!(
            "--resume: the run in {} has done {epoch} epochs already; ask for more than {epoch}",
            config.out_dir.display()
        )));
    }
    if saved_steps != planned_steps {
        let effect = if lr == saved_lr {
            format!("its learning rate at step {step} is {lr:.4e} either way")
        } else {
            format!("step {step} trains at lr {lr:.4e} where the interrupted run would have used {saved_lr:.4e}")
        };
        progress.message(&format!(
            "the schedule now spans {planned_steps} steps, not {saved_steps}, stretched over the new length: {effect}"
        ));
    }
    let scaler = match ck.meta.extra.get(LOSS_SCALE) {
        None => None,
        Some(_) => Some(ScalerState {
            scale: checkpoint::meta_value(&ck, LOSS_SCALE)?,
            growth_tracker: checkpoint::meta_value(&ck, GROWTH_TRACKER)?,
            found_inf: false,
            skipped_steps: checkpoint::meta_value(&ck, SKIPPED_STEPS)?,
        }),
    };
    task.restore(TaskState { arrays: task_arrays, meta: ck.meta.extra })?;
    Ok(Start { epoch, step, seconds, scaler })
}
