//! Gradient checks of the normalisation, embedding and loss ops.

mod common;

use common::{check, check_with, indices, input, positive};
use ferrograd_device::testing::Rng;
use ferrograd_graph::gradcheck::GradCheck;
use ferrograd_graph::ops::{embedding, loss, norm};
use ferrograd_graph::Tensor;

#[test]
fn batch_norm_training_and_eval() {
    let mut rng = Rng::new(20);
    for shape in [&[4, 3][..], &[2, 3, 4], &[2, 3, 2, 3]] {
        let (x, w, b) = (input(&mut rng, shape), input(&mut rng, &[3]), input(&mut rng, &[3]));
        check(
            &format!("batch_norm train {shape:?}"),
            |t| norm::batch_norm(&t[0], None, Some(&t[1]), Some(&t[2]), true, 1e-5),
            &[x.clone(), w.clone(), b.clone()],
        );
        // running statistics are buffers (no gradient, as in PyTorch): constants on x's device
        let (rm, rv) = (input(&mut rng, &[3]), positive(&mut rng, &[3]));
        check(
            &format!("batch_norm eval {shape:?}"),
            |t| {
                let device = t[0].device();
                let (mean, var) = (Tensor::new(rm.to_device(&device)?), Tensor::new(rv.to_device(&device)?));
                let stats = norm::RunningStats { mean: &mean, var: &var, momentum: 0.1 };
                norm::batch_norm(&t[0], Some(stats), Some(&t[1]), Some(&t[2]), false, 1e-5)
            },
            &[x.clone(), w.clone(), b.clone()],
        );
        check(
            &format!("batch_norm train, no affine {shape:?}"),
            |t| norm::batch_norm(&t[0], None, None, None, true, 1e-5),
            std::slice::from_ref(&x),
        );
    }
}

#[test]
fn layer_norm_and_lrn() {
    let mut rng = Rng::new(21);
    let (x, w, b) = (input(&mut rng, &[2, 3, 4]), input(&mut rng, &[3, 4]), input(&mut rng, &[3, 4]));
    check(
        "layer_norm 2 dims",
        |t| norm::layer_norm(&t[0], &[3, 4], Some(&t[1]), Some(&t[2]), 1e-5),
        &[x.clone(), w.clone(), b],
    );
    check("layer_norm weight only", |t| norm::layer_norm(&t[0], &[3, 4], Some(&t[1]), None, 1e-5), &[x.clone(), w]);
    check("layer_norm no affine", |t| norm::layer_norm(&t[0], &[4], None, None, 1e-5), &[x]);
    let x = input(&mut rng, &[2, 6, 3, 2]);
    for size in [1, 2, 3, 5] {
        check(
            &format!("lrn size {size}"),
            |t| norm::local_response_norm(&t[0], size, 1e-2, 0.75, 2.0),
            std::slice::from_ref(&x),
        );
    }
}

#[test]
fn embedding_lookup() {
    let mut rng = Rng::new(22);
    let (w, idx) = (input(&mut rng, &[5, 3]), indices(&mut rng, &[2, 4], 5));
    check("embedding", |t| embedding::embedding(&t[1], &t[0]), &[w, idx]);
}

#[test]
fn losses() {
    let mut rng = Rng::new(23);
    let (logits, targets) = (input(&mut rng, &[6, 4]), indices(&mut rng, &[6], 4));
    for ls in [0.0, 0.1] {
        check(
            &format!("cross_entropy ls {ls}"),
            |t| loss::cross_entropy(&t[0], &t[1], ls),
            &[logits.clone(), targets.clone()],
        );
    }
    let (seq, seq_t) = (input(&mut rng, &[2, 3, 4]), indices(&mut rng, &[2, 3], 4));
    check("cross_entropy [B, T, C]", |t| loss::cross_entropy(&t[0], &t[1], 0.0), &[seq, seq_t]);
    check("nll_loss", |t| loss::nll_loss(&t[0].log_softmax(-1)?, &t[1]), &[logits.clone(), targets.clone()]);
    check("nll_loss raw", |t| loss::nll_loss(&t[0], &t[1]), &[logits, targets]);
    let (a, b) = (input(&mut rng, &[3, 5]), input(&mut rng, &[3, 5]));
    check("mse_loss", |t| loss::mse_loss(&t[0], &t[1]), &[a.clone(), b]);
    let y = positive(&mut rng, &[3, 5]);
    check_with(
        "bce_with_logits",
        &GradCheck::default(),
        |t| loss::binary_cross_entropy_with_logits(&t[0], &t[1]),
        &[a, y],
    );
}

#[test]
fn dropout_with_a_fixed_seed() {
    let mut rng = Rng::new(24);
    let x = input(&mut rng, &[4, 25]);
    // the mask is a function of the seed alone, the same on every device
    check("dropout", |t| ferrograd_graph::ops::dropout::dropout(&t[0], 0.3, true, 42), &[x]);
}
