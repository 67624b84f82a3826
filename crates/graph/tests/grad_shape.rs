//! Gradient checks of the shape, join/slice and softmax ops.

mod common;

use common::{check, indices, input};
use ferrograd_device::testing::Rng;
use ferrograd_graph::Tensor;

#[test]
fn shape_ops() {
    let mut rng = Rng::new(6);
    let x = input(&mut rng, &[2, 3, 4]);
    check("reshape", |t| t[0].reshape(&[4, -1])?.mul(&t[0].reshape(&[4, 6])?), std::slice::from_ref(&x));
    check("flatten", |t| t[0].flatten(1, -1), std::slice::from_ref(&x));
    check("unsqueeze", |t| t[0].unsqueeze(1)?.squeeze(1), std::slice::from_ref(&x));
    check("permute", |t| t[0].permute(&[2, 0, 1]), std::slice::from_ref(&x));
    check("transpose", |t| t[0].transpose(0, -1), &[x]);
}

#[test]
fn join_and_slice_ops() {
    let mut rng = Rng::new(7);
    let (a, b) = (input(&mut rng, &[2, 3, 2]), input(&mut rng, &[2, 1, 2]));
    check("cat", |t| Tensor::cat(&[&t[0], &t[1]], 1), &[a.clone(), b]);
    let c = input(&mut rng, &[2, 3, 2]);
    check("stack", |t| Tensor::stack(&[&t[0], &t[1]], 1), &[a.clone(), c]);
    check("narrow", |t| t[0].narrow(1, 1, 2), std::slice::from_ref(&a));
    check("select", |t| t[0].select(-1, 1), std::slice::from_ref(&a));
    // split pieces recombined with different weights so each piece's gradient is distinct
    check(
        "split",
        |t| {
            let parts = t[0].split(2, 1)?;
            parts[0].sum(&[1], false)?.sub(&parts[1].mul_scalar(3.0)?.sum(&[1], false)?)
        },
        std::slice::from_ref(&a),
    );
    check("chunk", |t| t[0].chunk(2, 0)?[1].mul_scalar(2.0), std::slice::from_ref(&a));
    // repeated indices: the backward must sum their gradients
    let idx = indices(&mut rng, &[5], 3);
    check("index_select", |t| t[0].index_select(1, &t[1]), &[a, idx]);
}

#[test]
fn softmax_ops() {
    let mut rng = Rng::new(8);
    let x = input(&mut rng, &[3, 4, 5]);
    for dim in [-1, 1, 0] {
        check(&format!("softmax {dim}"), |t| t[0].softmax(dim), std::slice::from_ref(&x));
        check(&format!("log_softmax {dim}"), |t| t[0].log_softmax(dim), std::slice::from_ref(&x));
    }
}
