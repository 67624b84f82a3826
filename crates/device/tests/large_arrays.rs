//! Arrays larger than one storage binding: flat kernels run over them in windows and matrix
//! products in parts (`kernels::matmul_parts`), equal to the CPU device (f32: 1e-5 relative).
//! The binding limit is lowered to 64 KiB (the least it takes) for this test binary, so arrays
//! of some ten thousand floats take those paths; every test here wants that limit (they share
//! one context).

use ferrograd_device::kernels::elementwise::{binary, binary_scalar, unary, unary_grad, BinaryOp, ScalarSide, UnaryOp};
use ferrograd_device::kernels::epilogue::{Bias, Epilogue};
use ferrograd_device::kernels::matmul::{matmul, matmul_fused};
use ferrograd_device::kernels::optim::{
    adam_step, sgd_step, AdamCount, AdamParams, AdamTensors, SgdParams, SgdTensors,
};
use ferrograd_device::kernels::random::{normal, uniform};
use ferrograd_device::testing::{assert_close, gpu, Rng, F32_TOL};
use ferrograd_device::{Array, Device, DeviceError, Result};

const LIMIT: u64 = 64 << 10;

fn small_bindings() -> Device {
    let g = gpu();
    g.gpu_context().unwrap().set_binding_limit(LIMIT);
    g
}

/// The same values on the GPU and on the CPU device.
fn pair(g: &Device, v: &[f32], shape: &[usize]) -> (Array, Array) {
    (Array::from_f32(g, v, shape).unwrap(), Array::from_f32(&Device::Cpu, v, shape).unwrap())
}

fn same(what: &str, gpu: &Array, cpu: &Array) {
    assert_eq!(gpu.shape(), cpu.shape(), "{what}: shape");
    assert_close(what, &gpu.to_f64_vec().unwrap(), &cpu.to_f64_vec().unwrap(), F32_TOL);
}

/// One parameter's SGD step (no f16 copy, no scaler).
fn sgd1(param: &Array, grad: &Array, momentum_buf: Option<&Array>, p: &SgdParams, first: bool) -> Result<()> {
    sgd_step(&[SgdTensors { param, grad, momentum_buf, half: None }], p, first, None)
}

/// One parameter's Adam step, its count on the host (no f16 copy, no scaler).
fn adam1(param: &Array, grad: &Array, m: &Array, v: &Array, p: &AdamParams) -> Result<()> {
    adam_step(&[AdamTensors { param, grad, m, v, half: None }], p, AdamCount::Host, None)
}

/// 52,777 floats: three windows of 64 KiB and a ragged fourth.
const N: usize = 52_777;

/// Both widths: 52,777 values run one per thread, 52,776 four per thread (vec4 windows).
#[test]
fn flat_kernels_cover_every_window() {
    let g = small_bindings();
    let ctx = g.gpu_context().unwrap();
    for n in [N, N - 1] {
        let windows = ctx.flat_windows(n, &[4, 4]);
        assert!(windows.len() >= 3, "{windows:?}");
        assert_eq!(windows.iter().map(|w| w.len).sum::<usize>(), n);

        let mut rng = Rng::new(5);
        let (ag, ac) = pair(&g, &rng.vec(n), &[n]);
        let (bg, bc) = pair(&g, &rng.vec(n), &[n]);
        same("tanh", &unary(UnaryOp::Tanh, &ag).unwrap(), &unary(UnaryOp::Tanh, &ac).unwrap());
        same("mul", &binary(BinaryOp::Mul, &ag, &bg).unwrap(), &binary(BinaryOp::Mul, &ac, &bc).unwrap());
        let (sg, sc) = (
            binary_scalar(BinaryOp::Sub, &ag, 0.5, ScalarSide::Left),
            binary_scalar(BinaryOp::Sub, &ac, 0.5, ScalarSide::Left),
        );
        same("0.5 - a", &sg.unwrap(), &sc.unwrap());
        let yc = unary(UnaryOp::Sigmoid, &ac).unwrap();
        same(
            "sigmoid grad",
            &unary_grad(UnaryOp::Sigmoid, &ag, &unary(UnaryOp::Sigmoid, &ag).unwrap(), &bg).unwrap(),
            &unary_grad(UnaryOp::Sigmoid, &ac, &yc, &bc).unwrap(),
        );
        same("full", &Array::full(&g, &[n], 2.5).unwrap(), &Array::full(&Device::Cpu, &[n], 2.5).unwrap());
    }
}

#[test]
fn random_windows_continue_one_stream() {
    let g = small_bindings();
    // element i depends on (seed, i) alone, so windowed and CPU tensors agree everywhere
    same("uniform", &uniform(&g, &[N], 99, -1.0, 2.0).unwrap(), &uniform(&Device::Cpu, &[N], 99, -1.0, 2.0).unwrap());
    let (ng, nc) = (normal(&g, &[N], 7, 0.5, 2.0).unwrap(), normal(&Device::Cpu, &[N], 7, 0.5, 2.0).unwrap());
    // Box-Muller through the GPU's log and cos: ~1e-5 of the tensor's scale (see kernels::random)
    let (a, b) = (ng.to_f64_vec().unwrap(), nc.to_f64_vec().unwrap());
    let worst = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max);
    assert!(worst < 2.0 * 1e-4, "normal: worst difference {worst}");
}

