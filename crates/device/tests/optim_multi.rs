//! Parity of the multi-tensor optimizer updates (`kernels::optim::multi`) against the
//! per-parameter CPU twins: many parameters of odd sizes in one call (so launches hold many
//! slots, slots end mid-workgroup and a call takes more than one launch where K is small),
//! with and without f16 copies and the scaler's skip, and Adam's step counts on the device.
//! Inputs random and nonzero. Bounds: f32 1e-5 relative, the f16 copy 1e-3.

use ferrograd_device::kernels::amp::{scaler_state, ScalerState};
use ferrograd_device::kernels::copy::cast;
use ferrograd_device::kernels::optim::reference::{adam_bias_correction, adam_bias_correction_f32};
use ferrograd_device::kernels::optim::{
    adam_step, sgd_step, AdamCount, AdamParams, AdamTensors, SgdParams, SgdTensors,
};
use ferrograd_device::testing::{assert_close, gpu, Rng, F16_TOL, F32_TOL};
use ferrograd_device::{Array, DType, Device};

/// Odd sizes: 1 element, under and just over a workgroup, several workgroups.
const SIZES: [usize; 9] = [1, 3, 255, 257, 1000, 7, 513, 64, 2049];

fn pair(g: &Device, v: &[f32]) -> (Array, Array) {
    let n = [v.len()];
    (Array::from_f32(g, v, &n).unwrap(), Array::from_f32(&Device::Cpu, v, &n).unwrap())
}

fn same(what: &str, gpu: &Array, cpu: &Array, tol: f64) {
    assert_close(what, &gpu.to_f64_vec().unwrap(), &cpu.to_f64_vec().unwrap(), tol);
}

/// `count` parameters of the sizes above in turn: (GPU, CPU) arrays, `k` random arrays each.
fn arrays(g: &Device, rng: &mut Rng, count: usize, k: usize) -> Vec<Vec<(Array, Array)>> {
    (0..count).map(|i| (0..k).map(|_| pair(g, &rng.vec_positive(SIZES[i % SIZES.len()]))).collect()).collect()
}

/// f16 copies (GPU, CPU) of the first array of each parameter, when `half`.
fn halves(a: &[Vec<(Array, Array)>], half: bool) -> Vec<Option<(Array, Array)>> {
    let cast_both = |(x, y): &(Array, Array)| (cast(x, DType::F16).unwrap(), cast(y, DType::F16).unwrap());
    a.iter().map(|p| half.then(|| cast_both(&p[0]))).collect()
}

fn state(device: &Device, found_inf: bool) -> Array {
    scaler_state(device, &ScalerState { scale: 1.0, growth_tracker: 0, found_inf, skipped_steps: 0 }).unwrap()
}

#[test]
fn sgd_over_many_parameters_matches_the_twins() {
    let g = gpu();
    let f16 = g.gpu_context().unwrap().caps().f16;
    let mut rng = Rng::new(11);
    let configs = [
        SgdParams { lr: 0.05, momentum: 0.0, dampening: 0.0, weight_decay: 0.01, nesterov: false },
        SgdParams { lr: 0.05, momentum: 0.9, dampening: 0.1, weight_decay: 1e-3, nesterov: false },
        SgdParams { lr: 0.05, momentum: 0.9, dampening: 0.0, weight_decay: 1e-3, nesterov: true },
    ];
    for p in configs {
        for (half, skip) in [(false, false), (true, false), (false, true), (true, true)] {
            if half && !f16 {
                continue;
            }
            let a = arrays(&g, &mut rng, 23, 2);
            let h = halves(&a, half);
            let (sg, sc) = (skip.then(|| state(&g, false)), skip.then(|| state(&Device::Cpu, false)));
            for step in 0..3 {
                let grads = arrays(&g, &mut rng, 23, 1);
                for (gpu_side, s) in [(true, &sg), (false, &sc)] {
                    let pick = |x: &(Array, Array)| if gpu_side { x.0.clone() } else { x.1.clone() };
                    let held: Vec<(Array, Array, Array, Option<Array>)> = (0..a.len())
                        .map(|i| (pick(&a[i][0]), pick(&grads[i][0]), pick(&a[i][1]), h[i].as_ref().map(pick)))
                        .collect();
                    let tensors: Vec<SgdTensors> = held
                        .iter()
                        .map(|(param, grad, buf, half)| SgdTensors {
                            param,
                            grad,
                            momentum_buf: Some(buf),
                            half: half.as_ref(),
                        })
                        .collect();
                    sgd_step(&tensors, &p, step == 0, s.as_ref()).unwrap();
                }
            }
            for (i, arr) in a.iter().enumerate() {
                let what = format!("sgd {p:?} half={half} skip={skip}, param {i} of {}", SIZES[i % SIZES.len()]);
                same(&what, &arr[0].0, &arr[0].1, F32_TOL);
                if p.momentum != 0.0 {
                    same(&format!("{what}: momentum"), &arr[1].0, &arr[1].1, F32_TOL);
                }
                if let Some((hg, hc)) = &h[i] {
                    same(&format!("{what}: f16 copy"), hg, hc, F16_TOL);
                }
            }
        }
    }
}

