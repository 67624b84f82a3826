//! Gradient checks of the elementwise, reduction and matmul ops.

mod common;

use common::{check, input, positive};
use ferrograd_device::kernels::elementwise::{BinaryOp, ScalarSide, UnaryOp};
use ferrograd_device::testing::Rng;
use ferrograd_graph::Tensor;

#[test]
fn unary_ops() {
    let mut rng = Rng::new(1);
    for op in UnaryOp::ALL {
        let x = if op.needs_positive() || op == UnaryOp::Recip {
            positive(&mut rng, &[3, 5])
        } else {
            input(&mut rng, &[3, 5])
        };
        check(&format!("{op:?}"), |t| t[0].unary(op), &[x]);
    }
}

#[test]
fn binary_ops_with_broadcasting() {
    let mut rng = Rng::new(2);
    let shapes: [(&[usize], &[usize]); 4] =
        [(&[2, 3], &[2, 3]), (&[2, 3], &[3]), (&[4, 1, 3], &[2, 1]), (&[1], &[2, 2])];
    for op in [BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul, BinaryOp::Div, BinaryOp::Max, BinaryOp::Min, BinaryOp::Pow]
    {
        for (sa, sb) in shapes {
            let positive_only = matches!(op, BinaryOp::Pow | BinaryOp::Div);
            let a = if positive_only { positive(&mut rng, sa) } else { input(&mut rng, sa) };
            let b = if positive_only { positive(&mut rng, sb) } else { input(&mut rng, sb) };
            check(&format!("{op:?} {sa:?} {sb:?}"), |t| t[0].binary(op, &t[1]), &[a, b]);
        }
    }
}

#[test]
fn scalar_ops() {
    let mut rng = Rng::new(3);
    for op in [BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul, BinaryOp::Div, BinaryOp::Pow, BinaryOp::Max, BinaryOp::Min]
    {
        for side in [ScalarSide::Right, ScalarSide::Left] {
            let x = positive(&mut rng, &[7]);
            check(&format!("{op:?} {side:?}"), |t| t[0].binary_scalar(op, 0.55, side), &[x]);
        }
    }
}

#[test]
fn reductions() {
    let mut rng = Rng::new(4);
    let x = input(&mut rng, &[2, 3, 4]);
    for dims in [&[][..], &[0], &[1], &[-1], &[0, 2]] {
        for keep in [false, true] {
            check(&format!("sum {dims:?}"), |t| t[0].sum(dims, keep), std::slice::from_ref(&x));
            check(&format!("mean {dims:?}"), |t| t[0].mean(dims, keep), std::slice::from_ref(&x));
            check(&format!("max {dims:?}"), |t| t[0].max(dims, keep), std::slice::from_ref(&x));
            check(&format!("min {dims:?}"), |t| t[0].min(dims, keep), std::slice::from_ref(&x));
        }
    }
    check("expand", |t| t[0].expand(&[2, 4, 3]), &[input(&mut rng, &[4, 1])]);
}

#[test]
fn matmul_variants() {
    let mut rng = Rng::new(5);
    for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
        let a = input(&mut rng, if ta { &[4, 3] } else { &[3, 4] });
        let b = input(&mut rng, if tb { &[5, 4] } else { &[4, 5] });
        check(&format!("matmul {ta} {tb}"), |t| t[0].matmul_t(&t[1], ta, tb), &[a, b]);
        // batched on both sides, and batched against a 2-D matrix on either side
        let a = input(&mut rng, if ta { &[2, 4, 3] } else { &[2, 3, 4] });
        let b = input(&mut rng, if tb { &[2, 5, 4] } else { &[2, 4, 5] });
        check(&format!("bmm {ta} {tb}"), |t| t[0].matmul_t(&t[1], ta, tb), &[a, b]);
        let a = input(&mut rng, if ta { &[2, 4, 3] } else { &[2, 3, 4] });
        let b = input(&mut rng, if tb { &[5, 4] } else { &[4, 5] });
        check(&format!("batched x 2-D {ta} {tb}"), |t| t[0].matmul_t(&t[1], ta, tb), &[a, b]);
        let a = input(&mut rng, if ta { &[4, 3] } else { &[3, 4] });
        let b = input(&mut rng, if tb { &[2, 5, 4] } else { &[2, 4, 5] });
        check(&format!("2-D x batched {ta} {tb}"), |t| t[0].matmul_t(&t[1], ta, tb), &[a, b]);
        // per group: one side's batch dims a suffix of the other's, on either side
        let a = input(&mut rng, if ta { &[2, 4, 3] } else { &[2, 3, 4] });
        let b = input(&mut rng, if tb { &[3, 2, 5, 4] } else { &[3, 2, 4, 5] });
        check(&format!("grouped x batched {ta} {tb}"), |t| t[0].matmul_t(&t[1], ta, tb), &[a, b]);
        let a = input(&mut rng, if ta { &[3, 2, 4, 3] } else { &[3, 2, 3, 4] });
        let b = input(&mut rng, if tb { &[2, 5, 4] } else { &[2, 4, 5] });
        check(&format!("batched x grouped {ta} {tb}"), |t| t[0].matmul_t(&t[1], ta, tb), &[a, b]);
    }
    let (x, w, b) = (input(&mut rng, &[2, 3, 4]), input(&mut rng, &[5, 4]), input(&mut rng, &[5]));
    check("linear", |t| t[0].linear(&t[1], Some(&t[2])), &[x, w, b]);
    // the fused activations, their gradients taken from the output; and no bias
    let (x, w, b) = (input(&mut rng, &[3, 4]), input(&mut rng, &[5, 4]), input(&mut rng, &[5]));
    for act in [UnaryOp::Relu, UnaryOp::LeakyRelu(0.2), UnaryOp::Tanh, UnaryOp::Sigmoid] {
        check(
            &format!("linear {act:?}"),
            |t| t[0].linear_act(&t[1], Some(&t[2]), Some(act)),
            &[x.clone(), w.clone(), b.clone()],
        );
    }
    check("linear no bias tanh", |t| t[0].linear_act(&t[1], None, Some(UnaryOp::Tanh)), &[x.clone(), w.clone()]);
    let err = Tensor::new(x).linear_act(&Tensor::new(w), None, Some(UnaryOp::Gelu)).unwrap_err().to_string();
    assert!(err.contains("linear") && err.contains("Gelu"), "{err}");
}