#[test]
fn optimizer_steps_cover_every_window() {
    let g = small_bindings();
    let mut rng = Rng::new(6);
    let shape = [7, N / 7];
    let n = 7 * (N / 7);
    let sgd = SgdParams { lr: 0.05, momentum: 0.9, dampening: 0.0, weight_decay: 1e-3, nesterov: true };
    let (pg, pc) = pair(&g, &rng.vec(n), &shape);
    let (bg, bc) = pair(&g, &rng.vec(n), &shape);
    let (mg, mc) = pair(&g, &rng.vec(n), &shape);
    let (vg, vc) = pair(&g, &rng.vec_positive(n), &shape);
    for step in 1..4 {
        let (gg, gc) = pair(&g, &rng.vec(n), &shape);
        sgd1(&pg, &gg, Some(&bg), &sgd, step == 1).unwrap();
        sgd1(&pc, &gc, Some(&bc), &sgd, step == 1).unwrap();
        let adam = AdamParams {
            lr: 1e-2,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.01,
            decoupled_weight_decay: true,
            step,
        };
        adam1(&pg, &gg, &mg, &vg, &adam).unwrap();
        adam1(&pc, &gc, &mc, &vc, &adam).unwrap();
    }
    same("param", &pg, &pc);
    same("momentum", &bg, &bc);
    same("exp_avg_sq", &vg, &vc);
}

/// A linear layer whose weight (300 x 150 floats, 180 KB) takes several bindings: the forward
/// product with its bias and relu splits N, the input gradient K, the weight gradient M.
#[test]
fn linear_products_in_parts_match_the_cpu() {
    let g = small_bindings();
    let mut rng = Rng::new(8);
    let (batch, inputs, outputs) = (3, 150, 300);
    let (xg, xc) = pair(&g, &rng.vec(batch * inputs), &[batch, inputs]);
    let (wg, wc) = pair(&g, &rng.vec(outputs * inputs), &[outputs, inputs]);
    let (bg, bc) = pair(&g, &rng.vec(outputs), &[outputs]);
    let (dg, dc) = pair(&g, &rng.vec(batch * outputs), &[batch, outputs]);
    fn fused(b: &Array) -> Epilogue<'_> {
        Epilogue { bias: Some(Bias::PerColumn(b)), activation: Some(UnaryOp::Relu) }
    }
    same(
        "relu(x W^T + b)",
        &matmul_fused(&xg, &wg, false, true, &fused(&bg)).unwrap(),
        &matmul_fused(&xc, &wc, false, true, &fused(&bc)).unwrap(),
    );
    same("g W", &matmul(&dg, &wg, false, false).unwrap(), &matmul(&dc, &wc, false, false).unwrap());
    same("g^T x", &matmul(&dg, &xg, true, false).unwrap(), &matmul(&dc, &xc, true, false).unwrap());
    // a transposed large A (cut along K) with a per-row bias, and a per-row bias on a large C
    // (cut along M)
    let (tg, tc) = pair(&g, &rng.vec(outputs * 60), &[outputs, 60]);
    let (rg, rc) = pair(&g, &rng.vec(60), &[60]);
    fn per_row(b: &Array) -> Epilogue<'_> {
        Epilogue { bias: Some(Bias::PerRow(b)), activation: Some(UnaryOp::Tanh) }
    }
    same(
        "tanh(T^T W + b)",
        &matmul_fused(&tg, &wg, true, false, &per_row(&rg)).unwrap(),
        &matmul_fused(&tc, &wc, true, false, &per_row(&rc)).unwrap(),
    );
    let (cg, cc) = pair(&g, &rng.vec(outputs), &[outputs]);
    same(
        "tanh(W x^T + b)",
        &matmul_fused(&wg, &xg, false, true, &per_row(&cg)).unwrap(),
        &matmul_fused(&wc, &xc, false, true, &per_row(&cc)).unwrap(),
    );
}

#[test]
fn rows_copy_and_write_back() {
    let g = small_bindings();
    let mut rng = Rng::new(9);
    let (xg, xc) = pair(&g, &rng.vec(400 * 60), &[400, 60]);
    let part = xg.rows(100, 250).unwrap();
    same("rows", &part, &xc.rows(100, 250).unwrap());
    let target = Array::zeros(&g, &[400, 60]).unwrap();
    target.write_rows(100, &part).unwrap();
    let v = target.to_f32_vec().unwrap();
    assert!(v[..6000].iter().all(|&x| x == 0.0) && v[21000..].iter().all(|&x| x == 0.0));
    assert_eq!(&v[6000..21000], part.to_f32_vec().unwrap().as_slice());
    assert!(xg.rows(300, 101).unwrap_err().to_string().contains("rows"));
}

#[test]
fn a_kernel_that_binds_whole_refuses_a_large_array_naming_it() {
    let g = small_bindings();
    let a = Array::full(&g, &[N, 2], 1.0).unwrap();
    let b = Array::full(&g, &[1, 2], 1.0).unwrap();
    let err = binary(BinaryOp::Add, &a, &b).unwrap_err(); // broadcasting indexes by strides
    assert!(matches!(err, DeviceError::TooLarge { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("elementwise") && msg.contains(&format!("[{N}, 2]")) && msg.contains(&LIMIT.to_string()),
        "{msg}"
    );
}
