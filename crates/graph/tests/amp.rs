//! Mixed precision at the graph level: the cast op's gradients (finite differences), the
//! autocast products on the GPU against the CPU device (which rounds the operands to f16 as
//! the GPU does; bound 1e-3 relative to each array's scale) and against f32 (1e-2: one f16
//! rounding per operand), a small network whose activations stay f16 between ops, and a step
//! whose gradients overflow: skipped, the scale halved.

mod common;

use common::{check_with, input};
use ferrograd_device::kernels::conv::Conv2dGeometry;
use ferrograd_device::kernels::copy::cast;
use ferrograd_device::kernels::elementwise::UnaryOp;
use ferrograd_device::testing::{gpu, Rng};
use ferrograd_device::{Array, DType};
use ferrograd_graph::amp::{autocast, backward_and_step, GradScaler, Precision};
use ferrograd_graph::gradcheck::{gpu_matches_cpu, GradCheck};
use ferrograd_graph::nn::{Linear, Module};
use ferrograd_graph::ops::conv::Conv2dOptions;
use ferrograd_graph::ops::norm::batch_norm;
use ferrograd_graph::optim::{Adam, AdamConfig, Optimizer, Sgd, SgdConfig};
use ferrograd_graph::{Result, Tensor};

/// An f16 CPU array: `a`'s values rounded to f16.
fn half(a: &Array) -> Array {
    cast(a, DType::F16).unwrap()
}

#[test]
fn cast_gradients() {
    let mut rng = Rng::new(1);
    let x = input(&mut rng, &[3, 5]);
    // f32 -> f16 rounds: a step of 0.05 keeps the rounding (<= 2.5e-4 near 1) out of the
    // difference quotient's way, within 1e-2
    let rounding = GradCheck { eps: 0.05, atol: 1e-2, rtol: 1e-2 };
    check_with("cast f32 -> f16 -> f32", &rounding, |t| t[0].half()?.float()?.square(), std::slice::from_ref(&x));
    // f16 -> f32 is exact; the gradient comes back as f16, rounded (f16 bound)
    let exact = GradCheck { eps: 1e-6, atol: 1e-6, rtol: 1e-3 };
    check_with("cast f16 -> f32", &exact, |t| t[0].float()?.mul_scalar(3.0), &[half(&x)]);
    // a tensor cast to its own dtype is itself, on the tape unchanged
    let t = Tensor::new(x.clone());
    assert_eq!(t.cast(DType::F32).unwrap().dtype(), DType::F32);
    assert!(t.cast(DType::U32).is_err(), "no cast to u32");
}

/// `f` under autocast on the GPU against the CPU device, and against `f` in f32.
fn autocast_parity(name: &str, f: impl Fn(&[Tensor]) -> Result<Tensor>, inputs: &[Array]) {
    let mixed = |t: &[Tensor]| {
        let _amp = autocast(Precision::Mixed);
        f(t)
    };
    let f16_bound = GradCheck { eps: 0.0, atol: 1e-3, rtol: 1e-3 };
    gpu_matches_cpu(name, &f16_bound, mixed, inputs, &gpu()).unwrap();
    // on the CPU device, mixed precision against f32: the same function and gradients, each
    // operand rounded once (1e-2 of each array's scale)
    for (k, (m, f)) in run(&mixed, inputs).iter().zip(run(&f, inputs)).enumerate() {
        let scale = f.iter().fold(0.0f64, |a, v| a.max(v.abs()));
        for (i, (a, b)) in m.iter().zip(&f).enumerate() {
            assert!((a - b).abs() <= 1e-2 * scale, "{name}: array {k} element {i}: mixed {a} vs f32 {b}");
        }
    }
}

/// The output and each input's gradient of `sum(f(inputs))` on the CPU device.
fn run(f: &impl Fn(&[Tensor]) -> Result<Tensor>, inputs: &[Array]) -> Vec<Vec<f64>> {
    let t: Vec<Tensor> = inputs.iter().map(|a| Tensor::parameter(a.clone())).collect();
    let out = f(&t).unwrap();
    out.sum_all().unwrap().backward().unwrap();
    let mut arrays = vec![out.to_vec_f64().unwrap()];
    arrays.extend(t.iter().map(|x| x.grad().unwrap().to_f64_vec().unwrap()));
    arrays
}

