//! Parity of mixed precision's kernels (`kernels::amp`, `shaders/amp.wgsl`) against their CPU
//! twins on random nonzero inputs, outputs poisoned first: the unscale + found-inf check, the
//! scale's update, and the optimizer updates that skip on found-inf and write the f16 copy.
//! Bounds: f32 results 1e-5 relative; the f16 copy 1e-3 (it is the f32 result rounded once).
//! Also: the products' f16 operands given as f16 arrays equal the f32 arrays cast inside.

use ferrograd_device::kernels::amp::{
    read_scaler_state, scale_array, scaler_state, unscale_check, update_scale, ScalerSchedule, ScalerState,
};
use ferrograd_device::kernels::copy::cast;
use ferrograd_device::kernels::epilogue::{Bias, Epilogue};
use ferrograd_device::kernels::matmul::{matmul_batch_sum_using, matmul_fused_using, Precision};
use ferrograd_device::kernels::optim::{
    adam_step, sgd_step, AdamCount, AdamParams, AdamTensors, SgdParams, SgdTensors,
};
use ferrograd_device::testing::{assert_close, gpu, Rng, F16_TOL, F32_TOL};
use ferrograd_device::{Array, DType, Device, Result};

fn pair(g: &Device, v: &[f32], shape: &[usize]) -> (Array, Array) {
    (Array::from_f32(g, v, shape).unwrap(), Array::from_f32(&Device::Cpu, v, shape).unwrap())
}

fn same(what: &str, gpu: &Array, cpu: &Array, tol: f64) {
    assert_close(what, &gpu.to_f64_vec().unwrap(), &cpu.to_f64_vec().unwrap(), tol);
}

fn state(scale: f32, found_inf: bool) -> ScalerState {
    ScalerState { scale, growth_tracker: 0, found_inf, skipped_steps: 0 }
}

fn states(g: &Device, s: &ScalerState) -> (Array, Array) {
    (scaler_state(g, s).unwrap(), scaler_state(&Device::Cpu, s).unwrap())
}

/// An f16 array the GPU kernel must overwrite (cast of a poisoned-then-filled f32 array).
fn half_pair(g: &Device, n: usize) -> (Array, Array) {
    let junk = vec![7.0f32; n];
    let (a, b) = pair(g, &junk, &[n]);
    (cast(&a, DType::F16).unwrap(), cast(&b, DType::F16).unwrap())
}

const N: usize = 999;

#[test]
fn unscale_matches_reference_and_flags_inf_and_nan() {
    let g = gpu();
    let mut rng = Rng::new(1);
    let scale = 1024.0;
    let (sg, sc) = states(&g, &state(scale, false));
    let (gg, gc) = pair(&g, &rng.vec(N).iter().map(|v| v * scale).collect::<Vec<_>>(), &[N]);
    unscale_check(&gg, &sg).unwrap();
    unscale_check(&gc, &sc).unwrap();
    same("unscaled grad", &gg, &gc, F32_TOL);
    assert!(!read_scaler_state(&sg).unwrap().found_inf);
    assert!(!read_scaler_state(&sc).unwrap().found_inf);
    for bad in [f32::INFINITY, f32::NEG_INFINITY, f32::NAN] {
        let mut v = rng.vec(N);
        v[N / 2] = bad;
        let (sg, sc) = states(&g, &state(scale, false));
        let (gg, gc) = pair(&g, &v, &[N]);
        unscale_check(&gg, &sg).unwrap();
        unscale_check(&gc, &sc).unwrap();
        assert!(read_scaler_state(&sg).unwrap().found_inf, "{bad} not flagged on the GPU");
        assert!(read_scaler_state(&sc).unwrap().found_inf, "{bad} not flagged on the CPU");
    }
    // a finite value that overflows only once unscaled by a scale below 1 is flagged too
    let (sg, _) = states(&g, &state(1e-30, false));
    let (gg, _) = pair(&g, &[3e10; 4], &[4]);
    unscale_check(&gg, &sg).unwrap();
    assert!(read_scaler_state(&sg).unwrap().found_inf);
}

#[test]
fn the_scale_halves_on_overflow_and_doubles_after_the_growth_interval() {
    let g = gpu();
    let schedule = ScalerSchedule { growth_interval: 3, ..Default::default() };
    let (sg, sc) = states(&g, &state(65536.0, false));
    // overflow, three good steps, overflow, one good step
    let pattern = [true, false, false, false, true, false];
    let mut want = Vec::new();
    for &overflow in &pattern {
        for s in [&sg, &sc] {
            if overflow {
                let (bad, _) = pair(&s.device(), &[f32::INFINITY], &[1]);
                unscale_check(&bad, s).unwrap();
            }
            update_scale(s, &schedule).unwrap();
        }
        want.push((read_scaler_state(&sg).unwrap(), read_scaler_state(&sc).unwrap()));
    }
    let scales: Vec<f32> = want.iter().map(|(gs, _)| gs.scale).collect();
    assert_eq!(scales, [32768.0, 32768.0, 32768.0, 65536.0, 32768.0, 32768.0]);
    let trackers: Vec<u32> = want.iter().map(|(gs, _)| gs.growth_tracker).collect();
    assert_eq!(trackers, [0, 1, 2, 0, 0, 1]);
    for (gs, cs) in &want {
        assert_eq!(gs, cs, "GPU and CPU scaler states differ");
        assert!(!gs.found_inf, "update_scale clears found-inf");
    }
    assert_eq!(want.last().unwrap().0.skipped_steps, 2);
    // the scale read as the backward pass's seed, without a readback of the state
    assert_eq!(scale_array(&sg).unwrap().to_f32_vec().unwrap(), [32768.0]);
    assert_eq!(scale_array(&sc).unwrap().to_f32_vec().unwrap(), [32768.0]);
}

