//! Parity: pooling kernels and their gradients on the GPU against the f64 CPU twins, on
//! random nonzero inputs with outputs poisoned first; bound f32 1e-5 relative (indices exact).

use ferrograd_device::kernels::conv::Conv2dGeometry;
use ferrograd_device::kernels::pool::{
    adaptive_avg_pool2d, adaptive_avg_pool2d_backward, avg_pool2d, avg_pool2d_backward, max_pool2d,
    max_pool2d_backward, reference,
};
use ferrograd_device::testing::{assert_close, gpu, Rng, F32_TOL};
use ferrograd_device::{Array, Device};

fn geom(kernel: [usize; 2], stride: [usize; 2], padding: [usize; 2]) -> Conv2dGeometry {
    Conv2dGeometry { kernel, stride, padding, dilation: [1, 1] }
}

/// Odd and non-square sizes, stride 2, padding, overlapping windows, batch > 1, and windows
/// that tile the input exactly (their own backward kernel); 2x2 of them over widths that are
/// multiples of 4 (two windows per thread, both ways).
fn cases() -> Vec<([usize; 4], Conv2dGeometry)> {
    vec![
        ([2, 3, 7, 5], Conv2dGeometry::new(2, 2, 0)),
        ([2, 3, 8, 6], Conv2dGeometry::new(2, 2, 0)),
        ([1, 2, 9, 6], geom([3, 2], [3, 2], [0, 0])),
        ([1, 2, 9, 8], Conv2dGeometry::new(3, 2, 1)),
        ([3, 2, 6, 11], geom([3, 2], [1, 2], [1, 1])),
        ([2, 4, 13, 13], Conv2dGeometry::new(3, 2, 0)),
        ([1, 1, 5, 4], Conv2dGeometry::new(1, 1, 0)),
        ([2, 3, 6, 8], Conv2dGeometry::new(2, 2, 0)),
        ([1, 2, 4, 28], Conv2dGeometry::new(2, 2, 0)),
    ]
}

