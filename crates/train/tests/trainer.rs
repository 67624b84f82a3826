//! The training loop end to end with the image classifier on the CPU reference device: a
//! linear model on a small separable data set learns, writes its outputs, resumes, stops on a
//! non-finite training or test loss, and keeps the runs already in its folder safe.

use ferrograd_device::{Array, Device};
use ferrograd_graph::nn::{Flatten, Linear, Module, Sequential};
use ferrograd_graph::optim::{ConstantLr, LrSchedule, Optimizer, Sgd, SgdConfig};
use ferrograd_train::checkpoint;
use ferrograd_train::classifier::{evaluate, Classifier};
use ferrograd_train::data::{ImageDataset, Normalization};
use ferrograd_train::loader::{DataLoader, LoaderConfig};
use ferrograd_train::metrics::read_metrics;
use ferrograd_train::run_dir::{self, Existing};
use ferrograd_train::summary::Summary;
use ferrograd_train::trainer::{
    fit, Evaluation, StepOutput, TrainTask, TrainerConfig, CHECKPOINT_FILE, METRICS_FILE, SUMMARY_FILE,
};
use std::path::Path;
use std::sync::Arc;

/// `n` 1x4x4 images: class 0 is bright on the left half, class 1 on the right, plus noise;
/// then a fraction `flip` of the labels is swapped, so the loss stays well above zero and
/// every epoch still moves the weights.
fn dataset(n: usize, seed: u64, flip: f64) -> Arc<ImageDataset> {
    let mut rng = ferrograd_device::testing::Rng::new(seed);
    let mut images = Vec::with_capacity(n * 16);
    let mut labels: Vec<u32> = (0..n as u32).map(|i| i % 2).collect();
    for &label in &labels {
        for k in 0..16 {
            let left = k % 4 < 2;
            let bright = (label == 0) == left;
            images.push(if bright { 1.0 } else { -1.0 } + 0.8 * (rng.uniform() as f32 - 0.5));
        }
    }
    for l in labels.iter_mut() {
        if rng.uniform() < flip {
            *l = 1 - *l;
        }
    }
    Arc::new(ImageDataset {
        name: "halves".into(),
        images,
        labels,
        channels: 1,
        height: 4,
        width: 4,
        classes: vec!["left".into(), "right".into()],
        normalization: Normalization::new(&[0.5], &[0.5]),
    })
}

fn model(device: &Device) -> Sequential {
    Sequential::new().add(Flatten::default()).add(Linear::new(device, 16, 2, true).unwrap())
}

fn sgd(m: &Sequential) -> Sgd {
    Sgd::new(m.named_parameters(), SgdConfig { lr: 0.1, momentum: 0.9, ..Default::default() }).unwrap()
}

fn loaders(flip: f64) -> (DataLoader, DataLoader) {
    let train = DataLoader::new(dataset(96, 1, flip), LoaderConfig::train(16, 7)).unwrap();
    let test = DataLoader::new(dataset(40, 2, 0.0), LoaderConfig::eval(16)).unwrap();
    (train, test)
}

fn config(out: &Path, epochs: usize) -> TrainerConfig {
    TrainerConfig { read_every: 2, ..TrainerConfig::new("linear", "halves", epochs, out) }
}

/// Trains `model` with SGD-style `opt` on `train` (testing on `test`) under `config`.
fn run(
    model: &Sequential,
    opt: &mut dyn Optimizer,
    schedule: &dyn LrSchedule,
    (train, test): (&DataLoader, Option<&DataLoader>),
    device: &Device,
    config: &TrainerConfig,
) -> ferrograd_train::Result<Summary> {
    fit(&mut Classifier::new(model, train, test, device), opt, schedule, device, config)
}

fn params(m: &Sequential) -> Vec<Vec<f64>> {
    m.state_dict().iter().map(|(_, t)| t.to_vec_f64().unwrap()).collect()
}

