//! Parity of the kernels with f16 storage (mixed precision's activations between ops): each
//! on f16 inputs on the GPU against its f64 CPU twin on the same f16 values, the twin's result
//! rounded to f16 as a store rounds it. Inputs random and nonzero, outputs poisoned first.
//! Bound: f16, 1e-3 relative (the GPU computes in f32 and rounds once; pooling indices exact).
//! Every kernel family's wide (vec4) and scalar entries are both reached.

use ferrograd_device::kernels::batch_norm::{batch_norm_apply, batch_norm_backward, batch_norm_stats};
use ferrograd_device::kernels::conv::{col2im, im2col, Conv2dGeometry};
use ferrograd_device::kernels::elementwise::{binary, binary_scalar, unary, unary_grad, BinaryOp, ScalarSide, UnaryOp};
use ferrograd_device::kernels::epilogue::{Bias, Epilogue};
use ferrograd_device::kernels::matmul::matmul_fused_stored;
use ferrograd_device::kernels::pool::{
    adaptive_avg_pool2d, adaptive_avg_pool2d_backward, avg_pool2d, avg_pool2d_backward, max_pool2d, max_pool2d_backward,
};
use ferrograd_device::kernels::reduce::{reduce, ReduceOp};
use ferrograd_device::testing::{assert_close, gpu, Rng, F16_TOL, F32_TOL};
use ferrograd_device::{Array, DType, Device};

/// The same f16 values on the GPU and on the CPU device.
fn pair16(g: &Device, v: &[f32], shape: &[usize]) -> [Array; 2] {
    let h: Vec<half::f16> = v.iter().map(|&x| half::f16::from_f32(x)).collect();
    [Array::from_f16(g, &h, shape).unwrap(), Array::from_f16(&Device::Cpu, &h, shape).unwrap()]
}

fn pair32(g: &Device, v: &[f32], shape: &[usize]) -> [Array; 2] {
    [Array::from_f32(g, v, shape).unwrap(), Array::from_f32(&Device::Cpu, v, shape).unwrap()]
}

/// `got` (GPU) equals `want` (CPU) within `tol`, both stored as `dtype`.
fn same(what: &str, got: &Array, want: &Array, dtype: DType, tol: f64) {
    assert_eq!(got.dtype(), dtype, "{what}: stored as {}", got.dtype());
    assert_eq!(want.dtype(), dtype, "{what}: the twin stored as {}", want.dtype());
    assert_close(what, &got.to_f64_vec().unwrap(), &want.to_f64_vec().unwrap(), tol);
}

fn same16(what: &str, got: &Array, want: &Array) {
    same(what, got, want, DType::F16, F16_TOL);
}

fn f16_gpu() -> Device {
    let g = gpu();
    assert!(g.has_f16(), "these tests need SHADER_F16 (lavapipe has it)");
    g
}

#[test]
fn elementwise_ops_and_gradients_store_f16() {
    let g = f16_gpu();
    let mut rng = Rng::new(161);
    // 1000 runs four elements per thread, 999 one
    for n in [1000, 999] {
        for op in UnaryOp::ALL {
            let x = if op.needs_positive() { rng.vec_positive(n) } else { rng.vec(n) };
            let [xg, xc] = pair16(&g, &x, &[n]);
            let (yg, yc) = (unary(op, &xg).unwrap(), unary(op, &xc).unwrap());
            same16(&format!("{op:?}, {n}"), &yg, &yc);
            let [dg, dc] = pair16(&g, &rng.vec(n), &[n]);
            let (gg, gc) = (unary_grad(op, &xg, &yg, &dg).unwrap(), unary_grad(op, &xc, &yc, &dc).unwrap());
            same16(&format!("{op:?} grad, {n}"), &gg, &gc);
        }
    }
    let cases: [(&[usize], &[usize]); 4] =
        [(&[8, 33], &[8, 33]), (&[7, 33], &[7, 33]), (&[2, 3, 4, 5], &[1, 3, 1, 1]), (&[4, 1, 5], &[3, 1])];
    for op in BinaryOp::ALL {
        for (sa, sb) in cases {
            let a =
                if op == BinaryOp::Pow { rng.vec_positive(sa.iter().product()) } else { rng.vec(sa.iter().product()) };
            let ([ag, ac], [bg, bc]) = (pair16(&g, &a, sa), pair16(&g, &rng.vec(sb.iter().product()), sb));
            same16(&format!("{op:?} {sa:?} {sb:?}"), &binary(op, &ag, &bg).unwrap(), &binary(op, &ac, &bc).unwrap());
        }
        let [ag, ac] = pair16(&g, &rng.vec_positive(77), &[77]);
        for side in [ScalarSide::Right, ScalarSide::Left] {
            let (got, want) =
                (binary_scalar(op, &ag, 0.75, side).unwrap(), binary_scalar(op, &ac, 0.75, side).unwrap());
            same16(&format!("{op:?} scalar {side:?}"), &got, &want);
        }
    }
}

