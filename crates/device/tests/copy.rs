//! Parity: copy kernels on the GPU against their f64 CPU twins on random nonzero inputs,
//! outputs poisoned first. Moves are exact (compared bit for bit through f64); the
//! index_select backward sums are bounded at f32 1e-5 relative, the f16 cast at 1e-3.

use ferrograd_device::kernels::copy::{
    cast, concat, index_select, index_select_backward, narrow, narrow_backward, permute, reference,
};
use ferrograd_device::testing::{assert_close, gpu, Rng, F16_TOL, F32_TOL};
use ferrograd_device::{Array, DType, Device, DeviceError};

fn f64s(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

fn random(g: &Device, rng: &mut Rng, shape: &[usize]) -> (Array, Vec<f64>) {
    let v = rng.vec(shape.iter().product());
    (Array::from_f32(g, &v, shape).unwrap(), f64s(&v))
}

#[test]
fn permute_matches_reference() {
    let g = gpu();
    let mut rng = Rng::new(31);
    let cases: [(&[usize], &[usize]); 6] = [
        (&[2, 3, 5, 7], &[0, 2, 3, 1]),
        (&[2, 3, 5, 7], &[3, 1, 0, 2]),
        (&[3, 4, 5, 6], &[0, 1, 2, 3]),
        (&[17, 33], &[1, 0]),
        (&[2, 1, 3, 1, 2], &[4, 3, 2, 1, 0]),
        (&[0, 3, 2], &[2, 0, 1]),
    ];
    for (shape, perm) in cases {
        let (x, x64) = random(&g, &mut rng, shape);
        let out = permute(&x, perm).unwrap();
        let want_shape: Vec<usize> = perm.iter().map(|&p| shape[p]).collect();
        assert_eq!(out.shape(), &want_shape[..]);
        assert_eq!(out.to_f64_vec().unwrap(), reference::permute(&x64, shape, perm), "{shape:?} {perm:?}");
    }
}

#[test]
fn transpose_is_the_textbook_transpose_and_u32_moves_bit_for_bit() {
    let g = gpu();
    let (r, c) = (5, 9);
    let v: Vec<u32> = (0..(r * c) as u32).map(|i| i.wrapping_mul(2_654_435_761)).collect();
    let t = permute(&Array::from_u32(&g, &v, &[r, c]).unwrap(), &[1, 0]).unwrap();
    assert_eq!(t.dtype(), DType::U32);
    let got = t.to_u32_vec().unwrap();
    for i in 0..r {
        for j in 0..c {
            assert_eq!(got[j * r + i], v[i * c + j]);
        }
    }
}

#[test]
fn concat_matches_reference_and_narrow_takes_the_parts_back() {
    let g = gpu();
    let mut rng = Rng::new(32);
    // three arrays along a middle axis, then the first and last axes
    let cases: [(&[&[usize]], usize); 4] = [
        (&[&[2, 3, 5], &[2, 1, 5], &[2, 4, 5]], 1),
        (&[&[3, 7], &[1, 7], &[5, 7]], 0),
        (&[&[2, 3, 1], &[2, 3, 4], &[2, 3, 0]], 2),
        (&[&[2, 0, 3], &[2, 2, 3]], 1),
    ];
    for (shapes, axis) in cases {
        let parts: Vec<(Array, Vec<f64>)> = shapes.iter().map(|s| random(&g, &mut rng, s)).collect();
        let refs: Vec<&Array> = parts.iter().map(|p| &p.0).collect();
        let out = concat(&refs, axis).unwrap();
        let cpu_parts: Vec<(&[f64], &[usize])> = parts.iter().zip(shapes).map(|(p, s)| (&p.1[..], *s)).collect();
        assert_eq!(out.to_f64_vec().unwrap(), reference::concat(&cpu_parts, axis), "{shapes:?} axis {axis}");
        let mut start = 0;
        for (p, s) in parts.iter().zip(shapes) {
            let back = narrow(&out, axis, start, s[axis]).unwrap();
            assert_eq!(back.shape(), *s);
            assert_eq!(back.to_f64_vec().unwrap(), p.1, "narrow back {s:?}");
            start += s[axis];
        }
    }
}

#[test]
fn narrow_and_its_backward_match_reference() {
    let g = gpu();
    let mut rng = Rng::new(33);
    let cases: [(&[usize], usize, usize, usize); 4] =
        [(&[4, 9, 3], 1, 2, 5), (&[7, 5], 0, 6, 1), (&[2, 3, 11], 2, 0, 11), (&[3, 4, 5], 1, 4, 0)];
    for (shape, axis, start, len) in cases {
        let (x, x64) = random(&g, &mut rng, shape);
        let out = narrow(&x, axis, start, len).unwrap();
        assert_eq!(out.to_f64_vec().unwrap(), reference::narrow(&x64, shape, axis, start, len));
        let (up, up64) = random(&g, &mut rng, out.shape());
        let back = narrow_backward(&up, shape, axis, start).unwrap();
        let want = reference::narrow_backward(&up64, shape, axis, start);
        assert_eq!(back.to_f64_vec().unwrap(), want, "{shape:?} axis {axis} {start}+{len}");
        // zeros outside the slice, the gradient inside
        assert_eq!(want.iter().filter(|v| **v != 0.0).count(), up64.len());
    }
}

#[test]
fn index_select_matches_reference_with_repeats() {
    let g = gpu();
    let mut rng = Rng::new(34);
    for (shape, axis) in [(&[10, 7][..], 0), (&[3, 6, 4][..], 1), (&[2, 5][..], 1)] {
        let (x, x64) = random(&g, &mut rng, shape);
        let idx: Vec<u32> = (0..13).map(|_| rng.below(shape[axis]) as u32).collect();
        let out = index_select(&x, axis, &Array::from_u32(&g, &idx, &[13]).unwrap()).unwrap();
        let idx_us: Vec<usize> = idx.iter().map(|&i| i as usize).collect();
        assert_eq!(out.to_f64_vec().unwrap(), reference::index_select(&x64, shape, axis, &idx_us), "{shape:?}");
    }
}

#[test]
fn out_of_range_indices_are_nan_on_gpu_and_an_error_on_cpu() {
    let g = gpu();
    let x = Array::from_f32(&g, &[1.0, 2.0, 3.0, 4.0], &[2, 2]).unwrap();
    let out = index_select(&x, 0, &Array::from_u32(&g, &[1, 2], &[2]).unwrap()).unwrap().to_f32_vec().unwrap();
    assert_eq!(&out[..2], &[3.0, 4.0]);
    assert!(out[2..].iter().all(|v| v.is_nan()), "{out:?}");
    let cpu = Array::from_f32(&Device::Cpu, &[1.0, 2.0, 3.0, 4.0], &[2, 2]).unwrap();
    let err = index_select(&cpu, 0, &Array::from_u32(&Device::Cpu, &[1, 2], &[2]).unwrap()).unwrap_err();
    assert!(err.to_string().contains("index 2"), "{err}");
    let grad = Array::from_f32(&Device::Cpu, &[1.0; 4], &[2, 2]).unwrap();
    let idx = Array::from_u32(&Device::Cpu, &[0, 5], &[2]).unwrap();
    assert!(index_select_backward(&grad, &[2, 2], 0, &idx).is_err());
}

/// Indices drawn from a few hot rows so repeats are common, like tokens in text.
fn skewed_indices(rng: &mut Rng, n: usize, rows: usize) -> Vec<u32> {
    (0..n).map(|_| if rng.below(3) == 0 { rng.below(rows) } else { rng.below(rows.min(7)) } as u32).collect()
}

#[test]
fn index_select_backward_sums_repeated_indices() {
    let g = gpu();
    let mut rng = Rng::new(35);
    // rows needing 1, 2 and 3 radix passes; index counts off the 256 block; a middle axis
    let cases: [(&[usize], usize, usize); 5] =
        [(&[5, 4], 0, 1000), (&[300, 3], 0, 3001), (&[70_000, 2], 0, 700), (&[2, 37, 3], 1, 513), (&[4, 1], 0, 1)];
    for (full, axis, n) in cases {
        let idx = skewed_indices(&mut rng, n, full[axis]);
        let mut gshape = full.to_vec();
        gshape[axis] = n;
        let (grad, grad64) = random(&g, &mut rng, &gshape);
        let out = index_select_backward(&grad, full, axis, &Array::from_u32(&g, &idx, &[n]).unwrap()).unwrap();
        let idx_us: Vec<usize> = idx.iter().map(|&i| i as usize).collect();
        let want = reference::index_select_backward(&grad64, full, axis, &idx_us);
        let got = out.to_f64_vec().unwrap();
        assert_close(&format!("index_select_backward {full:?} axis {axis} n {n}"), &got, &want, F32_TOL);
        // deterministic: a second run is bit-identical
        let again = index_select_backward(&grad, full, axis, &Array::from_u32(&g, &idx, &[n]).unwrap()).unwrap();
        assert_eq!(again.to_f64_vec().unwrap(), got);
    }
}

#[test]
fn index_select_backward_on_gpu_drops_out_of_range_indices() {
    let g = gpu();
    let mut rng = Rng::new(36);
    let idx = [3u32, 9, 0, 3, u32::MAX, 4];
    let (grad, grad64) = random(&g, &mut rng, &[6, 2]);
    let out = index_select_backward(&grad, &[5, 2], 0, &Array::from_u32(&g, &idx, &[6]).unwrap()).unwrap();
    let kept: Vec<usize> = vec![0, 2, 3, 5];
    let kept_grad: Vec<f64> = kept.iter().flat_map(|&j| grad64[2 * j..2 * j + 2].to_vec()).collect();
    let kept_idx: Vec<usize> = kept.iter().map(|&j| idx[j] as usize).collect();
    let want = reference::index_select_backward(&kept_grad, &[5, 2], 0, &kept_idx);
    assert_close("dropped out-of-range", &out.to_f64_vec().unwrap(), &want, F32_TOL);
}

#[test]
fn empty_selections_and_gradients() {
    let g = gpu();
    let mut rng = Rng::new(37);
    let (x, _) = random(&g, &mut rng, &[4, 3]);
    let none = Array::from_u32(&g, &[], &[0]).unwrap();
    assert_eq!(index_select(&x, 0, &none).unwrap().shape(), &[0, 3]);
    let grad = Array::from_f32(&g, &[], &[0, 3]).unwrap();
    assert_eq!(index_select_backward(&grad, &[4, 3], 0, &none).unwrap().to_f64_vec().unwrap(), vec![0.0; 12]);
}

#[test]
fn cast_rounds_through_f16() {
    let mut rng = Rng::new(38);
    let v = rng.vec(1001);
    let cpu = cast(&Array::from_f32(&Device::Cpu, &v, &[7, 143]).unwrap(), DType::F16).unwrap();
    let halves: Vec<f64> = v.iter().map(|&x| half::f16::from_f32(x).to_f64()).collect();
    assert_eq!((cpu.dtype(), cpu.to_f64_vec().unwrap()), (DType::F16, halves.clone()));
    let g = gpu();
    let x = Array::from_f32(&g, &v, &[7, 143]).unwrap();
    if !g.gpu_context().unwrap().caps().f16 {
        // this adapter cannot run the f16 shader: the cast must say so, not misbehave
        assert!(matches!(cast(&x, DType::F16), Err(DeviceError::Unsupported { kernel: "cast", .. })));
        return;
    }
    let h = cast(&x, DType::F16).unwrap();
    assert_eq!(h.dtype(), DType::F16);
    assert_close("f32 -> f16", &h.to_f64_vec().unwrap(), &reference::round_f16(&f64s(&v)), F16_TOL);
    let back = cast(&h, DType::F32).unwrap();
    assert_eq!(back.dtype(), DType::F32);
    assert_eq!(back.to_f64_vec().unwrap(), h.to_f64_vec().unwrap(), "f16 -> f32 is exact");
}

#[test]
fn bad_arguments_are_errors_naming_the_kernel() {
    let g = gpu();
    let x = Array::from_f32(&g, &[1.0; 6], &[2, 3]).unwrap();
    let y = Array::from_f32(&g, &[1.0; 8], &[2, 4]).unwrap();
    let err = permute(&x, &[0, 0]).unwrap_err().to_string();
    assert!(err.contains("permute") && err.contains("[0, 0]"), "{err}");
    let err = concat(&[&x, &y], 0).unwrap_err().to_string();
    assert!(err.contains("concat") && err.contains("[2, 3]") && err.contains("[2, 4]"), "{err}");
    assert_eq!(concat(&[&x, &y], 1).unwrap().shape(), &[2, 7]);
    let err = narrow(&x, 1, 2, 2).unwrap_err().to_string();
    assert!(err.contains("narrow") && err.contains("[2, 3]"), "{err}");
    assert!(cast(&Array::from_u32(&g, &[1], &[1]).unwrap(), DType::F32).is_err());
}
