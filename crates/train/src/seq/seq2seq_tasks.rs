//! Seq2Seq, Seq2Seq with attention, and a small Transformer on the synthetic tasks of
//! [`crate::data::seq2seq`] (reverse, sort, addition, copy), trained by [`fit`]. Every step
//! draws a fresh batch of one source length drawn from `train_lengths`, from a generator seeded
//! by the step (so a resumed run draws the same batches); the loss is the cross-entropy of the
//! teacher-forced decoder, PAD positions excluded. Evaluation decodes greedily and counts an
//! example right only when the whole output (target, then EOS) matches: exact-match accuracy,
//! by length (`test_acc` in `metrics.csv` is its mean over the evaluation lengths, and
//! `accuracy_by_length.csv` has each). The checkpoint keeps sizes and task in its metadata.

use super::attention_map_png;
use crate::checkpoint::{self, meta_value};
use crate::data::seq2seq::{decode, Example, Seq2SeqBatch, Task, BOS, DIGIT0, EOS, PAD, VOCAB, VOCAB_SIZE};
use crate::error::{Result, TrainError};
use crate::plot::{draw_line_chart, LineChart, Series};
use crate::summary::Summary;
use crate::trainer::{fit, Evaluation, StepOutput, TaskState, TrainTask, TrainerConfig, OPTIMIZER_PREFIX};
use ferrograd_device::Device;
use ferrograd_graph::functional::cross_entropy_per_sample;
use ferrograd_graph::nn::attention::{AdditiveAttention, LuongAttention, LuongScore};
use ferrograd_graph::nn::Module;
use ferrograd_graph::optim::{Adam, AdamConfig, CosineAnnealingLr};
use ferrograd_graph::{manual_seed, no_grad, Tensor};
use ferrograd_models::seq2seq::{Seq2Seq, Seq2SeqAttention, Seq2SeqConfig};
use ferrograd_models::transformer_seq2seq::{TransformerSeq2Seq, TransformerSeq2SeqConfig};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::ops::RangeInclusive;
use std::path::Path;

pub const ACCURACY_BY_LENGTH_FILE: &str = "accuracy_by_length.csv";

/// Which model learns the task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskModelKind {
    /// GRU encoder-decoder, the final encoder state as the only link (Sutskever et al.)
    Seq2Seq,
    /// the same with additive (Bahdanau) attention over the encoder outputs
    Seq2SeqAttention,
    Transformer,
}

impl TaskModelKind {
    pub const NAMES: [&'static str; 3] = ["seq2seq", "seq2seq-attn", "transformer"];

    pub fn parse(name: &str) -> Result<TaskModelKind> {
        match name {
            "seq2seq" => Ok(TaskModelKind::Seq2Seq),
            "seq2seq-attn" | "seq2seq-attention" | "attention" => Ok(TaskModelKind::Seq2SeqAttention),
            "transformer" => Ok(TaskModelKind::Transformer),
            _ => Err(TrainError::Config(format!("unknown model {name:?}; known: {}", Self::NAMES.join(", ")))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            TaskModelKind::Seq2Seq => "seq2seq",
            TaskModelKind::Seq2SeqAttention => "seq2seq-attn",
            TaskModelKind::Transformer => "transformer",
        }
    }
}

/// Sizes of the model (the Transformer uses `hidden_size` as `d_model`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TaskModelSize {
    pub embed_dim: usize,
    pub hidden_size: usize,
    /// recurrent layers, or Transformer layers on each side
    pub num_layers: usize,
    pub nhead: usize,
    pub dim_feedforward: usize,
    pub dropout: f32,
    /// the Transformer's positional table length
    pub max_len: usize,
}

impl Default for TaskModelSize {
    fn default() -> Self {
        TaskModelSize {
            embed_dim: 32,
            hidden_size: 64,
            num_layers: 1,
            nhead: 4,
            dim_feedforward: 128,
            dropout: 0.0,
            max_len: 128,
        }
    }
}

/// One of the three models behind one interface.
pub enum TaskModel {
    Rnn(Seq2Seq),
    Transformer(TransformerSeq2Seq),
}

impl TaskModel {
    pub fn new(device: &Device, kind: TaskModelKind, size: &TaskModelSize) -> Result<TaskModel> {
        let rnn = |attention| Seq2SeqConfig {
            src_vocab: VOCAB_SIZE,
            tgt_vocab: VOCAB_SIZE,
            embed_dim: size.embed_dim,
            hidden_size: size.hidden_size,
            num_layers: size.num_layers,
            dropout: size.dropout,
            attention,
        };
        Ok(match kind {
            TaskModelKind::Seq2Seq => TaskModel::Rnn(Seq2Seq::new(device, rnn(Seq2SeqAttention::None))?),
            TaskModelKind::Seq2SeqAttention => TaskModel::Rnn(Seq2Seq::new(device, rnn(Seq2SeqAttention::Additive))?),
            TaskModelKind::Transformer => TaskModel::Transformer(TransformerSeq2Seq::new(
                device,
                TransformerSeq2SeqConfig {
                    src_vocab: VOCAB_SIZE,
                    tgt_vocab: VOCAB_SIZE,
                    d_model: size.hidden_size,
                    nhead: size.nhead,
                    num_encoder_layers: size.num_layers,
                    num_decoder_layers: size.num_layers,
                    dim_feedforward: size.dim_feedforward,
                    dropout: size.dropout,
                    max_len: size.max_len,
                },
            )?),
        })
    }

