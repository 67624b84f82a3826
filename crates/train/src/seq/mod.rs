//! Training tasks for sequence models, each a library call with a config struct (the CLI is a
//! thin layer over them), writing the same outputs as the image trainer (`metrics.csv`,
//! curves as PNG, `checkpoint.safetensors`, `summary.json`):
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
mod loss_window;
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

/// A metadata value of a checkpoint's `extra`, parsed; the error names the key and the file.
pub(crate) fn meta_value<T: std::str::FromStr>(ck: &crate::checkpoint::Checkpoint, key: &str) -> Result<T> {
    let raw = ck.meta.extra.get(key).ok_or_else(|| {
        TrainError::format(&ck.path, format!("checkpoint metadata has no {key:?} (not saved by this task?)"))
    })?;
    raw.parse().map_err(|_| TrainError::format(&ck.path, format!("checkpoint metadata {key} = {raw:?} is invalid")))
}
