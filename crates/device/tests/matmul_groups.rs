//! Parity: grouped products (one operand's batch dims a suffix of the other's, `[G, M, K]`
//! against `[N, G, K, P]`: a grouped convolution's weight against its columns) and the batch
//! sum per group, on the GPU against an f64 twin written from the definition (each image's
//! group g multiplied as its own 2-D product, then bias g and the activation), on random
//! nonzero inputs with outputs poisoned first. Bounds: F32_TOL (1e-5 relative) for f32,
//! F16_TOL (1e-3) for `Precision::Mixed` against the same inputs rounded to f16.
//! Every variant that takes groups: tile64, tile128, tile128v (aligned), rows8 from a storage
//! buffer and from its uniform buffer (one per-group A copied whole, or consecutive batches of
//! a grouped A copied a few per dispatch), the f16 tiles; the automatic pick too.

use ferrograd_device::kernels::elementwise::UnaryOp;
use ferrograd_device::kernels::epilogue::{Bias, Epilogue};
use ferrograd_device::kernels::matmul::{
    matmul_fused_using, matmul_group_sums_using, reference, Precision, Problem, Variant, UBO_A_ELEMENTS,
};
use ferrograd_device::testing::{assert_close, gpu, Rng, F16_TOL, F32_TOL};
use ferrograd_device::{Array, DeviceError};

/// A grouped product: `images` x `groups` batches; which operand has the images; sizes.
#[derive(Clone, Copy, Debug)]
struct Case {
    images: usize,
    groups: usize,
    /// A is `[images, groups, ., .]` and B `[groups, ., .]` (else the other way round)
    a_has_images: bool,
    m: usize,
    n: usize,
    k: usize,
    trans: (bool, bool),
}

impl Case {
    fn shapes(&self) -> (Vec<usize>, Vec<usize>) {
        let (ta, tb) = self.trans;
        let (ig, g) = (vec![self.images, self.groups], vec![self.groups]);
        let (ba, bb) = if self.a_has_images { (ig, g) } else { (g, ig) };
        let mut a = ba;
        a.extend(if ta { [self.k, self.m] } else { [self.m, self.k] });
        let mut b = bb;
        b.extend(if tb { [self.n, self.k] } else { [self.k, self.n] });
        (a, b)
    }
}

/// The twin: C `[images, groups, M, N]` from 2-D products of each (image, group)'s matrices,
/// `bias[g·M + m]` (per row) or `bias[g·N + n]` added, then relu if asked.
fn twin(c: &Case, a: &[f64], b: &[f64], bias: Option<(&[f64], bool)>, relu: bool) -> Vec<f64> {
    let (a_mat, b_mat) = (c.m * c.k, c.k * c.n);
    let mut out = Vec::new();
    for i in 0..c.images {
        for g in 0..c.groups {
            let (ai, bi) = if c.a_has_images { (i * c.groups + g, g) } else { (g, i * c.groups + g) };
            let mut part = product_2d(c, &a[ai * a_mat..][..a_mat], &b[bi * b_mat..][..b_mat]);
            for (e, v) in part.iter_mut().enumerate() {
                if let Some((bias, per_row)) = bias {
                    *v += if per_row { bias[g * c.m + e / c.n] } else { bias[g * c.n + e % c.n] };
                }
                if relu {
                    *v = v.max(0.0);
                }
            }
            out.extend(part);
        }
    }
    out
}

/// One 2-D product of `c`'s sizes and transposes.
fn product_2d(c: &Case, a: &[f64], b: &[f64]) -> Vec<f64> {
    let (ta, tb) = c.trans;
    let sa = if ta { [c.k, c.m] } else { [c.m, c.k] };
    let sb = if tb { [c.n, c.k] } else { [c.k, c.n] };
    reference::matmul(a, b, &Problem::new(&sa, &sb, ta, tb).unwrap())
}

