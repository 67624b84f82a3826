//! Character-level language modelling (Karpathy's char-rnn) with [`CharLm`]: the training
//! text is cut into `batch_size` contiguous streams read side by side in chunks of `seq_len`;
//! the recurrent state is carried from one chunk to the next and detached (truncated BPTT).
//! Adam with gradient clipping. After each epoch (`steps_per_epoch` chunks) the validation
//! text is read the same way without gradients and its mean cross-entropy, in nats per
//! character, goes to `metrics.csv` as `test_loss`; `loss.png`, `checkpoint.safetensors`
//! (model, optimizer under `optimizer.`, and the vocabulary and sizes in the metadata) and
//! `summary.json` follow, as for the image trainer.

use super::loss_window::LossWindow;
use super::{cell_name, meta_value, parse_cell};
use crate::checkpoint::{self, CheckpointMeta};
use crate::data::text::CharCorpus;
use crate::error::{Result, TrainError};
use crate::metrics::{read_metrics, MetricsRow, MetricsWriter};
use crate::plot::{draw_line_chart, LineChart, Series};
use crate::progress::Progress;
use crate::summary::Summary;
use crate::trainer::{stop_run, CHECKPOINT_FILE, METRICS_FILE, OPTIMIZER_PREFIX, SUMMARY_FILE};
use ferrograd_device::Device;
use ferrograd_graph::functional::cross_entropy;
use ferrograd_graph::nn::recurrent::{CellKind, RecurrentState};
use ferrograd_graph::nn::Module;
use ferrograd_graph::optim::{clip_grad_norm, Adam, AdamConfig, Optimizer};
use ferrograd_graph::{manual_seed, no_grad, Tensor};
use ferrograd_models::seq2seq::CharLm;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// File name of the loss curves in the output directory.
/// Throughput unit in the progress lines: characters per second.
const UNIT: &str = "char/s";

pub const LOSS_PLOT_FILE: &str = "loss.png";

#[derive(Clone, Debug)]
pub struct CharLmConfig {
    pub cell: CellKind,
    pub embed_dim: usize,
    pub hidden_size: usize,
    pub num_layers: usize,
    /// between stacked layers
    pub dropout: f32,
    /// parallel streams (the batch)
    pub batch_size: usize,
    /// characters per chunk (the truncated-BPTT length)
    pub seq_len: usize,
    pub steps_per_epoch: usize,
    pub epochs: usize,
    pub lr: f64,
    pub clip_grad_norm: Option<f64>,
    /// validate on at most this many characters of the validation split (`None`: all)
    pub val_chars: Option<usize>,
    /// model initialisation
    pub seed: u64,
    /// read the loss back every this many steps (the only GPU wait of a step)
    pub read_every: usize,
    /// names the data set in metrics, checkpoint and summary (e.g. "tinyshakespeare")
    pub dataset_name: String,
    pub out_dir: PathBuf,
}

impl CharLmConfig {
    /// An LSTM of 1 layer x 128 units, batch 32 x 64 characters, Adam 2e-3, clipping at 5.
    pub fn new(cell: CellKind, out_dir: &Path) -> CharLmConfig {
        CharLmConfig {
            cell,
            embed_dim: 64,
            hidden_size: 128,
            num_layers: 1,
            dropout: 0.0,
            batch_size: 32,
            seq_len: 64,
            steps_per_epoch: 100,
            epochs: 5,
            lr: 2e-3,
            clip_grad_norm: Some(5.0),
            val_chars: Some(20_000),
            seed: 0,
            read_every: 10,
            dataset_name: "text".into(),
            out_dir: out_dir.to_path_buf(),
        }
    }

    /// e.g. "char-lstm"
    pub fn model_name(&self) -> String {
        format!("char-{}", cell_name(self.cell))
    }
}

/// What a run measured.
#[derive(Clone, Debug)]
pub struct CharLmReport {
    pub summary: Summary,
    /// validation cross-entropy (nats per character) after each epoch
    pub val_loss: Vec<f64>,
    pub out_dir: PathBuf,
}

/// `tokens` cut into `batch` contiguous streams, read in chunks of `seq_len` with targets one
/// character ahead.
#[derive(Debug)]
struct Streams<'a> {
    tokens: &'a [u32],
    batch: usize,
    stream_len: usize,
    seq_len: usize,
}

