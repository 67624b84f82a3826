//! Training tasks for sequence models, each a library call with a config struct of its own
//! (model sizes, batches) beside the run's [`crate::trainer::TrainerConfig`], trained by the
//! one loop ([`crate::trainer::fit`]) and so writing the same outputs as the image tasks:
//!
//! - [`char_lm`]: a character-level language model (RNN, LSTM or GRU) with truncated BPTT,
//!   validation loss in nats per character, sampling from a checkpoint, and a plot comparing
//!   the validation curves of several runs.
//! - [`seq_mnist`]: MNIST read row by row (28 steps of 28 pixels) by an LSTM or GRU.
//! - [`seq2seq_tasks`]: Seq2Seq with and without attention and a small Transformer on the
//!   synthetic reverse / sort / addition tasks, exact-match accuracy by input length, and the
//!   length-sweep plot.
//! - [`attention_map`]: attention weights `[Lq, Lk]` as a labelled heat map PNG.

pub mod attention_map;
pub mod char_lm;
pub mod seq2seq_tasks;
pub mod seq_mnist;

pub use attention_map::attention_map_png;

use crate::error::{Result, TrainError};
use ferrograd_graph::nn::recurrent::CellKind;

/// A recurrent cell by name: `rnn` (tanh), `rnn-relu`, `lstm`, `gru`.
pub fn parse_cell(name: &str) -> Result<CellKind> {
    match name.to_ascii_lowercase().as_str() {
        "rnn" | "rnn-tanh" => Ok(CellKind::RnnTanh),
        "rnn-relu" => Ok(CellKind::RnnRelu),
        "lstm" => Ok(CellKind::Lstm),
        "gru" => Ok(CellKind::Gru),
        _ => Err(TrainError::Config(format!("unknown recurrent cell {name:?}; known: rnn, rnn-relu, lstm, gru"))),
    }
}

/// The name [`parse_cell`] reads back.
pub fn cell_name(cell: CellKind) -> &'static str {
    match cell {
        CellKind::RnnTanh => "rnn",
        CellKind::RnnRelu => "rnn-relu",
        CellKind::Lstm => "lstm",
        CellKind::Gru => "gru",
    }
}