    pub fn module(&self) -> &dyn Module {
        match self {
            TaskModel::Rnn(m) => m,
            TaskModel::Transformer(m) => m,
        }
    }

    /// Teacher-forced logits `[B, T, VOCAB_SIZE]`.
    pub fn forward_with(&self, src: &Tensor, tgt_in: &Tensor, src_lengths: &[usize]) -> Result<Tensor> {
        Ok(match self {
            TaskModel::Rnn(m) => m.forward_with(src, tgt_in, Some(src_lengths))?,
            TaskModel::Transformer(m) => m.forward_with(src, tgt_in, Some(src_lengths))?,
        })
    }

    /// Greedy output tokens `[B, max_len]` (u32).
    pub fn greedy_decode(&self, src: &Tensor, max_len: usize, src_lengths: &[usize]) -> Result<Tensor> {
        Ok(match self {
            TaskModel::Rnn(m) => m.greedy_decode(src, BOS, max_len, Some(src_lengths))?,
            TaskModel::Transformer(m) => m.greedy_decode(src, BOS, max_len, Some(src_lengths))?,
        })
    }

    /// Attention weights `[B, T, S]` of the decoder inputs `tgt_in [B, T]` over the source:
    /// the Bahdanau/Luong weights of each decoder step, or the Transformer's last decoder
    /// layer's cross-attention averaged over heads; `None` for Seq2Seq without attention.
    pub fn attention_weights(&self, src: &Tensor, tgt_in: &Tensor, src_lengths: &[usize]) -> Result<Option<Tensor>> {
        self.module().eval();
        let _g = no_grad();
        match self {
            TaskModel::Transformer(m) => Ok(Some(m.cross_attention_weights(src, tgt_in, Some(src_lengths))?)),
            TaskModel::Rnn(m) => rnn_attention_weights(m, src, tgt_in, src_lengths),
        }
    }
}

/// Seq2Seq keeps its scorer private and drops the weights, so a scorer of the same kind is
/// rebuilt from the model's `attention.*` parameters and run on the decoder's states.
fn rnn_attention_weights(m: &Seq2Seq, src: &Tensor, tgt_in: &Tensor, lengths: &[usize]) -> Result<Option<Tensor>> {
    let device = src.device();
    let h = m.config.hidden_size;
    let params: Vec<(String, ferrograd_device::Array)> = m
        .named_parameters()
        .into_iter()
        .filter_map(|(n, t)| n.strip_prefix("attention.").map(|n| (n.to_string(), t.data())))
        .collect();
    let (memory, state) = m.encode(src, Some(lengths))?;
    let (dec, _) = m.decoder.forward_with(&m.decoder_embedding.forward(tgt_in)?, Some(&state))?;
    let [b, s] = [src.shape()[0], src.shape()[1]];
    let mask = Tensor::new(ferrograd_device::kernels::attention::padding_mask(&device, lengths, s)?.reshape(&[b, s])?);
    // every decoder step at once: weights [B, T, S]
    let score = |q: &Tensor| -> Result<Tensor> {
        Ok(match m.config.attention {
            Seq2SeqAttention::Additive => {
                let a = AdditiveAttention::new(&device, h, h, h)?;
                a.load_state_dict(&params, true)?;
                a.forward_with(q, &memory, &memory, Some(&mask))?.1
            }
            kind => {
                let score = if kind == Seq2SeqAttention::Dot { LuongScore::Dot } else { LuongScore::General };
                let a = LuongAttention::new(&device, score, h, h)?;
                a.load_state_dict(&params, true)?;
                a.forward_with(q, &memory, &memory, Some(&mask))?.1
            }
        })
    };
    if m.config.attention == Seq2SeqAttention::None {
        return Ok(None);
    }
    Ok(Some(score(&dec)?))
}

#[derive(Clone, Debug)]
pub struct Seq2SeqTaskConfig {
    pub task: Task,
    pub model: TaskModelKind,
    pub size: TaskModelSize,
    /// source lengths of the training examples (operand digits for addition)
    pub train_lengths: RangeInclusive<usize>,
    /// lengths evaluated separately at the end (and, averaged, after each epoch)
    pub eval_lengths: Vec<usize>,
    /// evaluation examples per length
    pub eval_examples: usize,
    pub batch_size: usize,
    pub steps_per_epoch: usize,
    pub lr: f64,
    pub seed: u64,
}

impl Seq2SeqTaskConfig {
    /// Batch 64, epochs of 100 steps, Adam 3e-3 annealed to zero along a cosine, 200 evaluation
    /// examples per length, evaluated at the training lengths' ends.
    pub fn new(task: Task, model: TaskModelKind, train_lengths: RangeInclusive<usize>) -> Self {
        let mut eval_lengths = vec![*train_lengths.start(), *train_lengths.end()];
        eval_lengths.dedup();
        Seq2SeqTaskConfig {
            task,
            model,
            size: TaskModelSize::default(),
            train_lengths,
            eval_lengths,
            eval_examples: 200,
            batch_size: 64,
            steps_per_epoch: 100,
            lr: 3e-3,
            seed: 0,
        }
    }

