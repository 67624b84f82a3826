//! End to end on the GPU (lavapipe): the examples' training runs reach their targets.

use ferrograd_device::testing::gpu;
use ferrograd_graph::demo;

#[test]
fn mlp_learns_two_spirals() {
    let out = demo::train_spirals(&gpu(), 100, 2000, 0.99).unwrap();
    assert!(out.accuracy >= 0.99, "{out:?}");
}

#[test]
fn cnn_overfits_one_batch() {
    let (steps, loss) = demo::overfit_cnn(&gpu(), 200, 0.01).unwrap();
    assert!(loss < 0.01, "loss {loss} after {steps} steps");
}
