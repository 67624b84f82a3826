//! The sequence tasks end to end on small budgets: a character LM learns and samples
//! deterministically from its checkpoint, row-by-row MNIST takes a step, Seq2Seq with attention
//! learns to reverse, the Transformer trains and decodes, and attention maps are drawn.

use ferrograd_device::Device;
use ferrograd_graph::nn::recurrent::CellKind;
use ferrograd_graph::Tensor;
use ferrograd_train::data::seq2seq::{Seq2SeqBatch, Task};
use ferrograd_train::data::text::CharCorpus;
use ferrograd_train::metrics::read_metrics;
use ferrograd_train::seq::attention_map_png;
use ferrograd_train::seq::char_lm::{compare_cells, sample, train_char_lm, CharLmConfig, COMPARISON_PLOT_FILE};
use ferrograd_train::seq::seq2seq_tasks::{
    attention_map_for_checkpoint, length_sweep_plot, load_task_model, train_seq2seq_task, LengthAccuracy,
    Seq2SeqTaskConfig, TaskModelKind,
};
use ferrograd_train::seq::seq_mnist::{train_seq_mnist, SeqMnistConfig};
use ferrograd_train::trainer::{CHECKPOINT_FILE, METRICS_FILE, SUMMARY_FILE};

/// A text with structure to learn: a few words repeated in a pseudo-random order.
fn text() -> String {
    let words = ["the ", "cat ", "sat ", "on ", "a ", "mat. ", "dog ", "ran\n"];
    let mut rng = ferrograd_device::testing::Rng::new(5);
    (0..1500).map(|_| words[(rng.uniform() * words.len() as f64) as usize % words.len()]).collect()
}

fn inked(path: &std::path::Path) -> usize {
    let img = image::open(path).unwrap().to_rgb8();
    img.pixels().filter(|p| p.0.iter().any(|&c| c < 200)).count()
}

#[test]
fn char_lm_learns_and_samples_deterministically() {
    let device = Device::cpu();
    let corpus = CharCorpus::from_text(&text(), 0.1).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut config = CharLmConfig::new(CellKind::Gru);
    (config.embed_dim, config.hidden_size, config.batch_size, config.seq_len) = (16, 32, 8, 16);
    (config.steps_per_epoch, config.lr, config.val_chars) = (20, 1e-2, Some(600));
    let run = config.trainer("words", 3, &dir.path().join("gru"));
    let summary = train_char_lm(&corpus, &config, &run, &device).unwrap();
    assert_eq!(summary.throughput_unit, "characters/s");
    let uniform = (corpus.vocab_size() as f64).ln();
    let rows = read_metrics(&run.out_dir.join(METRICS_FILE)).unwrap();
    assert_eq!(rows.len(), 3);
    assert!(rows[0].train_loss < uniform, "{} vs ln V = {uniform}", rows[0].train_loss);
    let val: Vec<f64> = rows.iter().map(|r| r.test_loss.unwrap()).collect();
    assert!(val[2] < val[0] && val[2] < 0.7 * uniform, "{val:?}");
    assert_eq!(summary.test_loss, Some(val[2]));
    for f in [CHECKPOINT_FILE, SUMMARY_FILE, "loss.png"] {
        assert!(run.out_dir.join(f).is_file(), "{f}");
    }

    let ckpt = run.out_dir.join(CHECKPOINT_FILE);
    let a = sample(&ckpt, "the ", 40, 0.8, 7, &device).unwrap();
    assert_eq!(a, sample(&ckpt, "the ", 40, 0.8, 7, &device).unwrap());
    assert_ne!(a, sample(&ckpt, "the ", 40, 0.8, 8, &device).unwrap());
    assert!(a.starts_with("the ") && a.chars().count() == 44, "{a:?}");
    assert!(sample(&ckpt, "xyz", 5, 1.0, 0, &device).unwrap_err().to_string().contains("'x'"));

    // a shorter comparison of two cells, each in its own folder, drawn on one chart
    let compare = config.trainer("words", 2, &dir.path().join("compare"));
    let summaries = compare_cells(&corpus, &config, &compare, &[CellKind::Lstm, CellKind::RnnTanh], &device).unwrap();
    assert_eq!(summaries.iter().map(|s| s.model.as_str()).collect::<Vec<_>>(), ["char-lstm", "char-rnn"]);
    for cell in ["lstm", "rnn"] {
        assert_eq!(read_metrics(&compare.out_dir.join(cell).join(METRICS_FILE)).unwrap().len(), 2, "{cell}");
    }
    assert!(inked(&compare.out_dir.join(COMPARISON_PLOT_FILE)) > 2000);
}

#[test]
fn seq_mnist_runs_a_step_on_the_gpu() {
    let device = ferrograd_device::testing::gpu();
    let dir = tempfile::tempdir().unwrap();
    let mut config = SeqMnistConfig::new(CellKind::Lstm);
    (config.hidden_size, config.batch_size, config.train_limit, config.test_limit) = (32, 100, Some(300), Some(100));
    let summary = train_seq_mnist(&config, &config.trainer(1, dir.path()), &device).unwrap();
    assert_eq!(summary.epochs, 1);
    assert!(summary.final_train_loss.is_finite() && summary.final_train_loss < 2.5, "{summary:?}");
    assert!(summary.test_accuracy.is_some());
    assert!(dir.path().join("accuracy.png").is_file());
}

