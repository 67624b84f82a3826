//! The shape of a training step on the GPU, from the device counters (deterministic, so these
//! are not timing tests): kernel launches and compute passes per step of LeNet-5 and CIFAR
//! ResNet-20, no pool misses and one wait in steady state, and the peak bytes live of a
//! ResNet-18 (32x32) step under a budget derived from what must live. One test, because the
//! counters are per process and tests in one binary run in parallel.

use ferrograd_device::testing::{gpu, Rng};
use ferrograd_device::{Device, Stats};
use ferrograd_graph::nn::Module;
use ferrograd_graph::ops::loss::cross_entropy;
use ferrograd_graph::optim::{Optimizer, Sgd, SgdConfig};
use ferrograd_graph::Tensor;
use ferrograd_models::registry;

/// Builds `name`, runs two warm-up steps of SGD with momentum at `batch`, then one measured
/// step ending in a loss read; returns that step's counters.
fn one_step(device: &Device, name: &str, batch: usize) -> Stats {
    let [c, h, w] = registry::info(name).unwrap().input_shape;
    let model = registry::build(name, 10, c, device, 0).unwrap();
    model.train();
    let mut opt =
        Sgd::new(model.named_parameters(), SgdConfig { lr: 0.01, momentum: 0.9, ..Default::default() }).unwrap();
    let mut rng = Rng::new(3);
    let x = Tensor::from_f32(device, &rng.vec(batch * c * h * w), &[batch, c, h, w]).unwrap();
    let labels: Vec<u32> = (0..batch as u32).map(|i| i % 10).collect();
    let y = Tensor::from_u32(device, &labels, &[batch]).unwrap();
    let mut step = || {
        let loss = cross_entropy(&model.forward(&x).unwrap(), &y, 0.0).unwrap();
        opt.zero_grad();
        loss.backward().unwrap();
        opt.step().unwrap();
        loss
    };
    for _ in 0..2 {
        step().item().unwrap();
    }
    device.reset_peak_bytes();
    let before = device.stats();
    assert!(step().item().unwrap().is_finite(), "{name}: loss not finite");
    device.stats() - before
}

/// Floats that must live at the peak of a ResNet-18 (CIFAR stem) step at `batch`: parameters,
/// gradients and momentum; per convolution the saved im2col columns (its weight gradient needs
/// them) and three activation-sized tensors (the conv output batch norm keeps, the batch-norm
/// output ReLU keeps, ReLU's output); and the largest workspace, a column buffer's gradient in
/// backward, twice over for the columns being folded back. Pool buckets round each up by at
/// most 12.5%.
fn resnet18_cifar_budget_bytes(batch: usize, params: usize) -> u64 {
    // (in channels, out channels, kernel, output side) of every convolution
    let mut convs = vec![(3, 64, 3, 32)];
    convs.extend([(64, 64, 3, 32); 4]);
    for (cin, cout, side) in [(64, 128, 16), (128, 256, 8), (256, 512, 4)] {
        convs.extend([
            (cin, cout, 3, side),
            (cout, cout, 3, side),
            (cin, cout, 1, side),
            (cout, cout, 3, side),
            (cout, cout, 3, side),
        ]);
    }
    let cols = |&(cin, _, k, side): &(usize, usize, usize, usize)| cin * k * k * side * side;
    let saved: usize = convs.iter().map(|c| cols(c) + 3 * c.1 * c.3 * c.3).sum();
    let workspace = 2 * convs.iter().map(cols).max().unwrap();
    let floats = 3 * params + batch * (saved + workspace + 3 * 32 * 32);
    (floats as f64 * 4.0 * 1.125) as u64
}

#[test]
fn launches_waits_pool_and_peak_memory_per_training_step() {
    let g = gpu();
    // poisoning fills every new output with NaN, one more launch each: count the real step
    g.gpu_context().unwrap().set_poison_outputs(false);
    let lenet = one_step(&g, "lenet5", 16);
    let resnet20 = one_step(&g, "resnet20", 4);
    println!("lenet5 b16: {lenet:?}\nresnet20 b4: {resnet20:?}");
    for (name, s) in [("lenet5", lenet), ("resnet20", resnet20)] {
        assert_eq!(s.waits, 1, "{name}: a step waits once, for the loss");
        assert_eq!(s.submits, 1, "{name}: one submit per step");
        assert_eq!(s.pool_misses, 0, "{name}: steady state allocates nothing new");
    }
    // the numbers of this commit (BENCHMARKS.md has them before and after): fused batch norm
    // (2 + 2 launches), weight gradients summed over the batch inside one GEMM, biases and
    // LeNet's ReLUs applied in the GEMMs' stores, the optimizer over all parameters in
    // multi-tensor launches (LeNet-5 10 -> 1; before them 50 and 326)
    assert_eq!((lenet.dispatches, lenet.compute_passes), (41, 13), "lenet5 launches / compute passes per step");
    assert_eq!(
        (resnet20.dispatches, resnet20.compute_passes),
        (273, 29),
        "resnet20 launches / compute passes per step"
    );

    let batch = 4;
    let params = registry::info("resnet18_cifar").unwrap().params;
    let r18 = one_step(&g, "resnet18_cifar", batch);
    let budget = resnet18_cifar_budget_bytes(batch, params);
    println!("resnet18_cifar b{batch}: peak {} MiB, budget {} MiB", r18.peak_bytes_live >> 20, budget >> 20);
    assert!(r18.peak_bytes_live <= budget, "peak {} > budget {budget} bytes: {r18:?}", r18.peak_bytes_live);
}
