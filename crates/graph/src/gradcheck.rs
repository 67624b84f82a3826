//! Gradient checks, reusable by every crate that adds ops:
//! - [`gradcheck`]: an op's backward against central finite differences, in f64 on the
//!   CPU device (which computes in double precision, so `eps` ~1e-6 and tight bounds work).
//! - [`gpu_matches_cpu`]: an op's outputs and gradients on a GPU against the CPU device.
//!
//! Both take `f: Fn(&[Tensor]) -> Result<Tensor>` and the inputs as CPU arrays. Float
//! inputs get gradients; u32 inputs (indices, targets) are passed through untouched. The
//! output is reduced to a scalar as `sum(out * w)` with fixed random weights `w`, so every
//! output element's gradient path is exercised with a different weight.
//!
//! ```ignore
//! use ferrograd_graph::gradcheck::{gradcheck, GradCheck};
//! let x = Array::cpu(vec![0.3, -0.7, 1.2], &[3], DType::F32);
//! gradcheck("tanh", &GradCheck::default(), |t| t[0].tanh(), &[x]).unwrap();
//! ```

use crate::autograd::no_grad;
use crate::error::Result;
use crate::tensor::Tensor;
use ferrograd_device::{Array, DType, Device};

/// Step and bounds of a check: `|analytic - expected| <= atol + rtol * |expected|`.
#[derive(Clone, Copy, Debug)]
pub struct GradCheck {
    pub eps: f64,
    pub atol: f64,
    pub rtol: f64,
}

impl Default for GradCheck {
    /// For f64 finite differences on the CPU device.
    fn default() -> Self {
        GradCheck { eps: 1e-6, atol: 1e-6, rtol: 1e-5 }
    }
}

impl GradCheck {
    /// Bounds for a GPU (f32) result against the CPU (f64) one.
    pub fn gpu() -> Self {
        GradCheck { eps: 0.0, atol: 1e-4, rtol: 1e-3 }
    }
}

/// Deterministic weights in [-1, -0.1] U [0.1, 1] (splitmix64), never zero.
pub fn weights(n: usize, seed: u64) -> Vec<f64> {
    let mut s = seed ^ 0x9E37_79B9_7F4A_7C15;
    (0..n)
        .map(|_| {
            s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            let u = (z >> 11) as f64 / (1u64 << 53) as f64;
            let m = 0.1 + 0.9 * u;
            if z & 1 == 0 {
                m
            } else {
                -m
            }
        })
        .collect()
}

fn is_float(a: &Array) -> bool {
    a.dtype() != DType::U32
}

/// Tensors for `inputs` on `device`: float ones require grad.
fn make_inputs(inputs: &[Array], device: &Device) -> Result<Vec<Tensor>> {
    inputs
        .iter()
        .map(|a| {
            let a = a.to_device(device)?;
            Ok(if is_float(&a) { Tensor::parameter(a) } else { Tensor::new(a) })
        })
        .collect()
}

/// Output values, and the inputs' gradients of `sum(out * w)`.
type Evaluated = (Vec<f64>, Vec<Option<Vec<f64>>>);