#[test]
fn seq2seq_with_attention_learns_to_reverse() {
    let device = Device::cpu();
    let dir = tempfile::tempdir().unwrap();
    let mut config = Seq2SeqTaskConfig::new(Task::Reverse, TaskModelKind::Seq2SeqAttention, 5..=5);
    (config.size.embed_dim, config.size.hidden_size) = (16, 32);
    (config.steps_per_epoch, config.eval_lengths, config.eval_examples) = (150, vec![5], 200);
    (config.lr, config.batch_size) = (1e-2, 32);
    let (model, report) = train_seq2seq_task(&config, &config.trainer(2, dir.path()), &device).unwrap();
    assert_eq!(report.summary.throughput_unit, "sequences/s");
    let acc = report.accuracy_by_length[0].exact_match;
    assert!(acc >= 0.9, "exact match at length 5: {acc}");
    assert!(dir.path().join("accuracy_by_length.csv").is_file());

    // the checkpoint restores the same model, and its attention draws
    let (restored, kind, task) = load_task_model(&dir.path().join(CHECKPOINT_FILE), &device).unwrap();
    assert_eq!((kind, task), (TaskModelKind::Seq2SeqAttention, Task::Reverse));
    let b = Seq2SeqBatch::new(&Task::Reverse.generate(1, 5..=5, 3).unwrap());
    let src = Tensor::from_u32(&device, &b.src, &[1, 5]).unwrap();
    let tgt = Tensor::from_u32(&device, &b.tgt_in, &[1, b.tgt_len]).unwrap();
    let w = restored.attention_weights(&src, &tgt, &b.src_lengths).unwrap().unwrap();
    assert_eq!(w.shape(), vec![1, 6, 5]);
    let w0 = model.attention_weights(&src, &tgt, &b.src_lengths).unwrap().unwrap().to_vec().unwrap();
    let w = w.to_vec().unwrap();
    // the checkpoint holds f32, the CPU model f64: equal to f32 precision
    assert!(w.iter().zip(&w0).all(|(a, b)| (a - b).abs() < 1e-5), "{w:?} vs {w0:?}");
    // reversing: output step 0 looks mostly at the last source token
    assert!(w[4] > 0.5, "{:?}", &w[..5]);
    let png = dir.path().join("attention.png");
    let labels = |t: &[u32]| t.iter().map(|&x| ferrograd_train::data::seq2seq::decode(&[x])).collect::<Vec<_>>();
    attention_map_png(&w, &labels(&b.src), &labels(&b.tgt_in), "test", &png).unwrap();
    assert!(inked(&png) > 500);
    assert!(attention_map_png(&w[..3], &labels(&b.src), &labels(&b.tgt_in), "test", &png).is_err());

    // the library call behind `ferrograd visualize` for a seq2seq checkpoint
    let map = dir.path().join("map.png");
    let ckpt = dir.path().join(CHECKPOINT_FILE);
    assert_eq!(attention_map_for_checkpoint(&ckpt, "90817", &map, &device).unwrap(), "71809");
    assert!(inked(&map) > 500);
    assert!(attention_map_for_checkpoint(&ckpt, "12a", &map, &device).unwrap_err().to_string().contains("'a'"));
}

#[test]
fn transformer_trains_and_decodes() {
    let device = Device::cpu();
    let dir = tempfile::tempdir().unwrap();
    let mut config = Seq2SeqTaskConfig::new(Task::Sort, TaskModelKind::Transformer, 2..=4);
    (config.size.hidden_size, config.size.dim_feedforward, config.size.max_len) = (16, 32, 16);
    (config.steps_per_epoch, config.eval_lengths, config.eval_examples) = (10, vec![2, 4], 20);
    let (model, report) = train_seq2seq_task(&config, &config.trainer(2, dir.path()), &device).unwrap();
    let rows = read_metrics(&dir.path().join(METRICS_FILE)).unwrap();
    assert!(rows[1].train_loss < rows[0].train_loss, "{rows:?}");
    assert_eq!(report.accuracy_by_length.len(), 2);
    let b = Seq2SeqBatch::new(&Task::Sort.generate(3, 2..=4, 9).unwrap());
    let src = Tensor::from_u32(&device, &b.src, &[3, b.src_len]).unwrap();
    let tgt = Tensor::from_u32(&device, &b.tgt_in, &[3, b.tgt_len]).unwrap();
    let w = model.attention_weights(&src, &tgt, &b.src_lengths).unwrap().unwrap();
    assert_eq!(w.shape(), vec![3, b.tgt_len, b.src_len]);
    let w = w.to_vec().unwrap();
    // rows are distributions over the unpadded source
    for (r, row) in w.chunks(b.src_len).enumerate() {
        let len = b.src_lengths[r / b.tgt_len];
        assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-4);
        assert!(row[len..].iter().all(|&x| x < 1e-6), "{row:?}");
    }
    let plot = dir.path().join("sweep.png");
    let acc = |v: &[f64]| {
        v.iter().enumerate().map(|(i, &a)| LengthAccuracy { length: i + 1, exact_match: a, examples: 10 }).collect()
    };
    length_sweep_plot(&[("a".into(), acc(&[1.0, 0.8, 0.3])), ("b".into(), acc(&[1.0, 1.0, 0.9]))], &plot, "t").unwrap();
    assert!(inked(&plot) > 2000);
}
