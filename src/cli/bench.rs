//! `ferrograd bench matmul`: median time and GFLOP/s of square and convolution-shaped GEMMs
//! in f32 and mixed precision, plus one copy-bandwidth line. `benches/pytorch/matmul.py`
//! prints the same table from PyTorch (see `benches/README.md`).
//! `ferrograd bench lenet-kernels`: the kernels of one LeNet-5 training step (see `lenet`).
//! `ferrograd bench lstm`: a stacked LSTM's forward and backward time (see `lstm`).
//! `ferrograd bench train`: a zoo model's training throughput and per-step GPU counters (see `train`).
//! `ferrograd bench memory`: pool bytes and RSS after each epoch of a training run (see `memory`).

mod lenet;
mod lstm;
mod memory;
mod train;

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use ferrograd_device::gpu::{GpuContext, GpuTimer, ProfileSummary};
use ferrograd_device::kernels::matmul::{
    effective_precision, matmul_batch_sum_using, matmul_using, pick_variant, Precision, Problem, Variant,
};
use ferrograd_device::testing::Rng;
use ferrograd_device::{Array, DType, Device};
use std::time::Instant;

#[derive(Args)]
pub struct BenchArgs {
    /// What to benchmark
    #[arg(value_enum)]
    pub what: Workload,
    /// Square sizes (default 512,1024,2048,4096; at most 1024 on a CPU adapter); with --sizes
    /// only those run, unless --conv asks for the convolution-shaped problems too
    #[arg(long, value_delimiter = ',')]
    pub sizes: Vec<usize>,
    /// matmul: also run the convolution-shaped GEMMs when --sizes is given (always run without it)
    #[arg(long)]
    pub conv: bool,
    /// matmul: also run a training step's convolution GEMMs (forward, weight gradient, input
    /// gradient, as training lays them out) when --sizes is given (always run without it)
    #[arg(long)]
    pub training: bool,
    /// Timed repetitions per problem; the median is printed (default 10, 2 on a CPU adapter)
    #[arg(long)]
    pub reps: Option<usize>,
    /// Images per batch: in matmul's convolution-shaped problems (default 32, 1 on a CPU
    /// adapter) and its training GEMMs (default 128, 16 on a CPU adapter); of the LeNet-5 step and of `train` (default 128); sequences in the LSTM's
    /// batch (default 64)
    #[arg(long)]
    pub batch: Option<usize>,
    /// train: the model (lenet5, resnet20, resnet18, vgg16_bn, or any name from `ferrograd models`)
    #[arg(long)]
    pub model: Option<String>,
    /// train: timed steps per run (default 20, 2 on a CPU adapter)
    #[arg(long)]
    pub steps: Option<usize>,
    /// train: untimed steps before the counted one (default 2: the first compiles and fills
    /// the pool, the second shows the steady state; 1 saves minutes on huge CPU-adapter steps)
    #[arg(long)]
    pub warmup: Option<usize>,
    /// memory: epochs to train (default 10)
    #[arg(long)]
    pub epochs: Option<usize>,
    /// memory: training images (default 320)
    #[arg(long)]
    pub limit: Option<usize>,
    /// lstm: stacked layers (default 2)
    #[arg(long)]
    pub layers: Option<usize>,
    /// lstm: hidden size, also the input size (default 512, 128 on a CPU adapter)
    #[arg(long)]
    pub hidden: Option<usize>,
    /// lstm: time steps (default 64, 32 on a CPU adapter)
    #[arg(long)]
    pub seq_len: Option<usize>,
    /// Force this f32 matmul kernel instead of the one chosen by shape
    #[arg(long, value_enum)]
    pub variant: Option<VariantArg>,
    /// train: f32, or mixed (autocast products, f32 master weights, dynamic loss scaling)
    #[arg(long, default_value = "f32", value_parser = super::train::parse_precision)]
    pub precision: ferrograd_graph::amp::Precision,
    /// lenet-kernels, train: time every dispatch of whole steps with timestamp queries and report
    /// GPU time per kernel family and the idle share
    #[arg(long)]
    pub profile: bool,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Workload {
    /// Square and convolution-shaped GEMMs, and copy bandwidth
    Matmul,
    /// Every kernel of one LeNet-5 training step, per family, and the projected epoch time
    LenetKernels,
    /// Forward and forward+backward time of a stacked LSTM (torch.nn.LSTM's workload)
    Lstm,
    /// Training throughput of a zoo model and what one step does on the GPU
    Train,
    /// Pool bytes and process RSS after each epoch of a LeNet-5 run on MNIST
    Memory,
}

/// The f32 matmul kernels that can be forced.
#[derive(Clone, Copy, ValueEnum)]
pub enum VariantArg {
    Tile64,
    Tile128,
    Tile128Vec4,
    Rows8,
}

impl From<VariantArg> for Variant {
    fn from(v: VariantArg) -> Variant {
        match v {
            VariantArg::Tile64 => Variant::Tile64,
            VariantArg::Tile128 => Variant::Tile128,
            VariantArg::Tile128Vec4 => Variant::Tile128Vec4,
            VariantArg::Rows8 => Variant::Rows8,
        }
    }
}

/// One GEMM C[M, N] = A[M, K] · B[K, N], laid out as `kind` says.
struct Gemm {
    label: String,
    m: usize,
    n: usize,
    k: usize,
    kind: GemmKind,
}

/// How a GEMM's operands are laid out: one plain product, or one of a convolution's three
/// products in training as `Tensor::conv2d` runs them on a batch (the weight shared by the
/// batch, per-image columns `[batch, rows, pixels]`).
#[derive(Clone, Copy)]
enum GemmKind {
    Plain,
    /// `weight [O, R] · cols [b, R, P]`
    ConvForward {
        batch: usize,
    },
    /// `Σ_b grad[b] [O, P] · cols[b]^T`: batch and pixels in K
    ConvWeightGrad {
        batch: usize,
    },
    /// `weight^T · grad [b, O, P]`: the columns' gradient, before col2im
    ConvInputGrad {
        batch: usize,
    },
}

impl Gemm {
    fn plain(label: String, m: usize, n: usize, k: usize) -> Gemm {
        Gemm { label, m, n, k, kind: GemmKind::Plain }
    }

