//! Parity: the fused layer norm (one launch forward, two backward) on the GPU against its f64
//! twin, on random nonzero inputs with poisoned outputs. Bound: f32, 1e-5 relative.

use ferrograd_device::kernels::layer_norm::{layer_norm, layer_norm_backward};
use ferrograd_device::testing::{assert_close, gpu, Rng, F32_TOL};
use ferrograd_device::{Array, Device};

fn pair(g: &Device, v: &[f32], shape: &[usize]) -> (Array, Array) {
    (Array::from_f32(g, v, shape).unwrap(), Array::from_f32(&Device::Cpu, v, shape).unwrap())
}

fn same(what: &str, gpu: &Array, cpu: &Array) {
    assert_eq!(gpu.shape(), cpu.shape(), "{what}: shape");
    assert_close(what, &gpu.to_f64_vec().unwrap(), &cpu.to_f64_vec().unwrap(), F32_TOL);
}

/// Rows shorter and longer than a workgroup (256), with and without weight and bias; the
/// input is offset from zero so the mean matters.
#[test]
fn forward_and_backward_match_the_reference() {
    let g = gpu();
    let mut rng = Rng::new(11);
    for (shape, d) in [(vec![5, 3, 37], 37), (vec![4, 300], 300), (vec![2, 2, 3, 130], 390)] {
        let n: usize = shape.iter().product();
        let x: Vec<f32> = rng.vec(n).iter().map(|v| 3.0 * v + 0.5).collect();
        let (xg, xc) = pair(&g, &x, &shape);
        let (dyg, dyc) = pair(&g, &rng.vec(n), &shape);
        let (wg, wc) = pair(&g, &rng.vec(d), &[d]);
        let (bg, bc) = pair(&g, &rng.vec(d), &[d]);
        for affine in [true, false] {
            let what = format!("{shape:?} over {d}, affine {affine}");
            let (ga, ca) = if affine { (Some((&wg, &bg)), Some((&wc, &bc))) } else { (None, None) };
            let (yg, sg) = layer_norm(&xg, d, ga, 1e-5).unwrap();
            let (yc, sc) = layer_norm(&xc, d, ca, 1e-5).unwrap();
            same(&format!("{what}: y"), &yg, &yc);
            same(&format!("{what}: stats"), &sg, &sc);
            let w = (affine.then_some(&wg), affine.then_some(&wc));
            let (dxg, pg) = layer_norm_backward(&xg, &dyg, &sg, d, w.0).unwrap();
            let (dxc, pc) = layer_norm_backward(&xc, &dyc, &sc, d, w.1).unwrap();
            same(&format!("{what}: dx"), &dxg, &dxc);
            assert_eq!(pg.is_some(), affine);
            if let (Some((dwg, dbg)), Some((dwc, dbc))) = (pg, pc) {
                same(&format!("{what}: dw"), &dwg, &dwc);
                same(&format!("{what}: db"), &dbg, &dbc);
            }
        }
    }
}

#[test]
fn shapes_that_do_not_divide_are_refused() {
    let g = gpu();
    let x = Array::zeros(&g, &[3, 10]).unwrap();
    let err = layer_norm(&x, 7, None, 1e-5).unwrap_err().to_string();
    assert!(err.contains("layer_norm") && err.contains("[3, 10]"), "{err}");
    let w = Array::zeros(&g, &[9]).unwrap();
    let err = layer_norm(&x, 10, Some((&w, &w)), 1e-5).unwrap_err().to_string();
    assert!(err.contains("weight [9]"), "{err}");
}
