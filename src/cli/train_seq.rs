//! `ferrograd train` for the sequence tasks (flags and run folder: `train.rs`): a character
//! language model on a text (`--dataset shakespeare --model lstm|gru|rnn`; `--model lstm,gru,rnn` trains each on the
//! same budget and compares them in `val_loss.png`), row-by-row MNIST (`--dataset seq-mnist
//! --model lstm|gru`), and the synthetic seq2seq tasks (`--dataset reverse|sort|addition|copy
//! --model seq2seq|seq2seq-attn|transformer --lengths 1..10`; several models separated by
//! commas train one after the other and are compared by length in `length_sweep.png`).

use super::setup::open_device;
use super::train::{parse_lengths, report, RunFolder, TrainArgs};
use anyhow::Context;
use ferrograd_train::data::locate::find_tiny_shakespeare;
use ferrograd_train::data::seq2seq::Task;
use ferrograd_train::data::text::CharCorpus;
use ferrograd_train::seq::char_lm::{compare_cells, train_char_lm, CharLmConfig, COMPARISON_PLOT_FILE};
use ferrograd_train::seq::seq2seq_tasks::{length_sweep, train_seq2seq_task, Seq2SeqTaskConfig, TaskModelKind};
use ferrograd_train::seq::seq_mnist::{train_seq_mnist, SeqMnistConfig};
use ferrograd_train::seq::{cell_name, parse_cell};
use ferrograd_train::trainer::TrainerConfig;
use std::ops::RangeInclusive;

/// Epochs when `--epochs` is not given.
const CHAR_LM_EPOCHS: usize = 5;
const SEQ_MNIST_EPOCHS: usize = 1;
const SEQ2SEQ_EPOCHS: usize = 5;

/// At most 10 evaluation lengths spread evenly over the training range, both ends included.
fn sweep_lengths(range: &RangeInclusive<usize>) -> Vec<usize> {
    let (lo, hi) = (*range.start(), *range.end());
    let step = (hi - lo).div_ceil(9).max(1);
    let mut lengths: Vec<usize> = (lo..=hi).step_by(step).collect();
    if lengths.last() != Some(&hi) {
        lengths.push(hi);
    }
    lengths
}

/// The task's run with what to do with a run already in its folder, the pause, and the command
/// line's clipping when given.
fn run_of(args: &TrainArgs, named: TrainerConfig, folder: &RunFolder) -> TrainerConfig {
    TrainerConfig {
        existing: folder.existing,
        pause_after: args.pause_after,
        clip_grad_norm: args.clip_grad_norm.or(named.clip_grad_norm),
        precision: args.precision,
        ..named
    }
}

/// A character LM (or several cells compared) on `--data-dir` or Tiny Shakespeare.
pub fn char_lm(args: &TrainArgs, model: &str, folder: &RunFolder) -> anyhow::Result<()> {
    let device = open_device(&args.device)?;
    let path = match &args.data_dir {
        Some(p) => p.clone(),
        None => find_tiny_shakespeare().context("Tiny Shakespeare not found in data/; pass --data-dir FILE")?,
    };
    let corpus = CharCorpus::load(&path, 0.1)?;
    let cells = model.split(',').map(|n| parse_cell(n.trim())).collect::<Result<Vec<_>, _>>()?;
    let mut cfg = CharLmConfig::new(cells[0]);
    cfg.seed = args.seed;
    cfg.batch_size = args.batch_size.unwrap_or(cfg.batch_size);
    cfg.seq_len = args.bptt.unwrap_or(cfg.seq_len);
    cfg.lr = args.lr.unwrap_or(cfg.lr);
    let run = run_of(args, cfg.trainer(&args.dataset, args.epochs.unwrap_or(CHAR_LM_EPOCHS), &folder.out), folder);
    if cells.len() > 1 {
        // several cells: each trained in OUT/<cell> on the same budget, compared in one plot
        for (cell, summary) in cells.iter().zip(compare_cells(&corpus, &cfg, &run, &cells, &device)?) {
            let loss = summary.test_loss.unwrap_or(f64::NAN);
            println!("{:<5} validation loss {loss:.3} nats/char", cell_name(*cell));
        }
        println!("outputs in {} ({COMPARISON_PLOT_FILE})", run.out_dir.display());
        return Ok(());
    }
    report(&train_char_lm(&corpus, &cfg, &run, &device)?, &run.out_dir)
}

/// Row-by-row MNIST.
pub fn seq_mnist(args: &TrainArgs, model: &str, folder: &RunFolder) -> anyhow::Result<()> {
    let device = open_device(&args.device)?;
    let mut cfg = SeqMnistConfig::new(parse_cell(model)?);
    cfg.seed = args.seed;
    cfg.data_dir = args.data_dir.clone();
    cfg.train_limit = args.limit;
    cfg.batch_size = args.batch_size.unwrap_or(cfg.batch_size);
    cfg.lr = args.lr.unwrap_or(cfg.lr);
    let run = run_of(args, cfg.trainer(args.epochs.unwrap_or(SEQ_MNIST_EPOCHS), &folder.out), folder);
    report(&train_seq_mnist(&cfg, &run, &device)?, &run.out_dir)
}

/// A synthetic seq2seq task (or several models compared by length).
pub fn seq2seq(args: &TrainArgs, model: &str, folder: &RunFolder) -> anyhow::Result<()> {
    let device = open_device(&args.device)?;
    let task = Task::parse(&args.dataset)?;
    let kinds = model.split(',').map(|n| TaskModelKind::parse(n.trim())).collect::<Result<Vec<_>, _>>()?;
    let mut cfg = Seq2SeqTaskConfig::new(task, kinds[0], parse_lengths(&args.lengths)?);
    cfg.seed = args.seed;
    cfg.batch_size = args.batch_size.unwrap_or(cfg.batch_size);
    cfg.lr = args.lr.unwrap_or(cfg.lr);
    let run = run_of(args, cfg.trainer(args.epochs.unwrap_or(SEQ2SEQ_EPOCHS), &folder.out), folder);
    if kinds.len() > 1 {
        // several models: each trained in OUT/<model>, compared by length in one plot
        cfg.eval_lengths = sweep_lengths(&cfg.train_lengths);
        for (name, accuracy) in length_sweep(&cfg, &kinds, &run, &device)? {
            let cells: Vec<String> =
                accuracy.iter().map(|a| format!("{}:{:.1}%", a.length, a.exact_match * 100.0)).collect();
            println!("{name:<13} exact match by length  {}", cells.join("  "));
        }
        println!("outputs in {} (length_sweep.png, length_sweep.csv)", run.out_dir.display());
        return Ok(());
    }
    let (_, result) = train_seq2seq_task(&cfg, &run, &device)?;
    for l in &result.accuracy_by_length {
        println!("length {:>3}: exact match {:.1}%", l.length, l.exact_match * 100.0);
    }
    report(&result.summary, &run.out_dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sweep_lengths_spread_over_the_range_with_both_ends() {
        assert_eq!(sweep_lengths(&(1..=10)), vec![1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
        assert_eq!(sweep_lengths(&(1..=20)), vec![1, 4, 7, 10, 13, 16, 19, 20]);
        assert_eq!(sweep_lengths(&(5..=5)), vec![5]);
    }
}
