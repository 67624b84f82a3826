//! Parity: in-place optimizer updates on the GPU against the CPU device (their f64 twins)
//! over several steps, on random nonzero inputs. Bound: f32, 1e-5 relative. One test checks
//! single steps against values worked by hand from PyTorch's published update rules.

use ferrograd_device::kernels::optim::{
    adam_step, axpy, scale, sgd_step, AdamCount, AdamParams, AdamTensors, SgdParams, SgdTensors,
};
use ferrograd_device::testing::{assert_close, gpu, Rng, F32_TOL};
use ferrograd_device::{Array, Device, Result};

/// The same values on the GPU and on the CPU device.
fn pair(g: &Device, v: &[f32], shape: &[usize]) -> (Array, Array) {
    (Array::from_f32(g, v, shape).unwrap(), Array::from_f32(&Device::Cpu, v, shape).unwrap())
}

fn same(what: &str, gpu: &Array, cpu: &Array) {
    assert_close(what, &gpu.to_f64_vec().unwrap(), &cpu.to_f64_vec().unwrap(), F32_TOL);
}

/// One parameter's SGD step (no f16 copy, no scaler).
fn sgd1(param: &Array, grad: &Array, momentum_buf: Option<&Array>, p: &SgdParams, first: bool) -> Result<()> {
    sgd_step(&[SgdTensors { param, grad, momentum_buf, half: None }], p, first, None)
}

/// One parameter's Adam step, its count on the host (no f16 copy, no scaler).
fn adam1(param: &Array, grad: &Array, m: &Array, v: &Array, p: &AdamParams) -> Result<()> {
    adam_step(&[AdamTensors { param, grad, m, v, half: None }], p, AdamCount::Host, None)
}

const SHAPE: [usize; 2] = [3, 333];

#[test]
fn sgd_matches_reference_over_several_steps() {
    let g = gpu();
    let mut rng = Rng::new(1);
    let n = SHAPE.iter().product();
    let configs = [
        SgdParams { lr: 0.05, momentum: 0.0, dampening: 0.0, weight_decay: 0.01, nesterov: false },
        SgdParams { lr: 0.05, momentum: 0.9, dampening: 0.1, weight_decay: 0.0, nesterov: false },
        SgdParams { lr: 0.05, momentum: 0.9, dampening: 0.0, weight_decay: 1e-3, nesterov: true },
    ];
    for p in configs {
        let (pg, pc) = pair(&g, &rng.vec(n), &SHAPE);
        let (bg, bc) = pair(&g, &rng.vec(n), &SHAPE);
        for step in 0..5 {
            let (gg, gc) = pair(&g, &rng.vec(n), &SHAPE);
            sgd1(&pg, &gg, Some(&bg), &p, step == 0).unwrap();
            sgd1(&pc, &gc, Some(&bc), &p, step == 0).unwrap();
        }
        same(&format!("sgd param {p:?}"), &pg, &pc);
        if p.momentum != 0.0 {
            same(&format!("sgd momentum {p:?}"), &bg, &bc);
        }
    }
}

#[test]
fn adam_matches_reference_over_several_steps() {
    let g = gpu();
    let mut rng = Rng::new(2);
    let n = SHAPE.iter().product();
    for decoupled in [false, true] {
        let (pg, pc) = pair(&g, &rng.vec(n), &SHAPE);
        let (mg, mc) = pair(&g, &[0.0; 999], &SHAPE);
        let (vg, vc) = pair(&g, &[0.0; 999], &SHAPE);
        for step in 1..=5 {
            let p = AdamParams {
                lr: 0.01,
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-8,
                weight_decay: 0.05,
                decoupled_weight_decay: decoupled,
                step,
            };
            let (gg, gc) = pair(&g, &rng.vec(n), &SHAPE);
            adam1(&pg, &gg, &mg, &vg, &p).unwrap();
            adam1(&pc, &gc, &mc, &vc, &p).unwrap();
        }
        same(&format!("adam param decoupled={decoupled}"), &pg, &pc);
        same("adam m", &mg, &mc);
        same("adam v", &vg, &vc);
    }
}