#[test]
fn learns_and_writes_every_output() {
    let cpu = Device::cpu();
    let dir = tempfile::tempdir().unwrap();
    let (train, test) = loaders(0.0);
    let m = model(&cpu);
    let before = evaluate(&m, &test, &cpu).unwrap();
    let mut opt = sgd(&m);
    let summary = run(&m, &mut opt, &ConstantLr(0.1), (&train, Some(&test)), &cpu, &config(dir.path(), 3)).unwrap();
    assert_eq!(summary.epochs, 3);
    assert!(summary.test_accuracy.unwrap() > 0.95, "{summary:?}");
    assert!(summary.final_train_loss < before.0, "{summary:?} vs {before:?}");
    assert_eq!(Summary::read(&dir.path().join(SUMMARY_FILE)).unwrap().epochs, 3);
    let rows = read_metrics(&dir.path().join(METRICS_FILE)).unwrap();
    assert_eq!(rows.iter().map(|r| (r.epoch, r.step)).collect::<Vec<_>>(), vec![(1, 6), (2, 12), (3, 18)]);
    assert!(rows[2].train_loss < rows[0].train_loss);
    for f in ["loss.png", "accuracy.png", CHECKPOINT_FILE] {
        assert!(dir.path().join(f).is_file(), "{f} missing");
    }
    let ck = checkpoint::load(&dir.path().join(CHECKPOINT_FILE), &cpu).unwrap();
    assert_eq!((ck.meta.model.as_str(), ck.meta.epoch, ck.meta.step), ("linear", 3, 18));
    assert!(ck.get("1.weight").is_some() && ck.get("optimizer.1.weight.momentum_buffer").is_some());
}

