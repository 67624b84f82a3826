//! Character-level language modelling (Karpathy's char-rnn) with [`CharLm`]: the training
//! text is cut into `batch_size` contiguous streams read side by side in chunks of `seq_len`;
//! the recurrent state is carried from one chunk to the next and detached (truncated BPTT).
//! Adam, trained by [`fit`]. After each epoch (`steps_per_epoch` chunks) the validation text is
//! read the same way without gradients and its mean cross-entropy, in nats per character, is
//! the test loss. The checkpoint keeps the vocabulary and sizes in its metadata, and the
//! carried state and the position in the text, so a resumed run reads on where it stopped.

use super::{cell_name, parse_cell};
use crate::checkpoint::{self, meta_value};
use crate::data::text::CharCorpus;
use crate::error::{Result, TrainError};
use crate::metrics::read_metrics;
use crate::plot::{draw_line_chart, LineChart, Series};
use crate::summary::Summary;
use crate::trainer::{
    fit, Evaluation, StepOutput, TaskState, TrainTask, TrainerConfig, METRICS_FILE, OPTIMIZER_PREFIX, TASK_PREFIX,
};
use ferrograd_device::Device;
use ferrograd_graph::functional::cross_entropy;
use ferrograd_graph::nn::recurrent::{CellKind, RecurrentState};
use ferrograd_graph::nn::Module;
use ferrograd_graph::optim::{Adam, AdamConfig, ConstantLr};
use ferrograd_graph::{manual_seed, no_grad, Tensor};
use ferrograd_models::seq2seq::CharLm;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::path::{Path, PathBuf};

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
    pub lr: f64,
    /// validate on at most this many characters of the validation split (`None`: all)
    pub val_chars: Option<usize>,
    /// model initialisation
    pub seed: u64,
}

impl CharLmConfig {
    /// An LSTM of 1 layer x 128 units, batch 32 x 64 characters, Adam 2e-3.
    pub fn new(cell: CellKind) -> CharLmConfig {
        CharLmConfig {
            cell,
            embed_dim: 64,
            hidden_size: 128,
            num_layers: 1,
            dropout: 0.0,
            batch_size: 32,
            seq_len: 64,
            steps_per_epoch: 100,
            lr: 2e-3,
            val_chars: Some(20_000),
            seed: 0,
        }
    }

    /// e.g. "char-lstm"
    pub fn model_name(&self) -> String {
        format!("char-{}", cell_name(self.cell))
    }

    /// A run of `epochs` on `dataset` into `out_dir`, clipping the gradient norm at 5.
    pub fn trainer(&self, dataset: &str, epochs: usize, out_dir: &Path) -> TrainerConfig {
        TrainerConfig { clip_grad_norm: Some(5.0), ..TrainerConfig::new(&self.model_name(), dataset, epochs, out_dir) }
    }
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
fn evaluate_streams(
    model: &CharLm,
    tokens: &[u32],
    batch: usize,
    seq_len: usize,
    device: &Device,
    tick: &mut dyn FnMut(usize, usize),
) -> Result<f64> {
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
        tick(i + 1, streams.chunks());
    }
    let sum = total.map(|t| t.item()).transpose()?.unwrap_or(f64::NAN);
    Ok(sum / streams.chunks() as f64)
}

/// Builds a model of `config`'s sizes on `device` (seeded).
fn build_char_lm(config: &CharLmConfig, vocab: usize, device: &Device) -> Result<CharLm> {
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

/// Character language modelling as a [`TrainTask`].
struct CharLmTask<'a> {
    model: CharLm,
    config: &'a CharLmConfig,
    corpus: &'a CharCorpus,
    train: Streams<'a>,
    val_tokens: &'a [u32],
    /// validation runs with fewer streams when the split is short
    val_batch: usize,
    /// the next chunk of the training streams, and the state carried into it
    chunk: usize,
    state: Option<RecurrentState>,
    device: Device,
}

