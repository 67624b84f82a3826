//! Checks for layers (modules with parameters) used by the sequence-layer tests:
//! - [`check_module_gradients`]: every parameter's and input's gradient against central
//!   finite differences on the CPU device (f64);
//! - [`check_gpu_matches_cpu`]: the same module (same weights) on a GPU against the CPU:
//!   outputs at 1e-5 and gradients at 1e-4, relative to each array's largest value.
//!
//! The output is reduced to `sum(out * w)` with fixed nonzero weights, as `gradcheck` does.
#![allow(dead_code)]

use ferrograd_device::testing::{gpu, Rng};
use ferrograd_device::{Array, DType, Device};
use ferrograd_graph::gradcheck::weights;
use ferrograd_graph::nn::Module;
use ferrograd_graph::{no_grad, Result, Tensor};

/// A leaf requiring grad, values of magnitude in [0.1, 1) with random signs.
pub fn leaf(device: &Device, rng: &mut Rng, shape: &[usize]) -> Tensor {
    let v: Vec<f64> = rng.vec(shape.iter().product()).into_iter().map(f64::from).collect();
    Tensor::parameter(Array::from_f64(device, &v, shape).unwrap())
}

fn weighted_sum(out: &Tensor) -> Result<Tensor> {
    let w = Tensor::from_f64(&out.device(), &weights(out.numel(), 7), &out.shape())?;
    out.mul(&w)?.sum_all()
}

/// `f`'s gradients with respect to `leaves` (module parameters and inputs, all on the CPU
/// device) against central differences with step 1e-6; bound `1e-6 + 1e-5 |expected|`.
pub fn check_module_gradients(name: &str, leaves: &[(String, Tensor)], f: impl Fn() -> Result<Tensor>) {
    for (_, t) in leaves {
        t.zero_grad();
    }
    weighted_sum(&f().unwrap()).unwrap().backward().unwrap();
    let loss = || -> f64 {
        let _g = no_grad();
        weighted_sum(&f().unwrap()).unwrap().item().unwrap()
    };
    let eps = 1e-6;
    for (leaf_name, t) in leaves {
        let base = t.data();
        let values = base.to_f64_vec().unwrap();
        let analytic = t.grad().map(|g| g.to_f64_vec().unwrap()).unwrap_or_else(|| vec![0.0; values.len()]);
        for i in 0..values.len() {
            let at = |delta: f64| {
                let mut v = values.clone();
                v[i] += delta;
                t.set_data(Array::cpu(v, base.shape(), DType::F32));
                loss()
            };
            let numeric = (at(eps) - at(-eps)) / (2.0 * eps);
            t.set_data(base.clone());
            let bound = 1e-6 + 1e-5 * numeric.abs();
            assert!(
                (analytic[i] - numeric).abs() <= bound,
                "{name}: gradient of {leaf_name} {:?} element {i}: analytic {:.9e}, numeric {numeric:.9e}",
                base.shape(),
                analytic[i]
            );
        }
    }
}

fn assert_scaled_close(what: &str, got: &[f64], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    let scale = want.iter().fold(1e-3f64, |m, x| m.max(x.abs()));
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= tol * scale, "{what}: element {i}: gpu {g:.9e}, cpu {w:.9e} (scale {scale:.3e})");
    }
}

/// Build the module with `build` on the CPU and on the GPU (the GPU copy loads the CPU
/// weights), run `f(module, inputs)` on each with the `inputs` as leaves requiring grad, and
/// compare outputs (1e-5) and the gradients of every parameter and input (1e-4).
pub fn check_gpu_matches_cpu<M: Module>(
    name: &str,
    build: impl Fn(&Device) -> Result<M>,
    inputs: &[Array],
    f: impl Fn(&M, &[Tensor]) -> Result<Tensor>,
) {
    let run = |device: &Device, state: Option<&[(String, Array)]>| {
        let m = build(device).unwrap();
        if let Some(s) = state {
            m.load_state_dict(s, true).unwrap();
        }
        let xs: Vec<Tensor> = inputs.iter().map(|a| Tensor::parameter(a.to_device(device).unwrap())).collect();
        let out = f(&m, &xs).unwrap();
        weighted_sum(&out).unwrap().backward().unwrap();
        let mut grads: Vec<(String, Vec<f64>)> = m
            .named_parameters()
            .into_iter()
            .map(|(n, p)| (n, p.grad().map(|g| g.to_f64_vec().unwrap()).unwrap_or_default()))
            .collect();
        for (i, x) in xs.iter().enumerate() {
            grads.push((format!("input {i}"), x.grad().map(|g| g.to_f64_vec().unwrap()).unwrap_or_default()));
        }
        let state: Vec<(String, Array)> = m.state_dict().into_iter().map(|(n, t)| (n, t.data())).collect();
        (out.to_vec_f64().unwrap(), grads, state)
    };
    let (out_cpu, grads_cpu, state) = run(&Device::Cpu, None);
    let (out_gpu, grads_gpu, _) = run(&gpu(), Some(&state));
    assert_scaled_close(&format!("{name}: output"), &out_gpu, &out_cpu, 1e-5);
    for ((n, g), (_, w)) in grads_gpu.iter().zip(&grads_cpu) {
        assert_scaled_close(&format!("{name}: gradient of {n}"), g, w, 1e-4);
    }
}
