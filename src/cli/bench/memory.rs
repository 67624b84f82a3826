//! `ferrograd bench memory [--epochs 10] [--limit 320]`: whether memory stays flat across
//! epochs. LeNet-5 trains on the first `--limit` images of the bundled MNIST at a constant rate,
//! testing on all 10,000 after each epoch, with metrics, plots and checkpoint as `train` writes
//! them; after every epoch the pool's live and idle bytes and the process's resident memory are
//! printed. (Pooling the buffers of uploads once grew RSS by the test set, ~41 MB, per epoch.)

use super::super::setup::load_split;
use super::BenchArgs;
use anyhow::Context;
use ferrograd_device::Device;
use ferrograd_graph::nn::Module;
use ferrograd_graph::optim::{Adam, AdamConfig, ConstantLr};
use ferrograd_train::classifier::Classifier;
use ferrograd_train::data::select::ImageDatasetKind;
use ferrograd_train::data::Split;
use ferrograd_train::loader::{DataLoader, LoaderConfig};
use ferrograd_train::trainer::{fit, Evaluation, StepOutput, TrainTask, TrainerConfig};
use std::sync::Arc;

/// The classifier, printing the memory figures as each epoch after the first starts (after the
/// previous one's evaluation, plots and checkpoint).
struct Watched<'a> {
    inner: Classifier<'a>,
    device: Device,
}

impl Watched<'_> {
    fn report(&self, epochs_done: usize) -> anyhow::Result<()> {
        let mib = |b: u64| b as f64 / (1u64 << 20) as f64;
        let s = self.device.stats();
        println!("{epochs_done:>5}  {:>13.1}  {:>13.1}  {:>7.1}", mib(s.bytes_live), mib(s.bytes_pooled), mib(rss()?));
        Ok(())
    }
}

impl TrainTask for Watched<'_> {
    fn model(&self) -> &dyn Module {
        self.inner.model()
    }
    fn unit(&self) -> &'static str {
        self.inner.unit()
    }
    fn steps_per_epoch(&self) -> usize {
        self.inner.steps_per_epoch()
    }
    fn start_epoch(&mut self, epoch: usize) -> ferrograd_train::Result<()> {
        if epoch > 0 {
            self.report(epoch).map_err(|e| ferrograd_train::TrainError::Config(format!("{e:#}")))?;
        }
        self.inner.start_epoch(epoch)
    }
    fn step(&mut self, step: u64) -> ferrograd_train::Result<StepOutput> {
        self.inner.step(step)
    }
    fn evaluate(&mut self, tick: &mut dyn FnMut(usize, usize)) -> ferrograd_train::Result<Evaluation> {
        self.inner.evaluate(tick)
    }
}

/// The process's resident set, in bytes (Linux).
fn rss() -> anyhow::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status").context("reading /proc/self/status")?;
    let kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .context("no VmRSS in /proc/self/status")?;
    Ok(kb * 1024)
}

pub fn run(args: &BenchArgs) -> anyhow::Result<()> {
    let epochs = args.epochs.unwrap_or(10).max(1);
    let limit = args.limit.unwrap_or(320);
    let device = Device::gpu()?;
    let kind = ImageDatasetKind::Mnist;
    let train_set = Arc::new(load_split("lenet5", kind, Split::Train, None, Some(limit))?);
    let test_set = Arc::new(load_split("lenet5", kind, Split::Test, None, None)?);
    let train = DataLoader::new(train_set, LoaderConfig::train(64, 0))?;
    let test = DataLoader::new(test_set, LoaderConfig::eval(256))?;
    let model = ferrograd_models::registry::build("lenet5", 10, 1, &device, 0)?;
    let mut adam = Adam::new(model.named_parameters(), AdamConfig { lr: 1e-3, ..AdamConfig::default() });
    let out = scratch_dir()?;
    let config = TrainerConfig::new("lenet5", kind.name(), epochs, &out);
    println!("LeNet-5, {limit} MNIST training images, 10,000 test images, {epochs} epochs on {}", device.name());
    println!("epoch  pool live MiB  pool idle MiB  RSS MiB");
    let mut task =
        Watched { inner: Classifier::new(model.as_ref(), &train, Some(&test), &device), device: device.clone() };
    let result = fit(&mut task, &mut adam, &ConstantLr(1e-3), &device, &config);
    let cleaned = std::fs::remove_dir_all(&out);
    result?;
    task.report(epochs)?;
    cleaned.with_context(|| format!("removing {}", out.display()))
}

/// A fresh folder for the run's outputs under the system's temporary folder.
fn scratch_dir() -> anyhow::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("ferrograd-bench-memory-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}
