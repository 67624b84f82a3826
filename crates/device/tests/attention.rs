//! Attention helpers: masks and the sinusoidal positional encoding, checked entry by entry
//! against their definitions on the GPU and the CPU device, and the masks' broadcast add onto
//! scores. Bound: f32, 1e-5 relative.

use ferrograd_device::kernels::attention::{causal_mask, padding_mask, sinusoidal_positional_encoding, MASKED};
use ferrograd_device::kernels::elementwise::{binary, BinaryOp};
use ferrograd_device::testing::{assert_close, gpu, Rng, F32_TOL};
use ferrograd_device::{Array, Device};

fn devices() -> [Device; 2] {
    [gpu(), Device::Cpu]
}

#[test]
fn causal_mask_hides_later_keys() {
    for device in devices() {
        for (lq, lk) in [(5, 5), (3, 7), (6, 2), (0, 4)] {
            let m = causal_mask(&device, lq, lk).unwrap();
            assert_eq!(m.shape(), &[lq, lk]);
            let v = m.to_f32_vec().unwrap();
            for i in 0..lq {
                for j in 0..lk {
                    let want = if j > i { MASKED } else { 0.0 };
                    assert_eq!(v[i * lk + j], want, "{} causal {lq}x{lk} at ({i}, {j})", device.name());
                }
            }
        }
    }
}

#[test]
fn padding_mask_hides_each_sequences_padding() {
    let lengths = [4, 1, 0, 6];
    for device in devices() {
        let m = padding_mask(&device, &lengths, 6).unwrap();
        assert_eq!(m.shape(), &[4, 1, 1, 6]);
        let v = m.to_f32_vec().unwrap();
        for (b, &len) in lengths.iter().enumerate() {
            for j in 0..6 {
                let want = if j < len { 0.0 } else { MASKED };
                assert_eq!(v[b * 6 + j], want, "{} padding: sequence {b} key {j}", device.name());
            }
        }
    }
}

#[test]
fn a_length_beyond_the_keys_is_an_error() {
    let err = padding_mask(&gpu(), &[2, 9], 5).unwrap_err().to_string();
    assert!(err.contains("padding_mask") && err.contains('9') && err.contains('5'), "{err}");
}

#[test]
fn masks_broadcast_onto_multi_head_scores() {
    // scores [B=2, heads=3, Lq=4, Lk=5] + padding [2, 1, 1, 5] + causal [4, 5]
    let g = gpu();
    let mut rng = Rng::new(41);
    let (b, heads, lq, lk) = (2, 3, 4, 5);
    let lengths = [5, 2];
    let s = rng.vec(b * heads * lq * lk);
    let scores = Array::from_f32(&g, &s, &[b, heads, lq, lk]).unwrap();
    let masked = binary(BinaryOp::Add, &scores, &padding_mask(&g, &lengths, lk).unwrap()).unwrap();
    let masked = binary(BinaryOp::Add, &masked, &causal_mask(&g, lq, lk).unwrap()).unwrap();
    assert_eq!(masked.shape(), &[b, heads, lq, lk]);
    let want: Vec<f64> = (0..s.len())
        .map(|idx| {
            let (bi, i, j) = (idx / (heads * lq * lk), idx / lk % lq, idx % lk);
            let hidden = (j >= lengths[bi]) as u32 + (j > i) as u32;
            s[idx] as f64 + hidden as f64 * MASKED as f64
        })
        .collect();
    assert_close("masked scores", &masked.to_f64_vec().unwrap(), &want, F32_TOL);
}

#[test]
fn positional_encoding_follows_vaswani_et_al() {
    for device in devices() {
        for (max_len, d_model) in [(50, 16), (7, 9)] {
            let pe = sinusoidal_positional_encoding(&device, max_len, d_model).unwrap();
            assert_eq!(pe.shape(), &[max_len, d_model]);
            // the usual implementation's form: div_term = exp(-2i ln(10000) / d_model)
            let want: Vec<f64> = (0..max_len * d_model)
                .map(|idx| {
                    let (pos, k) = ((idx / d_model) as f64, idx % d_model);
                    let div_term = (-((2 * (k / 2)) as f64) * 10000f64.ln() / d_model as f64).exp();
                    if k % 2 == 0 {
                        (pos * div_term).sin()
                    } else {
                        (pos * div_term).cos()
                    }
                })
                .collect();
            let got = pe.to_f64_vec().unwrap();
            assert_close(&format!("{} PE {max_len}x{d_model}", device.name()), &got, &want, F32_TOL);
            // anchors: position 0 is [0, 1, 0, 1, ...]; column 0 is sin(pos), column 1 cos(pos)
            assert!(got[..d_model].iter().enumerate().all(|(k, &v)| v == (k % 2) as f64));
            assert_close("PE column 0", &[got[3 * d_model]], &[3f64.sin()], F32_TOL);
            assert_close("PE column 1", &[got[3 * d_model + 1]], &[3f64.cos()], F32_TOL);
        }
    }
}
