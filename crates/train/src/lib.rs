//! ferrograd-train: data sets, the data loader, checkpoints, metrics, plots, and progress
//! display for training ferrograd models.

pub mod augment;
pub mod checkpoint;
pub mod classifier;
pub mod data;
pub mod distributed;
pub mod error;
pub mod figure;
pub mod grid;
pub mod loader;
pub mod metrics;
pub mod plot;
pub mod preflight;
pub mod progress;
pub mod run_dir;
pub mod seq;
pub mod stats_window;
pub mod summary;
pub mod tfevents;
pub mod trainer;
pub mod visualize;

pub use error::{Result, TrainError};