impl TrainTask for CharLmTask<'_> {
    fn model(&self) -> &dyn Module {
        &self.model
    }

    fn unit(&self) -> &'static str {
        "characters"
    }

    fn steps_per_epoch(&self) -> usize {
        self.config.steps_per_epoch
    }

    fn start_epoch(&mut self, _epoch: usize) -> Result<()> {
        Ok(())
    }

    fn step(&mut self, _step: u64) -> Result<StepOutput> {
        if self.chunk == self.train.chunks() {
            // a new pass over the text starts from a fresh state
            self.chunk = 0;
            self.state = None;
        }
        let shape = [self.config.batch_size, self.config.seq_len];
        let (x, y) = upload(&self.device, self.train.chunk(self.chunk), shape)?;
        self.chunk += 1;
        let (logits, next) = self.model.forward_with(&x, self.state.as_ref())?;
        let loss = cross_entropy(&logits, &y, 0.0)?;
        self.state = Some(next.detach());
        let chars = shape[0] * shape[1];
        let stats = loss.detach().mul_scalar(chars as f32)?;
        Ok(StepOutput { loss, stats, examples: chars, units: chars })
    }

    fn evaluate(&mut self, tick: &mut dyn FnMut(usize, usize)) -> Result<Evaluation> {
        let loss =
            evaluate_streams(&self.model, self.val_tokens, self.val_batch, self.config.seq_len, &self.device, tick)?;
        Ok(Evaluation { loss: Some(loss), accuracy: None })
    }

    fn state(&self) -> Result<TaskState> {
        let c = self.config;
        let meta = [
            ("cell", cell_name(c.cell).to_string()),
            ("embed_dim", c.embed_dim.to_string()),
            ("hidden_size", c.hidden_size.to_string()),
            ("num_layers", c.num_layers.to_string()),
            ("vocab", self.corpus.vocab.iter().collect::<String>()),
            ("chunk", self.chunk.to_string()),
        ];
        let mut arrays = Vec::new();
        if let Some(state) = &self.state {
            arrays.push(("h".to_string(), state.h.data()));
            arrays.extend(state.c.as_ref().map(|c| ("c".to_string(), c.data())));
        }
        Ok(TaskState { arrays, meta: meta.into_iter().map(|(k, v)| (k.to_string(), v)).collect() })
    }

    fn restore(&mut self, state: TaskState) -> Result<()> {
        let get = |key: &str| state.meta.get(key).cloned().unwrap_or_default();
        let vocab: String = self.corpus.vocab.iter().collect();
        if get("vocab") != vocab {
            return Err(TrainError::Config(format!(
                "--resume: the checkpoint's vocabulary {:?} is not this text's {vocab:?}",
                get("vocab")
            )));
        }
        self.chunk = get("chunk").parse().ok().filter(|&c| c <= self.train.chunks()).ok_or_else(|| {
            TrainError::Config(format!(
                "--resume: the checkpoint's text position {:?} is not one of this text's",
                get("chunk")
            ))
        })?;
        let array = |name: &str| state.arrays.iter().find(|(n, _)| n == name).map(|(_, a)| Tensor::new(a.clone()));
        self.state = array("h").map(|h| RecurrentState { h, c: array("c") });
        Ok(())
    }
}

/// Trains a character LM on `corpus` through [`fit`].
pub fn train_char_lm(
    corpus: &CharCorpus,
    config: &CharLmConfig,
    run: &TrainerConfig,
    device: &Device,
) -> Result<Summary> {
    let (b, t) = (config.batch_size, config.seq_len);
    let train = Streams::new(&corpus.train, b, t, "training split")?;
    let val_tokens = match config.val_chars {
        Some(n) => &corpus.val[..corpus.val.len().min(n)],
        None => &corpus.val[..],
    };
    let val_batch = b.min(val_tokens.len().saturating_sub(1) / t).max(1);
    Streams::new(val_tokens, val_batch, t, "validation split")?;
    let model = build_char_lm(config, corpus.vocab_size(), device)?;
    let mut optimizer = Adam::new(model.named_parameters(), AdamConfig { lr: config.lr, ..AdamConfig::default() });
    let mut task = CharLmTask {
        model,
        config,
        corpus,
        train,
        val_tokens,
        val_batch,
        chunk: 0,
        state: None,
        device: device.clone(),
    };
    fit(&mut task, &mut optimizer, &ConstantLr(config.lr), device, run)
}

/// A character LM restored from a checkpoint written by [`train_char_lm`], with its vocabulary.
struct LoadedCharLm {
    model: CharLm,
    /// characters in token order
    vocab: Vec<char>,
}

fn load_char_lm(path: &Path, device: &Device) -> Result<LoadedCharLm> {
    let mut ck = checkpoint::load(path, device)?;
    ck.take_prefixed(OPTIMIZER_PREFIX);
    ck.take_prefixed(TASK_PREFIX);
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
    checkpoint::load_model(&ck, &format!("char-{}", cell_name(cell)), &model)?;
    model.eval();
    Ok(LoadedCharLm { model, vocab })
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

/// Trains one model per cell with `base` and `run` (each in `run.out_dir/<cell>`, same data,
/// budget and seed) and draws their validation curves on one chart, `run.out_dir/val_loss.png`.
/// Returns each cell's summary, in order.
pub fn compare_cells(
    corpus: &CharCorpus,
    base: &CharLmConfig,
    run: &TrainerConfig,
    cells: &[CellKind],
    device: &Device,
) -> Result<Vec<Summary>> {
    let mut summaries = Vec::with_capacity(cells.len());
    let mut runs = Vec::with_capacity(cells.len());
    for &cell in cells {
        let config = CharLmConfig { cell, ..base.clone() };
        let dir = run.out_dir.join(cell_name(cell));
        let cell_run = TrainerConfig { model_name: config.model_name(), out_dir: dir.clone(), ..run.clone() };
        summaries.push(train_char_lm(corpus, &config, &cell_run, device)?);
        runs.push((cell_name(cell).to_string(), dir.join(METRICS_FILE)));
    }
    let title = format!(
        "{}: validation loss, {} x {} units, {} steps of {} x {} characters",
        run.dataset_name,
        base.num_layers,
        base.hidden_size,
        base.steps_per_epoch * run.epochs,
        base.batch_size,
        base.seq_len
    );
    plot_comparison(&runs, &run.out_dir.join(COMPARISON_PLOT_FILE), &title)?;
    Ok(summaries)
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
