//! Fused recurrent cells: tanh RNN, LSTM and GRU, one launch per time step forward and one
//! backward, with PyTorch's gate order (LSTM i, f, g, o; GRU r, z, n) so that weights load
//! from `torch.nn.RNN/LSTM/GRU`. WGSL: `shaders/rnn.wgsl`.
//!
//! The caller does the matmuls: `xw = x_t W_ih^T` (for all steps at once, before the loop) and
//! `hw = h_{t-1} W_hh^T` (per step, without bias); these kernels add the biases, apply the gate
//! nonlinearities and combine the states. The backward kernels return gradients of the
//! pre-activations, which the caller turns into gradients of W, b, x and h_{t-1} with matmuls
//! and reductions over the batch.

use crate::array::Array;
use crate::device::Device;
use crate::dtype::DType;
use crate::error::{shape_err, Result};
use crate::gpu::{grid_1d, GpuContext, Kernel};
use crate::kernels::common::{param_bytes, require_dtype, same_device};

crate::shader!(RNN, "rnn");

/// One operand of a cell: its name in errors, the array, and the shape it must have.
struct Operand<'a> {
    name: &'static str,
    array: &'a Array,
    want: Vec<usize>,
}

/// Every operand f32 on one device with its expected shape; a mismatch lists all shapes.
fn check(kernel: &'static str, operands: &[Operand]) -> Result<Device> {
    let arrays: Vec<&Array> = operands.iter().map(|o| o.array).collect();
    let device = same_device(kernel, &arrays)?;
    for o in operands {
        require_dtype(kernel, o.array, DType::F32)?;
    }
    if operands.iter().any(|o| o.array.shape() != o.want.as_slice()) {
        let got: Vec<String> = operands.iter().map(|o| format!("{} {:?}", o.name, o.array.shape())).collect();
        let want: Vec<String> = operands.iter().map(|o| format!("{} {:?}", o.name, o.want)).collect();
        return shape_err(kernel, format!("got {}; expected {}", got.join(", "), want.join(", ")));
    }
    Ok(device)
}

/// `[B, H]` of the array that fixes the cell's batch and hidden size.
fn batch_hidden(kernel: &'static str, name: &str, a: &Array) -> Result<(usize, usize)> {
    match a.shape() {
        &[b, h] => Ok((b, h)),
        s => shape_err(kernel, format!("{name} must be [B, H], got {s:?}")),
    }
}

/// Record the entry point `kernel` over `b * h` invocations; buffers are inputs then outputs.
fn launch(g: &GpuContext, kernel: &'static str, b: usize, h: usize, arrays: &[&Array]) -> Result<()> {
    let n = b * h;
    // the widest operand, [B, 4H], is indexed with u32
    if u32::try_from(4 * n).is_err() {
        return shape_err(kernel, format!("{b} x {h} cells exceed u32 indexing"));
    }
    let params = [n as u32, h as u32];
    let bufs: Vec<_> = arrays.iter().map(|a| a.expect_gpu(kernel)).collect::<Result<_>>()?;
    g.dispatch(&Kernel::new(&RNN, kernel), param_bytes(&params), &bufs, grid_1d(n, 256))
}

fn output(device: &Device, shape: &[usize], kernel: &'static str) -> Result<Array> {
    Array::empty(device, shape, DType::F32, kernel)
}

/// `h_t = tanh(xw + b_ih + hw + b_hh)` for `xw, hw: [B, H]`, `b_ih, b_hh: [H]`.
pub fn rnn_cell_forward(xw: &Array, hw: &Array, b_ih: &Array, b_hh: &Array) -> Result<Array> {
    const K: &str = "rnn_forward";
    let (b, h) = batch_hidden(K, "xw", xw)?;
    let device = check(
        K,
        &[
            Operand { name: "xw", array: xw, want: vec![b, h] },
            Operand { name: "hw", array: hw, want: vec![b, h] },
            Operand { name: "b_ih", array: b_ih, want: vec![h] },
            Operand { name: "b_hh", array: b_hh, want: vec![h] },
        ],
    )?;
    match &device {
        Device::Cpu => Ok(Array::cpu(
            reference::rnn_forward(&xw.cpu_data(), &hw.cpu_data(), &b_ih.cpu_data(), &b_hh.cpu_data(), h),
            &[b, h],
            DType::F32,
        )),
        Device::Gpu(g) => {
            let out = output(&device, &[b, h], K)?;
            launch(g, K, b, h, &[xw, hw, b_ih, b_hh, &out])?;
            Ok(out)
        }
    }
}

