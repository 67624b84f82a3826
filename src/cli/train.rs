//! `ferrograd train`, for every task: the flags, which task a data set is, the check that
//! every flag given is one the task uses, the run folder, and the image classifiers' run
//! (`cargo run --release` is LeNet-5 on the bundled MNIST). The sequence tasks are in
//! `train_seq.rs`.

use super::distributed::{require_alone, Job};
use super::setup::{load_split, open_device};
use anyhow::Context;
use clap::{Args, ValueEnum};
use ferrograd_graph::amp::Precision;
use ferrograd_graph::nn::Module;
use ferrograd_graph::optim::{
    Adam, AdamConfig, ConstantLr, CosineAnnealingLr, LinearWarmup, LrSchedule, MultiStepLr, OneCycleLr, Optimizer, Sgd,
    SgdConfig, StepLr,
};
use ferrograd_models::registry;
use ferrograd_train::augment::Augmentation;
use ferrograd_train::classifier::Classifier;
use ferrograd_train::data::select::ImageDatasetKind;
use ferrograd_train::data::Split;
use ferrograd_train::loader::{DataLoader, LoaderConfig};
use ferrograd_train::run_dir::{self, Existing};
use ferrograd_train::summary::Summary;
use ferrograd_train::trainer::{fit, TrainerConfig};
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OptimizerKind {
    Sgd,
    Adam,
    Adamw,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ScheduleKind {
    /// the same rate throughout
    Constant,
    /// x0.1 every third of the run
    Step,
    /// x0.1 at 50% and 75% of the run (He et al.'s CIFAR schedule)
    Multistep,
    /// cosine annealing to zero
    Cosine,
    /// 5% linear warm-up, then cosine
    WarmupCosine,
    /// one-cycle (Smith): warm up to --lr, anneal far below it
    Onecycle,
}

#[derive(Args, Clone, Debug)]
pub struct TrainArgs {
    /// Model name (`ferrograd models` lists them; default: lenet5, or the task's usual model);
    /// for the seq2seq tasks several, comma-separated, train one after the other and are
    /// compared by input length (length_sweep.png); for shakespeare several cells
    /// (lstm,gru,rnn) are compared by validation loss (val_loss.png)
    #[arg(long)]
    pub model: Option<String>,
    /// mnist, fashion-mnist, cifar10, folder (with --data-dir ROOT holding train/ and test/);
    /// sequence tasks: shakespeare, seq-mnist, reverse, sort, addition, copy
    #[arg(long, default_value = "mnist")]
    pub dataset: String,
    /// Sequence lengths of the synthetic seq2seq tasks, MIN..MAX
    #[arg(long, default_value = "1..10")]
    pub lengths: String,
    /// Where the data set is, when not where it is found without flags
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Epochs (default: the model's recipe)
    #[arg(long, allow_negative_numbers = true)]
    pub epochs: Option<usize>,
    /// Examples per optimizer step (default: the recipe's)
    #[arg(long, allow_negative_numbers = true)]
    pub batch_size: Option<usize>,
    /// Peak learning rate (default: the recipe's)
    #[arg(long, allow_negative_numbers = true)]
    pub lr: Option<f64>,
    /// Optimizer (default: the recipe's)
    #[arg(long, value_enum)]
    pub optimizer: Option<OptimizerKind>,
    /// SGD momentum
    #[arg(long, default_value_t = 0.9, allow_negative_numbers = true)]
    pub momentum: f64,
    /// Nesterov momentum for SGD
    #[arg(long)]
    pub nesterov: bool,
    /// Learning-rate schedule over the run (default: the recipe's)
    #[arg(long, value_enum)]
    pub schedule: Option<ScheduleKind>,
    /// L2 weight decay (decoupled for adamw; default: the recipe's)
    #[arg(long, allow_negative_numbers = true)]
    pub weight_decay: Option<f64>,
    /// Label smoothing of the cross-entropy loss, in [0, 1)
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub label_smoothing: f32,
    /// Clip the gradient norm to this value each step
    #[arg(long, allow_negative_numbers = true)]
    pub clip_grad_norm: Option<f64>,
    /// Truncated backpropagation through time for the character LM: characters per chunk; the
    /// state is carried from chunk to chunk and the graph cut between them (default 64)
    #[arg(long, allow_negative_numbers = true)]
    pub bptt: Option<usize>,
    /// Seed for weights, shuffling, augmentation and dropout
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// gpu (best adapter), gpu:NAME, or cpu (the f64 reference device: slow)
    #[arg(long, default_value = "gpu")]
    pub device: String,
    /// Output folder (default: runs/MODEL-DATASET, or runs/MODEL-DATASET-2, ... when that holds
    /// a run)
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Continue the run in OUT from its checkpoint.safetensors
    #[arg(long, conflicts_with = "overwrite")]
    pub resume: bool,
    /// Replace the run in OUT (its checkpoint, metrics and summary are deleted first)
    #[arg(long)]
    pub overwrite: bool,
    /// Stop after this many epochs of the --epochs planned (the schedule still spans them all);
    /// --resume continues the run
    #[arg(long)]
    pub pause_after: Option<usize>,
    /// With --resume: start the optimizer afresh when the checkpoint holds no (or another
    /// optimizer's) state
    #[arg(long)]
    pub reset_optimizer: bool,
    /// Train on the first N training images only (quick runs)
    #[arg(long, allow_negative_numbers = true)]
    pub limit: Option<usize>,
    /// Turn off random crops and flips (on by default for CIFAR-10)
    #[arg(long)]
    pub no_augment: bool,
    /// Under mpirun: batch norm's statistics over the whole global batch (PyTorch's
    /// SyncBatchNorm) instead of each process's shard
    #[arg(long)]
    pub sync_bn: bool,
    /// f32, or mixed: convolutions and linear layers on f16 operands with f32 accumulation,
    /// f32 master weights and dynamic loss scaling (needs an adapter with f16)
    #[arg(long, default_value = "f32", value_parser = parse_precision)]
    pub precision: Precision,
}

/// `--precision`'s values.
pub fn parse_precision(s: &str) -> Result<Precision, String> {
    Precision::parse(s).ok_or_else(|| format!("{s:?} is not a precision: use f32 or mixed"))
}

impl Default for TrainArgs {
    fn default() -> Self {
        use clap::Parser;
        #[derive(Parser)]
        struct Wrapper {
            #[command(flatten)]
            args: TrainArgs,
        }
        Wrapper::parse_from(["ferrograd"]).args
    }
}

/// Hyper-parameters a model trains well with when the user gives none.
struct Recipe {
    epochs: usize,
    batch_size: usize,
    optimizer: OptimizerKind,
    lr: f64,
    weight_decay: f64,
    schedule: ScheduleKind,
}

/// LeNet-5's epochs on Fashion-MNIST: with this recipe PyTorch's LeNet-5 reaches 90.44% after 5
/// (`benches/pytorch/lenet_recipe.py`), ferrograd's 90.48%.
const FASHION_EPOCHS: usize = 5;

fn recipe(model: &str, dataset: ImageDatasetKind) -> Recipe {
    let small_images = matches!(dataset, ImageDatasetKind::Mnist | ImageDatasetKind::FashionMnist);
    match model {
        // The default run: one epoch of Adam under a one-cycle schedule peaking at 5e-3 takes
        // LeNet-5 to about 98.7% on MNIST (PyTorch, same recipe, seeds 0-2: 98.73-98.89%;
        // benches/pytorch/lenet_recipe.py).
        // Fashion-MNIST is harder: a few epochs more.
        "lenet5" | "lenet5_bn" | "mlp" if small_images => Recipe {
            epochs: if dataset == ImageDatasetKind::Mnist { 1 } else { FASHION_EPOCHS },
            batch_size: 64,
            optimizer: OptimizerKind::Adam,
            lr: 5e-3,
            weight_decay: 0.0,
            schedule: ScheduleKind::Onecycle,
        },
        // He et al. 2015, section 4.2, with a cosine schedule in place of the step drops.
        m if m.starts_with("resnet") || m.starts_with("vgg") => Recipe {
            epochs: 160,
            batch_size: 128,
            optimizer: OptimizerKind::Sgd,
            lr: 0.1,
            weight_decay: if m.starts_with("vgg") { 5e-4 } else { 1e-4 },
            schedule: ScheduleKind::Cosine,
        },
        _ => Recipe {
            epochs: 30,
            batch_size: 128,
            optimizer: OptimizerKind::Sgd,
            lr: 0.01,
            weight_decay: 5e-4,
            schedule: ScheduleKind::Cosine,
        },
    }
}

fn schedule(kind: ScheduleKind, lr: f64, total_steps: usize) -> Box<dyn LrSchedule> {
    match kind {
        ScheduleKind::Constant => Box::new(ConstantLr(lr)),
        ScheduleKind::Step => Box::new(StepLr { base: lr, step_size: total_steps.div_ceil(3).max(1), gamma: 0.1 }),
        ScheduleKind::Multistep => {
            Box::new(MultiStepLr { base: lr, milestones: vec![total_steps / 2, total_steps * 3 / 4], gamma: 0.1 })
        }
        ScheduleKind::Cosine => Box::new(CosineAnnealingLr { base: lr, t_max: total_steps, eta_min: 0.0 }),
        ScheduleKind::WarmupCosine => Box::new(LinearWarmup {
            warmup: total_steps / 20,
            start_factor: 0.01,
            inner: Box::new(CosineAnnealingLr { base: lr, t_max: total_steps, eta_min: 0.0 }),
        }),
        ScheduleKind::Onecycle => Box::new(OneCycleLr::new(lr, total_steps)),
    }
}

/// What `--dataset` trains, and the flags (clap ids) each task uses beyond [`COMMON_FLAGS`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskKind {
    Image,
    CharLm,
    SeqMnist,
    Seq2Seq,
}

/// Flags every task uses.
const COMMON_FLAGS: [&str; 14] = [
    "model",
    "dataset",
    "epochs",
    "batch_size",
    "lr",
    "clip_grad_norm",
    "seed",
    "device",
    "out",
    "resume",
    "overwrite",
    "pause_after",
    "reset_optimizer",
    "precision",
];

impl TaskKind {
    const ALL: [TaskKind; 4] = [TaskKind::Image, TaskKind::CharLm, TaskKind::SeqMnist, TaskKind::Seq2Seq];

    pub fn of(dataset: &str) -> TaskKind {
        match dataset {
            "shakespeare" | "tinyshakespeare" | "text" => TaskKind::CharLm,
            "seq-mnist" => TaskKind::SeqMnist,
            d if ferrograd_train::data::seq2seq::Task::parse(d).is_ok() => TaskKind::Seq2Seq,
            _ => TaskKind::Image,
        }
    }

    /// How the error messages name it.
    fn describe(self) -> &'static str {
        match self {
            TaskKind::Image => "image classification (mnist, fashion-mnist, cifar10, folder)",
            TaskKind::CharLm => "the character LM (shakespeare, text)",
            TaskKind::SeqMnist => "sequential MNIST (seq-mnist)",
            TaskKind::Seq2Seq => "the seq2seq tasks (reverse, sort, addition, copy)",
        }
    }

    fn flags(self) -> &'static [&'static str] {
        match self {
            TaskKind::Image => &[
                "data_dir",
                "optimizer",
                "momentum",
                "nesterov",
                "schedule",
                "weight_decay",
                "label_smoothing",
                "limit",
                "no_augment",
                "sync_bn",
            ],
            TaskKind::CharLm => &["data_dir", "bptt"],
            TaskKind::SeqMnist => &["data_dir", "limit"],
            TaskKind::Seq2Seq => &["lengths"],
        }
    }

    pub fn default_model(self) -> &'static str {
        match self {
            TaskKind::Image => "lenet5",
            TaskKind::CharLm | TaskKind::SeqMnist => "lstm",
            TaskKind::Seq2Seq => "seq2seq-attn",
        }
    }
}