/// Runs one update on the GPU and on the CPU device from the same start, and checks both
/// against `want` (param, then the state arrays in order).
fn check_by_hand(what: &str, start: &[[f32; 2]], update: impl Fn(&[Array]), want: &[[f64; 2]]) {
    for device in [gpu(), Device::Cpu] {
        let arrays: Vec<Array> = start.iter().map(|v| Array::from_f32(&device, v, &[2]).unwrap()).collect();
        update(&arrays);
        for (k, w) in want.iter().enumerate() {
            let got = arrays[k].to_f64_vec().unwrap();
            assert_close(&format!("{what} on {device:?}, array {k}"), &got, w, F32_TOL);
        }
    }
}

#[test]
fn single_steps_match_values_worked_by_hand() {
    // Adam, L2 weight decay 0.01, lr 0.1, betas (0.9, 0.999), eps 1e-8, step t = 3, from
    // p = [0.5, -1.5], g = [0.2, -0.3], m = [0.1, 0.05], v = [0.01, 0.02]:
    //   g' = g + 0.01 p                    = [0.205, -0.315]
    //   m' = 0.9 m + 0.1 g'                = [0.1105, 0.0135]
    //   v' = 0.999 v + 0.001 g'^2          = [0.010032025, 0.020079225]
    //   1 - 0.9^3 = 0.271, 1 - 0.999^3 = 0.002997001
    //   p' = p - (0.1 / 0.271) m' / (sqrt(v') / sqrt(0.002997001) + 1e-8)
    let step = |p: f64, m: f64, v: f64| p - (0.1 / 0.271) * m / (v.sqrt() / 0.002997001f64.sqrt() + 1e-8);
    let adam = AdamParams {
        lr: 0.1,
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        weight_decay: 0.01,
        decoupled_weight_decay: false,
        step: 3,
    };
    let start = [[0.5, -1.5], [0.2, -0.3], [0.1, 0.05], [0.01, 0.02]];
    let want_p = [step(0.5, 0.1105, 0.010032025), step(-1.5, 0.0135, 0.020079225)];
    assert!((want_p[1] - -1.5019245732569).abs() < 1e-12);
    check_by_hand(
        "adam",
        &start,
        |a| adam1(&a[0], &a[1], &a[2], &a[3], &adam).unwrap(),
        &[want_p, [0.2, -0.3], [0.1105, 0.0135], [0.010032025, 0.020079225]],
    );

    // AdamW: the same, but p shrinks by 1 - 0.1 * 0.01 = 0.999 first and g is left alone:
    //   m' = [0.11, 0.015], v' = [0.01003, 0.02007], p' = step(0.999 p, m', v')
    let adamw = AdamParams { decoupled_weight_decay: true, ..adam };
    let want_p = [step(0.4995, 0.11, 0.01003), step(-1.4985, 0.015, 0.02007)];
    check_by_hand(
        "adamw",
        &start,
        |a| adam1(&a[0], &a[1], &a[2], &a[3], &adamw).unwrap(),
        &[want_p, [0.2, -0.3], [0.11, 0.015], [0.01003, 0.02007]],
    );

    // SGD, lr 0.1, momentum 0.9, dampening 0, weight decay 0.01, Nesterov, from
    // p = [0.5, -1.5], g = [0.2, -0.3], buf = [0.3, -0.1]:
    //   g' = g + 0.01 p = [0.205, -0.315]
    //   later step: buf' = 0.9 buf + g' = [0.475, -0.405]; step along g' + 0.9 buf' = [0.6325, -0.6795]
    //               p' = p - 0.1 * that = [0.43675, -1.43205]
    //   first step: buf' = g' = [0.205, -0.315]; step along [0.3895, -0.5985]; p' = [0.46105, -1.44015]
    let sgd = SgdParams { lr: 0.1, momentum: 0.9, dampening: 0.0, weight_decay: 0.01, nesterov: true };
    let start = [[0.5, -1.5], [0.2, -0.3], [0.3, -0.1]];
    check_by_hand(
        "sgd nesterov",
        &start,
        |a| sgd1(&a[0], &a[1], Some(&a[2]), &sgd, false).unwrap(),
        &[[0.43675, -1.43205], [0.2, -0.3], [0.475, -0.405]],
    );
    check_by_hand(
        "sgd nesterov, first step",
        &start,
        |a| sgd1(&a[0], &a[1], Some(&a[2]), &sgd, true).unwrap(),
        &[[0.46105, -1.44015], [0.2, -0.3], [0.205, -0.315]],
    );
}

