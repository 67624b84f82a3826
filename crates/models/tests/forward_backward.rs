//! Every model runs forward and backward on a small batch: logits of the right shape and
//! finite, a gradient of the right shape on every parameter, finite and nonzero at the
//! first layer (so it flowed through the whole network), and the parameters named and
//! shaped as the registry's shape list says. ImageNet-shaped models run on reduced images
//! (their adaptive pooling allows it).
//!
//! Devices: the GPU (lavapipe in CI). AlexNet, ZFNet and VGG-16 also run at 224x224, where
//! their first classifier weight (4096x9216 or 4096x25088 f32, 151 or 411 MB) is larger than
//! lavapipe's 128 MiB storage binding, so its products run in parts
//! (`ferrograd_device::kernels::matmul_parts`) and its updates in windows.
//!
//! The default run covers every family and every code path (basic and bottleneck blocks,
//! both shortcut kinds, BatchNorm and plain VGG, grouped convolutions, LRN, ceil-mode
//! pooling, aux heads) in about 3 minutes on lavapipe with 2 cores. The deeper siblings
//! that only repeat those blocks are `#[ignore]`d for time: run them with `--ignored`.

use ferrograd_device::testing::{gpu, Rng};
use ferrograd_device::Device;
use ferrograd_graph::nn::Module;
use ferrograd_graph::Tensor;
use ferrograd_models::registry::{build, shapes};
use ferrograd_models::GoogLeNet;
use std::time::Instant;

const CLASSES: usize = 10;

/// Build `name`, run `[batch, c, hw, hw]` through it, backpropagate a loss that depends on
/// every logit, and check the outputs and gradients.
fn check(device: &Device, name: &str, batch: usize, c: usize, hw: usize) {
    let start = Instant::now();
    if let Some(g) = device.gpu_context() {
        g.reset_peak_bytes();
    }
    let model = build(name, CLASSES, c, device, 7).unwrap();
    let named = model.named_parameters();
    let built: Vec<(String, Vec<usize>)> = named.iter().map(|(n, t)| (n.clone(), t.shape())).collect();
    assert_eq!(built, shapes(name, CLASSES, c).unwrap().entries(), "{name}: parameters differ from the shape list");

    let mut rng = Rng::new(hw as u64);
    let x = Tensor::from_f32(device, &rng.vec(batch * c * hw * hw), &[batch, c, hw, hw]).unwrap();
    let y = model.forward(&x).unwrap();
    assert_eq!(y.shape(), [batch, CLASSES], "{name}: logits shape");
    y.square().unwrap().mean_all().unwrap().backward().unwrap();
    assert_grads(name, &named);
    let logits = y.to_vec().unwrap();
    assert!(logits.iter().all(|v| v.is_finite()), "{name}: logits {logits:?}");
    // tests run in parallel, so the peak may include another test's arrays
    let peak = device.gpu_context().map_or(0, |g| g.stats().peak_bytes_live) as f64 / (1 << 20) as f64;
    eprintln!(
        "{name}: {batch}x{c}x{hw}x{hw} forward+backward on {} in {:.2?}, peak {peak:.1} MiB",
        device.name(),
        start.elapsed()
    );
}

fn assert_grads(name: &str, named: &[(String, Tensor)]) {
    for (n, p) in named {
        let g = p.grad().unwrap_or_else(|| panic!("{name}: no gradient for {n}"));
        assert_eq!(g.shape(), p.shape().as_slice(), "{name}: gradient shape of {n}");
    }
    let (first, p) = &named[0];
    let g = p.grad().unwrap().to_f32_vec().unwrap();
    assert!(g.iter().all(|v| v.is_finite()), "{name}: {first} gradient not finite");
    assert!(g.iter().any(|&v| v != 0.0), "{name}: {first} gradient all zero");
}

#[test]
fn mnist_models() {
    check(&gpu(), "mlp", 2, 1, 28);
    check(&gpu(), "lenet5", 2, 1, 32);
}

#[test]
fn alexnet_family_at_224() {
    check(&gpu(), "alexnet", 2, 3, 224);
    check(&gpu(), "alexnet_lrn", 2, 3, 227);
    check(&gpu(), "zfnet", 2, 3, 224);
}

#[test]
fn vgg16_at_224() {
    check(&gpu(), "vgg16", 1, 3, 224);
}

#[test]
fn vgg_cifar() {
    check(&gpu(), "vgg11_cifar", 2, 3, 32);
    check(&gpu(), "vgg11_bn_cifar", 2, 3, 32);
}

#[test]
#[ignore = "slow on lavapipe (30-80 s each): run with --ignored"]
fn vgg_cifar_deeper() {
    for name in ["vgg13_cifar", "vgg13_bn_cifar", "vgg16_cifar", "vgg16_bn_cifar", "vgg19_cifar", "vgg19_bn_cifar"] {
        check(&gpu(), name, 2, 3, 32);
    }
}

#[test]
#[ignore = "133M-144M parameters on the CPU reference device (about 100 s each): run with --ignored"]
fn vgg_imagenet_on_cpu() {
    for name in ["vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn"] {
        check(&Device::cpu(), name, 2, 3, 32);
    }
}

#[test]
fn googlenet() {
    check(&gpu(), "googlenet", 2, 3, 32);
}

/// With aux heads in training mode, all three outputs feed the loss (torchvision weights
/// the auxiliary losses 0.3), so every parameter, aux heads included, gets a gradient.
#[test]
fn googlenet_aux_heads() {
    let device = gpu();
    let model = GoogLeNet::new(&device, CLASSES, 3, true).unwrap();
    let x = Tensor::from_f32(&device, &Rng::new(3).vec(2 * 3 * 32 * 32), &[2, 3, 32, 32]).unwrap();
    let out = model.forward_with_aux(&x).unwrap();
    let (aux1, aux2) = (out.aux1.unwrap(), out.aux2.unwrap());
    for t in [&out.logits, &aux1, &aux2] {
        assert_eq!(t.shape(), [2, CLASSES]);
    }
    let loss = |t: &Tensor| t.square().unwrap().mean_all().unwrap();
    let aux = loss(&aux1).add(&loss(&aux2)).unwrap().mul_scalar(0.3).unwrap();
    loss(&out.logits).add(&aux).unwrap().backward().unwrap();
    assert_grads("googlenet_aux", &model.named_parameters());

    // In eval mode the aux heads are skipped, and `forward` never runs them.
    model.eval();
    let out = model.forward_with_aux(&x).unwrap();
    assert!(out.aux1.is_none() && out.aux2.is_none());
}

#[test]
fn resnet_imagenet() {
    check(&gpu(), "resnet18", 2, 3, 32);
    check(&gpu(), "resnet50", 2, 3, 32);
}

#[test]
#[ignore = "slow on lavapipe: run with --ignored"]
fn resnet_imagenet_deeper() {
    for name in ["resnet34", "resnet101", "resnet152"] {
        check(&gpu(), name, 2, 3, 32);
    }
}

/// 8x8 images keep the CIFAR ResNets quick; the shortcuts still subsample twice.
#[test]
fn resnet_cifar() {
    check(&gpu(), "resnet20", 2, 3, 8);
    check(&gpu(), "resnet56", 2, 3, 8);
    check(&gpu(), "resnet18_cifar", 2, 3, 8);
}

#[test]
#[ignore = "slow on lavapipe: run with --ignored"]
fn resnet_cifar_other_depths() {
    for name in ["resnet32", "resnet44", "resnet110"] {
        check(&gpu(), name, 2, 3, 8);
    }
}
