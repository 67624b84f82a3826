//! One module per kernel family. Each has its launcher(s), taking `Array`s on any device,
//! and a `reference` submodule: the CPU twin in f64 that the parity tests compare against.

pub mod amp;
pub mod attention;
pub mod batch_norm;
pub mod common;
pub mod conv;
pub mod copy;
pub mod elementwise;
pub mod epilogue;
pub mod fill;
pub mod layer_norm;
pub mod loss;
pub mod matmul;
mod matmul_parts;
pub mod optim;
pub mod pool;
pub mod random;
pub mod reduce;
pub mod rnn;
pub mod softmax;