    fn task_name(&self) -> &'static str {
        match self.task {
            Task::Copy => "copy",
            Task::Reverse => "reverse",
            Task::Sort => "sort",
            Task::Addition => "addition",
        }
    }

    /// e.g. "reverse-1..10"
    pub fn dataset_name(&self) -> String {
        format!("{}-{}..{}", self.task_name(), self.train_lengths.start(), self.train_lengths.end())
    }

    /// A run of `epochs` into `out_dir`, clipping the gradient norm at 1.
    pub fn trainer(&self, epochs: usize, out_dir: &Path) -> TrainerConfig {
        let named = TrainerConfig::new(self.model.name(), &self.dataset_name(), epochs, out_dir);
        TrainerConfig { clip_grad_norm: Some(1.0), ..named }
    }
}

/// Exact-match accuracy at one source length.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LengthAccuracy {
    pub length: usize,
    /// fraction in [0, 1]
    pub exact_match: f64,
    pub examples: usize,
}

#[derive(Debug)]
pub struct Seq2SeqTaskReport {
    pub summary: Summary,
    pub accuracy_by_length: Vec<LengthAccuracy>,
}

/// Mean cross-entropy of `logits [B, T, V]` against `targets` (`[B * T]`, PAD excluded).
fn masked_loss(logits: &Tensor, targets: &[u32], device: &Device) -> Result<Tensor> {
    let s = logits.shape();
    let y = Tensor::from_u32(device, targets, &s[..2])?;
    let keep: Vec<f32> = targets.iter().map(|&t| if t == PAD { 0.0 } else { 1.0 }).collect();
    let count = keep.iter().sum::<f32>().max(1.0);
    let keep = Tensor::from_f32(device, &keep, &[targets.len()])?;
    let per_token = cross_entropy_per_sample(logits, &y, 0.0)?.reshape_to(&[targets.len()])?;
    Ok(per_token.mul(&keep)?.sum_all()?.div_scalar(count)?)
}

