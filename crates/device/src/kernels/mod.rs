//! One module per kernel family. Each has its launcher(s), taking `Array`s on any device,
//! and a `reference` submodule: the CPU twin in f64 that the parity tests compare against.

pub mod common;
pub mod elementwise;
pub mod fill;
