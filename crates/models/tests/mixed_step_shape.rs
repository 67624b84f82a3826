//! The shape of a mixed-precision training step (autocast forward, loss scaling, SGD with
//! momentum: the step `bench train --precision mixed` and the trainer run), from the device
//! counters: activations between ops are stored in f16, so the peak bytes live of LeNet-5's and
//! ResNet-20's steps fall well below their f32 steps', and the launches per step stay below
//! those of the mixed step before f16 activation storage (which cast every im2col matrix).
//! One test, because the counters are per process and tests in one binary run in parallel.

use ferrograd_device::testing::{gpu, Rng};
use ferrograd_device::{DType, Device, Stats};
use ferrograd_graph::amp::{autocast, backward_and_step, GradScaler, Precision};
use ferrograd_graph::nn::Module;
use ferrograd_graph::ops::loss::cross_entropy;
use ferrograd_graph::optim::{Sgd, SgdConfig};
use ferrograd_graph::Tensor;
use ferrograd_models::registry;

/// Builds `name`, runs two warm-up steps at `batch` and `precision`, then one measured step
/// ending in a loss read; returns that step's counters and the logits' storage type.
fn one_step(device: &Device, name: &str, batch: usize, precision: Precision) -> (Stats, DType) {
    let [c, h, w] = registry::info(name).unwrap().input_shape;
    let model = registry::build(name, 10, c, device, 0).unwrap();
    model.train();
    let mut opt =
        Sgd::new(model.named_parameters(), SgdConfig { lr: 0.01, momentum: 0.9, ..Default::default() }).unwrap();
    let scaler = (precision == Precision::Mixed).then(|| GradScaler::new(device).unwrap());
    let mut rng = Rng::new(3);
    let x = Tensor::from_f32(device, &rng.vec(batch * c * h * w), &[batch, c, h, w]).unwrap();
    let labels: Vec<u32> = (0..batch as u32).map(|i| i % 10).collect();
    let y = Tensor::from_u32(device, &labels, &[batch]).unwrap();
    let mut step = || {
        let (loss, logits) = {
            let _amp = autocast(precision);
            let logits = model.forward(&x).unwrap();
            (cross_entropy(&logits, &y, 0.0).unwrap(), logits.dtype())
        };
        backward_and_step(&loss, &mut opt, scaler.as_ref(), None).unwrap();
        (loss, logits)
    };
    for _ in 0..2 {
        step().0.item().unwrap();
    }
    device.reset_peak_bytes();
    let before = device.stats();
    let (loss, logits) = step();
    assert!(loss.item().unwrap().is_finite(), "{name}: loss not finite");
    (device.stats() - before, logits)
}

#[test]
fn mixed_steps_keep_activations_in_f16() {
    let g = gpu();
    assert!(g.has_f16(), "mixed precision needs SHADER_F16 (lavapipe has it)");
    // poisoning fills every new output with NaN, one more launch each: count the real step
    g.gpu_context().unwrap().set_poison_outputs(false);
    // launches and peak MiB live per mixed step before f16 activations (`bench train
    // --precision mixed` at these batches): every convolution cast its f32 columns to f16 in
    // a launch of its own, and every activation between ops was f32
    let before = [("lenet5", 16, 71, 3.9), ("resnet20", 4, 426, 28.7)];
    for (name, batch, launches_before, peak_mib_before) in before {
        let (f32_step, f32_logits) = one_step(&g, name, batch, Precision::F32);
        let (mixed, logits) = one_step(&g, name, batch, Precision::Mixed);
        println!("{name} b{batch}: f32 {f32_step:?}\n{name} b{batch}: mixed {mixed:?}");
        assert_eq!((f32_logits, logits), (DType::F32, DType::F16), "{name}: logits stored as f32 / mixed");
        assert_eq!((mixed.waits, mixed.submits, mixed.pool_misses), (1, 1, 0), "{name}: one wait, no new buffers");
        assert!(
            mixed.dispatches < launches_before,
            "{name}: {} launches per mixed step, {launches_before} before f16 activations",
            mixed.dispatches
        );
        // f16 activations halve what the step keeps for backward; parameters, gradients and
        // momentum stay f32, so the whole falls by less than half
        let peak_mib = mixed.peak_bytes_live as f64 / (1 << 20) as f64;
        let ratio = mixed.peak_bytes_live as f64 / f32_step.peak_bytes_live as f64;
        println!("{name} b{batch}: mixed peak {peak_mib:.1} MiB ({ratio:.2} of f32's), {peak_mib_before} MiB before");
        assert!(ratio < 0.75, "{name}: mixed peak {peak_mib:.1} MiB is {ratio:.2} of f32's");
        assert!(peak_mib < peak_mib_before, "{name}: mixed peak {peak_mib:.1} MiB, {peak_mib_before} MiB before");
    }
}
