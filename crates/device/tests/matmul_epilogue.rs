//! Parity: products with a fused bias and activation (`matmul_fused`) on the GPU against the
//! f64 CPU twin (the reference product, then the bias and activation from their definitions),
//! on random nonzero inputs with outputs poisoned first. Bound: F32_TOL (1e-5 relative).
//! Every f32 kernel variant, both bias axes, every fusable activation, batched and shared
//! operands, and the uniform-buffer path of `rows8`.

use ferrograd_device::kernels::elementwise::UnaryOp;
use ferrograd_device::kernels::epilogue::{fusable, Bias, Epilogue};
use ferrograd_device::kernels::matmul::{matmul_fused_using, Precision, Variant};
use ferrograd_device::testing::{assert_close, gpu, Rng, F32_TOL};
use ferrograd_device::{Array, DType, Device};

const ACTIVATIONS: [Option<UnaryOp>; 5] =
    [None, Some(UnaryOp::Relu), Some(UnaryOp::LeakyRelu(0.1)), Some(UnaryOp::Tanh), Some(UnaryOp::Sigmoid)];

fn on(device: &Device, values: &[f32], shape: &[usize]) -> Array {
    match device {
        Device::Cpu => Array::cpu(values.iter().map(|&v| v as f64).collect(), shape, DType::F32),
        _ => Array::from_f32(device, values, shape).unwrap(),
    }
}

#[test]
fn fused_bias_and_activation_match_the_reference() {
    let g = gpu();
    let mut rng = Rng::new(31);
    // (A shape, B shape, transposes): a linear layer (shared B, transposed), a convolution
    // (shared A over a batch of columns; small enough for rows8's uniform buffer), a batched pair
    type Case = (&'static [usize], &'static [usize], (bool, bool));
    let cases: [Case; 3] = [
        (&[5, 12], &[7, 12], (false, true)),
        (&[6, 9], &[3, 9, 10], (false, false)),
        (&[2, 9, 4], &[2, 9, 6], (true, false)),
    ];
    let biases = [None, Some(true), Some(false)];
    // every (activation, bias) pair on rows8, each activation once on each tile kernel; the
    // cases in turn (each combination is its own pipeline, compiled in about a second)
    let mut runs = vec![];
    for (i, activation) in ACTIVATIONS.into_iter().enumerate() {
        for (j, per_row) in biases.into_iter().enumerate() {
            runs.push((Variant::Rows8, cases[(i + j) % 3], activation, per_row));
        }
        for (t, tile) in [Variant::Tile64, Variant::Tile128].into_iter().enumerate() {
            runs.push((tile, cases[(i + t) % 3], activation, biases[(i + t + 1) % 3]));
        }
    }
    // the vec4 tile kernel on a problem aligned to its tiles, both bias axes
    let aligned: Case = (&[128, 16], &[2, 16, 128], (false, false));
    runs.push((Variant::Tile128Vec4, aligned, Some(UnaryOp::Relu), Some(true)));
    runs.push((Variant::Tile128Vec4, aligned, Some(UnaryOp::Sigmoid), Some(false)));
    for (variant, (sa, sb, (ta, tb)), activation, per_row) in runs {
        let (a, b) = (rng.vec(sa.iter().product()), rng.vec(sb.iter().product()));
        let m = if ta { sa[sa.len() - 1] } else { sa[sa.len() - 2] };
        let n = if tb { sb[sb.len() - 2] } else { sb[sb.len() - 1] };
        let (row_bias, col_bias) = (rng.vec(m), rng.vec(n));
        let run = |device: &Device, forced: Option<Variant>| {
            let (row_b, col_b) = (on(device, &row_bias, &[m]), on(device, &col_bias, &[n]));
            let bias = per_row.map(|r| if r { Bias::PerRow(&row_b) } else { Bias::PerColumn(&col_b) });
            let e = Epilogue { bias, activation };
            let (ad, bd) = (on(device, &a, sa), on(device, &b, sb));
            matmul_fused_using(&ad, &bd, ta, tb, Precision::F32, forced, &e).unwrap().to_f64_vec().unwrap()
        };
        let what = format!("{variant:?} a {sa:?} b {sb:?} bias per row {per_row:?} {activation:?}");
        assert_close(&what, &run(&g, Some(variant)), &run(&Device::Cpu, None), F32_TOL);
    }
}

#[test]
fn a_bias_of_the_wrong_length_or_an_unfusable_activation_is_an_error() {
    let g = gpu();
    let a = Array::from_f32(&g, &[0.5; 6], &[2, 3]).unwrap();
    let b = Array::from_f32(&g, &[0.25; 12], &[3, 4]).unwrap();
    let wrong = Array::from_f32(&g, &[1.0; 3], &[3]).unwrap();
    let e = Epilogue { bias: Some(Bias::PerColumn(&wrong)), activation: None };
    let err = matmul_fused_using(&a, &b, false, false, Precision::F32, None, &e).unwrap_err().to_string();
    assert!(err.contains("matmul") && err.contains("[3]") && err.contains("4 columns"), "{err}");
    assert!(!fusable(UnaryOp::Gelu) && !fusable(UnaryOp::LeakyRelu(-0.5)));
    let e = Epilogue { bias: None, activation: Some(UnaryOp::Gelu) };
    let err = matmul_fused_using(&a, &b, false, false, Precision::F32, None, &e).unwrap_err().to_string();
    assert!(err.contains("Gelu"), "{err}");
}
