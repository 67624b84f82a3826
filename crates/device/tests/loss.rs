//! Parity: fused cross-entropy (forward and backward) on the GPU against its f64 CPU twin,
//! on random nonzero logits, outputs poisoned. Bound: f32, 1e-5 relative.

use ferrograd_device::kernels::loss::{cross_entropy, cross_entropy_backward, cross_entropy_with, reference};
use ferrograd_device::kernels::softmax::{RowSchedule, THREAD_ROW_MAX_COLS};
use ferrograd_device::testing::{assert_close, gpu, Rng, F32_TOL};
use ferrograd_device::{Array, Device};

fn f64s(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

// (N, C): classes narrower and wider than a workgroup, and a 50 000-word vocabulary
const CASES: [(usize, usize); 4] = [(5, 10), (3, 300), (2, 50_000), (1, 2)];

/// Both forward kernels, whatever the adapter would pick.
const SCHEDULES: [Option<RowSchedule>; 2] = [Some(RowSchedule::Workgroup), Some(RowSchedule::Thread)];

fn inputs(rng: &mut Rng, n: usize, c: usize) -> (Vec<f32>, Vec<u32>) {
    let logits: Vec<f32> = rng.vec(n * c).iter().map(|v| v * 4.0).collect();
    (logits, (0..n).map(|_| rng.below(c) as u32).collect())
}

#[test]
fn forward_matches_reference() {
    let g = gpu();
    let mut rng = Rng::new(1);
    for (n, c) in CASES {
        let (logits, t) = inputs(&mut rng, n, c);
        let schedules = if c > THREAD_ROW_MAX_COLS { &SCHEDULES[..1] } else { &SCHEDULES[..] };
        for (eps, &schedule) in [0.0f32, 0.1].into_iter().flat_map(|e| schedules.iter().map(move |s| (e, s))) {
            let lg = Array::from_f32(&g, &logits, &[n, c]).unwrap();
            let tg = Array::from_u32(&g, &t, &[n]).unwrap();
            let (loss, lp) = cross_entropy_with(&lg, &tg, eps, schedule).unwrap();
            let t64: Vec<f64> = t.iter().map(|&v| v as f64).collect();
            let (wl, wlp) = reference::cross_entropy(&f64s(&logits), &t64, c, eps as f64).unwrap();
            let what = format!("N={n} C={c} eps={eps} {schedule:?}");
            assert_close(&format!("loss {what}"), &loss.to_f64_vec().unwrap(), &wl, F32_TOL);
            assert_close(&format!("log_probs {what}"), &lp.to_f64_vec().unwrap(), &wlp, F32_TOL);
        }
    }
}

#[test]
fn backward_matches_reference() {
    let g = gpu();
    let mut rng = Rng::new(2);
    for (n, c) in CASES {
        let (logits, t) = inputs(&mut rng, n, c);
        let up = rng.vec(n);
        let t64: Vec<f64> = t.iter().map(|&v| v as f64).collect();
        for eps in [0.0f32, 0.2] {
            let (_, lp) = reference::cross_entropy(&f64s(&logits), &t64, c, eps as f64).unwrap();
            let d = cross_entropy_backward(
                &Array::from_f64(&g, &lp, &[n, c]).unwrap(),
                &Array::from_u32(&g, &t, &[n]).unwrap(),
                eps,
                &Array::from_f32(&g, &up, &[n]).unwrap(),
            )
            .unwrap();
            let want = reference::cross_entropy_backward(&lp, &t64, c, eps as f64, &f64s(&up)).unwrap();
            assert_close(&format!("dlogits N={n} C={c} eps={eps}"), &d.to_f64_vec().unwrap(), &want, F32_TOL);
        }
    }
}

#[test]
fn the_reference_follows_pytorch_by_hand() {
    // logits [0, ln 3]: p = [1/4, 3/4]; target 1, eps 0.1:
    // loss = 0.9 * -ln(3/4) + 0.1 * (-ln(1/4) - ln(3/4)) / 2
    let (loss, _) = reference::cross_entropy(&[0.0, 3f64.ln()], &[1.0], 2, 0.1).unwrap();
    let want = 0.9 * -(0.75f64.ln()) + 0.1 * (-(0.25f64.ln()) - 0.75f64.ln()) / 2.0;
    assert!((loss[0] - want).abs() < 1e-12, "{} vs {want}", loss[0]);
    // and its backward matches central differences of the forward
    let (x, eps, gr) = ([0.4, -0.3, 1.1], 0.15, 0.7);
    let f = |x: &[f64]| reference::cross_entropy(x, &[2.0], 3, eps).unwrap().0[0] * gr;
    let (_, lp) = reference::cross_entropy(&x, &[2.0], 3, eps).unwrap();
    let d = reference::cross_entropy_backward(&lp, &[2.0], 3, eps, &[gr]).unwrap();
    for j in 0..3 {
        let (mut hi, mut lo) = (x, x);
        hi[j] += 1e-6;
        lo[j] -= 1e-6;
        let fd = (f(&hi) - f(&lo)) / 2e-6;
        assert!((fd - d[j]).abs() < 1e-7, "j={j}: {fd} vs {}", d[j]);
    }
}

#[test]
fn an_out_of_range_target_is_nan_on_gpu_and_an_error_on_cpu() {
    let g = gpu();
    let logits = [0.5f32, -0.2, 0.3, 0.9, 0.1, -0.7];
    let t = [1u32, 3];
    let (lg, tg) = (Array::from_f32(&g, &logits, &[2, 3]).unwrap(), Array::from_u32(&g, &t, &[2]).unwrap());
    for schedule in SCHEDULES {
        let l = cross_entropy_with(&lg, &tg, 0.0, schedule).unwrap().0.to_f32_vec().unwrap();
        assert!(l[0].is_finite() && l[1].is_nan(), "{schedule:?}: {l:?}");
    }
    let (_, lp) = cross_entropy(&lg, &tg, 0.0).unwrap();
    let tg = Array::from_u32(&g, &t, &[2]).unwrap();
    let d = cross_entropy_backward(&lp, &tg, 0.0, &Array::from_f32(&g, &[1.0, 1.0], &[2]).unwrap()).unwrap();
    let d = d.to_f32_vec().unwrap();
    assert!(d[..3].iter().all(|v| v.is_finite()) && d[3..].iter().all(|v| v.is_nan()), "{d:?}");
    let cpu = Device::Cpu;
    let err = cross_entropy(
        &Array::from_f32(&cpu, &logits, &[2, 3]).unwrap(),
        &Array::from_u32(&cpu, &t, &[2]).unwrap(),
        0.0,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("cross_entropy") && err.contains("out of range"), "{err}");
}

#[test]
fn mismatched_shapes_are_errors() {
    let g = gpu();
    let logits = Array::from_f32(&g, &[0.5; 6], &[2, 3]).unwrap();
    let err = cross_entropy(&logits, &Array::from_u32(&g, &[0, 1, 2], &[3]).unwrap(), 0.0).unwrap_err().to_string();
    assert!(err.contains("cross_entropy") && err.contains("[2, 3]") && err.contains("[3]"), "{err}");
    let t = Array::from_u32(&g, &[0, 1], &[2]).unwrap();
    assert!(cross_entropy(&logits, &logits, 0.0).is_err());
    let err = cross_entropy_backward(&logits, &t, 0.0, &Array::from_f32(&g, &[1.0; 3], &[3]).unwrap()).unwrap_err();
    assert!(err.to_string().contains("cross_entropy_backward"), "{err}");
}