/// An error for the first flag in `given` (clap ids) that `task` does not use, naming the
/// tasks that do.
fn check_flags(task: TaskKind, dataset: &str, given: &[String]) -> anyhow::Result<()> {
    for id in given {
        if COMMON_FLAGS.contains(&id.as_str()) || task.flags().contains(&id.as_str()) {
            continue;
        }
        let users: Vec<&str> =
            TaskKind::ALL.iter().filter(|t| t.flags().contains(&id.as_str())).map(|t| t.describe()).collect();
        anyhow::bail!(
            "--{} is not used by --dataset {dataset} ({}); it is used by {}",
            id.replace('_', "-"),
            task.describe(),
            users.join(" and ")
        );
    }
    Ok(())
}

/// The run's folder and what to do with a run already there.
pub struct RunFolder {
    pub out: PathBuf,
    pub existing: Existing,
}

/// Without `--out`, a default folder that holds a run is kept and the next free `-2`, `-3`, ...
/// is used (unless resuming or overwriting it).
fn run_folder(args: &TrainArgs, model: &str, say: bool) -> RunFolder {
    let existing = match (args.resume, args.overwrite) {
        (true, _) => Existing::Resume,
        (_, true) => Existing::Overwrite,
        _ => Existing::Refuse,
    };
    let out = match &args.out {
        Some(out) => out.clone(),
        None => {
            let base = PathBuf::from("runs").join(format!("{model}-{}", args.dataset));
            let out = if existing == Existing::Refuse { run_dir::fresh(&base) } else { base.clone() };
            if out != base && say {
                println!(
                    "{} holds a run, so this one goes to {} (--resume continues that run, --overwrite replaces it)",
                    base.display(),
                    out.display()
                );
            }
            out
        }
    };
    RunFolder { out, existing }
}

