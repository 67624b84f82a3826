//! Every task resumes exactly: on the GPU (lavapipe in CI), N epochs straight and k epochs then
//! a resume in a fresh model and optimizer end with the same checkpoint, bit for bit (model,
//! optimizer, the task's state, the seed stream's position), and the same metrics. The models
//! use dropout, so the seed stream must be restored too. The seed stream is global to the
//! process, so the tests take turns.

use ferrograd_device::{DType, Device};
use ferrograd_graph::amp::Precision;
use ferrograd_graph::manual_seed;
use ferrograd_graph::nn::recurrent::CellKind;
use ferrograd_graph::nn::{Dropout, Flatten, Linear, Module, Relu, Sequential};
use ferrograd_graph::optim::{Adam, AdamConfig, ConstantLr};
use ferrograd_train::checkpoint;
use ferrograd_train::classifier::Classifier;
use ferrograd_train::data::seq2seq::Task;
use ferrograd_train::data::text::CharCorpus;
use ferrograd_train::data::{ImageDataset, Normalization};
use ferrograd_train::loader::{DataLoader, LoaderConfig};
use ferrograd_train::metrics::read_metrics;
use ferrograd_train::run_dir::Existing;
use ferrograd_train::seq::char_lm::{train_char_lm, CharLmConfig};
use ferrograd_train::seq::seq2seq_tasks::{train_seq2seq_task, Seq2SeqTaskConfig, TaskModelKind};
use ferrograd_train::seq::seq_mnist::{train_seq_mnist, SeqMnistConfig};
use ferrograd_train::trainer::{
    fit, TrainerConfig, CHECKPOINT_FILE, GROWTH_TRACKER, LOSS_SCALE, METRICS_FILE, SKIPPED_STEPS,
};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

static SEED_STREAM: Mutex<()> = Mutex::new(());

fn turn() -> MutexGuard<'static, ()> {
    SEED_STREAM.lock().unwrap_or_else(|e| e.into_inner())
}

fn resumed(run: &TrainerConfig) -> TrainerConfig {
    TrainerConfig { existing: Existing::Resume, pause_after: None, ..run.clone() }
}

/// The checkpoint (every array, bit for bit, and the seed stream's position) and the metrics of
/// the run in `straight` equal those of the run in `split`; `paused` is `split`'s checkpoint
/// before its resume, which must differ (else the test proves nothing).
fn assert_same_run(straight: &Path, split: &Path, paused: &checkpoint::Checkpoint) {
    let cpu = Device::cpu();
    let a = checkpoint::load(&straight.join(CHECKPOINT_FILE), &cpu).unwrap();
    let b = checkpoint::load(&split.join(CHECKPOINT_FILE), &cpu).unwrap();
    assert_eq!((a.meta.epoch, a.meta.step), (b.meta.epoch, b.meta.step));
    assert!(paused.meta.epoch < a.meta.epoch);
    let names = |c: &checkpoint::Checkpoint| c.arrays.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    assert_eq!(names(&a), names(&b));
    let mut moved = false;
    for (name, x) in &a.arrays {
        let x = x.to_f64_vec().unwrap();
        assert!(x == b.get(name).unwrap().to_f64_vec().unwrap(), "{name} differs after the resume");
        moved |= paused.get(name).is_none_or(|p| p.to_f64_vec().unwrap() != x);
    }
    assert!(moved, "the epochs after the pause changed nothing");
    for key in ["seed", "seed_draws", "next_lr", LOSS_SCALE, GROWTH_TRACKER, SKIPPED_STEPS] {
        assert_eq!(a.meta.extra.get(key), b.meta.extra.get(key), "{key}");
    }
    let (ra, rb) =
        (read_metrics(&straight.join(METRICS_FILE)).unwrap(), read_metrics(&split.join(METRICS_FILE)).unwrap());
    let measured = |r: &ferrograd_train::metrics::MetricsRow| {
        (r.epoch, r.step, r.train_loss, r.train_acc, r.test_loss, r.test_acc, r.lr)
    };
    assert_eq!(ra.iter().map(measured).collect::<Vec<_>>(), rb.iter().map(measured).collect::<Vec<_>>());
}

fn paused(dir: &Path) -> checkpoint::Checkpoint {
    checkpoint::load(&dir.join(CHECKPOINT_FILE), &Device::cpu()).unwrap()
}

