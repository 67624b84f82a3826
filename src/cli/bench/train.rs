//! `ferrograd bench train --model M --batch B [--steps S]`: steady-state training throughput
//! of a zoo model on synthetic data already on the device, and what one step does to the GPU
//! (dispatches, compute passes, submits, waits, bytes handed out, peak bytes live). A step is
//! forward, cross-entropy, backward and SGD with momentum 0.9, as in
//! `benches/pytorch/train_throughput.py`, which prints the same rows for PyTorch (`--compare`
//! joins the two). `--precision mixed` runs the forward pass under autocast with a loss
//! scaler, as `trainer::fit` does, and prints the same rows. `--profile` first times every
//! dispatch of one step.

use super::{median_wall_ms, print_profile, BenchArgs};
use anyhow::{bail, Context};
use ferrograd_device::gpu::ProfileSummary;
use ferrograd_device::testing::Rng;
use ferrograd_device::{Device, Stats};
use ferrograd_graph::amp::{autocast, backward_and_step, GradScaler, Precision};
use ferrograd_graph::functional::cross_entropy;
use ferrograd_graph::nn::Module;
use ferrograd_graph::optim::{Sgd, SgdConfig};
use ferrograd_graph::Tensor;

/// Short names for the benchmark's four workloads (32x32 inputs); any zoo name also works.
const ALIASES: [(&str, &str); 2] = [("resnet18", "resnet18_cifar"), ("vgg16_bn", "vgg16_bn_cifar")];

pub fn run(args: &BenchArgs) -> anyhow::Result<()> {
    let Some(asked) = args.model.as_deref() else {
        bail!("bench train needs --model (lenet5, resnet20, resnet18, vgg16_bn, or any name from `ferrograd models`)")
    };
    let name = ALIASES.iter().find(|(a, _)| *a == asked).map_or(asked, |(_, full)| full);
    let info = ferrograd_models::registry::info(name)
        .with_context(|| format!("unknown model {asked:?}; `ferrograd models` lists them"))?;
    let device = Device::gpu()?;
    let g = device.gpu_context().context("no GPU context")?.clone();
    let cpu_adapter = g.is_cpu_adapter();
    let batch = args.batch.unwrap_or(128).max(1);
    let steps = args.steps.unwrap_or(if cpu_adapter { 1 } else { 20 }).max(1);
    let reps = args.reps.unwrap_or(if cpu_adapter { 3 } else { 5 }).max(1);
    let warmup = args.warmup.unwrap_or(2).max(1);
    let classes = 10;
    let [c, h, w] = info.input_shape;

    let model = ferrograd_models::registry::build(name, classes, c, &device, 0)?;
    model.train();
    let mut opt = Sgd::new(model.named_parameters(), SgdConfig { lr: 0.01, momentum: 0.9, ..Default::default() })?;
    let mut rng = Rng::new(7);
    let x = Tensor::from_f32(&device, &rng.vec(batch * c * h * w), &[batch, c, h, w])?;
    let labels: Vec<u32> = (0..batch).map(|i| (i * 7 % classes) as u32).collect();
    let y = Tensor::from_u32(&device, &labels, &[batch])?;
    let scaler = match args.precision {
        Precision::F32 => None,
        Precision::Mixed => Some(GradScaler::new(&device)?),
    };
    let step = |opt: &mut Sgd| -> anyhow::Result<()> {
        let loss = {
            let _amp = autocast(args.precision);
            cross_entropy(&model.forward(&x)?, &y, 0.0)?
        };
        backward_and_step(&loss, opt, scaler.as_ref(), None)?;
        Ok(())
    };

    // Warm-up: compiles the pipelines and fills the pool; then one step's counters.
    for _ in 0..warmup {
        step(&mut opt)?;
    }
    g.sync()?;
    device.reset_peak_bytes();
    let before = device.stats();
    step(&mut opt)?;
    g.sync()?;
    let per_step = device.stats() - before;

    if args.profile {
        g.set_profiling(true)?;
        let result = (|| -> anyhow::Result<ProfileSummary> {
            g.take_profile()?;
            step(&mut opt)?;
            Ok(ProfileSummary::of(&g.take_profile()?))
        })();
        g.set_profiling(false)?;
        print_profile(&result?, 1);
    }
    let opt = std::cell::RefCell::new(opt);
    let ms = median_wall_ms(&g, reps, || (0..steps).try_for_each(|_| step(&mut opt.borrow_mut())))? / steps as f64;
    println!(
        "adapter: {} ({:?}); SGD momentum 0.9, synthetic data on the device",
        g.adapter_name(),
        g.adapter_info().backend
    );
    println!("timing: wall clock, median of {reps} runs of {steps} steps after {warmup} warm-up steps");
    print_rows(&format!("{asked}.b{batch}.{}", args.precision.name()), batch, ms, &per_step);
    Ok(())
}

/// The table `benches/pytorch/train_throughput.py --compare` reads: one line per figure.
fn print_rows(workload: &str, batch: usize, ms: f64, s: &Stats) {
    let mib = |b: u64| b as f64 / (1u64 << 20) as f64;
    println!("{workload} images_per_s {:.1}", batch as f64 / (ms * 1e-3));
    println!("{workload} ms_per_step {ms:.2}");
    println!("{workload} dispatches {}", s.dispatches);
    println!("{workload} compute_passes {}", s.compute_passes);
    println!("{workload} submits {}", s.submits);
    println!("{workload} waits {}", s.waits);
    println!("{workload} pool_misses {}", s.pool_misses);
    println!("{workload} allocated_MiB {:.1}", mib(s.bytes_allocated));
    println!("{workload} peak_live_MiB {:.1}", mib(s.peak_bytes_live));
}