/// Trains what `args` name, as one process of `job`; `given` holds the ids of the flags given
/// on the command line.
pub fn run(args: TrainArgs, given: &[String], job: &Job) -> anyhow::Result<()> {
    super::flags::check(&args)?;
    let task = TaskKind::of(&args.dataset);
    check_flags(task, &args.dataset, given)?;
    let model = args.model.clone().unwrap_or_else(|| task.default_model().to_string());
    let folder = run_folder(&args, &model, job.is_root());
    if task != TaskKind::Image {
        require_alone(job, task.describe())?;
    }
    match task {
        TaskKind::Image => image(&args, &model, &folder, job),
        TaskKind::CharLm => super::train_seq::char_lm(&args, &model, &folder),
        TaskKind::SeqMnist => super::train_seq::seq_mnist(&args, &model, &folder),
        TaskKind::Seq2Seq => super::train_seq::seq2seq(&args, &model, &folder),
    }
}

/// An image classifier from the zoo on an image data set, alone or as one process of `job`.
fn image(args: &TrainArgs, model: &str, folder: &RunFolder, job: &Job) -> anyhow::Result<()> {
    let device = open_device(&job.device_spec(&args.device))?;
    let kind = ImageDatasetKind::parse(&args.dataset)?;
    let data_dir = args.data_dir.as_deref();
    let r = recipe(model, kind);
    let epochs = args.epochs.unwrap_or(r.epochs);
    let batch_size = args.batch_size.unwrap_or(r.batch_size);
    let lr = args.lr.unwrap_or(r.lr);
    let weight_decay = args.weight_decay.unwrap_or(r.weight_decay);

    let train_set = Arc::new(load_split(model, kind, Split::Train, data_dir, args.limit)?);
    let test_set = Arc::new(load_split(model, kind, Split::Test, data_dir, None)?);
    let augment = kind == ImageDatasetKind::Cifar10 && !args.no_augment;
    let train_config = LoaderConfig {
        augmentation: if augment { Augmentation::cifar() } else { Augmentation::none() },
        ..LoaderConfig::train(batch_size, args.seed)
    };
    let mut train = DataLoader::new(train_set.clone(), train_config)?;
    let mut test = DataLoader::new(test_set, LoaderConfig::eval(batch_size.max(256)))?;
    if let Some(r) = &job.replicas {
        train = train.sharded(r.rank(), r.size(), true)?;
        test = test.sharded(r.rank(), r.size(), false)?;
        if args.sync_bn {
            ferrograd_graph::replicas::set_sync_batch_norm(Some(r.clone()));
        }
    }

    let net: Box<dyn Module> = registry::build(model, train_set.num_classes(), train_set.channels, &device, args.seed)?;
    let params = net.named_parameters();
    let mut optimizer: Box<dyn Optimizer> = match args.optimizer.unwrap_or(r.optimizer) {
        OptimizerKind::Sgd => Box::new(Sgd::new(
            params,
            SgdConfig { lr, momentum: args.momentum, weight_decay, nesterov: args.nesterov, ..Default::default() },
        )?),
        OptimizerKind::Adam => Box::new(Adam::new(params, AdamConfig { lr, weight_decay, ..Default::default() })),
        OptimizerKind::Adamw => Box::new(Adam::adamw(params, AdamConfig { lr, weight_decay, ..Default::default() })),
    };
    let total_steps = epochs * train.batches_per_epoch();
    let schedule = schedule(args.schedule.unwrap_or(r.schedule), lr, total_steps);

    let processes = match &job.replicas {
        Some(r) => format!(" in {} processes (this one {})", r.size(), device.name()),
        None => String::new(),
    };
    if job.is_root() {
        println!(
            "training {model} ({} parameters) on {} ({} train / {} test images, {:?}) with {} for {epochs} epochs, batch {batch_size}{processes}{}",
            net.num_parameters(),
            kind.name(),
            train_set.len(),
            test.dataset().len(),
            train_set.image_shape(),
            device.name(),
            if args.precision == Precision::Mixed { ", mixed precision" } else { "" },
        );
    }
    let config = TrainerConfig {
        existing: folder.existing,
        reset_optimizer: args.reset_optimizer,
        clip_grad_norm: args.clip_grad_norm,
        pause_after: args.pause_after,
        replicas: job.replicas.clone(),
        precision: args.precision,
        ..TrainerConfig::new(model, kind.name(), epochs, &folder.out)
    };
    let mut task = Classifier::new(net.as_ref(), &train, Some(&test), &device);
    task.label_smoothing = args.label_smoothing;
    task.replicas = job.replicas.clone();
    let summary = fit(&mut task, optimizer.as_mut(), schedule.as_ref(), &device, &config)?;
    if let Some(r) = job.replicas.as_ref().filter(|r| r.is_root()) {
        let c = r.comm_stats();
        let steps = c.syncs.max(1) as f64;
        println!(
            "gradient all-reduce over {} processes: {:.2} ms and {:.0} bytes sent per step ({} steps)",
            r.size(),
            c.all_reduce.as_secs_f64() * 1e3 / steps,
            c.bytes as f64 / steps,
            c.syncs
        );
    }
    if !job.is_root() {
        return summary.stopped.as_ref().map_or(Ok(()), |reason| anyhow::bail!("training stopped: {reason}"));
    }
    report(&summary, &folder.out)
}