/// Whether a decoded row is the target followed by EOS.
fn exact(decoded: &[u32], target: &[u32]) -> bool {
    decoded.len() > target.len() && decoded[..target.len()] == *target && decoded[target.len()] == EOS
}

/// Exact-match accuracy of greedy decoding on `n` fresh examples of each length, in batches.
pub fn exact_match_by_length(
    model: &TaskModel,
    task: Task,
    lengths: &[usize],
    n: usize,
    seed: u64,
    device: &Device,
    tick: &mut dyn FnMut(usize, usize),
) -> Result<Vec<LengthAccuracy>> {
    model.module().eval();
    let _g = no_grad();
    let mut out = Vec::with_capacity(lengths.len());
    for (i, &len) in lengths.iter().enumerate() {
        let examples = task.generate(n, len..=len, seed.wrapping_add(len as u64 * 7919))?;
        let mut right = 0;
        for chunk in examples.chunks(256) {
            right += count_exact(model, chunk, device)?;
        }
        out.push(LengthAccuracy { length: len, exact_match: right as f64 / n.max(1) as f64, examples: n });
        tick(i + 1, lengths.len());
    }
    Ok(out)
}

fn count_exact(model: &TaskModel, examples: &[Example], device: &Device) -> Result<usize> {
    let b = Seq2SeqBatch::new(examples);
    let src = Tensor::from_u32(device, &b.src, &[b.batch, b.src_len])?;
    let decoded = model.greedy_decode(&src, b.tgt_len, &b.src_lengths)?.to_vec_u32()?;
    Ok(examples.iter().enumerate().filter(|(i, e)| exact(&decoded[i * b.tgt_len..][..b.tgt_len], &e.tgt)).count())
}

/// A sequence-to-sequence task as a [`TrainTask`].
struct Seq2SeqTask<'a> {
    model: TaskModel,
    config: &'a Seq2SeqTaskConfig,
    /// the last evaluation's
    accuracy: Vec<LengthAccuracy>,
    device: Device,
}

impl TrainTask for Seq2SeqTask<'_> {
    fn model(&self) -> &dyn Module {
        self.model.module()
    }

    fn unit(&self) -> &'static str {
        "sequences"
    }

    fn steps_per_epoch(&self) -> usize {
        self.config.steps_per_epoch
    }

    fn start_epoch(&mut self, _epoch: usize) -> Result<()> {
        Ok(())
    }

    fn step(&mut self, step: u64) -> Result<StepOutput> {
        let c = self.config;
        // one length per batch (no padding, though the encoder would skip it)
        let mut rng = ChaCha8Rng::seed_from_u64(c.seed.wrapping_mul(1_000_003).wrapping_add(step));
        let len = rng.random_range(c.train_lengths.clone());
        let examples = c.task.generate(c.batch_size, len..=len, rng.random())?;
        let b = Seq2SeqBatch::new(&examples);
        let src = Tensor::from_u32(&self.device, &b.src, &[b.batch, b.src_len])?;
        let tgt_in = Tensor::from_u32(&self.device, &b.tgt_in, &[b.batch, b.tgt_len])?;
        let logits = self.model.forward_with(&src, &tgt_in, &b.src_lengths)?;
        let loss = masked_loss(&logits, &b.tgt_out, &self.device)?;
        let stats = loss.detach().mul_scalar(b.batch as f32)?;
        Ok(StepOutput { loss, stats, examples: b.batch, units: b.batch })
    }

    fn evaluate(&mut self, tick: &mut dyn FnMut(usize, usize)) -> Result<Evaluation> {
        let c = self.config;
        let seed = c.seed.wrapping_add(0xE7A1);
        self.accuracy =
            exact_match_by_length(&self.model, c.task, &c.eval_lengths, c.eval_examples, seed, &self.device, tick)?;
        let mean = self.accuracy.iter().map(|a| a.exact_match).sum::<f64>() / self.accuracy.len().max(1) as f64;
        Ok(Evaluation { loss: None, accuracy: (!self.accuracy.is_empty()).then_some(mean) })
    }

    fn write_outputs(&self, dir: &Path) -> Result<()> {
        write_accuracy_csv(&dir.join(ACCURACY_BY_LENGTH_FILE), &self.accuracy)
    }

    fn state(&self) -> Result<TaskState> {
        let s = &self.config.size;
        let meta = [
            ("task", self.config.task_name().to_string()),
            ("embed_dim", s.embed_dim.to_string()),
            ("hidden_size", s.hidden_size.to_string()),
            ("num_layers", s.num_layers.to_string()),
            ("nhead", s.nhead.to_string()),
            ("dim_feedforward", s.dim_feedforward.to_string()),
            ("max_len", s.max_len.to_string()),
        ];
        Ok(TaskState { arrays: Vec::new(), meta: meta.into_iter().map(|(k, v)| (k.to_string(), v)).collect() })
    }
}

