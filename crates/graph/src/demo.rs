//! The small end-to-end programs behind `examples/mlp_spirals.rs` and
//! `examples/cnn_overfit.rs`, kept here so tests run exactly what the examples run.

use crate::error::Result;
use crate::nn::{AdaptiveAvgPool2d, BatchNorm2d, Conv2d, Flatten, Linear, MaxPool2d, Module, Relu, Sequential, Tanh};
use crate::ops::loss::cross_entropy;
use crate::optim::{Adam, AdamConfig, Optimizer};
use crate::tensor::Tensor;
use ferrograd_device::Device;

/// Two interleaved spirals: `n` points per class, `[2n, 2]` coordinates and `[2n]` labels.
/// Arm `c` is `r * (cos, sin)(a + c*pi)` with `r` growing from 0.05 to 1 over 1.5 turns.
pub fn two_spirals(n: usize) -> (Vec<f32>, Vec<u32>) {
    let (mut xy, mut labels) = (Vec::with_capacity(4 * n), Vec::with_capacity(2 * n));
    for class in 0..2u32 {
        for i in 0..n {
            let t = i as f64 / n as f64;
            let r = 0.05 + 0.95 * t;
            let a = 3.0 * std::f64::consts::PI * t + class as f64 * std::f64::consts::PI;
            xy.extend([(r * a.cos()) as f32, (r * a.sin()) as f32]);
            labels.push(class);
        }
    }
    (xy, labels)
}

/// The spirals classifier: 2 -> 64 -> 64 -> 2 with tanh.
pub fn spiral_mlp(device: &Device) -> Result<Sequential> {
    Ok(Sequential::new()
        .add(Linear::new(device, 2, 64, true)?)
        .add(Tanh)
        .add(Linear::new(device, 64, 64, true)?)
        .add(Tanh)
        .add(Linear::new(device, 64, 2, true)?))
}

/// What a training run reached.
#[derive(Clone, Copy, Debug)]
pub struct Outcome {
    pub steps: usize,
    pub loss: f64,
    pub accuracy: f64,
}

/// Full-batch Adam on the spirals until `target` accuracy (checked every 50 steps) or
/// `max_steps`. Each check reads the loss and predictions back (the only waits).
pub fn train_spirals(device: &Device, points_per_class: usize, max_steps: usize, target: f64) -> Result<Outcome> {
    crate::manual_seed(1);
    let (xy, labels) = two_spirals(points_per_class);
    let n = labels.len();
    let x = Tensor::from_f32(device, &xy, &[n, 2])?;
    let y = Tensor::from_u32(device, &labels, &[n])?;
    let model = spiral_mlp(device)?;
    let mut opt = Adam::new(model.named_parameters(), AdamConfig { lr: 0.01, ..Default::default() });
    let mut outcome = Outcome { steps: 0, loss: f64::NAN, accuracy: 0.0 };
    for step in 1..=max_steps {
        let logits = model.forward(&x)?;
        let loss = cross_entropy(&logits, &y, 0.0)?;
        opt.zero_grad();
        loss.backward()?;
        opt.step()?;
        if step % 50 == 0 || step == max_steps {
            let predicted = logits.argmax(-1, false)?.to_vec_u32()?;
            let correct = predicted.iter().zip(&labels).filter(|(p, l)| p == l).count();
            outcome = Outcome { steps: step, loss: loss.item()?, accuracy: correct as f64 / n as f64 };
            if outcome.accuracy >= target {
                break;
            }
        }
    }
    Ok(outcome)
}

/// A small CNN for `[N, 1, 12, 12]` inputs and 4 classes: conv-bn-relu-pool, conv-relu,
/// adaptive pool to 3x3, linear.
pub fn small_cnn(device: &Device) -> Result<Sequential> {
    Ok(Sequential::new()
        .add(Conv2d::new(device, 1, 8, 3, 1, 1)?)
        .add(BatchNorm2d::new_2d(device, 8)?)
        .add(Relu)
        .add(MaxPool2d::new(2, 2, 0))
        .add(Conv2d::new(device, 8, 16, 3, 1, 1)?)
        .add(Relu)
        .add(AdaptiveAvgPool2d([3, 3]))
        .add(Flatten::default())
        .add(Linear::new(device, 16 * 9, 4, true)?))
}

/// One fixed random batch for [`small_cnn`]: 16 images and labels.
pub fn cnn_batch(device: &Device) -> Result<(Tensor, Tensor)> {
    crate::manual_seed(2);
    let x = Tensor::randn(device, &[16, 1, 12, 12], 0.0, 1.0)?;
    let labels: Vec<u32> = (0..16).map(|i| (i * 7 % 4) as u32).collect();
    Ok((x, Tensor::from_u32(device, &labels, &[16])?))
}

/// One training step (forward, backward, Adam); returns the loss tensor unread.
pub fn cnn_step(model: &Sequential, opt: &mut Adam, x: &Tensor, y: &Tensor) -> Result<Tensor> {
    let loss = cross_entropy(&model.forward(x)?, y, 0.0)?;
    opt.zero_grad();
    loss.backward()?;
    opt.step()?;
    Ok(loss)
}

/// Train [`small_cnn`] on one batch until the loss (read every 10 steps) is below
/// `target`, or for `max_steps`; returns the steps taken and the last loss read.
pub fn overfit_cnn(device: &Device, max_steps: usize, target: f64) -> Result<(usize, f64)> {
    let (x, y) = cnn_batch(device)?;
    let model = small_cnn(device)?;
    let mut opt = Adam::new(model.named_parameters(), AdamConfig { lr: 0.01, ..Default::default() });
    let mut last = (0, f64::NAN);
    for step in 1..=max_steps {
        let loss = cnn_step(&model, &mut opt, &x, &y)?;
        if step % 10 == 0 || step == max_steps {
            last = (step, loss.item()?);
            if last.1 < target {
                break;
            }
        }
    }
    Ok(last)
}