/// Gradient of the RNN cell's pre-activation given its output `h_t` and `grad_h`, both `[B, H]`.
pub fn rnn_cell_backward(h_t: &Array, grad_h: &Array) -> Result<Array> {
    const K: &str = "rnn_backward";
    let (b, h) = batch_hidden(K, "h_t", h_t)?;
    let device = check(
        K,
        &[
            Operand { name: "h_t", array: h_t, want: vec![b, h] },
            Operand { name: "grad_h", array: grad_h, want: vec![b, h] },
        ],
    )?;
    match &device {
        Device::Cpu => {
            Ok(Array::cpu(reference::rnn_backward(&h_t.cpu_data(), &grad_h.cpu_data()), &[b, h], DType::F32))
        }
        Device::Gpu(g) => {
            let out = output(&device, &[b, h], K)?;
            launch(g, K, b, h, &[h_t, grad_h, &out])?;
            Ok(out)
        }
    }
}

/// One LSTM step. `xw, hw: [B, 4H]` (gates i, f, g, o), `b_ih, b_hh: [4H]`, `c_prev: [B, H]`.
/// Returns `(h_t, c_t, gates)` where `gates: [B, 4H]` holds the activated i, f, g, o that
/// `lstm_cell_backward` needs.
pub fn lstm_cell_forward(
    xw: &Array,
    hw: &Array,
    b_ih: &Array,
    b_hh: &Array,
    c_prev: &Array,
) -> Result<(Array, Array, Array)> {
    const K: &str = "lstm_forward";
    let (b, h) = batch_hidden(K, "c_prev", c_prev)?;
    let device = check(
        K,
        &[
            Operand { name: "xw", array: xw, want: vec![b, 4 * h] },
            Operand { name: "hw", array: hw, want: vec![b, 4 * h] },
            Operand { name: "b_ih", array: b_ih, want: vec![4 * h] },
            Operand { name: "b_hh", array: b_hh, want: vec![4 * h] },
            Operand { name: "c_prev", array: c_prev, want: vec![b, h] },
        ],
    )?;
    match &device {
        Device::Cpu => {
            let (ht, ct, gates) = reference::lstm_forward(
                &xw.cpu_data(),
                &hw.cpu_data(),
                &b_ih.cpu_data(),
                &b_hh.cpu_data(),
                &c_prev.cpu_data(),
                h,
            );
            Ok((
                Array::cpu(ht, &[b, h], DType::F32),
                Array::cpu(ct, &[b, h], DType::F32),
                Array::cpu(gates, &[b, 4 * h], DType::F32),
            ))
        }
        Device::Gpu(g) => {
            let (ht, ct) = (output(&device, &[b, h], K)?, output(&device, &[b, h], K)?);
            let gates = output(&device, &[b, 4 * h], K)?;
            launch(g, K, b, h, &[xw, hw, b_ih, b_hh, c_prev, &ht, &ct, &gates])?;
            Ok((ht, ct, gates))
        }
    }
}