/// The closing line of a run, or the error of one that stopped.
pub fn report(summary: &Summary, out: &std::path::Path) -> anyhow::Result<()> {
    if let Some(reason) = &summary.stopped {
        anyhow::bail!("training stopped: {reason}");
    }
    let plural = if summary.epochs == 1 { "" } else { "s" };
    let mut line = format!("done: {} epoch{plural}", summary.epochs);
    if let Some(l) = summary.test_loss {
        line += &format!(", test loss {l:.4}");
    }
    if let Some(a) = summary.test_accuracy {
        line += &format!(", test accuracy {:.2}%", a * 100.0);
    }
    println!(
        "{line}, final train loss {:.4}, {:.1} s, {:.0} {}; outputs in {}",
        summary.final_train_loss,
        summary.wall_seconds,
        summary.throughput,
        summary.throughput_unit,
        out.display()
    );
    Ok(())
}

/// Parses `--lengths MIN..MAX`.
pub fn parse_lengths(s: &str) -> anyhow::Result<std::ops::RangeInclusive<usize>> {
    let (lo, hi) = s.split_once("..").unwrap_or((s, s));
    let parse = |v: &str| v.trim().parse::<usize>().with_context(|| format!("--lengths {s:?}: expected MIN..MAX"));
    let (lo, hi) = (parse(lo)?, parse(hi)?);
    anyhow::ensure!(1 <= lo && lo <= hi, "--lengths {s:?}: need 1 <= MIN <= MAX");
    Ok(lo..=hi)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flag_the_task_does_not_use_names_the_tasks_that_do() {
        let given = |ids: &[&str]| ids.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        check_flags(TaskKind::Image, "mnist", &given(&["epochs", "schedule", "data_dir"])).unwrap();
        let err = check_flags(TaskKind::CharLm, "text", &given(&["lr", "schedule"])).unwrap_err().to_string();
        assert_eq!(
            err,
            "--schedule is not used by --dataset text (the character LM (shakespeare, text)); it is used by image \
             classification (mnist, fashion-mnist, cifar10, folder)"
        );
        let err = check_flags(TaskKind::Seq2Seq, "copy", &given(&["limit"])).unwrap_err().to_string();
        assert!(
            err.ends_with(
                "image classification (mnist, fashion-mnist, cifar10, folder) and sequential MNIST (seq-mnist)"
            ),
            "{err}"
        );
        // every flag of TrainArgs is declared by some task, or common to all
        use clap::CommandFactory;
        #[derive(clap::Parser)]
        struct Wrapper {
            #[command(flatten)]
            args: TrainArgs,
        }
        for arg in Wrapper::command().get_arguments() {
            let id = arg.get_id().as_str();
            let declared = COMMON_FLAGS.contains(&id) || TaskKind::ALL.iter().any(|t| t.flags().contains(&id));
            assert!(declared, "--{id} is used by no task");
        }
    }
}