#[test]
fn autocast_products_match_the_cpu_and_f32() {
    let mut rng = Rng::new(2);
    let (x, w, b) = (input(&mut rng, &[2, 3, 6, 5]), input(&mut rng, &[4, 3, 3, 3]), input(&mut rng, &[4]));
    let o = Conv2dOptions::new(1, 1);
    autocast_parity(
        "conv2d + bias + relu",
        |t| t[0].conv2d_act(&t[1], Some(&t[2]), &o, Some(UnaryOp::Relu)),
        &[x.clone(), w.clone(), b.clone()],
    );
    autocast_parity("conv2d in chunks", |t| t[0].conv2d_in_chunks(&t[1], None, &o, None, 1), &[x, w]);
    let grouped = Conv2dOptions { groups: 2, ..o };
    let (xg, wg, bg) = (input(&mut rng, &[2, 4, 5, 5]), input(&mut rng, &[6, 2, 3, 3]), input(&mut rng, &[6]));
    autocast_parity(
        "grouped conv2d + bias + relu",
        |t| t[0].conv2d_act(&t[1], Some(&t[2]), &grouped, Some(UnaryOp::Relu)),
        &[xg, wg, bg],
    );
    let (x, w, b) = (input(&mut rng, &[5, 7]), input(&mut rng, &[6, 7]), input(&mut rng, &[6]));
    autocast_parity("linear + bias + tanh", |t| t[0].linear_act(&t[1], Some(&t[2]), Some(UnaryOp::Tanh)), &[x, w, b]);
    let (a, bm) = (input(&mut rng, &[2, 4, 6]), input(&mut rng, &[2, 5, 6]));
    autocast_parity("batched matmul_t", |t| t[0].matmul_t(&t[1], false, true), &[a, bm]);
}

/// A small network whose activations are f16 between ops under autocast: conv (f16 out),
/// batch norm, relu, a residual add, max pooling, flatten, linear (f16 out), log-softmax (f32).
fn small_network(t: &[Tensor]) -> Result<Tensor> {
    let y = t[0].conv2d(&t[1], None, &Conv2dOptions::new(1, 1))?;
    let y = batch_norm(&y, None, Some(&t[2]), Some(&t[3]), true, 1e-5)?;
    let z = y.relu()?.add(&y)?.max_pool2d(&Conv2dGeometry::new(2, 2, 0))?;
    z.flatten(1, -1)?.linear(&t[4], None)?.log_softmax(-1)
}

#[test]
fn f16_activations_flow_through_a_network_and_back() {
    let mut rng = Rng::new(4);
    let inputs = [
        input(&mut rng, &[2, 3, 6, 8]),
        input(&mut rng, &[4, 3, 3, 3]),
        input(&mut rng, &[4]),
        input(&mut rng, &[4]),
        input(&mut rng, &[5, 48]),
    ];
    autocast_parity("conv, batch norm, relu, add, max pool, linear, log-softmax", small_network, &inputs);
    // what each op stores on the GPU under autocast; every gradient as its tensor
    let g = gpu();
    let t: Vec<Tensor> = inputs.iter().map(|a| Tensor::parameter(a.to_device(&g).unwrap())).collect();
    let _amp = autocast(Precision::Mixed);
    let conv = t[0].conv2d(&t[1], None, &Conv2dOptions::new(1, 1)).unwrap();
    let pooled = conv.relu().unwrap().max_pool2d(&Conv2dGeometry::new(2, 2, 0)).unwrap();
    let logits = pooled.flatten(1, -1).unwrap().linear(&t[4], None).unwrap();
    let out = logits.log_softmax(-1).unwrap();
    let stored = [conv.dtype(), pooled.dtype(), logits.dtype(), out.dtype()];
    assert_eq!(stored, [DType::F16, DType::F16, DType::F16, DType::F32], "conv, pool, linear, log-softmax");
    out.sum_all().unwrap().backward().unwrap();
    for (k, p) in t.iter().enumerate().filter(|(k, _)| [0, 1, 4].contains(k)) {
        assert_eq!(p.grad().unwrap().dtype(), DType::F32, "input {k}'s gradient");
    }
}

/// A linear layer and an SGD step through the scaler; `loss_factor` sizes the loss.
fn scaled_step(model: &Linear, opt: &mut Sgd, scaler: &GradScaler, x: &Tensor, loss_factor: f32) {
    let loss = {
        let _amp = autocast(Precision::Mixed);
        model.forward(x).unwrap().sum_all().unwrap().mul_scalar(loss_factor).unwrap()
    };
    backward_and_step(&loss, opt, Some(scaler), None).unwrap();
}