#[test]
fn elementwise_refuses_mixed_storage() {
    let g = f16_gpu();
    let [a16, _] = pair16(&g, &[1.0, 2.0], &[2]);
    let [a32, _] = pair32(&g, &[1.0, 2.0], &[2]);
    let e = binary(BinaryOp::Add, &a16, &a32).unwrap_err().to_string();
    assert!(e.contains("add") && e.contains("f16") && e.contains("f32"), "{e}");
}

#[test]
fn pooling_and_its_backward_store_f16() {
    let g = f16_gpu();
    let mut rng = Rng::new(162);
    // 2x2 over a width % 4 (pairs), tiling 2x2 (tiled backward), overlapping with padding (gathers)
    let cases = [
        ([2, 3, 8, 12], Conv2dGeometry::new(2, 2, 0)),
        ([2, 3, 6, 10], Conv2dGeometry::new(2, 2, 0)),
        ([1, 2, 9, 8], Conv2dGeometry::new(3, 2, 1)),
    ];
    for (shape, geo) in cases {
        let n: usize = shape.iter().product();
        let [xg, xc] = pair16(&g, &rng.vec(n), &shape);
        let ((yg, ig), (yc, ic)) = (max_pool2d(&xg, &geo).unwrap(), max_pool2d(&xc, &geo).unwrap());
        same16(&format!("max pool {shape:?}"), &yg, &yc);
        assert_eq!(ig.to_u32_vec().unwrap(), ic.to_u32_vec().unwrap(), "max pool indices {shape:?}");
        let [dg, dc] = pair16(&g, &rng.vec(yg.numel()), yg.shape());
        let (got, want) = (
            max_pool2d_backward(&dg, &ig, &geo, &shape).unwrap(),
            max_pool2d_backward(&dc, &ic, &geo, &shape).unwrap(),
        );
        same16(&format!("max pool backward {shape:?}"), &got, &want);
        for pad in [false, true] {
            let (ag, ac) = (avg_pool2d(&xg, &geo, pad).unwrap(), avg_pool2d(&xc, &geo, pad).unwrap());
            same16(&format!("avg pool {shape:?} {pad}"), &ag, &ac);
            let (got, want) = (
                avg_pool2d_backward(&dg, &geo, &shape, pad).unwrap(),
                avg_pool2d_backward(&dc, &geo, &shape, pad).unwrap(),
            );
            same16(&format!("avg pool backward {shape:?} {pad}"), &got, &want);
        }
        let (ag, ac) = (adaptive_avg_pool2d(&xg, [3, 2]).unwrap(), adaptive_avg_pool2d(&xc, [3, 2]).unwrap());
        same16(&format!("adaptive avg pool {shape:?}"), &ag, &ac);
        let [ug, uc] = pair16(&g, &rng.vec(ag.numel()), ag.shape());
        let (got, want) =
            (adaptive_avg_pool2d_backward(&ug, &shape).unwrap(), adaptive_avg_pool2d_backward(&uc, &shape).unwrap());
        same16(&format!("adaptive avg pool backward {shape:?}"), &got, &want);
    }
}

#[test]
fn im2col_and_col2im_store_f16() {
    let g = f16_gpu();
    let mut rng = Rng::new(163);
    // unit-width vec4 kernels (W, OW % 4), vec4 stores (OH*OW % 4), scalar; stride 2 col2im
    let cases = [
        ([2, 3, 8, 8], Conv2dGeometry::new(3, 1, 1)),
        ([2, 3, 10, 10], Conv2dGeometry::new(3, 2, 1)),
        ([1, 2, 7, 5], Conv2dGeometry::new(3, 1, 0)),
        ([2, 6, 14, 14], Conv2dGeometry::new(5, 1, 0)),
    ];
    for (shape, geo) in cases {
        let [xg, xc] = pair16(&g, &rng.vec(shape.iter().product()), &shape);
        let (cg, cc) = (im2col(&xg, &geo).unwrap(), im2col(&xc, &geo).unwrap());
        same(&format!("im2col {shape:?}"), &cg, &cc, DType::F16, 0.0);
        let [colg, colc] = pair16(&g, &rng.vec(cg.numel()), cg.shape());
        let (got, want) = (col2im(&colg, &geo, &shape).unwrap(), col2im(&colc, &geo, &shape).unwrap());
        same16(&format!("col2im {shape:?}"), &got, &want);
    }
}

