//! After a warm-up step, a full CNN training step (forward, backward, optimizer step, one
//! loss read) waits on the GPU at most once. The only test in this binary, so no other
//! test's work shows in the device counters.

use ferrograd_device::testing::gpu;
use ferrograd_graph::demo;
use ferrograd_graph::nn::Module;
use ferrograd_graph::optim::{Adam, AdamConfig};

#[test]
fn a_cnn_training_step_waits_at_most_once() {
    let g = gpu();
    let (x, y) = demo::cnn_batch(&g).unwrap();
    let model = demo::small_cnn(&g).unwrap();
    let mut opt = Adam::new(model.named_parameters(), AdamConfig::default());
    demo::cnn_step(&model, &mut opt, &x, &y).unwrap().item().unwrap(); // warm-up
    for _ in 0..2 {
        let before = g.stats();
        let loss = demo::cnn_step(&model, &mut opt, &x, &y).unwrap().item().unwrap();
        let d = g.stats() - before;
        assert!(loss.is_finite());
        assert!(d.waits <= 1, "a step waited {} times: {d:?}", d.waits);
        assert!(d.dispatches > 50, "the step should have run on the GPU: {d:?}");
    }
}
