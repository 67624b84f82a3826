//! Parity: reductions on the GPU against their f64 CPU twins, on random nonzero inputs,
//! outputs poisoned. Bound: f32, 1e-5 relative (tree summation keeps even 1e6-element sums
//! within it); argmax exactly.

use ferrograd_device::kernels::reduce::{argmax, reduce, reference, sum_to_shape, ReduceOp};
use ferrograd_device::testing::{assert_close, gpu, Rng, F32_TOL};
use ferrograd_device::{Array, DType, Device};

fn f64s(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

fn mask(ndim: usize, axes: &[usize]) -> Vec<bool> {
    (0..ndim).map(|d| axes.is_empty() || axes.contains(&d)).collect()
}

fn check(g: &Device, rng: &mut Rng, shape: &[usize], axes: &[usize]) {
    let x = rng.vec(shape.iter().product());
    let xg = Array::from_f32(g, &x, shape).unwrap();
    for op in ReduceOp::ALL {
        for keepdim in [false, true] {
            let out = reduce(op, &xg, axes, keepdim).unwrap();
            let want_shape: Vec<usize> = (0..shape.len())
                .filter_map(|d| match (axes.is_empty() || axes.contains(&d), keepdim) {
                    (false, _) => Some(shape[d]),
                    (true, true) => Some(1),
                    (true, false) => None,
                })
                .collect();
            assert_eq!(out.shape(), want_shape.as_slice(), "{op:?} {shape:?} {axes:?}");
            let want = reference::reduce(op, &f64s(&x), shape, &mask(shape.len(), axes));
            let what = format!("{op:?} {shape:?} axes {axes:?} keepdim {keepdim}");
            assert_close(&what, &out.to_f64_vec().unwrap(), &want, F32_TOL);
        }
    }
}

#[test]
fn reductions_over_any_axes_match_reference() {
    let g = gpu();
    let mut rng = Rng::new(1);
    let cases: [(&[usize], &[usize]); 20] = [
        (&[7, 33], &[0]),
        (&[7, 33], &[1]),
        (&[7, 33], &[]),
        (&[3, 5, 4, 6], &[0, 2, 3]),
        (&[3, 5, 4, 6], &[1, 3]),
        (&[3, 5, 4, 6], &[0, 3]),
        (&[2, 1, 3], &[0, 2]),
        // three reduced groups (the general offset path), per thread and per workgroup
        (&[2, 3, 4, 5, 6], &[0, 2, 4]),
        (&[4, 3, 5, 2, 7], &[0, 2, 4]),
        (&[5], &[0]),
        // one thread per output at 64 elements, a workgroup per output from 65 (on a CPU
        // adapter from 1025)
        (&[9, 64], &[1]),
        (&[9, 65], &[1]),
        // a workgroup per output, one chunk each
        (&[2, 300, 5], &[1]),
        // many outputs, strided reduction
        (&[70, 600], &[0]),
        // enough outputs for a thread each despite 130 elements per output (bias gradients)
        (&[130, 2100], &[0]),
        // on GPUs a workgroup per output walking vec4s: a convolution's bias gradient (two
        // reduced groups), one contiguous row, and the kept axis innermost (scalar)
        (&[5, 6, 12, 12], &[0, 2, 3]),
        (&[3, 68], &[1]),
        (&[4, 100, 3], &[0, 1]),
        // a workgroup per output on every adapter, one chunk each, in vec4s and not
        (&[520, 1028], &[1]),
        (&[520, 1027], &[1]),
    ];
    for (shape, axes) in cases {
        check(&g, &mut rng, shape, axes);
    }
}

#[test]
fn split_reductions_match_reference() {
    let g = gpu();
    let mut rng = Rng::new(2);
    // batch-norm statistics of [N, C, H, W], and a row long enough to split into chunks
    check(&g, &mut rng, &[8, 6, 33, 35], &[0, 2, 3]);
    check(&g, &mut rng, &[3, 20001], &[1]);
    // the same split in vec4s
    check(&g, &mut rng, &[8, 6, 32, 36], &[0, 2, 3]);
    check(&g, &mut rng, &[3, 20000], &[1]);
}

#[test]
fn a_full_reduction_of_a_million_elements_is_accurate() {
    let g = gpu();
    let mut rng = Rng::new(3);
    let n = 1 << 20;
    for (x, what) in [(rng.vec_positive(n), "positive"), (rng.vec(n), "mixed signs")] {
        let xg = Array::from_f32(&g, &x, &[1024, 1024]).unwrap();
        for op in ReduceOp::ALL {
            let got = reduce(op, &xg, &[], false).unwrap();
            assert_eq!(got.shape(), &[] as &[usize]);
            let want = reference::reduce(op, &f64s(&x), &[n], &[true]);
            assert_close(&format!("{op:?} of 2^20 {what}"), &got.to_f64_vec().unwrap(), &want, F32_TOL);
        }
    }
}

#[test]
fn argmax_takes_the_first_index_on_ties() {
    let g = gpu();
    let mut rng = Rng::new(4);
    let cases: [(&[usize], usize); 5] = [(&[6, 10], 1), (&[6, 10], 0), (&[3, 7, 5], 1), (&[4, 5000], 1), (&[1, 1], 0)];
    for (shape, axis) in cases {
        // few distinct values, so ties are common
        let x: Vec<f32> = (0..shape.iter().product()).map(|_| rng.below(4) as f32 - 1.5).collect();
        let xg = Array::from_f32(&g, &x, shape).unwrap();
        for keepdim in [false, true] {
            let out = argmax(&xg, axis, keepdim).unwrap();
            assert_eq!(out.dtype(), DType::U32);
            assert_eq!(out.shape().len(), shape.len() - usize::from(!keepdim));
            let want = reference::argmax(&f64s(&x), shape, axis);
            assert_eq!(out.to_f64_vec().unwrap(), want, "argmax {shape:?} axis {axis}");
        }
    }
    // the reference itself: first of the tied maxima
    assert_eq!(reference::argmax(&[1.0, 3.0, 2.0, 3.0], &[4], 0), vec![1.0]);
}

#[test]
fn sum_to_shape_undoes_broadcasting() {
    let g = gpu();
    let mut rng = Rng::new(5);
    let cases: [(&[usize], &[usize]); 6] = [
        (&[4, 3, 5], &[3, 1]),
        (&[2, 3, 4], &[1, 1]),
        (&[2, 3, 4], &[]),
        (&[5, 1, 4], &[4]),
        (&[1, 3], &[3]),
        (&[6, 7], &[6, 1]),
    ];
    for (from, to) in cases {
        let x = rng.vec(from.iter().product());
        let out = sum_to_shape(&Array::from_f32(&g, &x, from).unwrap(), to).unwrap();
        assert_eq!(out.shape(), to);
        let want = reference::sum_to_shape(&f64s(&x), from, to);
        assert_close(&format!("{from:?} -> {to:?}"), &out.to_f64_vec().unwrap(), &want, F32_TOL);
    }
    let x = Array::from_f32(&g, &[1.0; 6], &[2, 3]).unwrap();
    assert!(sum_to_shape(&x, &[2, 3]).unwrap().same_storage(&x));
    let err = sum_to_shape(&x, &[2]).unwrap_err().to_string();
    assert!(err.contains("sum_to_shape") && err.contains("[2]") && err.contains("[2, 3]"), "{err}");
}

#[test]
fn the_cpu_device_runs_the_reference() {
    let x = Array::from_f32(&Device::Cpu, &[1.0, 5.0, 3.0, -2.0, 4.0, 0.5], &[2, 3]).unwrap();
    let s = reduce(ReduceOp::Sum, &x, &[1], true).unwrap();
    assert_eq!(s.shape(), &[2, 1]);
    assert_eq!(s.to_f64_vec().unwrap(), vec![9.0, 2.5]);
    assert_eq!(reduce(ReduceOp::Max, &x, &[0], false).unwrap().to_f64_vec().unwrap(), vec![1.0, 5.0, 3.0]);
    assert_eq!(argmax(&x, 1, false).unwrap().to_u32_vec().unwrap(), vec![1, 1]);
}

#[test]
fn bad_axes_are_errors_naming_the_kernel_and_shape() {
    let g = gpu();
    let x = Array::from_f32(&g, &[1.0; 6], &[2, 3]).unwrap();
    for axes in [&[2][..], &[0, 0]] {
        let err = reduce(ReduceOp::Sum, &x, axes, false).unwrap_err().to_string();
        assert!(err.contains("reduce") && err.contains("[2, 3]"), "{err}");
    }
    assert!(argmax(&x, 2, false).unwrap_err().to_string().contains("argmax"));
    let empty = Array::from_f32(&g, &[], &[0, 3]).unwrap();
    assert!(reduce(ReduceOp::Max, &empty, &[0], false).is_err());
}

#[test]
fn empty_arrays_work() {
    let g = gpu();
    let x = Array::from_f32(&g, &[], &[0, 3]).unwrap();
    let s = reduce(ReduceOp::Sum, &x, &[0], false).unwrap();
    assert_eq!(s.to_f32_vec().unwrap(), vec![0.0; 3]);
    assert!(reduce(ReduceOp::Mean, &x, &[0], false).unwrap().to_f32_vec().unwrap().iter().all(|v| v.is_nan()));
    let t = reduce(ReduceOp::Max, &x, &[1], true).unwrap();
    assert_eq!(t.shape(), &[0, 1]);
    assert!(t.to_f32_vec().unwrap().is_empty());
}
