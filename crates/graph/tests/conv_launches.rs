//! A grouped convolution takes as many launches as an ungrouped one of the same shape, forward
//! and backward: every group's product is one launch (a test binary of its own: the device's
//! counters are shared by every test in a binary). Its values on the GPU match the CPU
//! device's (f64) within F32_TOL (1e-5 relative).

use ferrograd_device::kernels::elementwise::UnaryOp;
use ferrograd_device::testing::{assert_close, gpu, Rng, F32_TOL};
use ferrograd_device::{Array, Device};
use ferrograd_graph::ops::conv::Conv2dOptions;
use ferrograd_graph::Tensor;

const INPUT: [usize; 4] = [3, 8, 9, 9];
const OUT: usize = 12;

/// (forward launches, backward launches) of a conv with `groups`, bias and a fused relu on
/// `device`, after checking its output and three gradients against the CPU device's.
fn launches(device: &Device, groups: usize, rng: &mut Rng) -> (u64, u64) {
    let ws = [OUT, INPUT[1] / groups, 3, 3];
    let (x, w, b) = (rng.vec(INPUT.iter().product()), rng.vec(ws.iter().product()), rng.vec(OUT));
    let o = Conv2dOptions { groups, ..Conv2dOptions::new(2, 1) };
    let run = |device: &Device| {
        let t =
            |v: &[f32], s: &[usize]| Tensor::new(Array::from_f32(device, v, s).unwrap()).requires_grad_(true).unwrap();
        let (xt, wt, bt) = (t(&x, &INPUT), t(&w, &ws), t(&b, &[OUT]));
        let ctx = device.gpu_context().cloned();
        let count = || ctx.as_ref().map_or(0, |c| c.stats().dispatches);
        let before = count();
        let y = xt.conv2d_act(&wt, Some(&bt), &o, Some(UnaryOp::Relu)).unwrap();
        let forward = count() - before;
        let seed = Array::from_f32(device, &vec![1.0; y.data().numel()], &y.shape()).unwrap();
        let before = count();
        y.backward_with(&seed).unwrap();
        let backward = count() - before;
        let values =
            [y.data(), xt.grad().unwrap(), wt.grad().unwrap(), bt.grad().unwrap()].map(|a| a.to_f64_vec().unwrap());
        (forward, backward, values)
    };
    let (forward, backward, got) = run(device);
    let (_, _, want) = run(&Device::cpu());
    for (what, (g, w)) in ["output", "input grad", "weight grad", "bias grad"].iter().zip(got.iter().zip(&want)) {
        assert_close(&format!("groups {groups}: {what}"), g, w, F32_TOL);
    }
    (forward, backward)
}

#[test]
fn a_grouped_convolution_launches_as_often_as_an_ungrouped_one() {
    let g = gpu();
    let ctx = g.gpu_context().unwrap();
    ctx.set_poison_outputs(false); // poisoning would add a fill per output
    let mut rng = Rng::new(51);
    let plain = launches(&g, 1, &mut rng);
    for groups in [2, 4] {
        assert_eq!(launches(&g, groups, &mut rng), plain, "groups {groups} against groups 1 (forward, backward)");
    }
    eprintln!("launches (forward, backward): {plain:?}");
}
