//! Subcommands, one file each.

mod bench;
mod devices;
mod distributed;
pub use distributed::Reported;
mod eval;
mod flags;
mod models;
mod predict;
pub mod runtime_dir;
mod sample;
mod setup;
mod train;
mod train_seq;
mod visualize;

use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, Parser, Subcommand};

#[derive(Parser)]
#[command(name = "ferrograd", version, about = "Train classic neural networks on any GPU through wgpu")]
pub struct Cli {
    /// Pick the GPU adapter whose name contains this text (also FERROGRAD_ADAPTER)
    #[arg(long, global = true)]
    pub adapter: Option<String>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand)]
pub enum Command {
    /// Train a model on a data set (the default, with LeNet-5 on MNIST)
    Train(Box<train::TrainArgs>),
    /// Test-set loss and accuracy of a checkpoint
    Eval(eval::EvalArgs),
    /// The most likely classes of an image under a checkpoint
    Predict(predict::PredictArgs),
    /// Generate text from a character language model checkpoint
    Sample(sample::SampleArgs),
    /// ZFNet's tools: first-layer filters, feature maps and occlusion sensitivity as PNG
    Visualize(visualize::VisualizeArgs),
    /// List GPU adapters with their backend, driver and capabilities
    Devices,
    /// List the model zoo: every model with its input shape and parameter count
    Models,
    /// Benchmark a workload (matmul): median time and GFLOP/s per problem
    Bench(bench::BenchArgs),
}

/// Runs `cli`; `matches` (what it was parsed from) tells which flags were given.
pub fn run(cli: Cli, matches: &ArgMatches) -> anyhow::Result<()> {
    if let Some(a) = &cli.adapter {
        // SAFETY: set before any thread is started.
        unsafe { std::env::set_var(ferrograd_device::device::ADAPTER_ENV, a) };
    }
    match cli.command {
        Some(Command::Devices) => devices::run(),
        Some(Command::Models) => models::run(),
        Some(Command::Bench(args)) => bench::run(args),
        Some(Command::Train(args)) => train_in_job(*args, &given_flags(matches.subcommand_matches("train"))),
        Some(Command::Eval(args)) => eval::run(args),
        Some(Command::Predict(args)) => predict::run(args),
        Some(Command::Visualize(args)) => visualize::run(args),
        Some(Command::Sample(args)) => sample::run(args),
        None => train_in_job(train::TrainArgs::default(), &[]),
    }
}

/// `train`, as one process of the job `mpirun` started (or alone).
fn train_in_job(args: train::TrainArgs, given: &[String]) -> anyhow::Result<()> {
    let job = distributed::Job::join()?;
    let result = train::run(args, given, &job);
    job.finish(result)
}

/// The ids of `train`'s flags given on the command line (not left at their defaults; the
/// matches also hold the argument group of `TrainArgs`, which is no flag).
fn given_flags(matches: Option<&ArgMatches>) -> Vec<String> {
    let Some(m) = matches else { return Vec::new() };
    let command = Cli::command();
    let Some(train) = command.find_subcommand("train") else { return Vec::new() };
    let flags: Vec<&str> = train.get_arguments().map(|a| a.get_id().as_str()).collect();
    let given = m.ids().filter(|id| m.value_source(id.as_str()) == Some(ValueSource::CommandLine));
    given.map(|id| id.to_string()).filter(|id| flags.contains(&id.as_str())).collect()
}
