//! Parity: every matmul kernel variant on the GPU against the f64 CPU twin, on random nonzero
//! inputs, with outputs poisoned first. Check: `testing::assert_close`, elementwise relative
//! error with a floor of tol x max|C|. Bounds: F32_TOL (1e-5) for f32 inputs; F16_TOL (1e-3)
//! for `Precision::Mixed` against the reference on the same inputs rounded to f16.
//! `Rows8` has two paths: A from a storage buffer, or (f32, one A of at most UBO_A_ELEMENTS
//! shared by the batch) from a uniform buffer; the cases below reach both.
//! The cooperative-matrix variant needs tensor cores: on lavapipe only its capability gate is
//! tested; where the adapter has them, the same parity checks run on it.

use ferrograd_device::kernels::matmul::{
    batch_sum_splits, choose_variant, coop_available, cpu_adapter_max_k, matmul, matmul_batch_sum_using, matmul_using,
    matmul_with, pick_variant, reference, Precision, Problem, Variant, CPU_ADAPTER_MAX_K, UBO_A_ELEMENTS,
};
use ferrograd_device::testing::{assert_close, gpu, Rng, F16_TOL, F32_TOL};
use ferrograd_device::{Array, Device, DeviceError};

const TRANSPOSES: [(bool, bool); 4] = [(false, false), (true, false), (false, true), (true, true)];

/// Shapes of A and B for a batch prefix, (M, N, K) and the transposes.
fn shapes(batch_a: &[usize], batch_b: &[usize], m: usize, n: usize, k: usize, ta: bool, tb: bool) -> [Vec<usize>; 2] {
    let mut a = batch_a.to_vec();
    a.extend(if ta { [k, m] } else { [m, k] });
    let mut b = batch_b.to_vec();
    b.extend(if tb { [n, k] } else { [k, n] });
    [a, b]
}

/// Runs one case on the GPU and checks it against the reference.
fn check(
    dev: &Device,
    rng: &mut Rng,
    [sa, sb]: [Vec<usize>; 2],
    (ta, tb): (bool, bool),
    precision: Precision,
    variant: Option<Variant>,
) {
    let a = rng.vec(sa.iter().product());
    let b = rng.vec(sb.iter().product());
    let ag = Array::from_f32(dev, &a, &sa).unwrap();
    let bg = Array::from_f32(dev, &b, &sb).unwrap();
    let out = matmul_using(&ag, &bg, ta, tb, precision, variant).unwrap();
    let p = Problem::new(&sa, &sb, ta, tb).unwrap();
    assert_eq!(out.shape(), p.out_shape.as_slice());
    let (a64, b64): (Vec<f64>, Vec<f64>) =
        (a.iter().map(|&v| v as f64).collect(), b.iter().map(|&v| v as f64).collect());
    let (want, tol) = match precision {
        Precision::F32 => (reference::matmul(&a64, &b64, &p), F32_TOL),
        Precision::Mixed => (reference::matmul(&reference::round_f16(&a64), &reference::round_f16(&b64), &p), F16_TOL),
    };
    let what = format!("{variant:?} {precision:?} a {sa:?} b {sb:?} ta {ta} tb {tb}");
    assert_close(&what, &out.to_f64_vec().unwrap(), &want, tol);
}

/// Sizes off every tile multiple, a single element, and exact tiles.
const ODD: [(usize, usize, usize); 5] = [(1, 1, 1), (17, 33, 65), (129, 7, 300), (130, 129, 9), (64, 128, 16)];

#[test]
fn tile_kernels_match_reference_on_odd_sizes_and_transposes() {
    let g = gpu();
    let mut rng = Rng::new(11);
    for variant in [Variant::Tile64, Variant::Tile128, Variant::Rows8] {
        for (m, n, k) in ODD {
            for t in TRANSPOSES {
                check(&g, &mut rng, shapes(&[], &[], m, n, k, t.0, t.1), t, Precision::F32, Some(variant));
            }
        }
    }
}