/// Backward of one LSTM step. `gates: [B, 4H]` from the forward, `c_prev, c_t, grad_h: [B, H]`,
/// and `grad_c: [B, H]`, the gradient reaching `c_t` from step t+1 (zeros at the last step).
/// Returns `(grad of the pre-activations [B, 4H], grad of c_prev [B, H])`; the pre-activation
/// gradient is the gradient of both `xw` and `hw` (and of both biases).
pub fn lstm_cell_backward(
    gates: &Array,
    c_prev: &Array,
    c_t: &Array,
    grad_h: &Array,
    grad_c: &Array,
) -> Result<(Array, Array)> {
    const K: &str = "lstm_backward";
    let (b, h) = batch_hidden(K, "c_prev", c_prev)?;
    let device = check(
        K,
        &[
            Operand { name: "gates", array: gates, want: vec![b, 4 * h] },
            Operand { name: "c_prev", array: c_prev, want: vec![b, h] },
            Operand { name: "c_t", array: c_t, want: vec![b, h] },
            Operand { name: "grad_h", array: grad_h, want: vec![b, h] },
            Operand { name: "grad_c", array: grad_c, want: vec![b, h] },
        ],
    )?;
    match &device {
        Device::Cpu => {
            let (ga, gc) = reference::lstm_backward(
                &gates.cpu_data(),
                &c_prev.cpu_data(),
                &c_t.cpu_data(),
                &grad_h.cpu_data(),
                &grad_c.cpu_data(),
                h,
            );
            Ok((Array::cpu(ga, &[b, 4 * h], DType::F32), Array::cpu(gc, &[b, h], DType::F32)))
        }
        Device::Gpu(g) => {
            let (ga, gc) = (output(&device, &[b, 4 * h], K)?, output(&device, &[b, h], K)?);
            launch(g, K, b, h, &[gates, c_prev, c_t, grad_h, grad_c, &ga, &gc])?;
            Ok((ga, gc))
        }
    }
}

/// One GRU step. `xw: [B, 3H]` (gates r, z, n), `hw: [B, 3H]` WITHOUT bias, `b_ih, b_hh: [3H]`,
/// `h_prev: [B, H]`. Returns `(h_t, saved)` where `saved: [B, 4H]` holds r, z, n and
/// `hw_n + b_hn` for `gru_cell_backward`.
pub fn gru_cell_forward(xw: &Array, hw: &Array, b_ih: &Array, b_hh: &Array, h_prev: &Array) -> Result<(Array, Array)> {
    const K: &str = "gru_forward";
    let (b, h) = batch_hidden(K, "h_prev", h_prev)?;
    let device = check(
        K,
        &[
            Operand { name: "xw", array: xw, want: vec![b, 3 * h] },
            Operand { name: "hw", array: hw, want: vec![b, 3 * h] },
            Operand { name: "b_ih", array: b_ih, want: vec![3 * h] },
            Operand { name: "b_hh", array: b_hh, want: vec![3 * h] },
            Operand { name: "h_prev", array: h_prev, want: vec![b, h] },
        ],
    )?;
    match &device {
        Device::Cpu => {
            let (ht, saved) = reference::gru_forward(
                &xw.cpu_data(),
                &hw.cpu_data(),
                &b_ih.cpu_data(),
                &b_hh.cpu_data(),
                &h_prev.cpu_data(),
                h,
            );
            Ok((Array::cpu(ht, &[b, h], DType::F32), Array::cpu(saved, &[b, 4 * h], DType::F32)))
        }
        Device::Gpu(g) => {
            let (ht, saved) = (output(&device, &[b, h], K)?, output(&device, &[b, 4 * h], K)?);
            launch(g, K, b, h, &[xw, hw, b_ih, b_hh, h_prev, &ht, &saved])?;
            Ok((ht, saved))
        }
    }
}