impl<'a> Streams<'a> {
    fn new(tokens: &'a [u32], batch: usize, seq_len: usize, what: &str) -> Result<Streams<'a>> {
        let stream_len = tokens.len().saturating_sub(1) / batch.max(1);
        if batch == 0 || seq_len == 0 || stream_len < seq_len {
            return Err(TrainError::Config(format!(
                "{what}: {} characters cannot fill {batch} streams of at least {seq_len} (+1) characters",
                tokens.len()
            )));
        }
        Ok(Streams { tokens, batch, stream_len, seq_len })
    }

    /// Chunks per pass over the streams.
    fn chunks(&self) -> usize {
        self.stream_len / self.seq_len
    }

    /// Inputs and targets `[batch, seq_len]` of chunk `i` (`i < chunks()`).
    fn chunk(&self, i: usize) -> (Vec<u32>, Vec<u32>) {
        let mut x = Vec::with_capacity(self.batch * self.seq_len);
        let mut y = Vec::with_capacity(self.batch * self.seq_len);
        for b in 0..self.batch {
            let start = b * self.stream_len + i * self.seq_len;
            x.extend_from_slice(&self.tokens[start..start + self.seq_len]);
            y.extend_from_slice(&self.tokens[start + 1..start + self.seq_len + 1]);
        }
        (x, y)
    }
}

fn upload(device: &Device, (x, y): (Vec<u32>, Vec<u32>), shape: [usize; 2]) -> Result<(Tensor, Tensor)> {
    Ok((Tensor::from_u32(device, &x, &shape)?, Tensor::from_u32(device, &y, &shape)?))
}

/// Mean cross-entropy (nats per character) of `model` over `tokens` read as `batch` streams in
/// chunks of `seq_len`, the state carried across chunks; no gradients, one GPU wait.
pub fn evaluate_char_lm(model: &CharLm, tokens: &[u32], batch: usize, seq_len: usize, device: &Device) -> Result<f64> {
    let streams = Streams::new(tokens, batch, seq_len, "validation")?;
    model.eval();
    let _g = no_grad();
    let mut state: Option<RecurrentState> = None;
    let mut total: Option<Tensor> = None;
    for i in 0..streams.chunks() {
        let (x, y) = upload(device, streams.chunk(i), [batch, seq_len])?;
        let (logits, next) = model.forward_with(&x, state.as_ref())?;
        let loss = cross_entropy(&logits, &y, 0.0)?;
        total = Some(match total {
            Some(t) => t.add(&loss)?,
            None => loss,
        });
        state = Some(next);
    }
    let sum = total.map(|t| t.item()).transpose()?.unwrap_or(f64::NAN);
    Ok(sum / streams.chunks() as f64)
}

/// Builds the model of `config` on `device` (seeded).
pub fn build_char_lm(config: &CharLmConfig, vocab: usize, device: &Device) -> Result<CharLm> {
    manual_seed(config.seed);
    Ok(CharLm::new(
        device,
        vocab,
        config.embed_dim,
        config.hidden_size,
        config.num_layers,
        config.cell,
        config.dropout,
    )?)
}

/// Trains a character LM on `corpus`; see the module docs for the outputs. A NaN loss stops
/// the run with `stopped` set in the summary (the last good checkpoint stays).
pub fn train_char_lm(corpus: &CharCorpus, config: &CharLmConfig, device: &Device) -> Result<CharLmReport> {
    if config.read_every == 0 || config.steps_per_epoch == 0 {
        return Err(TrainError::Config("read_every and steps_per_epoch must be at least 1".into()));
    }
    let (b, t) = (config.batch_size, config.seq_len);
    let train = Streams::new(&corpus.train, b, t, "training split")?;
    let val_tokens = match config.val_chars {
        Some(n) => &corpus.val[..corpus.val.len().min(n)],
        None => &corpus.val[..],
    };
    // validation runs with fewer streams when the split is short
    let val_batch = b.min(val_tokens.len().saturating_sub(1) / t).max(1);
    Streams::new(val_tokens, val_batch, t, "validation split")?;

    std::fs::create_dir_all(&config.out_dir).map_err(|e| TrainError::io(&config.out_dir, e))?;
    let model = build_char_lm(config, corpus.vocab_size(), device)?;
    let mut optimizer = Adam::new(model.named_parameters(), AdamConfig { lr: config.lr, ..AdamConfig::default() });
    let csv_path = config.out_dir.join(METRICS_FILE);
    let mut metrics = MetricsWriter::create(&csv_path)?;
    let mut progress = Progress::new(config.epochs, config.steps_per_epoch).with_unit(UNIT);
    let model_name = config.model_name();
    let mut summary = Summary {
        model: model_name.clone(),
        dataset: config.dataset_name.clone(),
        device: device.name(),
        epochs: 0,
        final_train_loss: f64::NAN,
        test_accuracy: None,
        wall_seconds: 0.0,
        images_per_sec: 0.0,
        stopped: None,
    };
    let run_start = Instant::now();
    let (mut chunk, mut state, mut step) = (0usize, None::<RecurrentState>, 0u64);
    let (mut chars_trained, mut train_seconds) = (0usize, 0.0f64);
    let mut val_losses = Vec::with_capacity(config.epochs);

    for epoch in 0..config.epochs {
        model.train();
        progress.start_epoch(0);
        let epoch_start = Instant::now();
        let mut window = LossWindow::default();
        for i in 0..config.steps_per_epoch {
            if chunk == train.chunks() {
                // a new pass over the text starts from a fresh state
                chunk = 0;
                state = None;
            }
            let (x, y) = upload(device, train.chunk(chunk), [b, t])?;
            chunk += 1;
            let (logits, next) = model.forward_with(&x, state.as_ref())?;
            let loss = cross_entropy(&logits, &y, 0.0)?;
            optimizer.zero_grad();
            loss.backward()?;
            if let Some(max_norm) = config.clip_grad_norm {
                clip_grad_norm(&model.parameters(), max_norm)?;
            }
            optimizer.step()?;
            state = Some(next.detach());
            step += 1;
            window.push(&loss)?;
            let mut shown = None;
            if (i + 1) % config.read_every == 0 || i + 1 == config.steps_per_epoch {
                let mean = window.read()?;
                if !mean.is_finite() {
                    let reason = format!("loss became {mean} by step {step} (epoch {})", epoch + 1);
                    stop_run(&mut progress, &mut summary, reason, run_start.elapsed().as_secs_f64(), &config.out_dir)?;
                    return Ok(CharLmReport { summary, val_loss: val_losses, out_dir: config.out_dir.clone() });
                }
                shown = Some(mean);
            }
            let elapsed = epoch_start.elapsed().as_secs_f64().max(1e-9);
            progress.step(shown, ((i + 1) * b * t) as f64 / elapsed);
        }
        let epoch_seconds = epoch_start.elapsed().as_secs_f64();
        chars_trained += config.steps_per_epoch * b * t;
        train_seconds += epoch_seconds;

        let val_loss = evaluate_char_lm(&model, val_tokens, val_batch, t, device)?;
        val_losses.push(val_loss);
        let row = MetricsRow {
            epoch: epoch + 1,
            step,
            train_loss: window.epoch_mean(),
            train_acc: None,
            test_loss: Some(val_loss),
            test_acc: None,
            lr: optimizer.lr(),
            images_per_sec: (config.steps_per_epoch * b * t) as f64 / epoch_seconds.max(1e-9),
            seconds: run_start.elapsed().as_secs_f64(),
        };
        metrics.write(&row)?;
        plot_loss(&read_metrics(&csv_path)?, &config.out_dir.join(LOSS_PLOT_FILE), &model_name, &config.dataset_name)?;
        save_char_lm(&model, &optimizer, corpus, config, epoch + 1, step)?;
        progress.finish_epoch(&row, config.epochs);
        summary.epochs = epoch + 1;
        summary.final_train_loss = row.train_loss;
        summary.wall_seconds = row.seconds;
        summary.images_per_sec = chars_trained as f64 / train_seconds.max(1e-9);
    }
    progress.finish();
    summary.write(&config.out_dir.join(SUMMARY_FILE))?;
    Ok(CharLmReport { summary, val_loss: val_losses, out_dir: config.out_dir.clone() })
}

/// Training and validation loss per epoch (nats per character).
fn plot_loss(rows: &[MetricsRow], path: &Path, model: &str, dataset: &str) -> Result<()> {
    let series = |name: &str, f: &dyn Fn(&MetricsRow) -> Option<f64>| Series {
        name: name.into(),
        points: rows.iter().filter_map(|r| f(r).map(|y| (r.epoch as f64, y))).collect(),
    };
    let chart = LineChart {
        title: format!("{model} on {dataset}: loss"),
        x_label: "epoch".into(),
        y_label: "cross-entropy (nats/char)".into(),
        series: vec![series("train", &|r| Some(r.train_loss)), series("validation", &|r| r.test_loss)],
    };
    draw_line_chart(&chart, path, (900, 560))
}

fn save_char_lm(
    model: &CharLm,
    optimizer: &Adam,
    corpus: &CharCorpus,
    config: &CharLmConfig,
    epoch: usize,
    step: u64,
) -> Result<()> {
    let mut arrays: Vec<_> = model.state_dict().into_iter().map(|(n, t)| (n, t.data())).collect();
    arrays.extend(optimizer.state_dict().into_iter().map(|(n, a)| (format!("{OPTIMIZER_PREFIX}{n}"), a)));
    let extra = [
        ("cell", cell_name(config.cell).to_string()),
        ("embed_dim", config.embed_dim.to_string()),
        ("hidden_size", config.hidden_size.to_string()),
        ("num_layers", config.num_layers.to_string()),
        ("vocab", corpus.vocab.iter().collect::<String>()),
    ];
    let meta = CheckpointMeta {
        model: config.model_name(),
        dataset: config.dataset_name.clone(),
        epoch,
        step,
        extra: extra.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
    };
    checkpoint::save(&config.out_dir.join(CHECKPOINT_FILE), &arrays, &meta)
}

/// A character LM restored from a checkpoint written by [`train_char_lm`], with its vocabulary.
pub struct LoadedCharLm {
    pub model: CharLm,
    /// characters in token order
    pub vocab: Vec<char>,
    pub cell: CellKind,
}

pub fn load_char_lm(path: &Path, device: &Device) -> Result<LoadedCharLm> {
    let mut ck = checkpoint::load(path, device)?;
    ck.take_prefixed(OPTIMIZER_PREFIX);
    let cell = parse_cell(&meta_value::<String>(&ck, "cell")?)?;
    let vocab: Vec<char> = meta_value::<String>(&ck, "vocab")?.chars().collect();
    let model = CharLm::new(
        device,
        vocab.len(),
        meta_value(&ck, "embed_dim")?,
        meta_value(&ck, "hidden_size")?,
        meta_value(&ck, "num_layers")?,
        cell,
        0.0,
    )?;
    let expected: Vec<(String, Vec<usize>)> = model.state_dict().into_iter().map(|(n, t)| (n, t.shape())).collect();
    ck.check_compatible(&format!("char-{}", cell_name(cell)), &expected)?;
    model.load_state_dict(&ck.arrays, true)?;
    model.eval();
    Ok(LoadedCharLm { model, vocab, cell })
}

/// `prompt` followed by `len` sampled characters from the checkpoint's model. Each character
/// is drawn from `softmax(logits / temperature)` with a ChaCha8 stream seeded by `seed` (the
/// same seed gives the same text); `temperature` 0 takes the most likely character. An empty
/// prompt starts from a newline (or the first vocabulary character).
pub fn sample(
    checkpoint: &Path,
    prompt: &str,
    len: usize,
    temperature: f64,
    seed: u64,
    device: &Device,
) -> Result<String> {
    if !(temperature >= 0.0 && temperature.is_finite()) {
        return Err(TrainError::Config(format!("temperature {temperature} must be a finite number >= 0")));
    }
    let lm = load_char_lm(checkpoint, device)?;
    let corpus = CharCorpus { vocab: lm.vocab.clone(), train: Vec::new(), val: Vec::new() };
    let start = if prompt.is_empty() {
        if lm.vocab.contains(&'\n') {
            "\n"
        } else {
            ""
        }
    } else {
        prompt
    };
    let tokens = if start.is_empty() { vec![0] } else { corpus.encode(start)? };
    let _g = no_grad();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut input = Tensor::from_u32(device, &tokens, &[1, tokens.len()])?;
    let mut state: Option<RecurrentState> = None;
    let mut out = String::from(prompt);
    for _ in 0..len {
        let (logits, next) = lm.model.forward_with(&input, state.as_ref())?;
        let steps = logits.shape()[1];
        let row = logits.select(1, steps - 1)?.to_vec_f64()?;
        let token = pick(&row, temperature, &mut rng);
        out.push(lm.vocab[token as usize]);
        input = Tensor::from_u32(device, &[token], &[1, 1])?;
        state = Some(next);
    }
    Ok(out)
}

/// Index drawn from `softmax(logits / temperature)`; the argmax when `temperature` is 0.
fn pick(logits: &[f64], temperature: f64, rng: &mut ChaCha8Rng) -> u32 {
    let argmax = logits.iter().enumerate().fold(0, |best, (i, &v)| if v > logits[best] { i } else { best });
    if temperature == 0.0 {
        return argmax as u32;
    }
    let weights: Vec<f64> = logits.iter().map(|&v| ((v - logits[argmax]) / temperature).exp()).collect();
    let mut r = rng.random_range(0.0..weights.iter().sum::<f64>());
    for (i, w) in weights.iter().enumerate() {
        if r < *w {
            return i as u32;
        }
        r -= w;
    }
    argmax as u32
}

/// File name of the comparison chart [`compare_cells`] draws.
pub const COMPARISON_PLOT_FILE: &str = "val_loss.png";

/// Trains one model per cell with `base` (each in `base.out_dir/<cell>`, same data, budget and
/// seed) and draws their validation curves on one chart, `base.out_dir/val_loss.png`.
/// Returns each cell's report, in order.
pub fn compare_cells(
    corpus: &CharCorpus,
    base: &CharLmConfig,
    cells: &[CellKind],
    device: &Device,
) -> Result<Vec<CharLmReport>> {
    let mut reports = Vec::with_capacity(cells.len());
    for &cell in cells {
        let config = CharLmConfig { cell, out_dir: base.out_dir.join(cell_name(cell)), ..base.clone() };
        reports.push(train_char_lm(corpus, &config, device)?);
    }
    let runs: Vec<(String, PathBuf)> =
        cells.iter().zip(&reports).map(|(&c, r)| (cell_name(c).to_string(), r.out_dir.join(METRICS_FILE))).collect();
    let title = format!(
        "{}: validation loss, {} x {} units, {} steps of {} x {} characters",
        base.dataset_name,
        base.num_layers,
        base.hidden_size,
        base.steps_per_epoch * base.epochs,
        base.batch_size,
        base.seq_len
    );
    plot_comparison(&runs, &base.out_dir.join(COMPARISON_PLOT_FILE), &title)?;
    Ok(reports)
}

/// Draws the validation loss per epoch of several runs (`(label, metrics.csv)`) on one chart.
pub fn plot_comparison(runs: &[(String, PathBuf)], path: &Path, title: &str) -> Result<()> {
    let mut series = Vec::with_capacity(runs.len());
    for (label, csv) in runs {
        let rows = read_metrics(csv)?;
        series.push(Series {
            name: label.clone(),
            points: rows.iter().filter_map(|r| r.test_loss.map(|l| (r.epoch as f64, l))).collect(),
        });
    }
    let chart = LineChart {
        title: title.into(),
        x_label: "epoch".into(),
        y_label: "validation loss (nats/char)".into(),
        series,
    };
    draw_line_chart(&chart, path, (900, 560))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_contiguous_and_targets_shifted() {
        let tokens: Vec<u32> = (0..41).collect();
        let s = Streams::new(&tokens, 2, 5, "t").unwrap();
        assert_eq!((s.stream_len, s.chunks()), (20, 4));
        let (x, y) = s.chunk(1);
        assert_eq!(x, vec![5, 6, 7, 8, 9, 25, 26, 27, 28, 29]);
        assert_eq!(y, vec![6, 7, 8, 9, 10, 26, 27, 28, 29, 30]);
        assert!(Streams::new(&tokens, 8, 6, "t").unwrap_err().to_string().contains("8 streams"));
    }

    #[test]
    fn pick_follows_temperature() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        assert_eq!(pick(&[0.1, 3.0, 0.2], 0.0, &mut rng), 1);
        let draws: Vec<u32> = (0..2000).map(|_| pick(&[0.0, 2.0f64.ln()], 1.0, &mut rng)).collect();
        let ones = draws.iter().filter(|&&d| d == 1).count() as f64 / 2000.0;
        assert!((ones - 2.0 / 3.0).abs() < 0.04, "{ones}");
    }
}