#[test]
fn axpy_and_scale_match_reference() {
    let g = gpu();
    let mut rng = Rng::new(3);
    let (x, y) = (rng.vec(1001), rng.vec(1001));
    let (dg, dc) = pair(&g, &x, &[7, 143]);
    let (sg, sc) = pair(&g, &y, &[7, 143]);
    for (d, s) in [(&dg, &sg), (&dc, &sc)] {
        axpy(d, s, -0.75).unwrap();
        scale(d, 1.5).unwrap();
        // accumulating an array into itself doubles it
        axpy(d, d, 1.0).unwrap();
    }
    same("axpy then scale", &dg, &dc);
    let want: Vec<f64> = x.iter().zip(&y).map(|(&a, &b)| 2.0 * 1.5 * (a as f64 - 0.75 * b as f64)).collect();
    assert_close("axpy by hand", &dc.to_f64_vec().unwrap(), &want, 1e-12);
    let empty = Array::from_f32(&g, &[], &[0]).unwrap();
    scale(&empty, 2.0).unwrap();
    axpy(&empty, &Array::from_f32(&g, &[], &[0]).unwrap(), 1.0).unwrap();
}

#[test]
fn misuse_is_an_error_naming_the_kernel() {
    let g = gpu();
    let a = Array::from_f32(&g, &[0.5; 6], &[2, 3]).unwrap();
    let b = Array::from_f32(&g, &[0.5; 6], &[3, 2]).unwrap();
    let c = Array::from_f32(&g, &[0.5; 6], &[2, 3]).unwrap();
    let err = axpy(&a, &b, 1.0).unwrap_err().to_string();
    assert!(err.contains("axpy") && err.contains("[2, 3]") && err.contains("[3, 2]"), "{err}");
    let p = SgdParams { lr: 0.1, momentum: 0.9, dampening: 0.0, weight_decay: 0.0, nesterov: false };
    assert!(sgd1(&a, &c, None, &p, true).unwrap_err().to_string().contains("sgd_step"));
    let err = sgd1(&a, &a, Some(&c), &p, true).unwrap_err().to_string();
    assert!(err.contains("sgd_step") && err.contains("share storage"), "{err}");
    let adam = AdamParams {
        lr: 0.1,
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        weight_decay: 0.0,
        decoupled_weight_decay: false,
        step: 1,
    };
    let m = Array::from_f32(&g, &[0.0; 6], &[2, 3]).unwrap();
    let err = adam1(&a, &c, &m, &m, &adam).unwrap_err().to_string();
    assert!(err.contains("adam_step") && err.contains("share storage"), "{err}");
    let v = Array::from_f32(&g, &[0.0; 6], &[2, 3]).unwrap();
    assert!(adam1(&a, &c, &m, &v, &AdamParams { step: 0, ..adam }).is_err());
    let cpu = Array::from_f32(&Device::Cpu, &[0.5; 6], &[2, 3]).unwrap();
    assert!(axpy(&a, &cpu, 1.0).is_err());
}
