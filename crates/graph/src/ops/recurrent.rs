//! Recurrent cell steps as autodiff ops, on the fused kernels of `kernels::rnn` (PyTorch gate
//! order: LSTM i, f, g, o; GRU r, z, n).
//!
//! Each op takes the step's input projection `xw = x_t W_ih^T` and the hidden projection
//! `hw = h_{t-1} W_hh^T` (both WITHOUT bias) as tensors made by ordinary `matmul` ops, so the
//! gradients of `W_ih`, `W_hh`, `x` and `h_{t-1}` flow through those matmuls; the cell op
//! itself adds the biases, applies the gates and returns the gradients of `xw`, `hw`, both
//! biases and the carried state. [`unbind_steps`] cuts a projection made for all time steps
//! by one matmul into per-step tensors.

use crate::error::{shape_err, Result};
use crate::ops::same_device;
use crate::tensor::Tensor;
use ferrograd_device::kernels::copy::{concat, narrow};
use ferrograd_device::kernels::reduce::{reduce, ReduceOp};
use ferrograd_device::kernels::rnn;
use ferrograd_device::Array;

/// Sum over the batch dim: the gradient of a bias broadcast over `[B, G]`.
fn batch_sum(g: &Array) -> Result<Array> {
    Ok(reduce(ReduceOp::Sum, g, &[0], false)?)
}

/// `grads[i]` for the inputs that want a gradient, `None` for the others.
fn wanted(needs: &[bool], grads: Vec<Array>) -> Vec<Option<Array>> {
    grads.into_iter().zip(needs).map(|(g, &n)| n.then_some(g)).collect()
}

/// `h_t = tanh(xw + b_ih + hw + b_hh)`; `xw, hw: [B, H]`, `b_ih, b_hh: [H]`.
pub fn rnn_cell(xw: &Tensor, hw: &Tensor, b_ih: &Tensor, b_hh: &Tensor) -> Result<Tensor> {
    same_device("rnn_cell", &[xw, hw, b_ih, b_hh])?;
    // gate math in f32 (the autocast policy): f16 projections are cast to it
    let (xw, hw) = (&xw.in_f32()?, &hw.in_f32()?);
    let h_t = rnn::rnn_cell_forward(&xw.data(), &hw.data(), &b_ih.data(), &b_hh.data())?;
    let saved = h_t.clone();
    Ok(Tensor::from_op("rnn_cell", h_t, &[xw, hw, b_ih, b_hh], move |g, needs| {
        let ga = rnn::rnn_cell_backward(&saved, g)?;
        let gb = if needs[2] || needs[3] { batch_sum(&ga)? } else { ga.clone() };
        Ok(wanted(needs, vec![ga.clone(), ga, gb.clone(), gb]))
    }))
}

/// One LSTM step: `xw, hw: [B, 4H]`, `b_ih, b_hh: [4H]`, `c_prev: [B, H]` -> `(h_t, c_t)`.
///
/// The op's single tape output is `[2, B, H]` (h_t then c_t); the two states are slices of it,
/// so a gradient reaching either one flows back through the same fused backward kernel.
pub fn lstm_cell(xw: &Tensor, hw: &Tensor, b_ih: &Tensor, b_hh: &Tensor, c_prev: &Tensor) -> Result<(Tensor, Tensor)> {
    same_device("lstm_cell", &[xw, hw, b_ih, b_hh, c_prev])?;
    let (xw, hw) = (&xw.in_f32()?, &hw.in_f32()?);
    let cp = c_prev.data();
    let (h_t, c_t, gates) = rnn::lstm_cell_forward(&xw.data(), &hw.data(), &b_ih.data(), &b_hh.data(), &cp)?;
    let (b, h) = (cp.shape()[0], cp.shape()[1]);
    let both = concat(&[&h_t.reshape(&[1, b, h])?, &c_t.reshape(&[1, b, h])?], 0)?;
    let out = Tensor::from_op("lstm_cell", both, &[xw, hw, b_ih, b_hh, c_prev], move |g, needs| {
        let grad_h = narrow(g, 0, 0, 1)?.reshape(&[b, h])?;
        let grad_c = narrow(g, 0, 1, 1)?.reshape(&[b, h])?;
        let (ga, gcp) = rnn::lstm_cell_backward(&gates, &cp, &c_t, &grad_h, &grad_c)?;
        let gb = if needs[2] || needs[3] { batch_sum(&ga)? } else { ga.clone() };
        Ok(wanted(needs, vec![ga.clone(), ga, gb.clone(), gb, gcp]))
    });
    Ok((out.select(0, 0)?, out.select(0, 1)?))
}

/// One GRU step: `xw, hw: [B, 3H]` (bias-free projections), `b_ih, b_hh: [3H]`,
/// `h_prev: [B, H]` -> `h_t`. The reset gate scales `hw_n + b_hn`, as in PyTorch.
pub fn gru_cell(xw: &Tensor, hw: &Tensor, b_ih: &Tensor, b_hh: &Tensor, h_prev: &Tensor) -> Result<Tensor> {
    same_device("gru_cell", &[xw, hw, b_ih, b_hh, h_prev])?;
    let (xw, hw) = (&xw.in_f32()?, &hw.in_f32()?);
    let hp = h_prev.data();
    let (h_t, saved) = rnn::gru_cell_forward(&xw.data(), &hw.data(), &b_ih.data(), &b_hh.data(), &hp)?;
    Ok(Tensor::from_op("gru_cell", h_t, &[xw, hw, b_ih, b_hh, h_prev], move |g, needs| {
        let (gx, ghw, ghp) = rnn::gru_cell_backward(&saved, &hp, g)?;
        let gbi = if needs[2] { batch_sum(&gx)? } else { gx.clone() };
        let gbh = if needs[3] { batch_sum(&ghw)? } else { ghw.clone() };
        Ok(wanted(needs, vec![gx, ghw, gbi, gbh, ghp]))
    }))
}

/// The slices `x[t]` of `x: [T, ...]`, each shaped `x.shape()[1..]`.
///
/// Cut by halving: the backward of a `narrow` scatters into a full-size gradient, so `T`
/// narrows of the whole would sum `T` full-size arrays (quadratic in `T`); halving keeps it
/// at `T log T` elements.
pub fn unbind_steps(x: &Tensor) -> Result<Vec<Tensor>> {
    let shape = x.shape();
    if shape.is_empty() {
        return shape_err("unbind_steps", "a 0-dimensional tensor has no steps");
    }
    let mut out = Vec::with_capacity(shape[0]);
    halve(x, shape[0], &shape[1..], &mut out)?;
    Ok(out)
}

fn halve(x: &Tensor, len: usize, rest: &[usize], out: &mut Vec<Tensor>) -> Result<()> {
    match len {
        0 => Ok(()),
        1 => {
            out.push(x.reshape_to(rest)?);
            Ok(())
        }
        _ => {
            let mid = len / 2;
            halve(&x.narrow(0, 0, mid)?, mid, rest, out)?;
            halve(&x.narrow(0, mid, len - mid)?, len - mid, rest, out)
        }
    }
}