/// Trains `config.model` on `config.task` through [`fit`]. Returns the trained model and the
/// report (exact match at `config.eval_lengths`).
pub fn train_seq2seq_task(
    config: &Seq2SeqTaskConfig,
    run: &TrainerConfig,
    device: &Device,
) -> Result<(TaskModel, Seq2SeqTaskReport)> {
    if config.batch_size == 0 {
        return Err(TrainError::Config("the batch size must be at least 1".into()));
    }
    manual_seed(config.seed);
    let model = TaskModel::new(device, config.model, &config.size)?;
    let mut optimizer =
        Adam::new(model.module().named_parameters(), AdamConfig { lr: config.lr, ..AdamConfig::default() });
    // annealed: at a constant rate exact match swings by several points from epoch to epoch
    let schedule = CosineAnnealingLr { base: config.lr, t_max: run.epochs * config.steps_per_epoch, eta_min: 0.0 };
    let mut task = Seq2SeqTask { model, config, accuracy: Vec::new(), device: device.clone() };
    let summary = fit(&mut task, &mut optimizer, &schedule, device, run)?;
    Ok((task.model, Seq2SeqTaskReport { summary, accuracy_by_length: task.accuracy }))
}

fn write_accuracy_csv(path: &Path, rows: &[LengthAccuracy]) -> Result<()> {
    let mut text = String::from("length,exact_match,examples\n");
    for r in rows {
        text += &format!("{},{},{}\n", r.length, r.exact_match, r.examples);
    }
    checkpoint::write_atomically(path, text.as_bytes())
}

/// A model saved by [`train_seq2seq_task`], with its kind and task.
pub fn load_task_model(path: &Path, device: &Device) -> Result<(TaskModel, TaskModelKind, Task)> {
    let mut ck = checkpoint::load(path, device)?;
    ck.take_prefixed(OPTIMIZER_PREFIX);
    let kind = TaskModelKind::parse(&ck.meta.model)?;
    let task = Task::parse(&meta_value::<String>(&ck, "task")?)?;
    let size = TaskModelSize {
        embed_dim: meta_value(&ck, "embed_dim")?,
        hidden_size: meta_value(&ck, "hidden_size")?,
        num_layers: meta_value(&ck, "num_layers")?,
        nhead: meta_value(&ck, "nhead")?,
        dim_feedforward: meta_value(&ck, "dim_feedforward")?,
        dropout: 0.0,
        max_len: meta_value(&ck, "max_len")?,
    };
    let model = TaskModel::new(device, kind, &size)?;
    checkpoint::load_model(&ck, kind.name(), model.module())?;
    model.module().eval();
    Ok((model, kind, task))
}