    /// The shapes of A and B, the transposes, and whether the batch is summed.
    fn layout(&self) -> (Vec<usize>, Vec<usize>, bool, bool, bool) {
        let (m, n, k) = (self.m, self.n, self.k);
        match self.kind {
            GemmKind::Plain => (vec![m, k], vec![k, n], false, false, false),
            GemmKind::ConvForward { batch } => (vec![m, k], vec![batch, k, n / batch], false, false, false),
            GemmKind::ConvWeightGrad { batch } => {
                (vec![batch, m, k / batch], vec![batch, n, k / batch], false, true, true)
            }
            GemmKind::ConvInputGrad { batch } => (vec![k, m], vec![batch, k, n / batch], true, false, false),
        }
    }

    /// Random operands and the call that multiplies them as this GEMM's kind does.
    fn prepare(
        &self,
        device: &Device,
        rng: &mut Rng,
    ) -> anyhow::Result<impl Fn(Precision, Option<Variant>) -> ferrograd_device::Result<()>> {
        let (sa, sb, ta, tb, sum) = self.layout();
        let a = Array::from_f32(device, &rng.vec(sa.iter().product()), &sa)?;
        let b = Array::from_f32(device, &rng.vec(sb.iter().product()), &sb)?;
        Ok(move |precision, variant| {
            if sum {
                matmul_batch_sum_using(&a, &b, ta, tb, precision, variant).map(drop)
            } else {
                matmul_using(&a, &b, ta, tb, precision, variant).map(drop)
            }
        })
    }