#[test]
fn batches_equal_or_shared_by_a_2d_operand() {
    let g = gpu();
    let mut rng = Rng::new(12);
    let cases: [(&[usize], &[usize]); 4] = [(&[3], &[3]), (&[2, 3], &[2, 3]), (&[], &[4]), (&[4], &[])];
    for variant in [Variant::Tile64, Variant::Tile128, Variant::Rows8] {
        for (ba, bb) in cases {
            for t in TRANSPOSES {
                let s = shapes(ba, bb, 20, 37, 29, t.0, t.1);
                check(&g, &mut rng, s, t, Precision::F32, Some(variant));
            }
        }
    }
}

#[test]
fn shape_picks_the_kernel_and_large_tiles_run_unforced() {
    let g = gpu();
    let caps = g.gpu_context().unwrap().caps().clone();
    let pick =
        |a: &[usize], b: &[usize]| choose_variant(&caps, Precision::F32, &Problem::new(a, b, false, false).unwrap());
    // ResNet-18 conv1-like im2col GEMM: 64 output channels, small M -> 64x64 tiles
    assert_eq!(pick(&[64, 147], &[2, 147, 3136]), Variant::Tile64);
    assert_eq!(pick(&[100, 100], &[100, 100]), Variant::Tile64);
    // 4 x 512 x 512: 64 tiles of 128x128, aligned to them (vec4 tiles), or not
    let (sa, sb) = (vec![4, 512, 40], vec![4, 40, 512]);
    assert_eq!(pick(&sa, &sb), Variant::Tile128Vec4);
    assert_eq!(pick(&[4, 512, 41], &[4, 41, 512]), Variant::Tile128);
    // LeNet's conv GEMMs: at most 16 output channels -> rows8
    assert_eq!(pick(&[16, 150], &[128, 150, 100]), Variant::Rows8);
    assert_eq!(pick(&[6, 25], &[128, 25, 784]), Variant::Rows8);
    // what the launcher runs: rows8 for everything on a CPU adapter, else choose_variant
    let ctx = g.gpu_context().unwrap();
    let p = Problem::new(&sa, &sb, false, false).unwrap();
    let cpu = ctx.is_cpu_adapter();
    let want = if cpu { Variant::Rows8 } else { Variant::Tile128Vec4 };
    assert_eq!(pick_variant(ctx, Precision::F32, &p), want);
    let mut rng = Rng::new(13);
    check(&g, &mut rng, [sa, sb], (false, false), Precision::F32, None);
}

/// Batch dims of A and B, M, N, K, transposes.
type Case<'a> = (&'a [usize], &'a [usize], usize, usize, usize, (bool, bool));

/// LeNet-5's GEMMs at batch 3 (conv forward, both conv backward products, a linear layer):
/// a shared 2-D weight against a batch, batched products with small N, and the uniform-buffer
/// path's limits: a shared A at and just over the limit, batched A copied a few batches per
/// dispatch, a batch of A over the limit. Forced rows8 and the automatic pick.
#[test]
fn rows8_matches_reference_on_lenet_shapes_and_shared_a_limits() {
    let g = gpu();
    let mut rng = Rng::new(17);
    let side = (UBO_A_ELEMENTS as f64).sqrt() as usize; // a square A of exactly the limit
    let cases: [Case; 14] = [
        (&[], &[3], 6, 784, 25, (false, false)),        // conv1 forward
        (&[3], &[3], 6, 25, 784, (false, true)),        // conv1 dW per image
        (&[], &[3], 150, 100, 16, (true, false)),       // conv2 dcols
        (&[], &[], 5, 120, 400, (false, true)),         // linear forward
        (&[], &[2], side, 9, side, (false, false)),     // A at the uniform-buffer limit
        (&[], &[2], side + 1, 12, side, (true, false)), // just over it: storage path
        (&[2], &[], 7, 13, 11, (false, false)),
        (&[5], &[5], 40, 9, 100, (false, false)), // 4 batches of A per uniform copy: 2 dispatches
        (&[2], &[2], side + 1, 5, side, (false, true)), // a batch of A over the limit: storage path
        // the wide loads: A's rows along K (B by rows, scalar or vec4; B's columns along K),
        // a transposed A's rows in pairs of vec4 (M % 8 == 4 clamps the upper four)
        (&[], &[2], 12, 7, 20, (false, false)),
        (&[3], &[3], 9, 16, 8, (false, false)),
        (&[3], &[3], 10, 6, 12, (false, true)),
        (&[], &[3], 12, 50, 16, (true, false)),
        (&[2], &[2], 20, 9, 7, (true, false)),
    ];
    for variant in [Some(Variant::Rows8), None] {
        for (ba, bb, m, n, k, t) in cases {
            check(&g, &mut rng, shapes(ba, bb, m, n, k, t.0, t.1), t, Precision::F32, variant);
        }
    }
}

