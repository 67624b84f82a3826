//! `ferrograd bench lenet-kernels`: every kernel of one LeNet-5 training step (32x32 input,
//! SGD with momentum) at a given batch, timed one by one with GPU timestamps, summed per
//! kernel family, plus the wall time of the whole step recorded back to back and the epoch
//! time (60,000 images) it projects. With `--profile`, the whole step runs with per-dispatch
//! timestamps instead and the report gives GPU time per kernel and the idle share.

use super::{median_ms, median_wall_ms, print_profile, BenchArgs};
use anyhow::Context;
use ferrograd_device::gpu::{GpuContext, GpuTimer, ProfileSummary};
use ferrograd_device::kernels::conv::{col2im, im2col, Conv2dGeometry};
use ferrograd_device::kernels::elementwise::{binary, unary, unary_grad, BinaryOp, UnaryOp};
use ferrograd_device::kernels::loss::{cross_entropy, cross_entropy_backward};
use ferrograd_device::kernels::matmul::{matmul_using, pick_variant, Precision, Problem, Variant};
use ferrograd_device::kernels::optim::{sgd_step, SgdParams, SgdTensors};
use ferrograd_device::kernels::pool::{max_pool2d, max_pool2d_backward};
use ferrograd_device::kernels::reduce::sum_to_shape;
use ferrograd_device::testing::Rng;
use ferrograd_device::{Array, Device};
use std::sync::Arc;

const EPOCH_IMAGES: usize = 60_000;

type Record = Box<dyn Fn() -> ferrograd_device::Result<()>>;

/// One kernel call of the step: its family, a label, the FLOPs it does and the matmul kernel
/// it gets (matmuls), and how to record it.
struct Op {
    family: &'static str,
    label: String,
    flops: f64,
    kernel: String,
    record: Record,
}

/// Builds the ops of one training step on random data; `variant` forces the matmul kernel.
struct Step {
    device: Device,
    gpu: Arc<GpuContext>,
    rng: Rng,
    variant: Option<Variant>,
    ops: Vec<Op>,
}

impl Step {
    fn rand(&mut self, shape: &[usize]) -> anyhow::Result<Array> {
        let n = shape.iter().product();
        Ok(Array::from_f32(&self.device, &self.rng.vec(n), shape)?)
    }

    fn push(&mut self, family: &'static str, label: String, flops: f64, record: Record) {
        self.ops.push(Op { family, label, flops, kernel: String::new(), record });
    }

    /// `op(a) · op(b)`, returning an output of the right shape to feed later ops.
    fn matmul(&mut self, label: &str, a: &Array, b: &Array, ta: bool, tb: bool) -> anyhow::Result<Array> {
        let p = Problem::new(a.shape(), b.shape(), ta, tb)?;
        let v = self.variant;
        let out = matmul_using(a, b, ta, tb, Precision::F32, v)?;
        let (a, b) = (a.clone(), b.clone());
        let desc = format!("{label} [{}x] {}x{}x{}", p.batch, p.m, p.n, p.k);
        let record = move || matmul_using(&a, &b, ta, tb, Precision::F32, v).map(drop);
        self.push("matmul", desc, p.flops(), Box::new(record));
        let kernel = v.unwrap_or_else(|| pick_variant(&self.gpu, Precision::F32, &p));
        if let Some(op) = self.ops.last_mut() {
            op.kernel = format!("{kernel:?}");
        }
        Ok(out)
    }

    fn unary(&mut self, label: &str, op: UnaryOp, x: &Array) -> anyhow::Result<Array> {
        let out = unary(op, x)?;
        let x = x.clone();
        self.push("elementwise", format!("{label} {:?}", x.shape()), 0.0, Box::new(move || unary(op, &x).map(drop)));
        Ok(out)
    }

    fn add(&mut self, label: &str, x: &Array, bias: &Array) -> anyhow::Result<Array> {
        let out = binary(BinaryOp::Add, x, bias)?;
        let (x, b) = (x.clone(), bias.clone());
        let record = move || binary(BinaryOp::Add, &x, &b).map(drop);
        self.push("elementwise", format!("{label} {:?}", out.shape()), 0.0, Box::new(record));
        Ok(out)
    }

    fn relu_grad(&mut self, label: &str, x: &Array, y: &Array, g: &Array) -> anyhow::Result<Array> {
        let out = unary_grad(UnaryOp::Relu, x, y, g)?;
        let (x, y, g) = (x.clone(), y.clone(), g.clone());
        let record = move || unary_grad(UnaryOp::Relu, &x, &y, &g).map(drop);
        self.push("elementwise", format!("{label} {:?}", out.shape()), 0.0, Box::new(record));
        Ok(out)
    }