    /// The problem the kernel chooser sees for this GEMM.
    fn problem(&self) -> anyhow::Result<Problem> {
        let (sa, sb, ta, tb, _) = self.layout();
        Ok(Problem::new(&sa, &sb, ta, tb)?)
    }
}

/// The three GEMMs of a training step's convolutions, at `batch` images, as training runs
/// them (see [`GemmKind`]); the same M, N, K as a plain GEMM in benches/pytorch/matmul.py.
fn training_gemms(batch: usize) -> Vec<Gemm> {
    let layer = |label: &str, cout: usize, cin: usize, kernel: usize, out_hw: usize| {
        let (rows, pixels) = (cin * kernel * kernel, out_hw * out_hw * batch);
        [
            Gemm {
                label: format!("{label}.fwd.b{batch}"),
                m: cout,
                n: pixels,
                k: rows,
                kind: GemmKind::ConvForward { batch },
            },
            Gemm {
                label: format!("{label}.wgrad.b{batch}"),
                m: cout,
                n: rows,
                k: pixels,
                kind: GemmKind::ConvWeightGrad { batch },
            },
            Gemm {
                label: format!("{label}.dgrad.b{batch}"),
                m: rows,
                n: pixels,
                k: cout,
                kind: GemmKind::ConvInputGrad { batch },
            },
        ]
    };
    [
        layer("lenet5.conv2", 16, 6, 5, 10),
        layer("resnet20.layer2", 32, 32, 3, 16),
        layer("resnet18c.layer1", 64, 64, 3, 32),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// im2col GEMMs of well-known layers: M = output channels, K = input channels x kernel
/// area, N = output pixels x batch. Keep in step with benches/pytorch/matmul.py.
fn conv_gemms(batch: usize) -> Vec<Gemm> {
    let conv = |label: &str, cout: usize, cin: usize, kernel: usize, out_hw: usize| {
        Gemm::plain(format!("{label}.b{batch}"), cout, out_hw * out_hw * batch, cin * kernel * kernel)
    };
    vec![
        conv("resnet18.conv1", 64, 3, 7, 112),
        conv("resnet18.layer1", 64, 64, 3, 56),
        conv("resnet18.layer4", 512, 512, 3, 7),
        conv("vgg16.conv4_2", 512, 512, 3, 28),
    ]
}

pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    match args.what {
        Workload::Matmul => matmul(args),
        Workload::LenetKernels => lenet::run(&args),
        Workload::Lstm => lstm::run(&args),
        Workload::Train => train::run(&args),
        Workload::Memory => memory::run(&args),
    }
}

fn matmul(args: BenchArgs) -> anyhow::Result<()> {
    let device = Device::gpu()?;
    let g = device.gpu_context().context("no GPU context")?.clone();
    let cpu_adapter = g.is_cpu_adapter();
    let reps = args.reps.unwrap_or(if cpu_adapter { 2 } else { 10 }).max(1);
    let batch = args.batch.unwrap_or(if cpu_adapter { 1 } else { 32 }).max(1);
    let train_batch = args.batch.unwrap_or(if cpu_adapter { 16 } else { 128 }).max(1);
    let sizes = if !args.sizes.is_empty() {
        args.sizes.clone()
    } else if cpu_adapter {
        vec![512, 1024]
    } else {
        vec![512, 1024, 2048, 4096]
    };
    let timer = GpuTimer::new(&g);
    let mixed = effective_precision(g.caps(), Precision::Mixed) == Precision::Mixed;
    println!("adapter: {} ({:?})", g.adapter_name(), g.adapter_info().backend);
    println!(
        "timing: {}; median of {reps} runs after a warm-up; mixed = f16 inputs (cast from f32 inside \
         each call), f32 accumulation",
        if timer.is_some() {
            "GPU timestamp queries around each batch of calls"
        } else {
            "wall clock around submit + wait"
        }
    );
    if cpu_adapter && args.sizes.is_empty() {
        println!(
            "CPU adapter: default square sizes capped at 1024, convolution batch {batch}, training batch {train_batch}"
        );
    }
    if !mixed {
        println!("mixed: not available (adapter has no SHADER_F16)");
    }
    println!(
        "\n{:<24} {:>6} {:>8} {:>6} {:>10} {:>11} {:>10} {:>11}  kernels",
        "problem", "M", "N", "K", "f32_ms", "f32_GFLOPs", "mixed_ms", "mixed_GFLOPs"
    );
    let square = sizes.iter().map(|&s| Gemm::plain(format!("square{s}"), s, s, s));
    let mut rng = Rng::new(1234);
    let conv = if args.sizes.is_empty() || args.conv { conv_gemms(batch) } else { vec![] };
    let training = if args.sizes.is_empty() || args.training { training_gemms(train_batch) } else { vec![] };
    for gemm in square.chain(conv).chain(training) {
        let call = gemm.prepare(&device, &mut rng)?;
        let problem = gemm.problem()?;
        let mut cells = vec![];
        let mut kernels = vec![];
        for precision in [Precision::F32, Precision::Mixed] {
            if precision == Precision::Mixed && !mixed {
                cells.push("-".to_string());
                cells.push("-".to_string());
                continue;
            }
            let forced = if precision == Precision::F32 { args.variant.map(Variant::from) } else { None };
            let ms = median_ms(&g, timer.as_ref(), reps, || call(precision, forced))?;
            cells.push(format!("{ms:.3}"));
            cells.push(format!("{:.1}", problem.flops() / (ms * 1e-3) / 1e9));
            kernels.push(format!("{:?}", forced.unwrap_or_else(|| pick_variant(&g, precision, &problem))));
        }
        println!(
            "{:<24} {:>6} {:>8} {:>6} {:>10} {:>11} {:>10} {:>11}  {}",
            gemm.label,
            gemm.m,
            gemm.n,
            gemm.k,
            cells[0],
            cells[1],
            cells[2],
            cells[3],
            kernels.join("/")
        );
    }
    copy_bandwidth(&device, &g, timer.as_ref(), reps, cpu_adapter)
}

/// Median milliseconds per call. Each timed run records several calls back to back (enough
/// for about 20 ms, judged from the warm-up) and divides.
fn median_ms(
    g: &GpuContext,
    timer: Option<&GpuTimer>,
    reps: usize,
    call: impl Fn() -> ferrograd_device::Result<()>,
) -> anyhow::Result<f64> {
    let run = |calls: usize| -> anyhow::Result<f64> {
        let record = || (0..calls).try_for_each(|_| call());
        let ms = match timer {
            Some(t) => t.time(g, record)?,
            None => {
                g.sync()?;
                let t0 = Instant::now();
                record()?;
                g.sync()?;
                t0.elapsed().as_secs_f64() * 1e3
            }
        };
        Ok(ms / calls as f64)
    };
    let warm = run(1)?;
    let calls = ((20.0 / warm.max(1e-3)) as usize).clamp(1, 100);
    let mut times = (0..reps).map(|_| run(calls)).collect::<anyhow::Result<Vec<f64>>>()?;
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

/// Median wall-clock milliseconds of `call` with the GPU drained before and after, after one
/// warm-up call (which also compiles the pipelines).
fn median_wall_ms(g: &GpuContext, reps: usize, call: impl Fn() -> anyhow::Result<()>) -> anyhow::Result<f64> {
    call()?;
    let mut times = Vec::with_capacity(reps);
    for _ in 0..reps {
        g.sync()?;
        let t0 = Instant::now();
        call()?;
        g.sync()?;
        times.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

/// GPU time per kernel family and per kernel of a profile taken over `reps` steps.
fn print_profile(s: &ProfileSummary, reps: usize) {
    let per = |ms: f64| ms / reps as f64;
    println!("\nGPU time per step (per-dispatch timestamps, each dispatch in its own pass; {reps} steps):");
    println!("{:<28} {:>9} {:>6} {:>10}", "kernel family", "ms", "%", "dispatches");
    for l in &s.families {
        println!("{:<28} {:>9.3} {:>5.1}% {:>10}", l.name, per(l.ms), 100.0 * l.ms / s.busy_ms, l.dispatches / reps);
    }
    println!("\n{:<28} {:>9} {:>6} {:>10}", "kernel", "ms", "%", "dispatches");
    for l in &s.kernels {
        println!("{:<28} {:>9.3} {:>5.1}% {:>10}", l.name, per(l.ms), 100.0 * l.ms / s.busy_ms, l.dispatches / reps);
    }
    println!(
        "\nbusy {:.3} ms per step, span {:.3} ms per step: GPU idle {:.1}% of the span (recording, submits, waits)",
        per(s.busy_ms),
        per(s.span_ms),
        100.0 * s.idle_share()
    );
}

/// One line: buffer-to-buffer copy bandwidth (bytes read + written per second).
fn copy_bandwidth(
    device: &Device,
    g: &GpuContext,
    timer: Option<&GpuTimer>,
    reps: usize,
    cpu_adapter: bool,
) -> anyhow::Result<()> {
    let limit = g.caps().max_storage_binding.min(g.caps().max_buffer);
    let mib = if cpu_adapter { 64 } else { 256 }.min(limit >> 20);
    if mib == 0 {
        bail!("copy bandwidth: the adapter's buffer limit is below 1 MiB");
    }
    let bytes = (mib << 20) as usize;
    let src = Array::empty(device, &[bytes / 4], DType::F32, "bench copy")?;
    let dst = Array::empty(device, &[bytes / 4], DType::F32, "bench copy")?;
    let (s, d) = (src.expect_gpu("bench copy")?, dst.expect_gpu("bench copy")?);
    let ms = median_ms(g, timer, reps, || {
        g.copy(s, 0, d, 0, bytes as u64);
        Ok(())
    })?;
    println!(
        "\ncopy {mib} MiB (copy_buffer_to_buffer): median {ms:.3} ms -> {:.1} GB/s (read + write)",
        2.0 * bytes as f64 / (ms * 1e-3) / 1e9
    );
    Ok(())
}
