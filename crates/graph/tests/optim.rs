//! Optimizer updates against PyTorch's documented formulas, evaluated here in f64 by
//! hand-written code (not from our kernels), on the CPU device and the GPU; plus gradient
//! clipping and the learning-rate schedules.

use ferrograd_device::testing::gpu;
use ferrograd_device::{Array, Device};
use ferrograd_graph::optim::{
    clip_grad_norm, Adam, AdamConfig, CosineAnnealingLr, LinearWarmup, LrSchedule, MultiStepLr, OneCycleLr, Optimizer,
    Sgd, SgdConfig, StepLr,
};
use ferrograd_graph::Tensor;

const P0: [f64; 5] = [0.5, -1.25, 2.0, 0.125, -0.75];
const GRADS: [[f64; 5]; 3] = [[0.1, -0.2, 0.3, -0.4, 0.5], [-0.3, 0.25, 0.05, 0.6, -0.1], [0.2, 0.2, -0.7, 0.1, 0.4]];

fn assert_close(got: &[f64], want: &[f64], what: &str) {
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= 1e-6 * (1.0 + w.abs()), "{what}: element {i}: got {g}, expected {w}");
    }
}

/// Run `steps` updates of `opt` on a parameter starting at P0 with gradients GRADS.
fn run(device: &Device, make: impl Fn(Vec<(String, Tensor)>) -> Box<dyn Optimizer>) -> Vec<f64> {
    let p = Tensor::parameter(Array::from_f64(device, &P0, &[5]).unwrap());
    let mut opt = make(vec![("w".into(), p.clone())]);
    for g in GRADS {
        p.set_grad(Some(Array::from_f64(device, &g, &[5]).unwrap()));
        opt.step().unwrap();
    }
    p.to_vec_f64().unwrap()
}

#[test]
fn sgd_momentum_nesterov_and_weight_decay_match_pytorch() {
    for nesterov in [false, true] {
        let (lr, mu, damp, wd) = (0.1, 0.9, if nesterov { 0.0 } else { 0.2 }, 0.01);
        // torch.optim.SGD: g += wd*p; b = g (first) else mu*b + (1-damp)*g; g = g + mu*b (nesterov) or b; p -= lr*g
        let mut p = P0;
        let mut b = [0.0; 5];
        for (step, grads) in GRADS.iter().enumerate() {
            for i in 0..5 {
                let g = grads[i] + wd * p[i];
                b[i] = if step == 0 { g } else { mu * b[i] + (1.0 - damp) * g };
                let d = if nesterov { g + mu * b[i] } else { b[i] };
                p[i] -= lr * d;
            }
        }
        for device in [Device::Cpu, gpu()] {
            let config = SgdConfig { lr, momentum: mu, dampening: damp, weight_decay: wd, nesterov };
            let got = run(&device, |ps| Box::new(Sgd::new(ps, config).unwrap()));
            assert_close(&got, &p, &format!("sgd nesterov={nesterov} on {device:?}"));
        }
    }
}

#[test]
fn adam_and_adamw_match_pytorch() {
    for decoupled in [false, true] {
        let (lr, b1, b2, eps, wd) = (0.01, 0.9, 0.999, 1e-8, 0.1);
        // torch.optim.Adam / AdamW with bias-corrected moments
        let mut p = P0;
        let (mut m, mut v) = ([0.0; 5], [0.0; 5]);
        for (k, grads) in GRADS.iter().enumerate() {
            let t = (k + 1) as i32;
            for i in 0..5 {
                let mut g = grads[i];
                if decoupled {
                    p[i] *= 1.0 - lr * wd;
                } else {
                    g += wd * p[i];
                }
                m[i] = b1 * m[i] + (1.0 - b1) * g;
                v[i] = b2 * v[i] + (1.0 - b2) * g * g;
                let m_hat = m[i] / (1.0 - b1.powi(t));
                let v_hat = v[i] / (1.0 - b2.powi(t));
                p[i] -= lr * m_hat / (v_hat.sqrt() + eps);
            }
        }
        for device in [Device::Cpu, gpu()] {
            let config = AdamConfig { lr, betas: (b1, b2), eps, weight_decay: wd };
            let got =
                run(&device, |ps| Box::new(if decoupled { Adam::adamw(ps, config) } else { Adam::new(ps, config) }));
            assert_close(&got, &p, &format!("adam decoupled={decoupled} on {device:?}"));
        }
    }
}