fn evaluate(f: &dyn Fn(&[Tensor]) -> Result<Tensor>, inputs: &[Array], device: &Device) -> Result<Evaluated> {
    let tensors = make_inputs(inputs, device)?;
    let out = f(&tensors)?;
    let w = weights(out.numel(), 7);
    let wt = Tensor::from_f64(device, &w, &out.shape())?;
    out.mul(&wt)?.sum_all()?.backward()?;
    let grads = tensors
        .iter()
        .map(|t| match (t.requires_grad(), t.grad()) {
            (true, Some(g)) => Ok(Some(g.to_f64_vec()?)),
            (true, None) => Ok(Some(vec![0.0; t.numel()])),
            _ => Ok(None),
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((out.to_vec_f64()?, grads))
}

fn compare(what: &str, got: &[f64], want: &[f64], c: &GradCheck) -> Result<(), String> {
    if got.len() != want.len() {
        return Err(format!("{what}: {} values, expected {}", got.len(), want.len()));
    }
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let bound = c.atol + c.rtol * w.abs();
        let within = (g - w).abs() <= bound; // false for NaN too
        if !within {
            return Err(format!("{what}: element {i}: got {g:.9e}, expected {w:.9e} (bound {bound:.2e})"));
        }
    }
    Ok(())
}

/// Check `f`'s gradients against central finite differences on the CPU device.
/// `inputs` must be CPU arrays; the error says which input and element failed.
pub fn gradcheck(
    name: &str,
    c: &GradCheck,
    f: impl Fn(&[Tensor]) -> Result<Tensor>,
    inputs: &[Array],
) -> Result<(), String> {
    let fail = |e: crate::GraphError| format!("{name}: {e}");
    let (_, analytic) = evaluate(&f, inputs, &Device::Cpu).map_err(fail)?;
    let loss = |inputs: &[Array]| -> Result<f64> {
        let _g = no_grad();
        let out = f(&make_inputs(inputs, &Device::Cpu)?)?.to_vec_f64()?;
        Ok(out.iter().zip(weights(out.len(), 7)).map(|(o, w)| o * w).sum())
    };
    for (k, a) in inputs.iter().enumerate() {
        let Some(grad) = &analytic[k] else { continue };
        let base = a.to_f64_vec().map_err(|e| fail(e.into()))?;
        let mut numeric = vec![0.0; base.len()];
        for i in 0..base.len() {
            let mut shifted = inputs.to_vec();
            let mut at = |delta: f64| -> Result<f64> {
                let mut v = base.clone();
                v[i] += delta;
                shifted[k] = Array::cpu(v, a.shape(), a.dtype());
                loss(&shifted)
            };
            numeric[i] = (at(c.eps).map_err(fail)? - at(-c.eps).map_err(fail)?) / (2.0 * c.eps);
        }
        compare(&format!("{name}: gradient of input {k} {:?}", a.shape()), grad, &numeric, c)?;
    }
    Ok(())
}

/// Check that `f` gives the same outputs and gradients on `gpu` as on the CPU device.
pub fn gpu_matches_cpu(
    name: &str,
    c: &GradCheck,
    f: impl Fn(&[Tensor]) -> Result<Tensor>,
    inputs: &[Array],
    gpu: &Device,
) -> Result<(), String> {
    let fail = |e: crate::GraphError| format!("{name}: {e}");
    let (out_cpu, grads_cpu) = evaluate(&f, inputs, &Device::Cpu).map_err(fail)?;
    let (out_gpu, grads_gpu) = evaluate(&f, inputs, gpu).map_err(fail)?;
    // bounds relative to each array's scale, as f32 rounding is
    let scaled = |v: &[f64]| {
        let s = v.iter().fold(0.0f64, |m, x| m.max(x.abs()));
        GradCheck { atol: c.atol * s.max(1e-3), ..*c }
    };
    compare(&format!("{name}: output"), &out_gpu, &out_cpu, &scaled(&out_cpu))?;
    for (k, (g, w)) in grads_gpu.iter().zip(&grads_cpu).enumerate() {
        if let (Some(g), Some(w)) = (g, w) {
            compare(&format!("{name}: gradient of input {k}"), g, w, &scaled(w))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A check that cannot fail proves nothing: a deliberately wrong backward must be caught.
    #[test]
    fn a_wrong_backward_is_caught() {
        let x = Array::cpu(vec![0.3, -0.7, 1.2], &[3], DType::F32);
        let wrong = |t: &[Tensor]| -> Result<Tensor> {
            let y = t[0].square()?.data();
            // claims d(x^2)/dx = x instead of 2x
            let x = t[0].data();
            Ok(Tensor::from_op("wrong_square", y, &[&t[0]], move |g, _| {
                Ok(vec![Some(ferrograd_device::kernels::elementwise::binary(
                    ferrograd_device::kernels::elementwise::BinaryOp::Mul,
                    g,
                    &x,
                )?)])
            }))
        };
        let err = gradcheck("wrong_square", &GradCheck::default(), wrong, std::slice::from_ref(&x)).unwrap_err();
        assert!(err.contains("gradient of input 0"), "{err}");
        gradcheck("square", &GradCheck::default(), |t| t[0].square(), &[x]).unwrap();
    }
}