#[test]
fn a_bad_scale_is_refused() {
    for bad in [0.0, -1.0, f32::NAN, f32::INFINITY] {
        let e = scaler_state(&Device::Cpu, &state(bad, false)).unwrap_err().to_string();
        assert!(e.contains("loss scale"), "{e}");
    }
}

/// One parameter's SGD step under the scaler state `skip`, writing its f16 copy `half`.
fn sgd_amp(
    param: &Array,
    grad: &Array,
    momentum_buf: Option<&Array>,
    half: Option<&Array>,
    skip: &Array,
    p: &SgdParams,
    first: bool,
) -> Result<()> {
    sgd_step(&[SgdTensors { param, grad, momentum_buf, half }], p, first, Some(skip))
}

/// One parameter's Adam step (count on the host) under the scaler state `skip`.
fn adam_amp(
    param: &Array,
    grad: &Array,
    m: &Array,
    v: &Array,
    half: Option<&Array>,
    skip: &Array,
    p: &AdamParams,
) -> Result<()> {
    adam_step(&[AdamTensors { param, grad, m, v, half }], p, AdamCount::Host, Some(skip))
}

#[test]
fn sgd_amp_matches_reference_writes_the_f16_copy_and_skips_on_overflow() {
    let g = gpu();
    let mut rng = Rng::new(2);
    let configs = [
        SgdParams { lr: 0.05, momentum: 0.0, dampening: 0.0, weight_decay: 0.01, nesterov: false },
        SgdParams { lr: 0.05, momentum: 0.9, dampening: 0.1, weight_decay: 1e-3, nesterov: true },
    ];
    for p in configs {
        for with_half in [false, true] {
            let (pg, pc) = pair(&g, &rng.vec(N), &[N]);
            let (bg, bc) = pair(&g, &rng.vec(N), &[N]);
            let (hg, hc) = half_pair(&g, N);
            let (buf_g, buf_c) = if p.momentum != 0.0 { (Some(&bg), Some(&bc)) } else { (None, None) };
            let (half_g, half_c) = if with_half { (Some(&hg), Some(&hc)) } else { (None, None) };
            let (sg, sc) = states(&g, &state(1.0, false));
            for step in 0..4 {
                let (gg, gc) = pair(&g, &rng.vec(N), &[N]);
                sgd_amp(&pg, &gg, buf_g, half_g, &sg, &p, step == 0).unwrap();
                sgd_amp(&pc, &gc, buf_c, half_c, &sc, &p, step == 0).unwrap();
            }
            same(&format!("sgd amp param {p:?}"), &pg, &pc, F32_TOL);
            if p.momentum != 0.0 {
                same(&format!("sgd amp momentum {p:?}"), &bg, &bc, F32_TOL);
            }
            if with_half {
                same(&format!("sgd amp f16 copy {p:?}"), &hg, &hc, F16_TOL);
                same("f16 copy is the f32 parameter rounded", &hg, &cast(&pg, DType::F16).unwrap(), 0.0);
            }
            // a step with found-inf set changes nothing, bit for bit
            let (skip_g, _) = states(&g, &state(1.0, true));
            let before = (pg.to_f32_vec().unwrap(), bg.to_f32_vec().unwrap(), hg.to_f64_vec().unwrap());
            let (gg, _) = pair(&g, &rng.vec(N), &[N]);
            sgd_amp(&pg, &gg, buf_g, half_g, &skip_g, &p, false).unwrap();
            let after = (pg.to_f32_vec().unwrap(), bg.to_f32_vec().unwrap(), hg.to_f64_vec().unwrap());
            assert_eq!(before, after, "a skipped SGD step changed state ({p:?})");
        }
    }
}