#[test]
fn resuming_gives_the_same_weights_as_an_uninterrupted_run() {
    let cpu = Device::cpu();
    let (train, test) = loaders(0.3);
    let (full_dir, split_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = model(&cpu);
    // a copy: on the CPU the optimizer updates the parameters' storage in place
    let init: Vec<_> = a
        .state_dict()
        .into_iter()
        .map(|(n, t)| (n, Array::from_f64(&cpu, &t.to_vec_f64().unwrap(), &t.shape()).unwrap()))
        .collect();
    let mut opt = sgd(&a);
    run(&a, &mut opt, &ConstantLr(0.1), (&train, Some(&test)), &cpu, &config(full_dir.path(), 2)).unwrap();

    let b = model(&cpu);
    b.load_state_dict(&init, true).unwrap();
    let mut opt = sgd(&b);
    run(&b, &mut opt, &ConstantLr(0.1), (&train, None), &cpu, &config(split_dir.path(), 1)).unwrap();
    // a new process: fresh model and optimizer, state from the checkpoint
    let c = model(&cpu);
    let mut opt = sgd(&c);
    let resumed = TrainerConfig { existing: Existing::Resume, ..config(split_dir.path(), 2) };
    let s = run(&c, &mut opt, &ConstantLr(0.1), (&train, Some(&test)), &cpu, &resumed).unwrap();
    assert_eq!(s.epochs, 2);
    // the CPU device computes in f64 and checkpoints hold f32, so the resumed run starts from
    // weights rounded to f32; with the same batches and momentum it ends within that rounding
    let moved = params(&b).iter().flatten().zip(params(&a).iter().flatten()).any(|(x, y)| (x - y).abs() > 1e-3);
    assert!(moved, "the second epoch must change the weights for this test to mean anything");
    for (got, want) in params(&c).iter().zip(params(&a)) {
        ferrograd_device::testing::assert_close("resumed weights", got, &want, ferrograd_device::testing::F32_TOL);
    }
    let rows = read_metrics(&split_dir.path().join(METRICS_FILE)).unwrap();
    assert_eq!(rows.iter().map(|r| r.epoch).collect::<Vec<_>>(), vec![1, 2]);

    let wrong = TrainerConfig { model_name: "other".into(), ..resumed.clone() };
    let err = run(&c, &mut opt, &ConstantLr(0.1), (&train, None), &cpu, &wrong).unwrap_err().to_string();
    assert!(err.contains("\"linear\"") && err.contains("\"other\""), "{err}");
    // a finished run resumed without more epochs is refused, its summary kept
    let summary = std::fs::read_to_string(split_dir.path().join(SUMMARY_FILE)).unwrap();
    let err = run(&c, &mut opt, &ConstantLr(0.1), (&train, None), &cpu, &resumed).unwrap_err().to_string();
    assert!(err.contains("has done 2 epochs already"), "{err}");
    assert_eq!(std::fs::read_to_string(split_dir.path().join(SUMMARY_FILE)).unwrap(), summary);
    let missing = TrainerConfig { existing: Existing::Resume, ..config(&split_dir.path().join("none"), 2) };
    let err = run(&c, &mut opt, &ConstantLr(0.1), (&train, None), &cpu, &missing).unwrap_err().to_string();
    assert!(err.contains("no checkpoint"), "{err}");
}

/// A rate that turns NaN from step `from` on.
/// A learning rate so large from step `.0` on that the weights overflow (a NaN rate
/// itself is refused by the optimizer).
struct DivergesFrom(usize);

impl LrSchedule for DivergesFrom {
    fn lr(&self, step: usize) -> f64 {
        if step >= self.0 {
            f64::MAX
        } else {
            0.1
        }
    }
}

#[test]
fn a_nan_loss_stops_and_keeps_the_last_good_checkpoint() {
    let cpu = Device::cpu();
    let dir = tempfile::tempdir().unwrap();
    let (train, test) = loaders(0.0);
    let m = model(&cpu);
    let mut opt = sgd(&m);
    let s = run(&m, &mut opt, &DivergesFrom(8), (&train, Some(&test)), &cpu, &config(dir.path(), 4)).unwrap();
    assert_eq!(s.epochs, 1);
    let reason = s.stopped.expect("stopped");
    assert!((reason.contains("NaN") || reason.contains("inf")) && reason.contains(CHECKPOINT_FILE), "{reason}");
    let ck = checkpoint::load(&dir.path().join(CHECKPOINT_FILE), &cpu).unwrap();
    assert_eq!(ck.meta.epoch, 1);
    for (name, a) in &ck.arrays {
        assert!(a.to_f64_vec().unwrap().iter().all(|v| v.is_finite()), "{name} is not finite");
    }
    assert!(Summary::read(&dir.path().join(SUMMARY_FILE)).unwrap().stopped.is_some());
    assert_eq!(opt.lr(), f64::MAX);
}

#[test]
fn trains_on_the_gpu_and_counts_like_the_cpu() {
    let gpu = ferrograd_device::testing::gpu();
    let dir = tempfile::tempdir().unwrap();
    let (train, test) = loaders(0.3);
    let m = model(&gpu);
    let mut opt = sgd(&m);
    let s = run(&m, &mut opt, &ConstantLr(0.1), (&train, Some(&test)), &gpu, &config(dir.path(), 2)).unwrap();
    assert!(s.test_accuracy.unwrap() > 0.9, "{s:?}");
    // the same weights evaluated on the CPU give the same loss and accuracy
    let cpu = Device::cpu();
    let on_cpu = model(&cpu);
    let state: Vec<_> = m.state_dict().into_iter().map(|(n, t)| (n, t.data())).collect();
    on_cpu.load_state_dict(&state, true).unwrap();
    let (gl, ga) = evaluate(&m, &test, &gpu).unwrap();
    let (cl, ca) = evaluate(&on_cpu, &test, &cpu).unwrap();
    assert_eq!(ga, ca);
    assert!(cl > 1e-3, "a loss this small would not test the sums: {cl}");
    ferrograd_device::testing::assert_close("test loss", &[gl], &[cl], 1e-4);
}

/// The classifier, with the test loss of epoch `nan_after` on turned NaN.
struct NanTestLoss<'a> {
    inner: Classifier<'a>,
    epoch: usize,
    nan_after: usize,
}

impl TrainTask for NanTestLoss<'_> {
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
        self.epoch = epoch;
        self.inner.start_epoch(epoch)
    }
    fn step(&mut self, step: u64) -> ferrograd_train::Result<StepOutput> {
        self.inner.step(step)
    }
    fn evaluate(&mut self, tick: &mut dyn FnMut(usize, usize)) -> ferrograd_train::Result<Evaluation> {
        let e = self.inner.evaluate(tick)?;
        Ok(Evaluation { loss: e.loss.map(|l| if self.epoch + 1 >= self.nan_after { f64::NAN } else { l }), ..e })
    }
}