/// Backward of one GRU step. `saved: [B, 4H]` from the forward, `h_prev, grad_h: [B, H]`.
/// Returns `(grad of the x-side pre-activations xw + b_ih [B, 3H], grad of the h-side
/// pre-activations hw + b_hh [B, 3H], the direct part of grad h_prev [B, H])`. The two sides
/// differ in the n gate, where the reset gate scales the h side. The full grad of h_prev is
/// the direct part plus `(h-side grad) @ W_hh`.
pub fn gru_cell_backward(saved: &Array, h_prev: &Array, grad_h: &Array) -> Result<(Array, Array, Array)> {
    const K: &str = "gru_backward";
    let (b, h) = batch_hidden(K, "h_prev", h_prev)?;
    let device = check(
        K,
        &[
            Operand { name: "saved", array: saved, want: vec![b, 4 * h] },
            Operand { name: "h_prev", array: h_prev, want: vec![b, h] },
            Operand { name: "grad_h", array: grad_h, want: vec![b, h] },
        ],
    )?;
    match &device {
        Device::Cpu => {
            let (gx, ghw, ghp) = reference::gru_backward(&saved.cpu_data(), &h_prev.cpu_data(), &grad_h.cpu_data(), h);
            Ok((
                Array::cpu(gx, &[b, 3 * h], DType::F32),
                Array::cpu(ghw, &[b, 3 * h], DType::F32),
                Array::cpu(ghp, &[b, h], DType::F32),
            ))
        }
        Device::Gpu(g) => {
            let (gx, ghw) = (output(&device, &[b, 3 * h], K)?, output(&device, &[b, 3 * h], K)?);
            let ghp = output(&device, &[b, h], K)?;
            launch(g, K, b, h, &[saved, h_prev, grad_h, &gx, &ghw, &ghp])?;
            Ok((gx, ghw, ghp))
        }
    }
}

/// CPU twins in f64, written from the cell equations and their chain rule. Slices are
/// row-major; `hidden` is H and the batch is `state.len() / hidden`.
pub mod reference {
    fn sigmoid(x: f64) -> f64 {
        1.0 / (1.0 + (-x).exp())
    }

    fn batch(state_len: usize, hidden: usize) -> usize {
        state_len.checked_div(hidden).unwrap_or(0)
    }

    pub fn rnn_forward(xw: &[f64], hw: &[f64], b_ih: &[f64], b_hh: &[f64], hidden: usize) -> Vec<f64> {
        (0..xw.len())
            .map(|i| {
                let j = i % hidden;
                (xw[i] + b_ih[j] + hw[i] + b_hh[j]).tanh()
            })
            .collect()
    }

    /// d h / d a = 1 - tanh(a)^2 = 1 - h^2.
    pub fn rnn_backward(h_t: &[f64], grad_h: &[f64]) -> Vec<f64> {
        h_t.iter().zip(grad_h).map(|(&h, &g)| g * (1.0 - h * h)).collect()
    }

