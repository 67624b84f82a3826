//! `Sequential` fuses a layer and the activation after it into one product. Alone in its
//! test binary so that the device's dispatch counters see only this test's work.

use ferrograd_device::testing::gpu;
use ferrograd_graph::nn::{Gelu, Linear, Module, Relu, Sequential, Tanh};
use ferrograd_graph::{Result, Tensor};

#[test]
fn sequential_fuses_an_activation_into_the_layer_before_it() {
    let g = gpu();
    let ctx = g.gpu_context().unwrap().clone();
    let (l1, l2, l3) = (
        Linear::new(&g, 6, 5, true).unwrap(),
        Linear::new(&g, 5, 4, true).unwrap(),
        Linear::new(&g, 4, 3, true).unwrap(),
    );
    let params = [&l1, &l2, &l3].map(|l| (l.weight.clone(), l.bias.clone()));
    // Linear + Relu and Linear + Tanh fuse; Gelu's gradient needs its input, so it runs alone
    let seq = Sequential::new().add(l1).add(Relu).add(l2).add(Tanh).add(l3).add(Gelu);
    let x = Tensor::from_f32(&g, &(0..12).map(|i| (i as f32 - 5.5) / 4.0).collect::<Vec<_>>(), &[2, 6]).unwrap();
    let separate = |x: &Tensor| -> Result<Tensor> {
        let [(w1, b1), (w2, b2), (w3, b3)] = &params;
        let y = x.linear(w1, b1.as_ref())?.relu()?;
        let y = y.linear(w2, b2.as_ref())?.tanh()?;
        y.linear(w3, b3.as_ref())?.gelu()
    };
    let before = ctx.stats();
    let fused = seq.forward(&x).unwrap();
    let fused_dispatches = (ctx.stats() - before).dispatches;
    let before = ctx.stats();
    let want = separate(&x).unwrap();
    let separate_dispatches = (ctx.stats() - before).dispatches;
    assert_eq!(fused.data().to_f32_vec().unwrap(), want.data().to_f32_vec().unwrap());
    // two launches fewer for each fused activation (its own and its output's poison fill)
    assert_eq!(fused_dispatches + 4, separate_dispatches, "the relu and the tanh fold into the products");
}
