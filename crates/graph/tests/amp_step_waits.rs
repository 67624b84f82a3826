//! A mixed-precision training step (autocast forward, scaled backward, unscale and overflow
//! check, skipping SGD/Adam update, scale update, one loss read) waits on the GPU no more often
//! than the same f32 step: the scaler's state never leaves the device. The only test in this
//! binary, so no other test's work shows in the device counters.

use ferrograd_device::testing::gpu;
use ferrograd_graph::amp::{autocast, backward_and_step, GradScaler, Precision};
use ferrograd_graph::demo;
use ferrograd_graph::functional::cross_entropy;
use ferrograd_graph::nn::Module;
use ferrograd_graph::optim::{Adam, AdamConfig};

#[test]
fn a_mixed_precision_step_waits_no_more_than_an_f32_step() {
    let g = gpu();
    let (x, y) = demo::cnn_batch(&g).unwrap();
    let mut waits = Vec::new();
    for precision in [Precision::F32, Precision::Mixed] {
        let model = demo::small_cnn(&g).unwrap();
        let mut opt = Adam::new(model.named_parameters(), AdamConfig::default());
        let scaler = (precision == Precision::Mixed).then(|| GradScaler::new(&g).unwrap());
        let mut step = || {
            let loss = {
                let _amp = autocast(precision);
                cross_entropy(&model.forward(&x).unwrap(), &y, 0.0).unwrap()
            };
            backward_and_step(&loss, &mut opt, scaler.as_ref(), None).unwrap();
            loss.item().unwrap()
        };
        step(); // warm-up: compiles, makes the f16 weight copies
        let before = g.stats();
        let loss = step();
        let d = g.stats() - before;
        assert!(loss.is_finite(), "{precision:?}: loss {loss}");
        assert!(d.dispatches > 50, "{precision:?}: the step should have run on the GPU: {d:?}");
        waits.push(d.waits);
    }
    assert_eq!(waits[0], 1, "an f32 step with one loss read waits once");
    assert!(waits[1] <= waits[0], "mixed step waited {} times, f32 {}", waits[1], waits[0]);
}