#[test]
fn a_non_finite_test_loss_stops_the_run_and_keeps_the_last_good_checkpoint() {
    let cpu = Device::cpu();
    let dir = tempfile::tempdir().unwrap();
    let (train, test) = loaders(0.0);
    let m = model(&cpu);
    let mut opt = sgd(&m);
    let mut task = NanTestLoss { inner: Classifier::new(&m, &train, Some(&test), &cpu), epoch: 0, nan_after: 2 };
    let s = fit(&mut task, &mut opt, &ConstantLr(0.1), &cpu, &config(dir.path(), 4)).unwrap();
    let reason = s.stopped.expect("stopped");
    assert!(reason.contains("test loss became NaN after epoch 2") && reason.contains(CHECKPOINT_FILE), "{reason}");
    assert_eq!(s.epochs, 1);
    assert_eq!(checkpoint::load(&dir.path().join(CHECKPOINT_FILE), &cpu).unwrap().meta.epoch, 1);
    assert_eq!(read_metrics(&dir.path().join(METRICS_FILE)).unwrap().len(), 1);
}

#[test]
fn a_folder_holding_a_run_is_refused_unless_resumed_or_overwritten() {
    let cpu = Device::cpu();
    let dir = tempfile::tempdir().unwrap();
    let (train_set, test) = loaders(0.0);
    let m = model(&cpu);
    run(&m, &mut sgd(&m), &ConstantLr(0.1), (&train_set, Some(&test)), &cpu, &config(dir.path(), 1)).unwrap();
    let csv = std::fs::read_to_string(dir.path().join(METRICS_FILE)).unwrap();

    let err = run(&m, &mut sgd(&m), &ConstantLr(0.1), (&train_set, None), &cpu, &config(dir.path(), 1)).unwrap_err();
    let err = err.to_string();
    assert!(err.contains("already holds a run") && err.contains("--resume") && err.contains("--overwrite"), "{err}");
    assert_eq!(std::fs::read_to_string(dir.path().join(METRICS_FILE)).unwrap(), csv, "the old run's history is kept");

    // overwriting starts again: one epoch, no test pass this time
    let overwrite = TrainerConfig { existing: Existing::Overwrite, ..config(dir.path(), 1) };
    run(&m, &mut sgd(&m), &ConstantLr(0.1), (&train_set, None), &cpu, &overwrite).unwrap();
    let rows = read_metrics(&dir.path().join(METRICS_FILE)).unwrap();
    assert_eq!((rows.len(), rows[0].test_loss), (1, None));

    // the next free folder beside one that holds a run
    let base = dir.path().join("runs").join("linear-halves");
    assert_eq!(run_dir::fresh(&base), base);
    std::fs::create_dir_all(&base).unwrap();
    std::fs::write(base.join(SUMMARY_FILE), "{}").unwrap();
    let second = dir.path().join("runs").join("linear-halves-2");
    assert_eq!(run_dir::fresh(&base), second);
    std::fs::create_dir_all(second.join("lstm")).unwrap();
    std::fs::write(second.join("lstm").join(METRICS_FILE), "").unwrap();
    assert_eq!(run_dir::fresh(&base), dir.path().join("runs").join("linear-halves-3"), "a comparison's runs count");
}

#[test]
fn stale_temporary_checkpoints_are_removed_at_start() {
    let cpu = Device::cpu();
    let dir = tempfile::tempdir().unwrap();
    // left by writers that were killed (no such process ids), and one of a live process
    let stale = [".checkpoint.safetensors.tmp-4000000001", ".summary.json.tmp-4000000002"];
    for name in stale {
        std::fs::write(dir.path().join(name), vec![7u8; 4096]).unwrap();
    }
    let live = format!(".checkpoint.safetensors.tmp-{}", std::os::unix::process::parent_id());
    std::fs::write(dir.path().join(&live), b"busy").unwrap();
    let (train_set, _) = loaders(0.0);
    let m = model(&cpu);
    run(&m, &mut sgd(&m), &ConstantLr(0.1), (&train_set, None), &cpu, &config(dir.path(), 1)).unwrap();
    for name in stale {
        assert!(!dir.path().join(name).exists(), "{name} is still there");
    }
    assert!(dir.path().join(&live).exists(), "a running writer's file must stay");
    assert!(dir.path().join(CHECKPOINT_FILE).is_file());
}