#[test]
fn an_overflowing_step_is_skipped_and_the_scale_halves() {
    let g = gpu();
    ferrograd_graph::manual_seed(3);
    let model = Linear::new(&g, 8, 4, true).unwrap();
    let mut opt =
        Sgd::new(model.named_parameters(), SgdConfig { lr: 0.1, momentum: 0.9, ..Default::default() }).unwrap();
    let scaler = GradScaler::new(&g).unwrap();
    let x = Tensor::from_f32(&g, &Rng::new(4).vec(16 * 8), &[16, 8]).unwrap();
    let params = || model.parameters().iter().map(|p| p.to_vec().unwrap()).collect::<Vec<_>>();
    let weight = || model.parameters()[0].clone();

    // the upstream gradient 1e4 x 2^16 is past f16's 65504: inf in the weight gradient
    let before = params();
    scaled_step(&model, &mut opt, &scaler, &x, 1e4);
    let s = scaler.state().unwrap();
    assert_eq!(params(), before, "the overflowing step changed the parameters");
    assert_eq!((s.scale, s.growth_tracker, s.skipped_steps), (32768.0, 0, 1), "{s:?}");
    let copy = weight().half_copy().expect("autocast made the weight's f16 copy");
    assert_eq!(copy.to_f64_vec().unwrap(), cast(&weight().data(), DType::F16).unwrap().to_f64_vec().unwrap());

    // a loss of ordinary size: the step is taken, the f16 copy refreshed in the same launch
    scaled_step(&model, &mut opt, &scaler, &x, 1e-2);
    let s = scaler.state().unwrap();
    assert_ne!(params(), before, "the good step did not update the parameters");
    assert_eq!((s.scale, s.growth_tracker, s.skipped_steps), (32768.0, 1, 1), "{s:?}");
    let copy = weight().half_copy().unwrap();
    assert_eq!(copy.to_f64_vec().unwrap(), cast(&weight().data(), DType::F16).unwrap().to_f64_vec().unwrap());
    // and the gradients the optimizer saw were unscaled: |dL/dW| = 1e-2 * sum |x| per column
    let grad = weight().grad().unwrap().to_f64_vec().unwrap();
    let xs = x.to_vec().unwrap();
    let want: f64 = (0..16).map(|r| xs[r * 8] as f64).sum::<f64>() * 1e-2;
    assert!((grad[0] - want).abs() <= 1e-3 * want.abs().max(1e-3), "unscaled gradient {} vs {want}", grad[0]);
}

/// Adam through the scaler on a model with fixed random parameters (not the global seed's:
/// tests run in parallel), one step per loss factor; the parameters and `<param>.step` of
/// every parameter after them.
fn adam_run(loss_factors: &[f32]) -> (Vec<Vec<f32>>, Vec<f64>) {
    let g = gpu();
    let model = Linear::new(&g, 8, 4, true).unwrap();
    let mut rng = Rng::new(5);
    for p in model.parameters() {
        p.set_data(Array::from_f32(&g, &rng.vec(p.numel()), &p.shape()).unwrap());
    }
    let mut opt = Adam::new(model.named_parameters(), AdamConfig { lr: 0.05, ..Default::default() });
    let scaler = GradScaler::new(&g).unwrap();
    let x = Tensor::from_f32(&g, &Rng::new(6).vec(16 * 8), &[16, 8]).unwrap();
    for &f in loss_factors {
        let loss = {
            let _amp = autocast(Precision::Mixed);
            model.forward(&x).unwrap().sum_all().unwrap().mul_scalar(f).unwrap()
        };
        backward_and_step(&loss, &mut opt, Some(&scaler), None).unwrap();
    }
    let steps = opt.state_dict().iter().filter(|(n, _)| n.ends_with(".step")).map(|(_, a)| a.item().unwrap()).collect();
    (model.parameters().iter().map(|p| p.to_vec().unwrap()).collect(), steps)
}

/// torch's `scaler.step(opt)` does not call `opt.step()` on a skipped step, so Adam's step
/// count (and with it the bias correction) does not advance: a run with an overflowing step
/// ends where the run without it does (to f32 rounding: the scale halved, a power of two).
#[test]
fn a_skipped_step_does_not_advance_adams_step_count() {
    let (with_skip, steps_with_skip) = adam_run(&[1e-2, 1e4, 2e-2, -1e-2]);
    let (without, steps_without) = adam_run(&[1e-2, 2e-2, -1e-2]);
    assert_eq!(steps_with_skip, vec![3.0; 2], "the skipped step counted");
    assert_eq!(steps_without, vec![3.0; 2]);
    for (a, b) in with_skip.iter().zip(&without) {
        let (a, b): (Vec<f64>, Vec<f64>) =
            (a.iter().map(|&x| x as f64).collect(), b.iter().map(|&x| x as f64).collect());
        ferrograd_device::testing::assert_close("parameters after the run", &a, &b, ferrograd_device::testing::F32_TOL);
    }
}