#[test]
fn adam_amp_matches_reference_writes_the_f16_copy_and_skips_on_overflow() {
    let g = gpu();
    let mut rng = Rng::new(3);
    for decoupled in [false, true] {
        let (pg, pc) = pair(&g, &rng.vec(N), &[N]);
        let (mg, mc) = pair(&g, &rng.vec(N), &[N]);
        let (vg, vc) = pair(&g, &rng.vec_positive(N), &[N]);
        let (hg, hc) = half_pair(&g, N);
        let (sg, sc) = states(&g, &state(1.0, false));
        let hp = |step| AdamParams {
            lr: 0.01,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.05,
            decoupled_weight_decay: decoupled,
            step,
        };
        for step in 1..=4 {
            let (gg, gc) = pair(&g, &rng.vec(N), &[N]);
            adam_amp(&pg, &gg, &mg, &vg, Some(&hg), &sg, &hp(step)).unwrap();
            adam_amp(&pc, &gc, &mc, &vc, Some(&hc), &sc, &hp(step)).unwrap();
        }
        same("adam amp param", &pg, &pc, F32_TOL);
        same("adam amp exp_avg", &mg, &mc, F32_TOL);
        same("adam amp exp_avg_sq", &vg, &vc, F32_TOL);
        same("adam amp f16 copy", &hg, &hc, F16_TOL);
        let (skip_g, skip_c) = states(&g, &state(1.0, true));
        let before = [&pg, &mg, &vg, &pc].map(|a| a.to_f64_vec().unwrap());
        let (gg, gc) = pair(&g, &rng.vec(N), &[N]);
        adam_amp(&pg, &gg, &mg, &vg, None, &skip_g, &hp(5)).unwrap();
        adam_amp(&pc, &gc, &mc, &vc, None, &skip_c, &hp(5)).unwrap();
        let after = [&pg, &mg, &vg, &pc].map(|a| a.to_f64_vec().unwrap());
        assert_eq!(before, after, "a skipped Adam step changed state");
    }
}

#[test]
fn a_mismatched_f16_copy_is_refused() {
    let d = Device::Cpu;
    let (p, gr) = (Array::from_f32(&d, &[1.0; 4], &[4]).unwrap(), Array::from_f32(&d, &[1.0; 4], &[4]).unwrap());
    let s = scaler_state(&d, &state(1.0, false)).unwrap();
    let sgd = SgdParams { lr: 0.1, momentum: 0.0, dampening: 0.0, weight_decay: 0.0, nesterov: false };
    let f32_copy = Array::from_f32(&d, &[1.0; 4], &[4]).unwrap();
    let e = sgd_amp(&p, &gr, None, Some(&f32_copy), &s, &sgd, true).unwrap_err().to_string();
    assert!(e.contains("sgd_step") && e.contains("f16"), "{e}");
    let short = cast(&Array::from_f32(&d, &[1.0; 3], &[3]).unwrap(), DType::F16).unwrap();
    let e = sgd_amp(&p, &gr, None, Some(&short), &s, &sgd, true).unwrap_err().to_string();
    assert!(e.contains("[3]") && e.contains("[4]"), "{e}");
}

/// Products on f16 arrays (autocast's operands) equal the same products on f32 arrays cast
/// inside the launcher, and the f64 reference on the rounded inputs (f16 bound), with the
/// fused bias and activation and in the batch sum of a weight gradient.
#[test]
fn products_take_f16_arrays() {
    let g = gpu();
    let mut rng = Rng::new(4);
    let (m, k, n, batch) = (12, 40, 36, 3);
    let a = rng.vec(m * k);
    let b = rng.vec(batch * k * n);
    let bias = rng.vec(m);
    for d in [&g, &Device::Cpu] {
        let a32 = Array::from_f32(d, &a, &[m, k]).unwrap();
        let b32 = Array::from_f32(d, &b, &[batch, k, n]).unwrap();
        let bias = Array::from_f32(d, &bias, &[m]).unwrap();
        let (a16, b16) = (cast(&a32, DType::F16).unwrap(), cast(&b32, DType::F16).unwrap());
        let epilogue = Epilogue {
            bias: Some(Bias::PerRow(&bias)),
            activation: Some(ferrograd_device::kernels::elementwise::UnaryOp::Relu),
        };
        let want = matmul_fused_using(&a32, &b32, false, false, Precision::Mixed, None, &epilogue).unwrap();
        let got = matmul_fused_using(&a16, &b16, false, false, Precision::F32, None, &epilogue).unwrap();
        assert_eq!(got.dtype(), DType::F32);
        same(&format!("f16 operands, fused, {d:?}"), &got, &want, F32_TOL);
        let cpu = |x: &Array| Array::cpu(x.to_f64_vec().unwrap(), x.shape(), x.dtype());
        let bias_cpu = cpu(&bias);
        let on_cpu = Epilogue { bias: Some(Bias::PerRow(&bias_cpu)), ..epilogue };
        let reference =
            matmul_fused_using(&cpu(&a16), &cpu(&b16), false, false, Precision::F32, None, &on_cpu).unwrap();
        same("f16 operands against the f64 reference", &got, &reference, F16_TOL);
        // the weight gradient's batch sum: sum_b g[b] · cols[b]^T with g [batch, m, n], cols [batch, k, n]
        let g32 = Array::from_f32(d, &rng.vec(batch * m * n), &[batch, m, n]).unwrap();
        let g16 = cast(&g32, DType::F16).unwrap();
        let want = matmul_batch_sum_using(&g32, &b32, false, true, Precision::Mixed, None).unwrap();
        let got = matmul_batch_sum_using(&g16, &b16, false, true, Precision::F32, None).unwrap();
        same(&format!("f16 operands, batch sum, {d:?}"), &got, &want, F32_TOL);
    }
}
