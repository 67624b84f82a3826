//! Fused recurrent cells. Parity: each GPU kernel against the CPU device (the f64 reference) on
//! random nonzero inputs with poisoned outputs, bound f32 1e-5 relative, at sizes that are not
//! multiples of the workgroup. Gradient check: each backward reference against central
//! differences of its own forward reference in f64, contracted with random upstream gradients.

use ferrograd_device::kernels::rnn::{
    gru_cell_backward, gru_cell_forward, lstm_cell_backward, lstm_cell_forward, reference, rnn_cell_backward,
    rnn_cell_forward,
};
use ferrograd_device::testing::{assert_close, gpu, Rng, F32_TOL};
use ferrograd_device::{Array, Device};

const B: usize = 3;
const H: usize = 37;

/// The same random f32 values on the GPU and on the CPU device.
struct Input {
    gpu: Array,
    cpu: Array,
}

fn input(g: &Device, rng: &mut Rng, shape: &[usize]) -> Input {
    let v = rng.vec(shape.iter().product());
    Input { gpu: Array::from_f32(g, &v, shape).unwrap(), cpu: Array::from_f32(&Device::Cpu, &v, shape).unwrap() }
}

fn same(what: &str, gpu: &Array, cpu: &Array) {
    assert_eq!(gpu.shape(), cpu.shape(), "{what}");
    assert_close(what, &gpu.to_f64_vec().unwrap(), &cpu.to_f64_vec().unwrap(), F32_TOL);
}

/// Reuse a CPU-device result as an input on both devices (values rounded to f32).
fn both(g: &Device, cpu: &Array) -> Input {
    let v = cpu.to_f32_vec().unwrap();
    Input {
        gpu: Array::from_f32(g, &v, cpu.shape()).unwrap(),
        cpu: Array::from_f32(&Device::Cpu, &v, cpu.shape()).unwrap(),
    }
}

#[test]
fn rnn_cell_matches_reference() {
    let g = gpu();
    let mut rng = Rng::new(11);
    let (xw, hw) = (input(&g, &mut rng, &[B, H]), input(&g, &mut rng, &[B, H]));
    let (bih, bhh) = (input(&g, &mut rng, &[H]), input(&g, &mut rng, &[H]));
    let h_gpu = rnn_cell_forward(&xw.gpu, &hw.gpu, &bih.gpu, &bhh.gpu).unwrap();
    let h_cpu = rnn_cell_forward(&xw.cpu, &hw.cpu, &bih.cpu, &bhh.cpu).unwrap();
    same("rnn h_t", &h_gpu, &h_cpu);

    let ht = both(&g, &h_cpu);
    let up = input(&g, &mut rng, &[B, H]);
    same(
        "rnn grad pre-activation",
        &rnn_cell_backward(&ht.gpu, &up.gpu).unwrap(),
        &rnn_cell_backward(&ht.cpu, &up.cpu).unwrap(),
    );
}

#[test]
fn lstm_cell_matches_reference() {
    let g = gpu();
    let mut rng = Rng::new(12);
    let (xw, hw) = (input(&g, &mut rng, &[B, 4 * H]), input(&g, &mut rng, &[B, 4 * H]));
    let (bih, bhh) = (input(&g, &mut rng, &[4 * H]), input(&g, &mut rng, &[4 * H]));
    let c_prev = input(&g, &mut rng, &[B, H]);
    let (h_g, c_g, gates_g) = lstm_cell_forward(&xw.gpu, &hw.gpu, &bih.gpu, &bhh.gpu, &c_prev.gpu).unwrap();
    let (h_c, c_c, gates_c) = lstm_cell_forward(&xw.cpu, &hw.cpu, &bih.cpu, &bhh.cpu, &c_prev.cpu).unwrap();
    same("lstm h_t", &h_g, &h_c);
    same("lstm c_t", &c_g, &c_c);
    same("lstm gates", &gates_g, &gates_c);

    let (gates, c_t) = (both(&g, &gates_c), both(&g, &c_c));
    let (up_h, up_c) = (input(&g, &mut rng, &[B, H]), input(&g, &mut rng, &[B, H]));
    let (ga_g, gc_g) = lstm_cell_backward(&gates.gpu, &c_prev.gpu, &c_t.gpu, &up_h.gpu, &up_c.gpu).unwrap();
    let (ga_c, gc_c) = lstm_cell_backward(&gates.cpu, &c_prev.cpu, &c_t.cpu, &up_h.cpu, &up_c.cpu).unwrap();
    same("lstm grad pre-activations", &ga_g, &ga_c);
    same("lstm grad c_prev", &gc_g, &gc_c);
}