    /// Returns `(h_t, c_t, gates [B, 4H] as activated i, f, g, o)`.
    pub fn lstm_forward(
        xw: &[f64],
        hw: &[f64],
        b_ih: &[f64],
        b_hh: &[f64],
        c_prev: &[f64],
        hidden: usize,
    ) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
        let (bn, h) = (batch(c_prev.len(), hidden), hidden);
        let (mut ht, mut ct, mut gates) = (vec![0.0; bn * h], vec![0.0; bn * h], vec![0.0; bn * 4 * h]);
        for b in 0..bn {
            for j in 0..h {
                let pre = |k: usize| xw[b * 4 * h + k] + b_ih[k] + hw[b * 4 * h + k] + b_hh[k];
                let i = sigmoid(pre(j));
                let f = sigmoid(pre(h + j));
                let g = pre(2 * h + j).tanh();
                let o = sigmoid(pre(3 * h + j));
                let c = f * c_prev[b * h + j] + i * g;
                ct[b * h + j] = c;
                ht[b * h + j] = o * c.tanh();
                for (k, v) in [i, f, g, o].into_iter().enumerate() {
                    gates[b * 4 * h + k * h + j] = v;
                }
            }
        }
        (ht, ct, gates)
    }

    /// Returns `(grad pre-activations [B, 4H], grad c_prev [B, H])`.
    pub fn lstm_backward(
        gates: &[f64],
        c_prev: &[f64],
        c_t: &[f64],
        grad_h: &[f64],
        grad_c: &[f64],
        hidden: usize,
    ) -> (Vec<f64>, Vec<f64>) {
        let (bn, h) = (batch(c_prev.len(), hidden), hidden);
        let (mut ga, mut gcp) = (vec![0.0; bn * 4 * h], vec![0.0; bn * h]);
        for b in 0..bn {
            for j in 0..h {
                let s = b * h + j;
                let gate = |k: usize| gates[b * 4 * h + k * h + j];
                let (i, f, g, o) = (gate(0), gate(1), gate(2), gate(3));
                let tc = c_t[s].tanh();
                // h = o tanh(c): dL/dc = grad_c + grad_h o (1 - tanh^2 c)
                let dc = grad_c[s] + grad_h[s] * o * (1.0 - tc * tc);
                let d_i = dc * g;
                let d_f = dc * c_prev[s];
                let d_g = dc * i;
                let d_o = grad_h[s] * tc;
                let da = [d_i * i * (1.0 - i), d_f * f * (1.0 - f), d_g * (1.0 - g * g), d_o * o * (1.0 - o)];
                for (k, v) in da.into_iter().enumerate() {
                    ga[b * 4 * h + k * h + j] = v;
                }
                gcp[s] = dc * f;
            }
        }
        (ga, gcp)
    }

    /// Returns `(h_t, saved [B, 4H] as r, z, n, hw_n + b_hn)`.
    pub fn gru_forward(
        xw: &[f64],
        hw: &[f64],
        b_ih: &[f64],
        b_hh: &[f64],
        h_prev: &[f64],
        hidden: usize,
    ) -> (Vec<f64>, Vec<f64>) {
        let (bn, h) = (batch(h_prev.len(), hidden), hidden);
        let (mut ht, mut saved) = (vec![0.0; bn * h], vec![0.0; bn * 4 * h]);
        for b in 0..bn {
            for j in 0..h {
                let x = |k: usize| xw[b * 3 * h + k] + b_ih[k];
                let hh = |k: usize| hw[b * 3 * h + k] + b_hh[k];
                let r = sigmoid(x(j) + hh(j));
                let z = sigmoid(x(h + j) + hh(h + j));
                let hn = hh(2 * h + j);
                let n = (x(2 * h + j) + r * hn).tanh();
                ht[b * h + j] = (1.0 - z) * n + z * h_prev[b * h + j];
                for (k, v) in [r, z, n, hn].into_iter().enumerate() {
                    saved[b * 4 * h + k * h + j] = v;
                }
            }
        }
        (ht, saved)
    }

    /// Returns `(grad x-side pre-activations [B, 3H], grad h-side pre-activations [B, 3H],
    /// direct grad h_prev [B, H])`.
    pub fn gru_backward(
        saved: &[f64],
        h_prev: &[f64],
        grad_h: &[f64],
        hidden: usize,
    ) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
        let (bn, h) = (batch(h_prev.len(), hidden), hidden);
        let (mut gx, mut ghw, mut ghp) = (vec![0.0; bn * 3 * h], vec![0.0; bn * 3 * h], vec![0.0; bn * h]);
        for b in 0..bn {
            for j in 0..h {
                let s = b * h + j;
                let sv = |k: usize| saved[b * 4 * h + k * h + j];
                let (r, z, n, hn) = (sv(0), sv(1), sv(2), sv(3));
                let gh = grad_h[s];
                // h = (1 - z) n + z h_prev
                let d_n = gh * (1.0 - z);
                let d_z = gh * (h_prev[s] - n);
                // n = tanh(a_n), a_n = x_n + r hn
                let da_n = d_n * (1.0 - n * n);
                let d_r = da_n * hn;
                let da_r = d_r * r * (1.0 - r);
                let da_z = d_z * z * (1.0 - z);
                let row = b * 3 * h;
                for (k, (x_side, h_side)) in [(da_r, da_r), (da_z, da_z), (da_n, da_n * r)].into_iter().enumerate() {
                    gx[row + k * h + j] = x_side;
                    ghw[row + k * h + j] = h_side;
                }
                ghp[s] = gh * z;
            }
        }
        (gx, ghw, ghp)
    }
}