#[test]
fn k_zero_gives_zeros_and_empty_outputs_work() {
    let g = gpu();
    let a = Array::from_f32(&g, &[], &[5, 0]).unwrap();
    let b = Array::from_f32(&g, &[], &[0, 7]).unwrap();
    for variant in [Variant::Tile64, Variant::Tile128, Variant::Rows8] {
        let out = matmul_using(&a, &b, false, false, Precision::F32, Some(variant)).unwrap();
        assert_eq!(out.shape(), &[5, 7]);
        assert_eq!(out.to_f64_vec().unwrap(), vec![0.0; 35]);
    }
    let a = Array::from_f32(&g, &[], &[0, 3]).unwrap();
    let b = Array::from_f32(&g, &[1.0; 12], &[3, 4]).unwrap();
    assert_eq!(matmul(&a, &b, false, false).unwrap().shape(), &[0, 4]);
    let a = Array::from_f32(&g, &[], &[0, 2, 3]).unwrap();
    let b = Array::from_f32(&g, &[], &[0, 3, 4]).unwrap();
    let out = matmul(&a, &b, false, false).unwrap();
    assert_eq!(out.shape(), &[0, 2, 4]);
    assert!(out.to_f64_vec().unwrap().is_empty());
}

#[test]
fn bad_shapes_are_errors_naming_matmul_and_both_shapes() {
    let g = gpu();
    let arr = |s: &[usize]| Array::from_f32(&g, &vec![0.5; s.iter().product()], s).unwrap();
    let cases: [(&[usize], &[usize]); 3] = [(&[2, 3], &[4, 5]), (&[2, 2, 3], &[3, 3, 4]), (&[3], &[3, 4])];
    for (sa, sb) in cases {
        let e = matmul(&arr(sa), &arr(sb), false, false).unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, DeviceError::Shape { kernel: "matmul", .. }), "{msg}");
        assert!(msg.contains(&format!("{sa:?}")) && msg.contains(&format!("{sb:?}")), "{msg}");
    }
}

#[test]
fn mixed_precision_tiles_match_the_f16_rounded_reference() {
    let g = gpu();
    let mut rng = Rng::new(14);
    for variant in [Variant::Tile64, Variant::Tile128, Variant::Rows8] {
        for (m, n, k) in [(17, 33, 65), (129, 7, 300)] {
            for t in TRANSPOSES {
                check(&g, &mut rng, shapes(&[2], &[], m, n, k, t.0, t.1), t, Precision::Mixed, Some(variant));
            }
        }
    }
}

#[test]
fn cooperative_matrix_kernel_runs_only_behind_its_capability() {
    let g = gpu();
    let mut rng = Rng::new(15);
    if coop_available(g.gpu_context().unwrap().caps()) {
        for (m, n, k) in ODD.into_iter().chain([(256, 384, 96)]) {
            for t in TRANSPOSES {
                let s = shapes(&[2], &[], m, n, k, t.0, t.1);
                check(&g, &mut rng, s, t, Precision::Mixed, Some(Variant::Coop));
            }
        }
    } else {
        let a = Array::from_f32(&g, &rng.vec(4), &[2, 2]).unwrap();
        let e = matmul_using(&a, &a, false, false, Precision::Mixed, Some(Variant::Coop)).unwrap_err();
        assert!(matches!(e, DeviceError::Unsupported { kernel: "matmul", .. }), "{e}");
        // and Mixed without forcing falls back to a kernel that runs
        let out = matmul_with(&a, &a, false, false, Precision::Mixed).unwrap();
        assert_eq!(out.shape(), &[2, 2]);
    }
}