fn f64s(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

fn out_shape(shape: [usize; 4], g: &Conv2dGeometry) -> [usize; 4] {
    let [oh, ow] = g.out_hw(shape[2], shape[3]).unwrap();
    [shape[0], shape[1], oh, ow]
}

#[test]
fn max_pool_matches_reference() {
    let g = gpu();
    let mut rng = Rng::new(21);
    for (shape, geo) in cases() {
        let x = rng.vec(shape.iter().product());
        let (out, idx) = max_pool2d(&Array::from_f32(&g, &x, &shape).unwrap(), &geo).unwrap();
        assert_eq!(out.shape(), &out_shape(shape, &geo));
        let (want, want_idx) = reference::max_pool2d(&f64s(&x), &shape, &geo);
        let what = format!("max_pool2d {shape:?} {geo:?}");
        assert_close(&what, &out.to_f64_vec().unwrap(), &want, F32_TOL);
        assert_eq!(idx.to_f64_vec().unwrap(), want_idx, "{what} indices");
    }
}

#[test]
fn max_pool_backward_matches_reference() {
    let g = gpu();
    let mut rng = Rng::new(22);
    for (shape, geo) in cases() {
        let x = rng.vec(shape.iter().product());
        let (_, idx) = max_pool2d(&Array::from_f32(&g, &x, &shape).unwrap(), &geo).unwrap();
        let os = out_shape(shape, &geo);
        let up = rng.vec(os.iter().product());
        let dx = max_pool2d_backward(&Array::from_f32(&g, &up, &os).unwrap(), &idx, &geo, &shape).unwrap();
        let want = reference::max_pool2d_backward(&f64s(&up), &idx.to_f64_vec().unwrap(), &geo, &shape).unwrap();
        assert_close(&format!("max_pool2d_backward {shape:?} {geo:?}"), &dx.to_f64_vec().unwrap(), &want, F32_TOL);
    }
}

#[test]
fn max_pool_never_picks_padding_even_when_all_inputs_are_negative() {
    let g = gpu();
    let x: Vec<f32> = (0..20).map(|i| -1.0 - i as f32).collect();
    let (out, idx) =
        max_pool2d(&Array::from_f32(&g, &x, &[1, 1, 4, 5]).unwrap(), &Conv2dGeometry::new(3, 2, 1)).unwrap();
    // window (0,0) covers rows 0..2, cols 0..2 of the input: its max is x[0] = -1
    assert_eq!(out.to_f32_vec().unwrap()[0], -1.0);
    assert_eq!(idx.to_u32_vec().unwrap()[0], 0);
}

#[test]
fn avg_pool_and_backward_match_reference() {
    let g = gpu();
    let mut rng = Rng::new(23);
    for include_pad in [true, false] {
        for (shape, geo) in cases() {
            let x = rng.vec(shape.iter().product());
            let what = format!("avg_pool2d include_pad={include_pad} {shape:?} {geo:?}");
            let out = avg_pool2d(&Array::from_f32(&g, &x, &shape).unwrap(), &geo, include_pad).unwrap();
            let want = reference::avg_pool2d(&f64s(&x), &shape, &geo, include_pad);
            assert_close(&what, &out.to_f64_vec().unwrap(), &want, F32_TOL);
            let os = out_shape(shape, &geo);
            let up = rng.vec(os.iter().product());
            let dx = avg_pool2d_backward(&Array::from_f32(&g, &up, &os).unwrap(), &geo, &shape, include_pad).unwrap();
            let want = reference::avg_pool2d_backward(&f64s(&up), &geo, &shape, include_pad);
            assert_close(&format!("{what} backward"), &dx.to_f64_vec().unwrap(), &want, F32_TOL);
        }
    }
}

#[test]
fn adaptive_avg_pool_and_backward_match_reference() {
    let g = gpu();
    let mut rng = Rng::new(24);
    // shrinking, uneven (overlapping windows), growing, and the global-pool case
    let cases: [([usize; 4], [usize; 2]); 5] = [
        ([2, 3, 7, 9], [3, 4]),
        ([1, 2, 10, 10], [7, 7]),
        ([2, 1, 3, 2], [5, 4]),
        ([3, 4, 6, 5], [1, 1]),
        ([1, 1, 13, 6], [13, 6]),
    ];
    for (shape, out_hw) in cases {
        let x = rng.vec(shape.iter().product());
        let what = format!("adaptive_avg_pool2d {shape:?} -> {out_hw:?}");
        let out = adaptive_avg_pool2d(&Array::from_f32(&g, &x, &shape).unwrap(), out_hw).unwrap();
        assert_eq!(out.shape(), &[shape[0], shape[1], out_hw[0], out_hw[1]]);
        let want = reference::adaptive_avg_pool2d(&f64s(&x), &shape, out_hw);
        assert_close(&what, &out.to_f64_vec().unwrap(), &want, F32_TOL);
        let up = rng.vec(out.numel());
        let dx = adaptive_avg_pool2d_backward(&Array::from_f32(&g, &up, out.shape()).unwrap(), &shape).unwrap();
        let want = reference::adaptive_avg_pool2d_backward(&f64s(&up), &shape, out_hw);
        assert_close(&format!("{what} backward"), &dx.to_f64_vec().unwrap(), &want, F32_TOL);
    }
}

#[test]
fn adaptive_windows_follow_pytorch() {
    // PyTorch: start = floor(i*H/OH), end = ceil((i+1)*H/OH); 10 -> 7 overlaps at 1, 2, 4, 5, 7, 8
    let windows: Vec<_> = (0..7).map(|i| reference::adaptive_window(i, 10, 7)).collect();
    assert_eq!(windows, [0..2, 1..3, 2..5, 4..6, 5..8, 7..9, 8..10]);
}

#[test]
fn global_average_is_the_plane_mean() {
    let mut rng = Rng::new(25);
    let x = f64s(&rng.vec(2 * 3 * 5 * 4));
    let out = adaptive_avg_pool2d(&Array::from_f64(&Device::Cpu, &x, &[2, 3, 5, 4]).unwrap(), [1, 1]).unwrap();
    let means: Vec<f64> = x.chunks(20).map(|c| c.iter().sum::<f64>() / 20.0).collect();
    assert_close("global mean", &out.to_f64_vec().unwrap(), &means, 1e-12);
}

#[test]
fn cpu_rejects_indices_outside_their_window() {
    let geo = Conv2dGeometry::new(2, 2, 0);
    let grad = Array::from_f32(&Device::Cpu, &[1.0; 4], &[1, 1, 2, 2]).unwrap();
    let idx = Array::from_u32(&Device::Cpu, &[0, 1, 8, 99], &[1, 1, 2, 2]).unwrap();
    let err = max_pool2d_backward(&grad, &idx, &geo, &[1, 1, 4, 4]).unwrap_err().to_string();
    assert!(err.contains("max_pool2d_backward") && err.contains("outside its window"), "{err}");
}

#[test]
fn bad_geometry_and_shapes_are_errors() {
    let g = gpu();
    let x = Array::from_f32(&g, &[1.0; 16], &[1, 1, 4, 4]).unwrap();
    let err = max_pool2d(&x, &Conv2dGeometry::new(2, 1, 2)).unwrap_err().to_string();
    assert!(err.contains("max_pool2d") && err.contains("half"), "{err}");
    let dilated = Conv2dGeometry { dilation: [2, 2], ..Conv2dGeometry::new(2, 1, 0) };
    assert!(avg_pool2d(&x, &dilated, true).is_err());
    let grad = Array::from_f32(&g, &[1.0; 9], &[1, 1, 3, 3]).unwrap();
    let err = avg_pool2d_backward(&grad, &Conv2dGeometry::new(2, 2, 0), &[1, 1, 4, 4], true).unwrap_err().to_string();
    assert!(err.contains("[1, 1, 3, 3]") && err.contains("[1, 1, 4, 4]"), "{err}");
    assert!(adaptive_avg_pool2d(&x, [0, 2]).is_err());
}

#[test]
fn an_empty_batch_pools_to_empty() {
    let g = gpu();
    let x = Array::from_f32(&g, &[], &[0, 3, 6, 6]).unwrap();
    let (out, idx) = max_pool2d(&x, &Conv2dGeometry::new(2, 2, 0)).unwrap();
    assert_eq!((out.shape(), idx.shape()), (&[0, 3, 3, 3][..], &[0, 3, 3, 3][..]));
    assert_eq!(adaptive_avg_pool2d(&x, [2, 2]).unwrap().shape(), &[0, 3, 2, 2]);
}

#[test]
fn max_pool_propagates_the_first_nan_of_a_window() {
    // both max-pool kernels: overlapping windows (one thread per output) and 2x2 pairs
    let g = gpu();
    let mut rng = Rng::new(23);
    for (shape, geo) in [([1, 2, 4, 8], Conv2dGeometry::new(2, 2, 0)), ([1, 2, 5, 7], Conv2dGeometry::new(3, 2, 1))] {
        let mut x = rng.vec(shape.iter().product());
        for at in [1, 8, 9, 19, 34, 45] {
            x[at] = f32::NAN;
        }
        let (out, idx) = max_pool2d(&Array::from_f32(&g, &x, &shape).unwrap(), &geo).unwrap();
        let (want, want_idx) = reference::max_pool2d(&f64s(&x), &shape, &geo);
        assert_eq!(idx.to_f64_vec().unwrap(), want_idx, "{shape:?} indices");
        for (k, (got, want)) in out.to_f64_vec().unwrap().iter().zip(&want).enumerate() {
            assert!(got == want || got.is_nan() && want.is_nan(), "{shape:?} output {k}: {got} vs {want}");
        }
        assert!(want.iter().any(|v| v.is_nan()), "the case has NaN windows");
    }
}