    fn sum_to(&mut self, label: &str, x: &Array, shape: &[usize]) -> anyhow::Result<Array> {
        let out = sum_to_shape(x, shape)?;
        let desc = format!("{label} {:?} -> {shape:?}", x.shape());
        let (x, s) = (x.clone(), shape.to_vec());
        let record = move || sum_to_shape(&x, &s).map(drop);
        self.push("reduce", desc, 0.0, Box::new(record));
        Ok(out)
    }

    fn im2col(&mut self, label: &str, x: &Array, g: Conv2dGeometry) -> anyhow::Result<Array> {
        let out = im2col(x, &g)?;
        let x = x.clone();
        self.push("im2col", format!("{label} {:?}", x.shape()), 0.0, Box::new(move || im2col(&x, &g).map(drop)));
        Ok(out)
    }

    fn col2im(&mut self, label: &str, cols: &Array, g: Conv2dGeometry, shape: &[usize]) -> anyhow::Result<Array> {
        let out = col2im(cols, &g, shape)?;
        let (c, s) = (cols.clone(), shape.to_vec());
        let record = move || col2im(&c, &g, &s).map(drop);
        self.push("col2im", format!("{label} {:?}", cols.shape()), 0.0, Box::new(record));
        Ok(out)
    }

    fn pool(&mut self, label: &str, x: &Array) -> anyhow::Result<(Array, Array)> {
        let g = Conv2dGeometry::new(2, 2, 0);
        let out = max_pool2d(x, &g)?;
        let x = x.clone();
        self.push("pool", format!("{label} {:?}", x.shape()), 0.0, Box::new(move || max_pool2d(&x, &g).map(drop)));
        Ok(out)
    }

    fn pool_back(&mut self, label: &str, g: &Array, idx: &Array, shape: &[usize]) -> anyhow::Result<Array> {
        let geo = Conv2dGeometry::new(2, 2, 0);
        let out = max_pool2d_backward(g, idx, &geo, shape)?;
        let (g, i, s) = (g.clone(), idx.clone(), shape.to_vec());
        let record = move || max_pool2d_backward(&g, &i, &geo, &s).map(drop);
        self.push("pool", format!("{label} {:?}", out.shape()), 0.0, Box::new(record));
        Ok(out)
    }

    /// A conv layer's forward: im2col, matmul, bias, ReLU, 2x2 max pool. Returns (cols, pre-ReLU, ReLU, pooled, argmax).
    fn conv_forward(&mut self, name: &str, x: &Array, w: &Array, bias: &Array) -> anyhow::Result<[Array; 5]> {
        let [n, _, h, _] = x.shape().try_into().context("4-D input")?;
        let o = w.shape()[0];
        let cols = self.im2col(name, x, Conv2dGeometry::new(5, 1, 0))?;
        let y = self.matmul(&format!("{name}.fwd"), w, &cols, false, false)?;
        let y = y.reshape(&[n, o, h - 4, h - 4])?;
        let y = self.add(&format!("{name}.bias"), &y, bias)?;
        let r = self.unary(&format!("{name}.relu"), UnaryOp::Relu, &y)?;
        let (p, idx) = self.pool(name, &r)?;
        Ok([cols, y, r, p, idx])
    }

    /// A conv layer's backward from the gradient of its pooled output; `input` gives the
    /// shape for col2im, which runs only when `grad_input`.
    fn conv_backward(
        &mut self,
        name: &str,
        fwd: &[Array; 5],
        (w, bias): (&Array, &Array),
        g: &Array,
        input: &[usize],
        grad_input: bool,
    ) -> anyhow::Result<Option<Array>> {
        let [cols, y, r, _, idx] = fwd;
        let g = self.pool_back(name, g, idx, r.shape())?;
        let g = self.relu_grad(&format!("{name}.relu"), y, r, &g)?;
        self.sum_to(&format!("{name}.bias"), &g, bias.shape())?;
        let [n, o, oh, ow] = g.shape().try_into().context("4-D grad")?;
        let g = g.reshape(&[n, o, oh * ow])?;
        let gw = self.matmul(&format!("{name}.dW"), &g, cols, false, true)?;
        self.sum_to(&format!("{name}.dW"), &gw, w.shape())?;
        if !grad_input {
            return Ok(None);
        }
        let gcols = self.matmul(&format!("{name}.dcols"), w, &g, true, false)?;
        Ok(Some(self.col2im(name, &gcols, Conv2dGeometry::new(5, 1, 0), input)?))
    }

