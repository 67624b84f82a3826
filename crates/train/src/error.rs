//! Errors of the training crate. Every error about a file names the file and what was wrong.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// `cause` is shown in the message and deliberately not a `source()`, so that printing
    /// the chain (`{:#}`) does not show it twice.
    #[error("{}: {cause}", path.display())]
    Io { path: PathBuf, cause: std::io::Error },
    /// A file whose contents are not what its format requires.
    #[error("{}: {detail}", path.display())]
    Format { path: PathBuf, detail: String },
    /// A data set or file that is not where it was looked for.
    #[error("{0}")]
    NotFound(String),
    /// An option or argument that cannot work (batch size 0, unknown data set, ...).
    #[error("invalid option: {0}")]
    Config(String),
    /// A checkpoint that does not fit the model it is loaded into; `detail` lists every difference.
    #[error("checkpoint {} does not match: {detail}", path.display())]
    CheckpointMismatch { path: PathBuf, detail: String },
    #[error("plot {}: {detail}", path.display())]
    Plot { path: PathBuf, detail: String },
    /// A numeric setting outside its range; it names the setting and the allowed values.
    #[error(transparent)]
    OutOfRange(#[from] ferrograd_graph::range::OutOfRange),
    /// An array too large for the device at this batch size; names what to change.
    #[error("{0}")]
    BatchTooLarge(String),
    /// The failure of one process of a data-parallel job, as every process reports it.
    #[error("rank {rank} failed: {message}")]
    Replica { rank: usize, message: String },
    #[error(transparent)]
    Device(#[from] ferrograd_device::DeviceError),
    #[error(transparent)]
    Graph(#[from] ferrograd_graph::GraphError),
}

pub type Result<T> = std::result::Result<T, TrainError>;

impl TrainError {
    pub fn io(path: &Path, source: std::io::Error) -> TrainError {
        TrainError::Io { path: path.to_path_buf(), cause: source }
    }

    pub fn format(path: &Path, detail: impl Into<String>) -> TrainError {
        TrainError::Format { path: path.to_path_buf(), detail: detail.into() }
    }
}