#[test]
fn optimizer_state_round_trips_by_name() {
    let device = Device::Cpu;
    let p = Tensor::parameter(Array::from_f64(&device, &P0, &[5]).unwrap());
    let mut opt = Adam::new(vec![("fc.bias".into(), p.clone())], AdamConfig::default());
    p.set_grad(Some(Array::from_f64(&device, &GRADS[0], &[5]).unwrap()));
    opt.step().unwrap();
    let state = opt.state_dict();
    let names: Vec<&str> = state.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["fc.bias.exp_avg", "fc.bias.exp_avg_sq", "fc.bias.step"]);
    // a fresh optimizer restored from the state takes the same next step as the original
    let q = Tensor::parameter(Array::from_f64(&device, &p.to_vec_f64().unwrap(), &[5]).unwrap());
    let mut restored = Adam::new(vec![("fc.bias".into(), q.clone())], AdamConfig::default());
    restored.load_state_dict(&state).unwrap();
    for (t, o) in [(&p, &mut opt as &mut dyn Optimizer), (&q, &mut restored)] {
        t.set_grad(Some(Array::from_f64(&device, &GRADS[1], &[5]).unwrap()));
        o.step().unwrap();
    }
    assert_close(&q.to_vec_f64().unwrap(), &p.to_vec_f64().unwrap(), "restored adam");
    let bad = vec![("fc.bias.exp_avg".to_string(), Array::from_f64(&device, &[0.0; 3], &[3]).unwrap())];
    assert!(restored.load_state_dict(&bad).unwrap_err().to_string().contains("fc.bias.exp_avg"));
}

#[test]
fn clip_grad_norm_scales_to_the_max_norm() {
    for device in [Device::Cpu, gpu()] {
        let a = Tensor::parameter(Array::from_f64(&device, &[1.0, 2.0], &[2]).unwrap());
        let b = Tensor::parameter(Array::from_f64(&device, &[0.0; 3], &[3]).unwrap());
        a.set_grad(Some(Array::from_f64(&device, &[3.0, 0.0], &[2]).unwrap()));
        b.set_grad(Some(Array::from_f64(&device, &[0.0, 4.0, 0.0], &[3]).unwrap()));
        let norm = clip_grad_norm(&[a.clone(), b.clone()], 1.0).unwrap().unwrap();
        assert!((norm.item().unwrap() - 5.0).abs() < 1e-6);
        let c = 1.0 / (5.0 + 1e-6);
        assert_close(&a.grad().unwrap().to_f64_vec().unwrap(), &[3.0 * c, 0.0], "clipped a");
        assert_close(&b.grad().unwrap().to_f64_vec().unwrap(), &[0.0, 4.0 * c, 0.0], "clipped b");
        // under the limit nothing changes
        clip_grad_norm(std::slice::from_ref(&a), 10.0).unwrap();
        assert_close(&a.grad().unwrap().to_f64_vec().unwrap(), &[3.0 * c, 0.0], "unclipped a");
    }
}

#[test]
fn schedules_follow_pytorch_closed_forms() {
    let step = StepLr { base: 0.1, step_size: 3, gamma: 0.5 };
    assert_eq!([0, 2, 3, 7].map(|s| step.lr(s)), [0.1, 0.1, 0.05, 0.025]);
    let multi = MultiStepLr { base: 1.0, milestones: vec![2, 5], gamma: 0.1 };
    assert_eq!([1, 2, 5].map(|s| multi.lr(s)), [1.0, 0.1, 1.0 * 0.1 * 0.1]);
    let cos = CosineAnnealingLr { base: 1.0, t_max: 10, eta_min: 0.0 };
    assert!((cos.lr(5) - 0.5).abs() < 1e-12 && cos.lr(10).abs() < 1e-12 && cos.lr(0) == 1.0);
    let warm = LinearWarmup {
        warmup: 4,
        start_factor: 0.25,
        inner: Box::new(StepLr { base: 0.8, step_size: 100, gamma: 0.1 }),
    };
    assert_eq!([0, 2, 4].map(|s| warm.lr(s)), [0.2, 0.5, 0.8]);
    let one = OneCycleLr::new(1.0, 100);
    // starts at max/25, peaks at max at step pct*total - 1, ends at max/25/1e4
    assert!((one.lr(0) - 0.04).abs() < 1e-12);
    assert!((one.lr(29) - 1.0).abs() < 1e-12);
    assert!((one.lr(99) - 0.04 / 1e4).abs() < 1e-12);
}
