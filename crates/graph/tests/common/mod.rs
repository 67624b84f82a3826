//! Shared by the gradient-check tests: random CPU inputs and one call that checks an op
//! against finite differences (CPU, f64) and its GPU gradients against the CPU ones.
#![allow(dead_code)]

use ferrograd_device::testing::{gpu, Rng};
use ferrograd_device::{Array, DType};
use ferrograd_graph::gradcheck::{gpu_matches_cpu, gradcheck, GradCheck};
use ferrograd_graph::{Result, Tensor};

/// Values of magnitude in [0.1, 1) with random signs, as a CPU f32 array.
pub fn input(rng: &mut Rng, shape: &[usize]) -> Array {
    let n = shape.iter().product();
    Array::cpu(rng.vec(n).into_iter().map(f64::from).collect(), shape, DType::F32)
}

/// Values in [0.1, 1).
pub fn positive(rng: &mut Rng, shape: &[usize]) -> Array {
    let n = shape.iter().product();
    Array::cpu(rng.vec_positive(n).into_iter().map(f64::from).collect(), shape, DType::F32)
}

/// u32 indices below `bound`.
pub fn indices(rng: &mut Rng, shape: &[usize], bound: usize) -> Array {
    let n = shape.iter().product();
    Array::cpu((0..n).map(|_| rng.below(bound) as f64).collect(), shape, DType::U32)
}

/// Finite differences on the CPU, then GPU against CPU.
pub fn check(name: &str, f: impl Fn(&[Tensor]) -> Result<Tensor>, inputs: &[Array]) {
    check_with(name, &GradCheck::default(), f, inputs)
}

pub fn check_with(name: &str, c: &GradCheck, f: impl Fn(&[Tensor]) -> Result<Tensor>, inputs: &[Array]) {
    gradcheck(name, c, &f, inputs).unwrap();
    gpu_matches_cpu(name, &GradCheck::gpu(), &f, inputs, &gpu()).unwrap();
}
