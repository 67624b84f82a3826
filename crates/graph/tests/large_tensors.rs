//! A linear layer whose weight is larger than one storage binding trains as it does when it
//! fits: forward (bias and relu fused), backward twice (the gradients accumulate) and SGD steps
//! with momentum equal the CPU device's to f32 rounding (1e-5 relative). The binding limit is
//! lowered to 64 KiB for this test binary, so a 300 x 150 weight (180 KB) takes the split
//! products and windowed kernels that a 4096 x 25088 one takes on lavapipe's 128 MiB.

use ferrograd_device::kernels::elementwise::UnaryOp;
use ferrograd_device::testing::{assert_close, gpu, Rng, F32_TOL};
use ferrograd_device::{Array, Device};
use ferrograd_graph::optim::{Optimizer, Sgd, SgdConfig};
use ferrograd_graph::Tensor;

struct Run {
    weight: Vec<f64>,
    grad: Vec<f64>,
    output: Vec<f64>,
}

fn train(device: &Device, rng_seed: u64) -> Run {
    let mut rng = Rng::new(rng_seed);
    let param = |rng: &mut Rng, shape: &[usize]| {
        let n = shape.iter().product();
        Tensor::parameter(Array::from_f32(device, &rng.vec(n), shape).unwrap())
    };
    let (w, b, head) = (param(&mut rng, &[300, 150]), param(&mut rng, &[300]), param(&mut rng, &[7, 300]));
    let x = Tensor::from_f32(device, &rng.vec(4 * 150), &[4, 150]).unwrap();
    let params = vec![("w".to_string(), w.clone()), ("b".into(), b.clone()), ("head".into(), head.clone())];
    let config = SgdConfig { lr: 0.01, momentum: 0.9, ..Default::default() };
    let mut sgd = Sgd::new(params, config).unwrap();
    let forward = || x.linear_act(&w, Some(&b), Some(UnaryOp::Relu)).unwrap().linear(&head, None).unwrap();
    let mut grad = vec![];
    for _ in 0..3 {
        sgd.zero_grad();
        for _ in 0..2 {
            forward().square().unwrap().mean_all().unwrap().backward().unwrap();
        }
        grad = w.grad().unwrap().to_f64_vec().unwrap();
        sgd.step().unwrap();
    }
    Run { weight: w.to_vec_f64().unwrap(), grad, output: forward().to_vec_f64().unwrap() }
}

#[test]
fn a_linear_layer_larger_than_a_binding_trains_as_on_the_cpu() {
    let g = gpu();
    g.gpu_context().unwrap().set_binding_limit(64 << 10);
    let (on_gpu, on_cpu) = (train(&g, 3), train(&Device::Cpu, 3));
    assert_close("weight gradient", &on_gpu.grad, &on_cpu.grad, F32_TOL);
    assert_close("weight after 3 steps", &on_gpu.weight, &on_cpu.weight, F32_TOL);
    assert_close("output after 3 steps", &on_gpu.output, &on_cpu.output, F32_TOL);
}