/// `n` 1x4x4 images labelled by whether their left half is brighter, with label noise.
fn images(n: usize, seed: u64) -> Arc<ImageDataset> {
    let mut rng = ferrograd_device::testing::Rng::new(seed);
    let images: Vec<f32> = (0..n * 16).map(|_| rng.uniform() as f32 * 2.0 - 1.0).collect();
    let labels = images
        .chunks(16)
        .map(|im| {
            let left: f32 = (0..16).filter(|k| k % 4 < 2).map(|k| im[k]).sum();
            u32::from((left > 0.0) != (rng.uniform() < 0.2))
        })
        .collect();
    Arc::new(ImageDataset {
        name: "halves".into(),
        images,
        labels,
        channels: 1,
        height: 4,
        width: 4,
        classes: vec!["right".into(), "left".into()],
        normalization: Normalization::new(&[0.0], &[1.0]),
    })
}

#[test]
fn an_image_classifier_resumes_exactly() {
    let _turn = turn();
    let gpu = ferrograd_device::testing::gpu();
    let train = DataLoader::new(images(80, 1), LoaderConfig::train(16, 5)).unwrap();
    let test = DataLoader::new(images(24, 2), LoaderConfig::eval(16)).unwrap();
    // a new process: the model is built (and initialised) again before the checkpoint loads
    let run = |seed: u64, config: &TrainerConfig| {
        manual_seed(seed);
        let model = Sequential::new()
            .add(Flatten::default())
            .add(Linear::new(&gpu, 16, 12, true).unwrap())
            .add(Relu)
            .add(Dropout::new(0.3))
            .add(Linear::new(&gpu, 12, 2, true).unwrap());
        let mut adam = Adam::new(model.named_parameters(), AdamConfig { lr: 0.02, ..AdamConfig::default() });
        let mut task = Classifier::new(&model, &train, Some(&test), &gpu);
        fit(&mut task, &mut adam, &ConstantLr(0.02), &gpu, config).unwrap()
    };
    let (straight, split) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let config =
        |dir: &Path, epochs| TrainerConfig { read_every: 2, ..TrainerConfig::new("mlp", "halves", epochs, dir) };
    run(3, &config(straight.path(), 3));
    run(3, &config(split.path(), 1));
    let before = paused(split.path());
    assert_eq!(run(77, &resumed(&config(split.path(), 3))).epochs, 3);
    assert_same_run(straight.path(), split.path(), &before);
}

/// Mixed precision resumes exactly too, its loss scaler included (the growth tracker counts
/// every step of the run only if the resume restored it), and its checkpoint holds the same
/// arrays as an f32 run's, the model's all f32: what a torchvision model loads with
/// `strict=True` (benches/pytorch/torchvision_roundtrip.py) is unchanged.
#[test]
fn a_mixed_precision_classifier_resumes_exactly_with_its_loss_scale() {
    let _turn = turn();
    let gpu = ferrograd_device::testing::gpu();
    let train = DataLoader::new(images(80, 1), LoaderConfig::train(16, 5)).unwrap();
    let test = DataLoader::new(images(24, 2), LoaderConfig::eval(16)).unwrap();
    let run = |seed: u64, config: &TrainerConfig| {
        manual_seed(seed);
        let model = Sequential::new()
            .add(Flatten::default())
            .add(Linear::new(&gpu, 16, 12, true).unwrap())
            .add(Relu)
            .add(Linear::new(&gpu, 12, 2, true).unwrap());
        let mut adam = Adam::new(model.named_parameters(), AdamConfig { lr: 0.02, ..AdamConfig::default() });
        let mut task = Classifier::new(&model, &train, Some(&test), &gpu);
        fit(&mut task, &mut adam, &ConstantLr(0.02), &gpu, config).unwrap()
    };
    let dirs = [(); 3].map(|_| tempfile::tempdir().unwrap());
    let [straight, split, f32_run] = [0, 1, 2].map(|i| dirs[i].path());
    let config = |dir: &Path, epochs, precision| TrainerConfig {
        read_every: 2,
        precision,
        ..TrainerConfig::new("mlp", "halves", epochs, dir)
    };
    run(3, &config(straight, 3, Precision::Mixed));
    run(3, &config(split, 1, Precision::Mixed));
    let before = paused(split);
    assert_eq!(before.meta.extra.get(GROWTH_TRACKER).map(String::as_str), Some("5"));
    run(77, &resumed(&config(split, 3, Precision::Mixed)));
    assert_same_run(straight, split, &before);
    let mixed = paused(split);
    assert_eq!(mixed.meta.extra.get(LOSS_SCALE).map(String::as_str), Some("65536"));
    assert_eq!(mixed.meta.extra.get(GROWTH_TRACKER).map(String::as_str), Some("15"));

    run(3, &config(f32_run, 1, Precision::F32));
    let plain = paused(f32_run);
    let names = |c: &checkpoint::Checkpoint| c.arrays.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    assert_eq!(names(&mixed), names(&plain));
    assert!(!plain.meta.extra.contains_key(LOSS_SCALE), "an f32 run has no loss scale");
    for (name, a) in mixed.arrays.iter().filter(|(n, _)| !n.starts_with("optimizer.")) {
        assert_eq!(a.dtype(), DType::F32, "{name}");
    }
}