    /// A linear layer `x · w^T + b` (with ReLU when `relu`); returns (pre-ReLU, output).
    fn fc_forward(&mut self, name: &str, x: &Array, w: &Array, b: &Array, relu: bool) -> anyhow::Result<[Array; 2]> {
        let y = self.matmul(&format!("{name}.fwd"), x, w, false, true)?;
        let y = self.add(&format!("{name}.bias"), &y, b)?;
        let r = if relu { self.unary(&format!("{name}.relu"), UnaryOp::Relu, &y)? } else { y.clone() };
        Ok([y, r])
    }

    /// Its backward from the gradient of its output; returns the gradient of `x`.
    fn fc_backward(
        &mut self,
        name: &str,
        x: &Array,
        (w, b): (&Array, &Array),
        fwd: &[Array; 2],
        g: &Array,
        relu: bool,
    ) -> anyhow::Result<Array> {
        let g = if relu { self.relu_grad(&format!("{name}.relu"), &fwd[0], &fwd[1], g)? } else { g.clone() };
        self.sum_to(&format!("{name}.bias"), &g, b.shape())?;
        self.matmul(&format!("{name}.dW"), &g, x, true, false)?;
        self.matmul(&format!("{name}.dx"), &g, w, false, false)
    }

    fn sgd(&mut self, params: &[Array]) -> anyhow::Result<()> {
        let p = SgdParams { lr: 1e-3, momentum: 0.9, dampening: 0.0, weight_decay: 0.0, nesterov: false };
        // (weight, gradient, momentum buffer) of every parameter: one multi-tensor step
        let mut arrays = Vec::new();
        for w in params {
            arrays.push((
                w.clone(),
                Array::from_f32(&self.device, &self.rng.vec(w.numel()), w.shape())?,
                Array::from_f32(&self.device, &vec![0.0; w.numel()], w.shape())?,
            ));
        }
        let label = format!("sgd ({} parameters)", arrays.len());
        self.push(
            "optim",
            label,
            0.0,
            Box::new(move || {
                let tensors: Vec<SgdTensors> = arrays
                    .iter()
                    .map(|(param, grad, buf)| SgdTensors { param, grad, momentum_buf: Some(buf), half: None })
                    .collect();
                sgd_step(&tensors, &p, false, None)
            }),
        );
        Ok(())
    }
}

/// Records the ops of one LeNet-5 training step at batch `n` (and runs each once).
fn lenet_step(device: &Device, n: usize, variant: Option<Variant>) -> anyhow::Result<Vec<Op>> {
    let gpu = device.gpu_context().context("no GPU context")?.clone();
    let mut s = Step { device: device.clone(), gpu, rng: Rng::new(7), variant, ops: Vec::new() };
    let x = s.rand(&[n, 1, 32, 32])?;
    let (w1, b1) = (s.rand(&[6, 25])?, s.rand(&[1, 6, 1, 1])?);
    let (w2, b2) = (s.rand(&[16, 150])?, s.rand(&[1, 16, 1, 1])?);
    let fc = [(400, 120), (120, 84), (84, 10)];
    let mut fcw = vec![];
    for (i, o) in fc {
        fcw.push((s.rand(&[o, i])?, s.rand(&[o])?));
    }
    let c1 = s.conv_forward("conv1", &x, &w1, &b1)?;
    let c2 = s.conv_forward("conv2", &c1[3], &w2, &b2)?;
    let mut acts = vec![c2[3].reshape(&[n, 400])?];
    let mut fwd = vec![];
    for (i, (w, b)) in fcw.iter().enumerate() {
        let f = s.fc_forward(&format!("fc{}", i + 1), &acts[i], w, b, i < 2)?;
        acts.push(f[1].clone());
        fwd.push(f);
    }
    let targets = Array::from_u32(device, &(0..n as u32).map(|i| i % 10).collect::<Vec<_>>(), &[n])?;
    let (_, lp) = cross_entropy(&acts[3], &targets, 0.0)?;
    let (logits, t) = (acts[3].clone(), targets.clone());
    s.push(
        "loss",
        format!("cross_entropy [{n}, 10]"),
        0.0,
        Box::new(move || cross_entropy(&logits, &t, 0.0).map(drop)),
    );
    let ones = Array::from_f32(device, &vec![1.0 / n as f32; n], &[n])?;
    let mut g = cross_entropy_backward(&lp, &targets, 0.0, &ones)?;
    let record = move || cross_entropy_backward(&lp, &targets, 0.0, &ones).map(drop);
    s.push("loss", format!("cross_entropy_backward [{n}, 10]"), 0.0, Box::new(record));
    for i in (0..3).rev() {
        let (w, b) = &fcw[i];
        g = s.fc_backward(&format!("fc{}", i + 1), &acts[i], (w, b), &fwd[i], &g, i < 2)?;
    }
    let g = g.reshape(&[n, 16, 5, 5])?;
    let g = s.conv_backward("conv2", &c2, (&w2, &b2), &g, c1[3].shape(), true)?.context("conv2 input grad")?;
    s.conv_backward("conv1", &c1, (&w1, &b1), &g, x.shape(), false)?;
    let mut params = vec![w1, b1, w2, b2];
    params.extend(fcw.into_iter().flat_map(|(w, b)| [w, b]));
    s.sgd(&params)?;
    Ok(s.ops)
}

