//! Parity: every elementwise kernel on the GPU against its f64 CPU twin, on random
//! nonzero inputs, with outputs poisoned first. Bound: f32, 1e-5 relative.

use ferrograd_device::kernels::elementwise::{
    binary, binary_scalar, reference, unary, unary_grad, BinaryOp, ScalarSide, UnaryOp,
};
use ferrograd_device::testing::{assert_close, gpu, Rng, F32_TOL};
use ferrograd_device::{Array, Device};

fn input(rng: &mut Rng, n: usize, positive: bool) -> Vec<f32> {
    if positive {
        rng.vec_positive(n)
    } else {
        rng.vec(n)
    }
}

#[test]
fn unary_ops_match_reference() {
    let g = gpu();
    let mut rng = Rng::new(1);
    // sizes that are not a multiple of the workgroup; 1000 runs four elements per thread
    for (n, shape) in [(1000, [10, 100]), (999, [9, 111])] {
        for op in UnaryOp::ALL {
            let x = input(&mut rng, n, op.needs_positive());
            let xg = Array::from_f32(&g, &x, &shape).unwrap();
            let got = unary(op, &xg).unwrap().to_f64_vec().unwrap();
            let x64: Vec<f64> = x.iter().map(|&v| v as f64).collect();
            assert_close(&format!("{op:?} {shape:?}"), &got, &reference::unary(op, &x64), F32_TOL);
        }
    }
}

#[test]
fn unary_grads_match_reference() {
    let g = gpu();
    let mut rng = Rng::new(2);
    // 776 runs four elements per thread, 777 one
    for n in [777, 776] {
        for op in UnaryOp::ALL {
            let x = input(&mut rng, n, op.needs_positive());
            let up = rng.vec(n);
            let xg = Array::from_f32(&g, &x, &[n]).unwrap();
            let yg = unary(op, &xg).unwrap();
            let gg = Array::from_f32(&g, &up, &[n]).unwrap();
            let got = unary_grad(op, &xg, &yg, &gg).unwrap().to_f64_vec().unwrap();
            let x64: Vec<f64> = x.iter().map(|&v| v as f64).collect();
            let y64 = reference::unary(op, &x64);
            let g64: Vec<f64> = up.iter().map(|&v| v as f64).collect();
            let want = reference::unary_grad(op, &x64, &y64, &g64);
            assert_close(&format!("{op:?} grad, {n} elements"), &got, &want, F32_TOL);
        }
    }
}

#[test]
fn binary_ops_broadcast_like_numpy() {
    let g = gpu();
    let mut rng = Rng::new(3);
    // the launcher collapses dimensions: a bias on NCHW becomes 3-D, all-ones shapes 1-D
    // equal shapes of a multiple of 4 elements run four per thread
    let cases: [(&[usize], &[usize]); 9] = [
        (&[7, 33], &[7, 33]),
        (&[4, 2, 33], &[4, 2, 33]),
        (&[7, 33], &[33]),
        (&[4, 1, 5], &[3, 1]),
        (&[1], &[2, 3, 4]),
        (&[2, 3, 1, 4], &[1, 3, 5, 1]),
        (&[2, 3, 4, 5], &[1, 3, 1, 1]),
        (&[1, 1], &[1]),
        (&[3, 1, 4, 6], &[3, 1, 1, 6]),
    ];
    for op in BinaryOp::ALL {
        for (sa, sb) in cases {
            let positive = op == BinaryOp::Pow;
            let a = input(&mut rng, sa.iter().product(), positive);
            let b = input(&mut rng, sb.iter().product(), false);
            let ag = Array::from_f32(&g, &a, sa).unwrap();
            let bg = Array::from_f32(&g, &b, sb).unwrap();
            let out = binary(op, &ag, &bg).unwrap();
            let cpu = binary(
                op,
                &Array::from_f32(&Device::Cpu, &a, sa).unwrap(),
                &Array::from_f32(&Device::Cpu, &b, sb).unwrap(),
            )
            .unwrap();
            assert_eq!(out.shape(), cpu.shape());
            assert_close(
                &format!("{op:?} {sa:?} {sb:?}"),
                &out.to_f64_vec().unwrap(),
                &cpu.to_f64_vec().unwrap(),
                F32_TOL,
            );
        }
    }
}

#[test]
fn binary_ops_with_a_scalar_on_either_side() {
    let g = gpu();
    let mut rng = Rng::new(4);
    let a = rng.vec_positive(513);
    let a64: Vec<f64> = a.iter().map(|&v| v as f64).collect();
    let ag = Array::from_f32(&g, &a, &[513]).unwrap();
    for op in BinaryOp::ALL {
        for side in [ScalarSide::Right, ScalarSide::Left] {
            let s = 0.75f32;
            let got = binary_scalar(op, &ag, s, side).unwrap().to_f64_vec().unwrap();
            assert_close(
                &format!("{op:?} {side:?}"),
                &got,
                &reference::binary_scalar(op, &a64, s as f64, side),
                F32_TOL,
            );
        }
    }
}

#[test]
fn mismatched_shapes_are_an_error_naming_the_kernel() {
    let g = gpu();
    let a = Array::from_f32(&g, &[1.0; 6], &[2, 3]).unwrap();
    let b = Array::from_f32(&g, &[1.0; 8], &[2, 4]).unwrap();
    let err = binary(BinaryOp::Add, &a, &b).unwrap_err().to_string();
    assert!(err.contains("add") && err.contains("[2, 3]") && err.contains("[2, 4]"), "{err}");
}

#[test]
fn empty_arrays_work() {
    let g = gpu();
    let a = Array::from_f32(&g, &[], &[0, 3]).unwrap();
    let y = unary(UnaryOp::Exp, &a).unwrap();
    assert_eq!(y.shape(), &[0, 3]);
    assert!(y.to_f32_vec().unwrap().is_empty());
    let b = Array::from_f32(&g, &[1.0, 2.0, 3.0], &[3]).unwrap();
    assert_eq!(binary(BinaryOp::Mul, &a, &b).unwrap().shape(), &[0, 3]);
}

#[test]
fn a_large_array_spans_a_two_dimensional_grid() {
    // more than 65535 workgroups of 256: exercises the folded grid (an odd count, so one
    // element per thread: four per thread would need 256 MiB, past one storage binding)
    let g = gpu();
    let n = 65535 * 256 + 1001;
    let x: Vec<f32> = (0..n).map(|i| (i % 1000) as f32 * 0.001 + 0.1).collect();
    let y = unary(UnaryOp::Neg, &Array::from_f32(&g, &x, &[n]).unwrap()).unwrap().to_f32_vec().unwrap();
    assert_eq!(y[n - 1], -x[n - 1]);
    assert_eq!(y[12345], -x[12345]);
}