#[test]
fn a_character_lm_resumes_exactly_with_its_carried_state() {
    let _turn = turn();
    let gpu = ferrograd_device::testing::gpu();
    let words = ["the ", "cat ", "sat ", "on ", "a ", "mat. "];
    let mut rng = ferrograd_device::testing::Rng::new(9);
    let text: String = (0..80).map(|_| words[(rng.uniform() * 6.0) as usize % 6]).collect();
    let corpus = CharCorpus::from_text(&text, 0.15).unwrap();
    let mut config = CharLmConfig::new(CellKind::Lstm);
    (config.embed_dim, config.hidden_size, config.num_layers, config.dropout) = (8, 16, 2, 0.2);
    (config.batch_size, config.seq_len, config.steps_per_epoch, config.val_chars) = (4, 8, 5, None);
    // fewer chunks per pass than steps in two epochs: the second epoch wraps around the text
    let (straight, split) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    train_char_lm(&corpus, &config, &config.trainer("words", 2, straight.path()), &gpu).unwrap();
    train_char_lm(&corpus, &config, &config.trainer("words", 1, split.path()), &gpu).unwrap();
    let before = paused(split.path());
    assert!(before.get("task.h").is_some() && before.get("task.c").is_some(), "the carried state is saved");
    train_char_lm(&corpus, &config, &resumed(&config.trainer("words", 2, split.path())), &gpu).unwrap();
    assert_same_run(straight.path(), split.path(), &before);
}

#[test]
fn sequential_mnist_resumes_exactly() {
    let _turn = turn();
    let gpu = ferrograd_device::testing::gpu();
    let mut config = SeqMnistConfig::new(CellKind::Gru);
    (config.hidden_size, config.batch_size, config.train_limit, config.test_limit) = (16, 32, Some(96), Some(32));
    let (straight, split) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    train_seq_mnist(&config, &config.trainer(2, straight.path()), &gpu).unwrap();
    let pause = TrainerConfig { pause_after: Some(1), ..config.trainer(2, split.path()) };
    assert_eq!(train_seq_mnist(&config, &pause, &gpu).unwrap().epochs, 1);
    let before = paused(split.path());
    train_seq_mnist(&config, &resumed(&pause), &gpu).unwrap();
    assert_same_run(straight.path(), split.path(), &before);
}

#[test]
fn a_seq2seq_task_resumes_exactly_on_its_annealed_schedule() {
    let _turn = turn();
    let gpu = ferrograd_device::testing::gpu();
    let mut config = Seq2SeqTaskConfig::new(Task::Reverse, TaskModelKind::Seq2SeqAttention, 2..=4);
    (config.size.embed_dim, config.size.hidden_size) = (8, 16);
    (config.steps_per_epoch, config.batch_size, config.eval_examples) = (4, 8, 16);
    let (straight, split) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    train_seq2seq_task(&config, &config.trainer(2, straight.path()), &gpu).unwrap();
    // paused, not a 1-epoch run: the cosine schedule spans the 2 planned epochs
    let pause = TrainerConfig { pause_after: Some(1), ..config.trainer(2, split.path()) };
    train_seq2seq_task(&config, &pause, &gpu).unwrap();
    let before = paused(split.path());
    train_seq2seq_task(&config, &resumed(&pause), &gpu).unwrap();
    assert_same_run(straight.path(), split.path(), &before);
}
