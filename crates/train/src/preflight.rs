//! Checks a classification run makes before it writes anything: its settings are in range, a
//! training step and an evaluation batch fit the device (evaluation falls back to smaller
//! batches that do), and a resumed optimizer finds its own state in the checkpoint.

use crate::error::{Result, TrainError};
use crate::loader::DataLoader;
use crate::trainer::TrainerConfig;
use ferrograd_device::{Array, Device, DeviceError};
use ferrograd_graph::functional::cross_entropy;
use ferrograd_graph::nn::Module;
use ferrograd_graph::optim::Optimizer;
use ferrograd_graph::range::{at_least_one, Allowed, OutOfRange};
use ferrograd_graph::{no_grad, GraphError, Tensor};
use std::collections::BTreeSet;
use std::path::Path;

impl TrainerConfig {
    /// Every setting in range: at least one epoch and one step between reads, a clipping
    /// norm > 0.
    pub fn validate(&self) -> std::result::Result<(), OutOfRange> {
        at_least_one("epochs", self.epochs)?;
        at_least_one("read_every", self.read_every)?;
        self.clip_grad_norm.map_or(Ok(()), |n| Allowed::Positive.check("clip_grad_norm", n))
    }
}

/// Runs one training step's forward and backward pass (in eval mode, so no running statistic,
/// dropout mask or weight changes) on a batch as large as `train`'s largest, and fails with
/// the size that fits when the device refuses it. Nothing is checked on the CPU device,
/// which has no limits.
pub fn check_train_batch(model: &dyn Module, train: &DataLoader, device: &Device, smoothing: f32) -> Result<()> {
    if !device.is_gpu() {
        return Ok(());
    }
    let batch = largest_batch(train);
    match largest_fitting(model, train, batch, device, Some(smoothing))? {
        (_, None) => Ok(()),
        (fit, Some(refused)) => Err(too_large("a training batch", batch, fit, &refused)),
    }
}

/// `test` itself when its batches fit the device for a forward pass, else the same data in
/// the largest batches that do (evaluating in chunks loses nothing), with a note saying so.
pub fn fit_eval_batches(
    model: &dyn Module,
    test: &DataLoader,
    device: &Device,
) -> Result<(DataLoader, Option<String>)> {
    let batch = largest_batch(test);
    let (fit, refused) =
        if device.is_gpu() { largest_fitting(model, test, batch, device, None)? } else { (batch, None) };
    let Some(refused) = refused else {
        return Ok((test.with_batch_size(test.config().batch_size)?, None));
    };
    if fit == 0 {
        return Err(too_large("an evaluation batch", batch, 0, &refused));
    }
    let note = format!("evaluating in batches of {fit}: a batch of {batch} does not fit the device");
    Ok((test.with_batch_size(fit)?, Some(note)))
}

fn largest_batch(loader: &DataLoader) -> usize {
    loader.local_batch_size()
}

/// The largest batch up to `batch` that the device takes (0 when not even one example fits),
/// and the device's refusal of `batch` if it refused. A refusal of a buffer's size suggests
/// the next try (sizes grow with the batch); running out of memory halves it.
fn largest_fitting(
    model: &dyn Module,
    loader: &DataLoader,
    batch: usize,
    device: &Device,
    smoothing: Option<f32>,
) -> Result<(usize, Option<DeviceError>)> {
    let mut first_refusal = None;
    let mut n = batch;
    while n > 0 {
        let Some(refused) = probe(model, loader, n, device, smoothing)? else { break };
        n = match &refused {
            DeviceError::TooLarge { bytes, limit, .. } if *bytes > 0 => {
                // 1/8 headroom: buffers come in buckets up to 12.5% larger than asked
                let scaled = (n as u128 * *limit as u128 * 8 / (*bytes as u128 * 9)) as usize;
                scaled.min(n - 1)
            }
            _ => n / 2,
        };
        first_refusal.get_or_insert(refused);
    }
    Ok((n, first_refusal))
}

/// `None` when a batch of `n` zero images runs (forward, and backward when `smoothing` is
/// given), or the device's refusal of an array's size.
fn probe(
    model: &dyn Module,
    loader: &DataLoader,
    n: usize,
    device: &Device,
    smoothing: Option<f32>,
) -> Result<Option<DeviceError>> {
    let [c, h, w] = loader.dataset().image_shape();
    model.eval();
    let outcome = (|| -> std::result::Result<(), GraphError> {
        let x = Tensor::zeros(device, &[n, c, h, w])?;
        match smoothing {
            Some(s) => {
                let y = Tensor::from_u32(device, &vec![0; n], &[n])?;
                cross_entropy(&model.forward(&x)?, &y, s)?.backward()?;
            }
            None => {
                let _no_grad = no_grad();
                model.forward(&x)?;
            }
        }
        Ok(device.sync()?)
    })();
    model.zero_grad();
    match outcome {
        Ok(()) => Ok(None),
        Err(GraphError::Device(e @ (DeviceError::TooLarge { .. } | DeviceError::OutOfMemory { .. }))) => Ok(Some(e)),
        Err(e) => Err(e.into()),
    }
}

fn too_large(what: &str, batch: usize, fit: usize, refused: &DeviceError) -> TrainError {
    let detail = match refused {
        DeviceError::TooLarge { kernel, bytes, limit, shape } => {
            format!("{kernel} needs {bytes} bytes for the array {shape:?}, over the adapter's limit of {limit} bytes")
        }
        DeviceError::OutOfMemory { kernel, bytes } => {
            format!("{kernel} ran out of GPU memory allocating {bytes} bytes")
        }
        other => other.to_string(),
    };
    let advice = if fit > 0 {
        format!("a batch size of {fit} fits")
    } else {
        "not even one example fits this adapter; use a smaller model or input".into()
    };
    TrainError::BatchTooLarge(format!("{what} of {batch} does not fit the device: {detail}; {advice}"))
}

/// Loads `state` into `optimizer` and checks that it was this optimizer's: every entry the
/// optimizer keeps must be in `state` and every entry of `state` used. Without the state
/// (or with `reset`), resuming would silently restart the optimizer, so that needs `reset`.
pub fn restore_optimizer(
    optimizer: &mut dyn Optimizer,
    state: &[(String, Array)],
    reset: bool,
    path: &Path,
) -> Result<()> {
    if reset || (state.is_empty() && optimizer.state_dict().is_empty()) {
        return Ok(());
    }
    let mismatch = |detail: String| TrainError::CheckpointMismatch {
        path: path.to_path_buf(),
        detail: format!("{detail}; set reset_optimizer (--reset-optimizer) to resume with a fresh optimizer"),
    };
    if state.is_empty() {
        return Err(mismatch("it holds no optimizer state".into()));
    }
    optimizer.load_state_dict(state)?;
    let saved: BTreeSet<&str> = state.iter().map(|(n, _)| n.as_str()).collect();
    let kept: Vec<String> = optimizer.state_dict().into_iter().map(|(n, _)| n).collect();
    let kept: BTreeSet<&str> = kept.iter().map(String::as_str).collect();
    if saved != kept {
        let unused: Vec<&str> = saved.difference(&kept).take(3).copied().collect();
        let missing: Vec<&str> = kept.difference(&saved).take(3).copied().collect();
        return Err(mismatch(format!(
            "its optimizer state is not this optimizer's (unused entries such as {unused:?}, missing ones such as \
             {missing:?})"
        )));
    }
    Ok(())
}
