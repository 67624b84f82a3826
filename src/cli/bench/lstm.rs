//! `ferrograd bench lstm`: the forward and the forward+backward time of a stacked LSTM
//! (`nn::Lstm`, batch-first, input size = hidden size) on random input, the loss being the sum
//! of its outputs. `benches/pytorch/lstm.py` times `torch.nn.LSTM` (cuDNN on CUDA) on the same
//! workload and prints the same line; `--compare` prints the ratio.

use super::{median_wall_ms, BenchArgs};
use anyhow::Context;
use ferrograd_device::Device;
use ferrograd_graph::nn::recurrent::{Lstm, RecurrentConfig};
use ferrograd_graph::nn::Module;
use ferrograd_graph::{manual_seed, no_grad, Tensor};

/// The workload: 2 layers of 512 units, 64 steps, batch 64.
const GPU_DEFAULT: (usize, usize, usize, usize) = (2, 512, 64, 64);
/// What a CPU adapter finishes in seconds: 2 layers of 128 units, 32 steps, batch 64.
const CPU_DEFAULT: (usize, usize, usize, usize) = (2, 128, 32, 64);

pub fn run(args: &BenchArgs) -> anyhow::Result<()> {
    let device = Device::gpu()?;
    let g = device.gpu_context().context("no GPU context")?.clone();
    let cpu_adapter = g.is_cpu_adapter();
    let (layers, hidden, steps, batch) = if cpu_adapter { CPU_DEFAULT } else { GPU_DEFAULT };
    let layers = args.layers.unwrap_or(layers).max(1);
    let hidden = args.hidden.unwrap_or(hidden).max(1);
    let steps = args.seq_len.unwrap_or(steps).max(1);
    let batch = args.batch.unwrap_or(batch).max(1);
    let reps = args.reps.unwrap_or(if cpu_adapter { 3 } else { 20 }).max(1);
    if cpu_adapter {
        println!("(CPU adapter: default workload {CPU_DEFAULT:?} as (layers, hidden, steps, batch), {reps} runs)");
    }

    manual_seed(0);
    let lstm = Lstm::new(&device, RecurrentConfig::new(hidden, hidden).num_layers(layers).batch_first(true))?;
    let x = Tensor::randn(&device, &[batch, steps, hidden], 0.0, 1.0)?;
    let forward = || -> anyhow::Result<()> {
        let _guard = no_grad();
        lstm.forward_with(&x, None)?.0.sum_all()?;
        Ok(())
    };
    let forward_backward = || -> anyhow::Result<()> {
        lstm.zero_grad();
        lstm.forward_with(&x, None)?.0.sum_all()?.backward()?;
        Ok(())
    };
    let forward_ms = median_wall_ms(&g, reps, forward)?;
    let forward_backward_ms = median_wall_ms(&g, reps, forward_backward)?;

    // multiply-adds of the input and recurrent projections (4 gates), forward only
    let gflop = 2.0 * 2.0 * (4 * hidden * hidden * batch * steps * layers) as f64 / 1e9;
    println!("{:<26} {:>12} {:>20} {:>14}", "workload", "forward_ms", "forward_backward_ms", "forward_GFLOPs");
    println!(
        "{:<26} {forward_ms:>12.3} {forward_backward_ms:>20.3} {:>14.1}",
        format!("lstm.l{layers}.h{hidden}.t{steps}.b{batch}"),
        gflop / (forward_ms * 1e-3)
    );
    Ok(())
}
