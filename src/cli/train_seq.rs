//! `ferrograd train` for the sequence tasks: a character language model on a text
//! (`--dataset shakespeare --model lstm|gru|rnn`; `--model lstm,gru,rnn` trains each on the
//! same budget and compares them in `val_loss.png`), row-by-row MNIST (`--dataset seq-mnist
//! --model lstm|gru`), and the synthetic seq2seq tasks (`--dataset reverse|sort|addition|copy
//! --model seq2seq|seq2seq-attn|transformer --lengths 1..10`; several models separated by
//! commas train one after the other and are compared by length in `length_sweep.png`).

use super::setup::open_device;
use super::train::TrainArgs;
use anyhow::Context;
use ferrograd_train::data::locate::find_tiny_shakespeare;
use ferrograd_train::data::seq2seq::Task;
use ferrograd_train::data::text::CharCorpus;
use ferrograd_train::seq::char_lm::{compare_cells, train_char_lm, CharLmConfig, COMPARISON_PLOT_FILE};
use ferrograd_train::seq::seq2seq_tasks::{length_sweep, train_seq2seq_task, Seq2SeqTaskConfig, TaskModelKind};
use ferrograd_train::seq::seq_mnist::{train_seq_mnist, SeqMnistConfig};
use ferrograd_train::seq::{cell_name, parse_cell};
use std::ops::RangeInclusive;
use std::path::PathBuf;

/// Whether `--dataset` names a sequence task this file trains.
pub fn handles(dataset: &str) -> bool {
    is_text(dataset) || dataset == "seq-mnist" || Task::parse(dataset).is_ok()
}

fn is_text(dataset: &str) -> bool {
    matches!(dataset, "shakespeare" | "tinyshakespeare" | "text")
}

fn parse_lengths(s: &str) -> anyhow::Result<RangeInclusive<usize>> {
    let (lo, hi) = s.split_once("..").unwrap_or((s, s));
    let parse = |v: &str| v.trim().parse::<usize>().with_context(|| format!("--lengths {s:?}: expected MIN..MAX"));
    let (lo, hi) = (parse(lo)?, parse(hi)?);
    anyhow::ensure!(1 <= lo && lo <= hi, "--lengths {s:?}: need 1 <= MIN <= MAX");
    Ok(lo..=hi)
}

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

