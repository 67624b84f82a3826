//! Attention helpers built on the host and uploaded once: additive masks for scores and the
//! sinusoidal positional encoding. There is no WGSL here: a mask is ADDED to the scores with
//! the broadcasting `elementwise::binary(BinaryOp::Add, ..)`, and the scores themselves are a
//! batched matmul, so a fused score kernel would save one elementwise launch at most.

use crate::array::Array;
use crate::device::Device;
use crate::error::{shape_err, Result};

/// What a mask adds to a masked-out score. Finite rather than -inf so that a fully masked row
/// (a zero-length sequence) softmaxes to uniform weights instead of NaN; exp(-1e9) is 0 in f32.
pub const MASKED: f32 = -1e9;

/// `[lq, lk]`: 0 where query i may attend to key j (j <= i), `MASKED` where j > i. The diagonal
/// starts at the top-left corner, like PyTorch's `scaled_dot_product_attention(is_causal=True)`.
/// Broadcasts against scores `[B, heads, lq, lk]`.
pub fn causal_mask(device: &Device, lq: usize, lk: usize) -> Result<Array> {
    Array::from_f64(device, &reference::causal_mask(lq, lk), &[lq, lk])
}

/// `[B, 1, 1, lk]`: 0 for the first `lengths[b]` keys of sequence b and `MASKED` for its padding.
/// Broadcasts against scores `[B, heads, lq, lk]`.
pub fn padding_mask(device: &Device, lengths: &[usize], lk: usize) -> Result<Array> {
    if let Some(&len) = lengths.iter().find(|&&len| len > lk) {
        return shape_err("padding_mask", format!("length {len} exceeds the {lk} keys (lengths {lengths:?})"));
    }
    Array::from_f64(device, &reference::padding_mask(lengths, lk), &[lengths.len(), 1, 1, lk])
}

/// `[max_len, d_model]` sinusoidal positional encoding of Vaswani et al. (2017):
/// `PE(pos, 2i) = sin(pos / 10000^(2i / d_model))`, `PE(pos, 2i + 1) = cos(pos / 10000^(2i / d_model))`.
/// An odd `d_model` ends with a sine column.
pub fn sinusoidal_positional_encoding(device: &Device, max_len: usize, d_model: usize) -> Result<Array> {
    Array::from_f64(device, &reference::sinusoidal_positional_encoding(max_len, d_model), &[max_len, d_model])
}

/// The host computations, in f64 (the GPU receives them rounded to f32).
pub mod reference {
    use super::MASKED;

    fn mask_value(masked: bool) -> f64 {
        if masked {
            MASKED as f64
        } else {
            0.0
        }
    }

    pub fn causal_mask(lq: usize, lk: usize) -> Vec<f64> {
        (0..lq).flat_map(|i| (0..lk).map(move |j| mask_value(j > i))).collect()
    }

    pub fn padding_mask(lengths: &[usize], lk: usize) -> Vec<f64> {
        lengths.iter().flat_map(|&len| (0..lk).map(move |j| mask_value(j >= len))).collect()
    }

    pub fn sinusoidal_positional_encoding(max_len: usize, d_model: usize) -> Vec<f64> {
        (0..max_len)
            .flat_map(|pos| {
                (0..d_model).map(move |k| {
                    // columns 2i and 2i + 1 share the frequency 1 / 10000^(2i / d_model)
                    let angle = pos as f64 / 10000f64.powf((k - k % 2) as f64 / d_model as f64);
                    if k % 2 == 0 {
                        angle.sin()
                    } else {
                        angle.cos()
                    }
                })
            })
            .collect()
    }
}