#[test]
fn gru_cell_matches_reference() {
    let g = gpu();
    let mut rng = Rng::new(13);
    let (xw, hw) = (input(&g, &mut rng, &[B, 3 * H]), input(&g, &mut rng, &[B, 3 * H]));
    let (bih, bhh) = (input(&g, &mut rng, &[3 * H]), input(&g, &mut rng, &[3 * H]));
    let h_prev = input(&g, &mut rng, &[B, H]);
    let (h_g, saved_g) = gru_cell_forward(&xw.gpu, &hw.gpu, &bih.gpu, &bhh.gpu, &h_prev.gpu).unwrap();
    let (h_c, saved_c) = gru_cell_forward(&xw.cpu, &hw.cpu, &bih.cpu, &bhh.cpu, &h_prev.cpu).unwrap();
    same("gru h_t", &h_g, &h_c);
    same("gru saved", &saved_g, &saved_c);

    let saved = both(&g, &saved_c);
    let up = input(&g, &mut rng, &[B, H]);
    let (gx_g, ghw_g, ghp_g) = gru_cell_backward(&saved.gpu, &h_prev.gpu, &up.gpu).unwrap();
    let (gx_c, ghw_c, ghp_c) = gru_cell_backward(&saved.cpu, &h_prev.cpu, &up.cpu).unwrap();
    same("gru grad x-side", &gx_g, &gx_c);
    same("gru grad h-side", &ghw_g, &ghw_c);
    same("gru grad h_prev direct", &ghp_g, &ghp_c);
}

// ---- gradient checks, all in f64 on the references ----

