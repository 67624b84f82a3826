//! Parity: the fused batch-norm kernels on the GPU against their f64 twins, on random nonzero
//! inputs (shifted so the mean is not zero) with poisoned outputs. Bound: f32, 1e-5 relative.
//! Shapes cover [N, C] (S = 1), S smaller than a workgroup, and channels whose N * S values
//! take several passes of the 256 invocations; S a multiple of 4 (the four-wide kernels) in
//! both cases.

use ferrograd_device::kernels::batch_norm::{batch_norm_apply, batch_norm_backward, batch_norm_stats};
use ferrograd_device::testing::{assert_close, gpu, Rng, F32_TOL};
use ferrograd_device::{Array, Device};

const SHAPES: [&[usize]; 6] = [&[7, 5], &[3, 4, 5], &[4, 3, 9, 11], &[2, 2, 30, 30], &[3, 4, 8], &[5, 3, 4, 4]];

/// The same values on the GPU and on the CPU device.
fn pair(g: &Device, v: &[f32], shape: &[usize]) -> [Array; 2] {
    [Array::from_f32(g, v, shape).unwrap(), Array::from_f32(&Device::Cpu, v, shape).unwrap()]
}

fn same(what: &str, got: &Array, want: &Array) {
    assert_close(what, &got.to_f64_vec().unwrap(), &want.to_f64_vec().unwrap(), F32_TOL);
}

#[test]
fn stats_apply_and_backward_match_reference() {
    let g = gpu();
    let mut rng = Rng::new(31);
    for shape in SHAPES {
        let (n, c) = (shape.iter().product::<usize>(), shape[1]);
        let x: Vec<f32> = rng.vec(n).iter().map(|v| v + 0.7).collect();
        let x = pair(&g, &x, shape);
        let dy = pair(&g, &rng.vec(n), shape);
        let (rm, rv) = (pair(&g, &rng.vec(c), &[c]), pair(&g, &rng.vec_positive(c), &[c]));
        let (w, b) = (pair(&g, &rng.vec(c), &[c]), pair(&g, &rng.vec(c), &[c]));
        let mut results = vec![];
        for d in 0..2 {
            let (mean, var, running) = batch_norm_stats(&x[d], Some((&rm[d], &rv[d])), 0.1).unwrap();
            let (new_rm, new_rv) = running.unwrap();
            let y = batch_norm_apply(&x[d], &mean, &var, Some((&w[d], &b[d])), 1e-5).unwrap();
            let y_plain = batch_norm_apply(&x[d], &rm[d], &rv[d], None, 1e-3).unwrap();
            let (dx, dw, db) = batch_norm_backward(&x[d], &dy[d], &mean, &var, Some(&w[d]), 1e-5, true).unwrap();
            let (dx_eval, ..) = batch_norm_backward(&x[d], &dy[d], &rm[d], &rv[d], None, 1e-3, false).unwrap();
            results.push([mean, var, new_rm, new_rv, y, y_plain, dx, dw, db, dx_eval]);
        }
        let names =
            ["mean", "var", "running mean", "running var", "y", "y (eval, no affine)", "dx", "dw", "db", "dx (eval)"];
        for (k, name) in names.iter().enumerate() {
            same(&format!("batch norm {name} {shape:?}"), &results[0][k], &results[1][k]);
        }
    }
}

#[test]
fn stats_without_running_statistics_and_shape_errors() {
    let g = gpu();
    let mut rng = Rng::new(32);
    let x = pair(&g, &rng.vec(24), &[4, 3, 2]);
    let (gm, gv, none) = batch_norm_stats(&x[0], None, 0.1).unwrap();
    let (cm, cv, _) = batch_norm_stats(&x[1], None, 0.1).unwrap();
    assert!(none.is_none());
    same("mean without running stats", &gm, &cm);
    same("var without running stats", &gv, &cv);
    let wrong = Array::from_f32(&g, &rng.vec(4), &[4]).unwrap();
    let err = batch_norm_apply(&x[0], &wrong, &gv, None, 1e-5).unwrap_err().to_string();
    assert!(err.contains("batch_norm_apply") && err.contains("[4]"), "{err}");
    let single = Array::from_f32(&g, &rng.vec(3), &[1, 3]).unwrap();
    assert!(batch_norm_stats(&single, None, 0.1).is_err(), "one value per channel cannot train");
}