#[test]
fn cpu_device_runs_the_reference() {
    let mut rng = Rng::new(16);
    let (a, b) = (rng.vec(6), rng.vec(12));
    let ac = Array::from_f32(&Device::Cpu, &a, &[2, 3]).unwrap();
    let bc = Array::from_f32(&Device::Cpu, &b, &[3, 4]).unwrap();
    let got = matmul(&ac, &bc, false, false).unwrap().to_f64_vec().unwrap();
    // written out directly: C[i][j] = sum_k A[i][k] B[k][j]
    let want: Vec<f64> =
        (0..8).map(|ij| (0..3).map(|k| a[(ij / 4) * 3 + k] as f64 * b[k * 4 + ij % 4] as f64).sum()).collect();
    assert_close("cpu matmul", &got, &want, 1e-12);
}

#[test]
fn an_inner_dimension_past_lavapipes_loop_limit_is_an_error_there_and_exact_elsewhere() {
    let g = gpu();
    let k = CPU_ADAPTER_MAX_K + 1;
    let (a, b) = (
        Array::from_f32(&g, &vec![1.0; 2 * k], &[2, k]).unwrap(),
        Array::from_f32(&g, &vec![1.0; k], &[k, 1]).unwrap(),
    );
    let cpu_adapter = g.gpu_context().unwrap().is_cpu_adapter();
    match matmul(&a, &b, false, false) {
        Err(e) => assert!(cpu_adapter && e.to_string().contains("65535"), "{e}"),
        Ok(c) => assert!(!cpu_adapter && c.to_f32_vec().unwrap() == vec![k as f32; 2], "a sum cut short"),
    }
}

