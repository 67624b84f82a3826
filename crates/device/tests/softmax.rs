//! Parity: softmax and log-softmax (forward and backward) on the GPU against their f64 CPU
//! twins, on random nonzero inputs, outputs poisoned. Bound: f32, 1e-5 relative.

use ferrograd_device::kernels::softmax::{
    log_softmax, log_softmax_backward, reference, softmax, softmax_backward, softmax_backward_with, softmax_with,
    RowSchedule, THREAD_ROW_MAX_COLS,
};
use ferrograd_device::testing::{assert_close, gpu, Rng, F32_TOL};
use ferrograd_device::{Array, Device};

fn f64s(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

// rows narrower and wider than a workgroup, batch > 1, and a 50 000-word vocabulary
const SHAPES: [&[usize]; 5] = [&[5, 7], &[3, 4, 300], &[2, 50_000], &[1, 1], &[4, 256]];

/// Both kernels, whatever the adapter would pick.
const SCHEDULES: [RowSchedule; 2] = [RowSchedule::Workgroup, RowSchedule::Thread];

#[test]
fn both_schedules_match_reference() {
    let g = gpu();
    let mut rng = Rng::new(4);
    for (shape, schedule) in SHAPES.iter().flat_map(|s| SCHEDULES.map(|k| (s, k))) {
        let cols = *shape.last().unwrap();
        if schedule == RowSchedule::Thread && cols > THREAD_ROW_MAX_COLS {
            let x = Array::from_f32(&g, &rng.vec(shape.iter().product()), shape).unwrap();
            let err = softmax_with(&x, false, Some(schedule)).unwrap_err().to_string();
            assert!(err.contains(&format!("at most {THREAD_ROW_MAX_COLS}")), "{err}");
            continue;
        }
        let n = shape.iter().product();
        let (x, up) = (rng.vec(n), rng.vec(n));
        for log in [false, true] {
            let what = format!("{shape:?} log={log} {schedule:?}");
            let y = softmax_with(&Array::from_f32(&g, &x, shape).unwrap(), log, Some(schedule)).unwrap();
            let want_y = reference::forward(log, &f64s(&x), cols);
            assert_close(&format!("forward {what}"), &y.to_f64_vec().unwrap(), &want_y, F32_TOL);
            let yg = Array::from_f64(&g, &want_y, shape).unwrap();
            let gg = Array::from_f32(&g, &up, shape).unwrap();
            let dx = softmax_backward_with(&yg, &gg, log, Some(schedule)).unwrap();
            let want = reference::backward(log, &want_y, &f64s(&up), cols);
            assert_close(&format!("backward {what}"), &dx.to_f64_vec().unwrap(), &want, F32_TOL);
        }
    }
}

#[test]
fn forward_matches_reference() {
    let g = gpu();
    let mut rng = Rng::new(1);
    for shape in SHAPES {
        let x = rng.vec(shape.iter().product());
        let cols = *shape.last().unwrap();
        let xg = Array::from_f32(&g, &x, shape).unwrap();
        let y = softmax(&xg).unwrap();
        assert_eq!(y.shape(), shape);
        assert_close(
            &format!("softmax {shape:?}"),
            &y.to_f64_vec().unwrap(),
            &reference::forward(false, &f64s(&x), cols),
            F32_TOL,
        );
        let ly = log_softmax(&xg).unwrap().to_f64_vec().unwrap();
        assert_close(&format!("log_softmax {shape:?}"), &ly, &reference::forward(true, &f64s(&x), cols), F32_TOL);
    }
}

#[test]
fn large_logits_do_not_overflow() {
    let g = gpu();
    let mut rng = Rng::new(2);
    // exp(±500) overflows f32: only max-subtraction keeps these finite
    let x: Vec<f32> = rng.vec(6 * 40).iter().map(|v| v * 500.0).collect();
    let xg = Array::from_f32(&g, &x, &[6, 40]).unwrap();
    let y = softmax(&xg).unwrap().to_f64_vec().unwrap();
    assert_close("softmax of large logits", &y, &reference::forward(false, &f64s(&x), 40), F32_TOL);
    let ly = log_softmax(&xg).unwrap().to_f64_vec().unwrap();
    assert_close("log_softmax of large logits", &ly, &reference::forward(true, &f64s(&x), 40), F32_TOL);
}

#[test]
fn backward_matches_reference() {
    let g = gpu();
    let mut rng = Rng::new(3);
    for shape in SHAPES {
        let cols = *shape.last().unwrap();
        let n = shape.iter().product();
        let (x, up) = (f64s(&rng.vec(n)), rng.vec(n));
        for log in [false, true] {
            let y = reference::forward(log, &x, cols);
            let yg = Array::from_f64(&g, &y, shape).unwrap();
            let gg = Array::from_f32(&g, &up, shape).unwrap();
            let dx = if log { log_softmax_backward(&yg, &gg) } else { softmax_backward(&yg, &gg) }.unwrap();
            let want = reference::backward(log, &y, &f64s(&up), cols);
            assert_close(&format!("backward log={log} {shape:?}"), &dx.to_f64_vec().unwrap(), &want, F32_TOL);
        }
    }
}

#[test]
fn softmax_backward_agrees_with_finite_differences() {
    // checks the CPU twin's formula itself: d/dx_j of sum_i w_i softmax(x)_i
    let (x, w) = ([0.3, -1.2, 0.7, 0.1], [0.5, -0.25, 1.0, 0.75]);
    let loss = |x: &[f64], log: bool| -> f64 { reference::forward(log, x, 4).iter().zip(&w).map(|(y, w)| y * w).sum() };
    for log in [false, true] {
        let dx = reference::backward(log, &reference::forward(log, &x, 4), &w, 4);
        for j in 0..4 {
            let (mut hi, mut lo) = (x, x);
            hi[j] += 1e-6;
            lo[j] -= 1e-6;
            let fd = (loss(&hi, log) - loss(&lo, log)) / 2e-6;
            assert!((fd - dx[j]).abs() < 1e-7, "log={log} j={j}: {fd} vs {}", dx[j]);
        }
    }
}

#[test]
fn errors_and_empty_arrays() {
    let g = gpu();
    let a = Array::from_f32(&g, &[1.0; 6], &[2, 3]).unwrap();
    let b = Array::from_f32(&g, &[1.0; 6], &[3, 2]).unwrap();
    let err = softmax_backward(&a, &b).unwrap_err().to_string();
    assert!(err.contains("softmax_backward") && err.contains("[2, 3]") && err.contains("[3, 2]"), "{err}");
    let scalar = Array::from_f32(&g, &[1.0], &[]).unwrap();
    assert!(softmax(&scalar).unwrap_err().to_string().contains("softmax"));
    let empty = Array::from_f32(&g, &[], &[0, 5]).unwrap();
    assert_eq!(log_softmax(&empty).unwrap().shape(), &[0, 5]);
    let cpu = softmax(&Array::from_f32(&Device::Cpu, &[0.0, 0.0], &[2]).unwrap()).unwrap();
    assert_eq!(cpu.to_f64_vec().unwrap(), vec![0.5, 0.5]);
}
