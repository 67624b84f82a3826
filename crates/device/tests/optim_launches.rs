//! An optimizer step over N parameters takes ceil(N / K) launches, K being the slots one
//! multi-tensor launch holds on this adapter (`Variant::max_slots`). Its own binary: it reads
//! the device's dispatch counter.

use ferrograd_device::kernels::optim::multi::{Rule, Variant};
use ferrograd_device::kernels::optim::{
    adam_step, sgd_step, AdamCount, AdamParams, AdamTensors, SgdParams, SgdTensors,
};
use ferrograd_device::testing::{gpu, Rng};
use ferrograd_device::{Array, Device};

fn arrays(g: &Device, rng: &mut Rng, n: usize) -> Vec<Array> {
    (0..n).map(|i| Array::from_f32(g, &rng.vec_positive(1 + i % 300), &[1 + i % 300]).unwrap()).collect()
}

#[test]
fn a_step_over_n_parameters_takes_ceil_n_over_k_launches() {
    let g = gpu();
    let ctx = g.gpu_context().unwrap();
    let mut rng = Rng::new(21);
    let sgd = SgdParams { lr: 0.1, momentum: 0.9, dampening: 0.0, weight_decay: 0.0, nesterov: false };
    let k_sgd = Variant { rule: Rule::SgdMomentum, half: false, skip: false }.max_slots(ctx.caps());
    let k_adam = Variant { rule: Rule::Adam { device_count: false }, half: false, skip: false }.max_slots(ctx.caps());
    assert!(k_sgd >= k_adam && k_adam >= 1, "K: sgd {k_sgd}, adam {k_adam}");
    for n in [1, k_adam, k_adam + 1, k_sgd + 1, 2 * k_sgd + 3] {
        let (p, gr, b, v) =
            (arrays(&g, &mut rng, n), arrays(&g, &mut rng, n), arrays(&g, &mut rng, n), arrays(&g, &mut rng, n));
        let tensors: Vec<SgdTensors> =
            (0..n).map(|i| SgdTensors { param: &p[i], grad: &gr[i], momentum_buf: Some(&b[i]), half: None }).collect();
        let before = ctx.stats();
        sgd_step(&tensors, &sgd, false, None).unwrap();
        assert_eq!((ctx.stats() - before).dispatches, n.div_ceil(k_sgd) as u64, "SGD over {n} parameters, K = {k_sgd}");

        let tensors: Vec<AdamTensors> =
            (0..n).map(|i| AdamTensors { param: &p[i], grad: &gr[i], m: &b[i], v: &v[i], half: None }).collect();
        let adam = AdamParams {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            decoupled_weight_decay: false,
            step: 1,
        };
        let before = ctx.stats();
        adam_step(&tensors, &adam, AdamCount::Host, None).unwrap();
        assert_eq!(
            (ctx.stats() - before).dispatches,
            n.div_ceil(k_adam) as u64,
            "Adam over {n} parameters, K = {k_adam}"
        );
    }
}