/// Decodes `source` (digits, and `+` for addition) greedily with the model of `checkpoint`
/// and draws the attention of each output step over the source at `path` (rows: the tokens
/// produced, `$` for EOS). Returns the decoded output. Seq2Seq without attention has no map.
pub fn attention_map_for_checkpoint(checkpoint: &Path, source: &str, path: &Path, device: &Device) -> Result<String> {
    let (model, kind, task) = load_task_model(checkpoint, device)?;
    let src = source
        .chars()
        .map(|c| match VOCAB.iter().position(|&v| v == c) {
            Some(i) if i as u32 >= DIGIT0 => Ok(i as u32),
            _ => Err(TrainError::Config(format!("source character {c:?} is not a digit or '+'"))),
        })
        .collect::<Result<Vec<u32>>>()?;
    if src.is_empty() {
        return Err(TrainError::Config("the source is empty".into()));
    }
    let s = src.len();
    let src_t = Tensor::from_u32(device, &src, &[1, s])?;
    let decoded = model.greedy_decode(&src_t, 2 * s + 2, &[s])?.to_vec_u32()?;
    let n = decoded.iter().position(|&t| t == EOS).map_or(decoded.len(), |p| p + 1);
    let out = &decoded[..n];
    let tgt_in: Vec<u32> = std::iter::once(BOS).chain(out[..n - 1].iter().copied()).collect();
    let tgt_t = Tensor::from_u32(device, &tgt_in, &[1, n])?;
    let weights = model
        .attention_weights(&src_t, &tgt_t, &[s])?
        .ok_or_else(|| TrainError::Config(format!("{} has no attention to draw", kind.name())))?
        .to_vec()?;
    let label = |t: &u32| VOCAB.get(*t as usize).copied().unwrap_or('?').to_string();
    let (src_labels, out_labels): (Vec<String>, Vec<String>) =
        (src.iter().map(label).collect(), out.iter().map(label).collect());
    let decoded = decode(out);
    let task = format!("{task:?}").to_lowercase();
    let title = format!("{} ({task} task) · attention decoding {source:?} -> {decoded:?}", kind.name());
    attention_map_png(&weights, &src_labels, &out_labels, &title, path)?;
    Ok(decoded)
}

/// Exact-match accuracy against source length, one line per model (`(label, results)`).
pub fn length_sweep_plot(runs: &[(String, Vec<LengthAccuracy>)], path: &Path, title: &str) -> Result<()> {
    let chart = LineChart {
        title: title.into(),
        x_label: "input length".into(),
        y_label: "exact match (%)".into(),
        series: runs
            .iter()
            .map(|(label, acc)| Series {
                name: label.clone(),
                points: acc.iter().map(|a| (a.length as f64, a.exact_match * 100.0)).collect(),
            })
            .collect(),
    };
    draw_line_chart(&chart, path, (900, 560))
}

/// Trains each of `models` with `base` and `run` (each in `run.out_dir/<model>`), evaluates
/// each at `base.eval_lengths`, and draws `run.out_dir/length_sweep.png`.
pub fn length_sweep(
    base: &Seq2SeqTaskConfig,
    models: &[TaskModelKind],
    run: &TrainerConfig,
    device: &Device,
) -> Result<Vec<(String, Vec<LengthAccuracy>)>> {
    let mut runs = Vec::with_capacity(models.len());
    for &kind in models {
        let config = Seq2SeqTaskConfig { model: kind, ..base.clone() };
        let model_run =
            TrainerConfig { model_name: kind.name().into(), out_dir: run.out_dir.join(kind.name()), ..run.clone() };
        let (_, report) = train_seq2seq_task(&config, &model_run, device)?;
        runs.push((kind.name().to_string(), report.accuracy_by_length));
    }
    let title = format!(
        "{}: exact match by length (trained on {}..={})",
        base.task_name(),
        base.train_lengths.start(),
        base.train_lengths.end()
    );
    length_sweep_plot(&runs, &run.out_dir.join("length_sweep.png"), &title)?;
    let mut text = String::from("model,length,exact_match,examples\n");
    for (label, acc) in &runs {
        for a in acc {
            text += &format!("{label},{},{},{}\n", a.length, a.exact_match, a.examples);
        }
    }
    checkpoint::write_atomically(&run.out_dir.join("length_sweep.csv"), text.as_bytes())?;
    Ok(runs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_match_needs_the_target_then_eos() {
        assert!(exact(&[5, 4, EOS, PAD], &[5, 4]));
        assert!(!exact(&[5, 4, 3, EOS], &[5, 4]));
        assert!(!exact(&[5, 3, EOS, EOS], &[5, 4]));
        assert!(!exact(&[5, 4], &[5, 4]));
    }

    #[test]
    fn model_names_round_trip() {
        for name in TaskModelKind::NAMES {
            assert_eq!(TaskModelKind::parse(name).unwrap().name(), name);
        }
        assert!(TaskModelKind::parse("lstm").unwrap_err().to_string().contains("transformer"));
    }
}