pub fn run(args: &BenchArgs) -> anyhow::Result<()> {
    let device = Device::gpu()?;
    let g = device.gpu_context().context("no GPU context")?.clone();
    let batch = args.batch.unwrap_or(128).max(1);
    let reps = args.reps.unwrap_or(5).max(1);
    let variant = args.variant.map(Variant::from);
    let ops = lenet_step(&device, batch, variant)?;
    g.sync()?;
    let steps = EPOCH_IMAGES.div_ceil(batch);
    println!("adapter: {} ({:?})", g.adapter_name(), g.adapter_info().backend);
    println!(
        "LeNet-5 training step, batch {batch}, {} kernel calls; matmul kernel: {}; median of {reps}",
        ops.len(),
        variant.map_or("chosen by shape".to_string(), |v| format!("{v:?} (forced)"))
    );
    if args.profile {
        return profile(&g, &ops, reps, steps);
    }
    let timer = GpuTimer::new(&g);
    let mut families: Vec<(&str, f64)> = Vec::new();
    println!("\n{:<44} {:>9} {:>8}  kernel", "call", "ms", "GFLOP/s");
    for op in &ops {
        let ms = median_ms(&g, timer.as_ref(), reps, &op.record)?;
        let gflops = if op.flops > 0.0 { format!("{:.2}", op.flops / (ms * 1e-3) / 1e9) } else { String::new() };
        println!("{:<44} {:>9.3} {:>8}  {}", op.label, ms, gflops, op.kernel);
        match families.iter_mut().find(|f| f.0 == op.family) {
            Some(f) => f.1 += ms,
            None => families.push((op.family, ms)),
        }
    }
    families.sort_by(|a, b| b.1.total_cmp(&a.1));
    let total: f64 = families.iter().map(|f| f.1).sum();
    println!("\nper kernel family, ms per step (sum of the calls timed one by one):");
    for (f, ms) in &families {
        println!("  {f:<12} {ms:>9.3}  {:>5.1}%", 100.0 * ms / total);
    }
    println!("  {:<12} {total:>9.3}", "total");
    // the whole step recorded back to back, one wait
    let wall = median_wall_ms(&g, reps, || ops.iter().try_for_each(|op| (op.record)()).map_err(Into::into))?;
    println!(
        "\nwhole step recorded back to back + one wait: median {wall:.3} ms wall \
         ({:.3} ms beyond the kernels: recording, dispatch, submit)",
        wall - total
    );
    println!(
        "projected epoch ({EPOCH_IMAGES} images = {steps} steps): {:.1} s from the kernels, {:.1} s from the step wall time \
         (data loading and the loss readback not included)",
        total * steps as f64 / 1e3,
        wall * steps as f64 / 1e3
    );
    Ok(())
}

/// Runs the step `reps` times with per-dispatch timestamps and prints GPU time per family and kernel.
fn profile(g: &GpuContext, ops: &[Op], reps: usize, steps: usize) -> anyhow::Result<()> {
    g.set_profiling(true)?;
    let result = (|| -> anyhow::Result<ProfileSummary> {
        for op in ops {
            (op.record)()?; // warm-up, not kept
        }
        g.take_profile()?;
        let mut records = vec![];
        for _ in 0..reps {
            for op in ops {
                (op.record)()?;
            }
            g.flush();
            records.extend(g.take_profile()?);
        }
        Ok(ProfileSummary::of(&records))
    })();
    g.set_profiling(false)?;
    let s = result?;
    print_profile(&s, reps);
    println!(
        "projected epoch from GPU busy time: {:.1} s ({steps} steps)",
        s.busy_ms / reps as f64 * steps as f64 / 1e3
    );
    Ok(())
}