fn adam_params(step: u32, decoupled: bool) -> AdamParams {
    AdamParams {
        lr: 0.01,
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        weight_decay: 0.05,
        decoupled_weight_decay: decoupled,
        step,
    }
}

/// Adam over 23 parameters for `steps` steps on the GPU and the CPU device; found-inf is set
/// on the steps in `overflow` (needs `skip`); the counts on the device when `device_count`
/// (then also checked: advanced by the steps not skipped).
fn adam_run(half: bool, skip: bool, device_count: bool, overflow: &[u32], decoupled: bool) {
    let g = gpu();
    let mut rng = Rng::new(12);
    let n = 23;
    let a = arrays(&g, &mut rng, n, 3);
    let h = halves(&a, half);
    let start = 5u32; // counts resumed from a checkpoint at step 5
    let counts_on = |d: &Device| Array::from_u32(d, &vec![start; 2 * n], &[2 * n]).unwrap();
    let (cg, cc) = (counts_on(&g), counts_on(&Device::Cpu));
    let pairs: Vec<usize> = (0..n).rev().collect();
    for step in start + 1..start + 5 {
        let grads = arrays(&g, &mut rng, n, 1);
        let found_inf = overflow.contains(&step);
        for gpu_side in [true, false] {
            let device = if gpu_side { g.clone() } else { Device::Cpu };
            let s = skip.then(|| state(&device, found_inf));
            let pick = |x: &(Array, Array)| if gpu_side { x.0.clone() } else { x.1.clone() };
            let held: Vec<_> = (0..n)
                .map(|i| {
                    let half = h[i].as_ref().map(pick);
                    (pick(&a[i][0]), pick(&grads[i][0]), pick(&a[i][1]), pick(&a[i][2]), half)
                })
                .collect();
            let tensors: Vec<AdamTensors> = held
                .iter()
                .map(|(param, grad, m, v, half)| AdamTensors { param, grad, m, v, half: half.as_ref() })
                .collect();
            let counts = if gpu_side { &cg } else { &cc };
            let count = if device_count { AdamCount::Device { counts, pairs: &pairs } } else { AdamCount::Host };
            adam_step(&tensors, &adam_params(step, decoupled), count, s.as_ref()).unwrap();
        }
    }
    for (i, arr) in a.iter().enumerate() {
        let what = format!("adam half={half} skip={skip} device_count={device_count}, param {i}");
        same(&what, &arr[0].0, &arr[0].1, F32_TOL);
        same(&format!("{what}: exp_avg"), &arr[1].0, &arr[1].1, F32_TOL);
        same(&format!("{what}: exp_avg_sq"), &arr[2].0, &arr[2].1, F32_TOL);
        if let Some((hg, hc)) = &h[i] {
            same(&format!("{what}: f16 copy"), hg, hc, F16_TOL);
        }
    }
    if device_count {
        assert_eq!(cg.to_u32_vec().unwrap(), cc.to_u32_vec().unwrap(), "the device counts");
        // after step 9 (the 9th attempt) the count is in cell 9 % 2 = 1 of each pair
        let taken = start + 4 - overflow.len() as u32;
        let cells = cg.to_u32_vec().unwrap();
        assert!((0..n).all(|k| cells[2 * k + 1] == taken), "counts {cells:?}, want {taken} in the odd cells");
    }
}

#[test]
fn adam_over_many_parameters_matches_the_twins() {
    let f16 = gpu().gpu_context().unwrap().caps().f16;
    for half in [false, true] {
        if half && !f16 {
            continue;
        }
        adam_run(half, false, false, &[], false);
        adam_run(half, true, false, &[], true);
    }
}

#[test]
fn adam_with_device_counts_matches_the_f32_twin_and_a_skipped_step_does_not_count() {
    adam_run(false, false, true, &[], false);
    adam_run(false, true, true, &[7], true);
    if gpu().gpu_context().unwrap().caps().f16 {
        adam_run(true, true, true, &[6, 8], false);
    }
}

#[test]
fn the_device_bias_correction_is_the_host_one_to_f32_rounding() {
    for t in [1, 2, 3, 10, 999, 1000, 12345] {
        let p = adam_params(t, false);
        let (s64, b64) = adam_bias_correction(&p);
        let (s32, b32) = adam_bias_correction_f32(&p, t);
        // 1 - beta^t cancels: f32's beta (0.999 is 0.99900001) costs up to ~1e-4 relative at t = 1
        assert_close(&format!("step size at t = {t}"), &[s32 as f64], &[s64], 1e-4);
        assert_close(&format!("sqrt(1 - beta2^t) at t = {t}"), &[b32 as f64], &[b64], 1e-4);
    }
}