fn to64(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

/// Runs `case` with `variant` (a per-row or per-column bias and relu fused, or neither) and
/// checks it against the twin.
fn check(rng: &mut Rng, case: Case, variant: Option<Variant>, precision: Precision, fused: Option<bool>) {
    let dev = gpu();
    let (sa, sb) = case.shapes();
    let (a, b) = (rng.vec(sa.iter().product()), rng.vec(sb.iter().product()));
    let bias_len = case.groups * if fused == Some(false) { case.n } else { case.m };
    let bias = rng.vec(bias_len);
    let (ag, bg) = (Array::from_f32(&dev, &a, &sa).unwrap(), Array::from_f32(&dev, &b, &sb).unwrap());
    let biasg = Array::from_f32(&dev, &bias, &[bias_len]).unwrap();
    let epilogue = match fused {
        None => Epilogue::default(),
        Some(per_row) => Epilogue {
            bias: Some(if per_row { Bias::PerRow(&biasg) } else { Bias::PerColumn(&biasg) }),
            activation: Some(UnaryOp::Relu),
        },
    };
    let (ta, tb) = case.trans;
    let got = matmul_fused_using(&ag, &bg, ta, tb, precision, variant, &epilogue).unwrap();
    let want_shape = [case.images, case.groups, case.m, case.n];
    assert_eq!(got.shape(), want_shape, "{case:?}");
    let (a64, b64, tol) = match precision {
        Precision::F32 => (to64(&a), to64(&b), F32_TOL),
        Precision::Mixed => (reference::round_f16(&to64(&a)), reference::round_f16(&to64(&b)), F16_TOL),
    };
    let bias64 = to64(&bias);
    let want = twin(&case, &a64, &b64, fused.map(|r| (bias64.as_slice(), r)), fused.is_some());
    let what = format!("{variant:?} {precision:?} {case:?} fused {fused:?}");
    assert_close(&what, &got.to_f64_vec().unwrap(), &want, tol);
}

/// A grouped convolution's forward product (`weight [G, O/G, rows] · cols [N, G, rows, P]`,
/// bias per row and relu fused) and its input gradient (`weight^T · grad`), odd sizes.
fn conv_cases() -> [Case; 3] {
    let forward = Case { images: 3, groups: 2, a_has_images: false, m: 6, n: 37, k: 27, trans: (false, false) };
    let input_grad = Case { images: 2, groups: 3, a_has_images: false, m: 18, n: 25, k: 5, trans: (true, false) };
    // the grouped operand on the left, B transposed, per-column bias
    let left = Case { images: 2, groups: 2, a_has_images: true, m: 9, n: 7, k: 33, trans: (false, true) };
    [forward, input_grad, left]
}

#[test]
fn grouped_products_match_the_twin_on_every_tile_variant() {
    let mut rng = Rng::new(41);
    for variant in [Some(Variant::Tile64), Some(Variant::Tile128), Some(Variant::Rows8), None] {
        let [forward, input_grad, left] = conv_cases();
        check(&mut rng, forward, variant, Precision::F32, Some(true));
        check(&mut rng, input_grad, variant, Precision::F32, None);
        check(&mut rng, left, variant, Precision::F32, Some(false));
        // every transpose pair once, no epilogue
        for trans in [(true, true), (false, true)] {
            check(&mut rng, Case { trans, ..forward }, variant, Precision::F32, None);
        }
    }
}

#[test]
fn grouped_products_on_the_vec4_tiles_and_the_f16_tiles() {
    let mut rng = Rng::new(42);
    // aligned to tile128v: M and N multiples of 128, K of 8
    let aligned = Case { images: 2, groups: 2, a_has_images: false, m: 128, n: 128, k: 24, trans: (false, false) };
    check(&mut rng, aligned, Some(Variant::Tile128Vec4), Precision::F32, Some(true));
    let [forward, input_grad, _] = conv_cases();
    for variant in [Some(Variant::Tile64), Some(Variant::Rows8), None] {
        check(&mut rng, forward, variant, Precision::Mixed, Some(true));
        check(&mut rng, input_grad, variant, Precision::Mixed, None);
    }
}

/// rows8 reads A from a uniform buffer on a CPU adapter: a per-group A small enough is copied
/// whole; a grouped A on the left goes a few batches per dispatch, the first batch of a later
/// dispatch inside an image (group 1 of image 1); a per-group A past the buffer is read from
/// storage. Elsewhere the same products run from storage.
#[test]
fn rows8_takes_groups_through_its_uniform_buffer_and_past_it() {
    let mut rng = Rng::new(43);
    let whole = Case { images: 3, groups: 4, a_has_images: false, m: 8, n: 50, k: 36, trans: (false, false) };
    check(&mut rng, whole, Some(Variant::Rows8), Precision::F32, Some(true));
    // M·K = 4800: three batches per copy, six batches
    let consecutive = Case { images: 3, groups: 2, a_has_images: true, m: 8, n: 12, k: 600, trans: (false, false) };
    assert_eq!(UBO_A_ELEMENTS / (8 * 600), 3);
    check(&mut rng, consecutive, Some(Variant::Rows8), Precision::F32, Some(true));
    let past = Case { images: 2, groups: 3, a_has_images: false, m: 16, n: 20, k: 400, trans: (false, false) };
    assert!(past.groups * past.m * past.k > UBO_A_ELEMENTS && past.m * past.k <= UBO_A_ELEMENTS);
    check(&mut rng, past, Some(Variant::Rows8), Precision::F32, Some(true));
}

/// `matmul_group_sums`: `Σ_n grad[n, g] · cols[n, g]^T` per group (a grouped convolution's
/// weight gradient) against the twin's products summed over the images, every variant and
/// transpose, with image counts giving one split and several.
#[test]
fn group_sums_match_the_summed_twin() {
    let mut rng = Rng::new(44);
    let dev = gpu();
    for variant in [Variant::Tile64, Variant::Tile128, Variant::Rows8] {
        for (images, groups, (m, n, k)) in [(1, 2, (6, 27, 37)), (9, 3, (8, 20, 16)), (40, 2, (5, 12, 64))] {
            for trans in [(false, true), (false, false), (true, false), (true, true)] {
                let case = Case { images, groups, a_has_images: true, m, n, k, trans };
                let (sa, _) = case.shapes();
                let mut sb = vec![images, groups];
                sb.extend(if trans.1 { [n, k] } else { [k, n] });
                let (a, b) = (rng.vec(sa.iter().product()), rng.vec(sb.iter().product()));
                let (ag, bg) = (Array::from_f32(&dev, &a, &sa).unwrap(), Array::from_f32(&dev, &b, &sb).unwrap());
                for precision in [Precision::F32, Precision::Mixed] {
                    if precision == Precision::Mixed && variant != Variant::Rows8 {
                        continue; // the f16 inputs take the same REDUCE path; once is enough
                    }
                    let got = matmul_group_sums_using(&ag, &bg, trans.0, trans.1, precision, Some(variant)).unwrap();
                    assert_eq!(got.shape(), [groups, m, n]);
                    let (a64, b64, tol) = match precision {
                        Precision::F32 => (to64(&a), to64(&b), F32_TOL),
                        Precision::Mixed => (reference::round_f16(&to64(&a)), reference::round_f16(&to64(&b)), F16_TOL),
                    };
                    // the twin: batch (i, g) of both operands multiplied, summed over i
                    let mut want = vec![0.0; groups * m * n];
                    for i in 0..images {
                        for g in 0..groups {
                            let at = |x: &[f64], mat: usize| x[(i * groups + g) * mat..][..mat].to_vec();
                            let part = product_2d(&case, &at(&a64, m * k), &at(&b64, k * n));
                            want[g * m * n..][..m * n].iter_mut().zip(part).for_each(|(w, v)| *w += v);
                        }
                    }
                    let what = format!("group sums {variant:?} {precision:?} {case:?}");
                    assert_close(&what, &got.to_f64_vec().unwrap(), &want, tol);
                }
            }
        }
    }
}

#[test]
fn a_grouped_bias_of_the_wrong_length_and_unbroadcastable_batches_are_errors() {
    let dev = gpu();
    let mut rng = Rng::new(45);
    let a = Array::from_f32(&dev, &rng.vec(2 * 3 * 4), &[2, 3, 4]).unwrap();
    let b = Array::from_f32(&dev, &rng.vec(5 * 2 * 4 * 6), &[5, 2, 4, 6]).unwrap();
    // one bias per group and row (6), not per row (3)
    let short = Array::from_f32(&dev, &rng.vec(3), &[3]).unwrap();
    let e = Epilogue { bias: Some(Bias::PerRow(&short)), activation: None };
    let err = matmul_fused_using(&a, &b, false, false, Precision::F32, None, &e).unwrap_err();
    assert!(matches!(err, DeviceError::Shape { .. }), "{err}");
    assert!(err.to_string().contains("each of 2 groups"), "{err}");
    // [3] is no suffix of [5, 2]
    let a3 = Array::from_f32(&dev, &rng.vec(3 * 3 * 4), &[3, 3, 4]).unwrap();
    let err = matmul_fused_using(&a3, &b, false, false, Precision::F32, None, &Epilogue::default()).unwrap_err();
    assert!(err.to_string().contains("suffix") && err.to_string().contains("[3, 3, 4]"), "{err}");
    // group sums need [N, G] on both sides
    let err = matmul_group_sums_using(&a, &b, false, false, Precision::F32, None).unwrap_err();
    assert!(err.to_string().contains("matmul_group_sums"), "{err}");
}