#[test]
fn batch_norm_keeps_f32_statistics_over_f16_values() {
    let g = f16_gpu();
    let mut rng = Rng::new(164);
    // S = 1, S % 4 != 0, S % 4 == 0 with several passes of the workgroup
    for shape in [&[7, 5][..], &[4, 3, 9, 11], &[2, 2, 30, 30]] {
        let (n, c) = (shape.iter().product::<usize>(), shape[1]);
        let x: Vec<f32> = rng.vec(n).iter().map(|v| v + 0.7).collect();
        let [xg, xc] = pair16(&g, &x, shape);
        let [rmg, rmc] = pair32(&g, &rng.vec(c), &[c]);
        let [rvg, rvc] = pair32(&g, &rng.vec_positive(c), &[c]);
        let (mg, vg, rg) = batch_norm_stats(&xg, Some((&rmg, &rvg)), 0.1).unwrap();
        let (mc, vc, rc) = batch_norm_stats(&xc, Some((&rmc, &rvc)), 0.1).unwrap();
        same(&format!("mean {shape:?}"), &mg, &mc, DType::F32, F32_TOL);
        same(&format!("var {shape:?}"), &vg, &vc, DType::F32, F32_TOL);
        let ((rmg2, rvg2), (rmc2, rvc2)) = (rg.unwrap(), rc.unwrap());
        same(&format!("running mean {shape:?}"), &rmg2, &rmc2, DType::F32, F32_TOL);
        same(&format!("running var {shape:?}"), &rvg2, &rvc2, DType::F32, F32_TOL);
        let [wg, wc] = pair32(&g, &rng.vec(c), &[c]);
        let [bg, bc] = pair32(&g, &rng.vec(c), &[c]);
        let yg = batch_norm_apply(&xg, &mg, &vg, Some((&wg, &bg)), 1e-5).unwrap();
        let yc = batch_norm_apply(&xc, &mc, &vc, Some((&wc, &bc)), 1e-5).unwrap();
        same16(&format!("batch norm {shape:?}"), &yg, &yc);
        let [dyg, dyc] = pair16(&g, &rng.vec(n), shape);
        for batch_stats in [true, false] {
            let (dxg, dwg, dbg) = batch_norm_backward(&xg, &dyg, &mg, &vg, Some(&wg), 1e-5, batch_stats).unwrap();
            let (dxc, dwc, dbc) = batch_norm_backward(&xc, &dyc, &mc, &vc, Some(&wc), 1e-5, batch_stats).unwrap();
            same16(&format!("batch norm dx {shape:?} {batch_stats}"), &dxg, &dxc);
            same(&format!("batch norm dweight {shape:?}"), &dwg, &dwc, DType::F32, F32_TOL);
            same(&format!("batch norm dbias {shape:?}"), &dbg, &dbc, DType::F32, F32_TOL);
        }
    }
}

#[test]
fn fused_products_store_f16_after_bias_and_activation() {
    let g = f16_gpu();
    let mut rng = Rng::new(165);
    // [M, K] x [K, N]: few rows (rows8), a 64-tile problem; a weight shared over a batch of
    // columns (a convolution's), and x · W^T (a linear layer's)
    // (A, B, trans_b, bias per row)
    let cases: [(&[usize], &[usize], bool, bool); 4] = [
        (&[6, 75], &[75, 196], false, true),
        (&[40, 50], &[50, 70], false, false),
        (&[16, 54], &[3, 54, 64], false, true),
        (&[9, 84], &[10, 84], true, false),
    ];
    for (sa, sb, trans_b, per_row) in cases {
        let [ag, ac] = pair16(&g, &rng.vec(sa.iter().product()), sa);
        let [bg, bc] = pair16(&g, &rng.vec(sb.iter().product()), sb);
        let rows = if per_row { sa[0] } else { sb[if trans_b { 0 } else { sb.len() - 1 }] };
        let [biasg, biasc] = pair32(&g, &rng.vec(rows), &[rows]);
        for activation in [None, Some(UnaryOp::Relu), Some(UnaryOp::Tanh)] {
            let epilogue =
                |b| Epilogue { bias: Some(if per_row { Bias::PerRow(b) } else { Bias::PerColumn(b) }), activation };
            let got = matmul_fused_stored(&ag, &bg, false, trans_b, &epilogue(&biasg), DType::F16).unwrap();
            let want = matmul_fused_stored(&ac, &bc, false, trans_b, &epilogue(&biasc), DType::F16).unwrap();
            same16(&format!("{sa:?} x {sb:?} {activation:?}"), &got, &want);
        }
    }
}

#[test]
fn reductions_of_f16_values_accumulate_and_store_f32() {
    let g = f16_gpu();
    let mut rng = Rng::new(166);
    // one thread per output, workgroups over contiguous vec4s, partials in a second pass
    for (shape, axes) in [(&[6, 7, 5][..], &[1][..]), (&[4, 3, 64], &[0, 2]), (&[3, 20000], &[1]), (&[13, 9], &[])] {
        let [xg, xc] = pair16(&g, &rng.vec(shape.iter().product()), shape);
        for op in [ReduceOp::Sum, ReduceOp::Max, ReduceOp::Mean] {
            let (got, want) = (reduce(op, &xg, axes, false).unwrap(), reduce(op, &xc, axes, false).unwrap());
            same(&format!("{op:?} {shape:?} over {axes:?}"), &got, &want, DType::F32, F32_TOL);
        }
    }
}