fn rand64(rng: &mut Rng, n: usize) -> Vec<f64> {
    rng.vec(n).into_iter().map(f64::from).collect()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Central differences of `loss` with respect to every coordinate of `x`.
fn numeric_grad(x: &[f64], loss: impl Fn(&[f64]) -> f64) -> Vec<f64> {
    let eps = 1e-6;
    (0..x.len())
        .map(|i| {
            let (mut plus, mut minus) = (x.to_vec(), x.to_vec());
            plus[i] += eps;
            minus[i] -= eps;
            (loss(&plus) - loss(&minus)) / (2.0 * eps)
        })
        .collect()
}

const FD_TOL: f64 = 1e-6;

#[test]
fn rnn_backward_matches_finite_differences() {
    let mut rng = Rng::new(21);
    let (xw, hw) = (rand64(&mut rng, B * H), rand64(&mut rng, B * H));
    let (bih, bhh, up) = (rand64(&mut rng, H), rand64(&mut rng, H), rand64(&mut rng, B * H));
    let loss = |xw: &[f64], hw: &[f64]| dot(&up, &reference::rnn_forward(xw, hw, &bih, &bhh, H));
    let ga = reference::rnn_backward(&reference::rnn_forward(&xw, &hw, &bih, &bhh, H), &up);
    assert_close("rnn d/dxw", &ga, &numeric_grad(&xw, |v| loss(v, &hw)), FD_TOL);
    assert_close("rnn d/dhw", &ga, &numeric_grad(&hw, |v| loss(&xw, v)), FD_TOL);
}

#[test]
fn lstm_backward_matches_finite_differences() {
    let mut rng = Rng::new(22);
    let (xw, hw) = (rand64(&mut rng, B * 4 * H), rand64(&mut rng, B * 4 * H));
    let (bih, bhh) = (rand64(&mut rng, 4 * H), rand64(&mut rng, 4 * H));
    let c_prev = rand64(&mut rng, B * H);
    let (up_h, up_c) = (rand64(&mut rng, B * H), rand64(&mut rng, B * H));
    // L = <up_h, h_t> + <up_c, c_t>: up_c plays the gradient arriving at c_t from step t+1
    let loss = |xw: &[f64], hw: &[f64], c_prev: &[f64]| {
        let (h, c, _) = reference::lstm_forward(xw, hw, &bih, &bhh, c_prev, H);
        dot(&up_h, &h) + dot(&up_c, &c)
    };
    let (_, c_t, gates) = reference::lstm_forward(&xw, &hw, &bih, &bhh, &c_prev, H);
    let (ga, gcp) = reference::lstm_backward(&gates, &c_prev, &c_t, &up_h, &up_c, H);
    assert_close("lstm d/dxw", &ga, &numeric_grad(&xw, |v| loss(v, &hw, &c_prev)), FD_TOL);
    assert_close("lstm d/dhw", &ga, &numeric_grad(&hw, |v| loss(&xw, v, &c_prev)), FD_TOL);
    assert_close("lstm d/dc_prev", &gcp, &numeric_grad(&c_prev, |v| loss(&xw, &hw, v)), FD_TOL);
}

#[test]
fn gru_backward_matches_finite_differences() {
    let mut rng = Rng::new(23);
    let (xw, hw) = (rand64(&mut rng, B * 3 * H), rand64(&mut rng, B * 3 * H));
    let (bih, bhh) = (rand64(&mut rng, 3 * H), rand64(&mut rng, 3 * H));
    let (h_prev, up) = (rand64(&mut rng, B * H), rand64(&mut rng, B * H));
    let loss =
        |xw: &[f64], hw: &[f64], h_prev: &[f64]| dot(&up, &reference::gru_forward(xw, hw, &bih, &bhh, h_prev, H).0);
    let (_, saved) = reference::gru_forward(&xw, &hw, &bih, &bhh, &h_prev, H);
    let (gx, ghw, ghp) = reference::gru_backward(&saved, &h_prev, &up, H);
    assert_close("gru d/dxw", &gx, &numeric_grad(&xw, |v| loss(v, &hw, &h_prev)), FD_TOL);
    assert_close("gru d/dhw", &ghw, &numeric_grad(&hw, |v| loss(&xw, v, &h_prev)), FD_TOL);
    // with hw held fixed, only the direct path z * h_prev depends on h_prev
    assert_close("gru d/dh_prev direct", &ghp, &numeric_grad(&h_prev, |v| loss(&xw, &hw, v)), FD_TOL);
}

#[test]
fn gru_backward_biases_follow_their_sides() {
    // grad b_ih = batch sum of the x-side grads, grad b_hh = batch sum of the h-side grads
    let mut rng = Rng::new(24);
    let (xw, hw) = (rand64(&mut rng, B * 3 * H), rand64(&mut rng, B * 3 * H));
    let (bih, bhh) = (rand64(&mut rng, 3 * H), rand64(&mut rng, 3 * H));
    let (h_prev, up) = (rand64(&mut rng, B * H), rand64(&mut rng, B * H));
    let loss = |bih: &[f64], bhh: &[f64]| dot(&up, &reference::gru_forward(&xw, &hw, bih, bhh, &h_prev, H).0);
    let (_, saved) = reference::gru_forward(&xw, &hw, &bih, &bhh, &h_prev, H);
    let (gx, ghw, _) = reference::gru_backward(&saved, &h_prev, &up, H);
    let batch_sum = |g: &[f64]| (0..3 * H).map(|k| (0..B).map(|b| g[b * 3 * H + k]).sum()).collect::<Vec<f64>>();
    assert_close("gru d/db_ih", &batch_sum(&gx), &numeric_grad(&bih, |v| loss(v, &bhh)), FD_TOL);
    assert_close("gru d/db_hh", &batch_sum(&ghw), &numeric_grad(&bhh, |v| loss(&bih, v)), FD_TOL);
}

// ---- errors and edges ----

#[test]
fn mismatched_shapes_are_an_error_naming_the_kernel_and_shapes() {
    let g = gpu();
    let mut rng = Rng::new(31);
    let xw = input(&g, &mut rng, &[2, 12]).gpu;
    let hw = input(&g, &mut rng, &[2, 12]).gpu;
    let bias = input(&g, &mut rng, &[12]).gpu;
    let c_prev = input(&g, &mut rng, &[2, 4]).gpu; // wants xw [2, 16]
    let err = lstm_cell_forward(&xw, &hw, &bias, &bias, &c_prev).unwrap_err().to_string();
    assert!(err.contains("lstm_forward") && err.contains("[2, 12]") && err.contains("[2, 16]"), "{err}");

    let err = rnn_cell_forward(&bias, &bias, &bias, &bias).unwrap_err().to_string();
    assert!(err.contains("rnn_forward") && err.contains("[12]"), "{err}");

    let on_cpu = input(&g, &mut rng, &[2, 4]).cpu;
    let err = gru_cell_backward(&input(&g, &mut rng, &[2, 16]).gpu, &c_prev, &on_cpu).unwrap_err().to_string();
    assert!(err.contains("gru_backward"), "{err}");
}

#[test]
fn an_empty_batch_gives_empty_outputs() {
    let g = gpu();
    let mut rng = Rng::new(32);
    let xw = input(&g, &mut rng, &[0, 3 * H]).gpu;
    let bias = input(&g, &mut rng, &[3 * H]).gpu;
    let h_prev = input(&g, &mut rng, &[0, H]).gpu;
    let (h, saved) = gru_cell_forward(&xw, &xw, &bias, &bias, &h_prev).unwrap();
    assert_eq!((h.shape(), saved.shape()), (&[0, H][..], &[0, 4 * H][..]));
    assert!(h.to_f32_vec().unwrap().is_empty());
}

#[test]
fn many_cells_span_more_than_one_workgroup() {
    // 5 x 300 = 1500 cells: several workgroups, the last one partial
    let g = gpu();
    let mut rng = Rng::new(33);
    let (b, h) = (5, 300);
    let (xw, hw) = (input(&g, &mut rng, &[b, 4 * h]), input(&g, &mut rng, &[b, 4 * h]));
    let (bih, bhh) = (input(&g, &mut rng, &[4 * h]), input(&g, &mut rng, &[4 * h]));
    let c_prev = input(&g, &mut rng, &[b, h]);
    let (h_g, c_g, _) = lstm_cell_forward(&xw.gpu, &hw.gpu, &bih.gpu, &bhh.gpu, &c_prev.gpu).unwrap();
    let (h_c, c_c, _) = lstm_cell_forward(&xw.cpu, &hw.cpu, &bih.cpu, &bhh.cpu, &c_prev.cpu).unwrap();
    same("lstm h_t (large)", &h_g, &h_c);
    same("lstm c_t (large)", &c_g, &c_c);
}