/// `matmul_batch_sum` against the per-batch reference summed over the batch, for every variant
/// and transpose, with batch counts that give one split and many (splits of uneven size).
#[test]
fn batch_sums_match_the_summed_reference() {
    let g = gpu();
    let ctx = g.gpu_context().unwrap().clone();
    let mut rng = Rng::new(14);
    type Case = (&'static [usize], (usize, usize, usize));
    let cases: [Case; 4] = [(&[1], (9, 21, 13)), (&[7], (20, 37, 29)), (&[2, 5], (6, 25, 100)), (&[33], (16, 12, 64))];
    for variant in [Variant::Tile64, Variant::Tile128, Variant::Rows8] {
        for (batch, (m, n, k)) in cases {
            for (ta, tb) in TRANSPOSES {
                let [sa, sb] = shapes(batch, batch, m, n, k, ta, tb);
                let (a, b) = (rng.vec(sa.iter().product()), rng.vec(sb.iter().product()));
                let ag = Array::from_f32(&g, &a, &sa).unwrap();
                let bg = Array::from_f32(&g, &b, &sb).unwrap();
                let got = matmul_batch_sum_using(&ag, &bg, ta, tb, Precision::F32, Some(variant)).unwrap();
                assert_eq!(got.shape(), [m, n]);
                let p = Problem::new(&sa, &sb, ta, tb).unwrap();
                let to64 = |v: &[f32]| v.iter().map(|&x| x as f64).collect::<Vec<_>>();
                let want = reference::sum_batches(&reference::matmul(&to64(&a), &to64(&b), &p), m * n);
                let splits = batch_sum_splits(&ctx, variant, &p);
                let what = format!("batch sum {variant:?} a {sa:?} b {sb:?} ta {ta} tb {tb} ({splits} splits)");
                assert_close(&what, &got.to_f64_vec().unwrap(), &want, F32_TOL);
            }
        }
    }
}

/// On a CPU adapter a batch sum whose batches x K pass one invocation's loop budget is split
/// so that each split stays under it (exact result, no error), and the number of partials
/// does not grow with the batch beyond that; elsewhere it is exact too.
#[test]
fn batch_sums_past_lavapipes_loop_limit_are_split_and_exact() {
    let g = gpu();
    let ctx = g.gpu_context().unwrap().clone();
    let (batch, k) = (5, 30_000);
    let a = Array::from_f32(&g, &vec![1.0; batch * 2 * k], &[batch, 2, k]).unwrap();
    let b = Array::from_f32(&g, &vec![0.5; batch * k], &[batch, k, 1]).unwrap();
    for variant in [Variant::Rows8, Variant::Tile64] {
        let got = matmul_batch_sum_using(&a, &b, false, false, Precision::F32, Some(variant)).unwrap();
        assert_eq!(got.to_f32_vec().unwrap(), vec![0.5 * (batch * k) as f32; 2], "{variant:?}: a sum cut short");
        let p = Problem::new(a.shape(), b.shape(), false, false).unwrap();
        let splits = batch_sum_splits(&ctx, variant, &p);
        if ctx.is_cpu_adapter() {
            assert!(splits * k <= batch * cpu_adapter_max_k(variant) && splits <= batch, "{variant:?}: {splits}");
            assert!(batch.div_ceil(splits) * k <= cpu_adapter_max_k(variant), "{variant:?}: {splits} splits");
        }
    }
}

/// The loop guard covers every variant: a forced tile kernel with K past its budget is refused
/// on a CPU adapter before anything is dispatched (Mesa 22.3 would stop summing silently).
#[test]
fn forced_tile_kernels_refuse_a_k_past_their_loop_budget_on_a_cpu_adapter() {
    let g = gpu();
    let ctx = g.gpu_context().unwrap().clone();
    let k = cpu_adapter_max_k(Variant::Tile64) + 1;
    let a = Array::from_f32(&g, &vec![1.0; k], &[1, k]).unwrap();
    let b = Array::from_f32(&g, &vec![1.0; k], &[k, 1]).unwrap();
    for variant in [Variant::Tile64, Variant::Tile128] {
        let before = ctx.stats().dispatches;
        match matmul_using(&a, &b, false, false, Precision::F32, Some(variant)) {
            Err(e) => assert!(ctx.is_cpu_adapter() && e.to_string().contains("cut short"), "{e}"),
            Ok(c) => assert!(!ctx.is_cpu_adapter() && c.to_f32_vec().unwrap() == vec![k as f32], "{variant:?}"),
        }
        if ctx.is_cpu_adapter() {
            assert_eq!(ctx.stats().dispatches, before, "{variant:?}: refused after dispatching");
        }
    }
}

#[test]
fn the_vec4_tile_kernel_takes_aligned_problems_only() {
    let g = gpu();
    let mut rng = Rng::new(19);
    // batched, A shared by the batch, B shared by the batch; then a fused epilogue
    let cases: [Case; 3] = [
        (&[2], &[2], 128, 256, 64, (false, false)),
        (&[], &[2], 256, 128, 24, (false, false)),
        (&[3], &[], 128, 128, 8, (false, false)),
    ];
    for (ba, bb, m, n, k, t) in cases {
        check(&g, &mut rng, shapes(ba, bb, m, n, k, t.0, t.1), t, Precision::F32, Some(Variant::Tile128Vec4));
    }
    let caps = g.gpu_context().unwrap().caps().clone();
    // unaligned (N = 500) or transposed: the plain tiles, and forcing the vec4 ones is an error
    for (sa, sb, tb) in [(vec![4, 512, 64], vec![4, 64, 500], false), (vec![4, 512, 64], vec![4, 512, 64], true)] {
        let p = Problem::new(&sa, &sb, false, tb).unwrap();
        assert_eq!(choose_variant(&caps, Precision::F32, &p), Variant::Tile128, "{sa:?} {sb:?} {tb}");
        let a = Array::from_f32(&g, &rng.vec(sa.iter().product()), &sa).unwrap();
        let b = Array::from_f32(&g, &rng.vec(sb.iter().product()), &sb).unwrap();
        let err = matmul_using(&a, &b, false, tb, Precision::F32, Some(Variant::Tile128Vec4)).unwrap_err().to_string();
        assert!(err.contains("tile128v"), "{err}");
    }
}