pub fn run(args: TrainArgs) -> anyhow::Result<()> {
    // the sequence tasks write checkpoints but do not read them back into a run yet
    anyhow::ensure!(
        !args.resume,
        "--resume is not supported for --dataset {} yet (image data sets only)",
        args.dataset
    );
    anyhow::ensure!(
        args.bptt.is_none() || is_text(&args.dataset),
        "--bptt applies to --dataset shakespeare only, not {}",
        args.dataset
    );
    // The sequence tasks train with Adam on their own schedules: say so rather than ignore.
    let image_only = [
        ("--optimizer", args.optimizer.is_some()),
        ("--schedule", args.schedule.is_some()),
        ("--weight-decay", args.weight_decay.is_some()),
        ("--nesterov", args.nesterov),
        ("--label-smoothing", args.label_smoothing != 0.0),
        ("--no-augment", args.no_augment),
    ];
    if let Some((flag, _)) = image_only.iter().find(|(_, given)| *given) {
        anyhow::bail!(
            "{flag} applies to the image data sets; --dataset {} trains with Adam on its own schedule",
            args.dataset
        );
    }
    let device = open_device(&args.device)?;
    let out =
        args.out.clone().unwrap_or_else(|| PathBuf::from("runs").join(format!("{}-{}", args.model, args.dataset)));
    // `--model` left at the image default picks each task's usual model.
    let default_model = args.model == "lenet5";
    let model = if default_model { "lstm".to_string() } else { args.model.clone() };
    if is_text(&args.dataset) {
        let path = match &args.data_dir {
            Some(p) => p.clone(),
            None => find_tiny_shakespeare().context("Tiny Shakespeare not found in data/; pass --data-dir FILE")?,
        };
        let corpus = CharCorpus::load(&path, 0.1)?;
        let cells = model.split(',').map(|n| parse_cell(n.trim())).collect::<Result<Vec<_>, _>>()?;
        let mut cfg = CharLmConfig::new(cells[0], &out);
        cfg.dataset_name = args.dataset.clone();
        cfg.seed = args.seed;
        cfg.epochs = args.epochs.unwrap_or(cfg.epochs);
        cfg.batch_size = args.batch_size.unwrap_or(cfg.batch_size);
        cfg.seq_len = args.bptt.unwrap_or(cfg.seq_len);
        cfg.lr = args.lr.unwrap_or(cfg.lr);
        cfg.clip_grad_norm = args.clip_grad_norm.or(cfg.clip_grad_norm);
        if cells.len() > 1 {
            // several cells: each trained in OUT/<cell> on the same budget, compared in one plot
            for (cell, report) in cells.iter().zip(compare_cells(&corpus, &cfg, &cells, &device)?) {
                let last = report.val_loss.last().copied().unwrap_or(f64::NAN);
                println!("{:<5} validation loss {last:.3} nats/char", cell_name(*cell));
            }
            println!("outputs in {} ({COMPARISON_PLOT_FILE})", out.display());
            return Ok(());
        }
        let report = train_char_lm(&corpus, &cfg, &device)?;
        let last = report.val_loss.last().copied().unwrap_or(f64::NAN);
        println!("done: validation loss {last:.3} nats/char; outputs in {}", report.out_dir.display());
    } else if args.dataset == "seq-mnist" {
        let mut cfg = SeqMnistConfig::new(parse_cell(&model)?, &out);
        cfg.seed = args.seed;
        cfg.data_dir = args.data_dir.clone();
        cfg.train_limit = args.limit;
        cfg.epochs = args.epochs.unwrap_or(cfg.epochs);
        cfg.batch_size = args.batch_size.unwrap_or(cfg.batch_size);
        cfg.lr = args.lr.unwrap_or(cfg.lr);
        cfg.clip_grad_norm = args.clip_grad_norm.or(cfg.clip_grad_norm);
        let summary = train_seq_mnist(&cfg, &device)?;
        println!(
            "done: test accuracy {:.2}%; outputs in {}",
            summary.test_accuracy.unwrap_or(f64::NAN) * 100.0,
            out.display()
        );
    } else {
        let task = Task::parse(&args.dataset)?;
        let names: Vec<&str> = if default_model { vec!["seq2seq-attn"] } else { model.split(',').collect() };
        let kinds = names.iter().map(|n| TaskModelKind::parse(n.trim())).collect::<Result<Vec<_>, _>>()?;
        let mut cfg = Seq2SeqTaskConfig::new(task, kinds[0], parse_lengths(&args.lengths)?, &out);
        cfg.seed = args.seed;
        cfg.epochs = args.epochs.unwrap_or(cfg.epochs);
        cfg.batch_size = args.batch_size.unwrap_or(cfg.batch_size);
        cfg.lr = args.lr.unwrap_or(cfg.lr);
        cfg.clip_grad_norm = args.clip_grad_norm.or(cfg.clip_grad_norm);
        if kinds.len() > 1 {
            // several models: each trained in OUT/<model>, compared by length in one plot
            cfg.eval_lengths = sweep_lengths(&cfg.train_lengths);
            for (name, accuracy) in length_sweep(&cfg, &kinds, &device)? {
                let cells: Vec<String> =
                    accuracy.iter().map(|a| format!("{}:{:.1}%", a.length, a.exact_match * 100.0)).collect();
                println!("{name:<13} exact match by length  {}", cells.join("  "));
            }
            println!("outputs in {} (length_sweep.png, length_sweep.csv)", out.display());
            return Ok(());
        }
        let (_, report) = train_seq2seq_task(&cfg, &device)?;
        for l in &report.accuracy_by_length {
            println!("length {:>3}: exact match {:.1}%", l.length, l.exact_match * 100.0);
        }
        println!("outputs in {}", report.out_dir.display());
    }
    Ok(())
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
