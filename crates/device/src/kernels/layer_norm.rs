//! Layer norm over the last dims of `x`, viewed as `[R, D]` (WGSL: `shaders/layer_norm.wgsl`):
//! one launch forward (`layer_norm`: the output, and each row's mean and `1/sqrt(var + eps)`,
//! which the backward pass reads), two backward (`layer_norm_backward`: the input gradient per
//! row, then the weight and bias gradients per column).

use crate::array::Array;
use crate::device::Device;
use crate::dtype::DType;
use crate::error::{shape_err, Result};
use crate::gpu::{grid_1d, Kernel};
use crate::kernels::common::{param_bytes, require_dtype, same_device};

crate::shader!(LAYER_NORM, "layer_norm", "workgroup_sum");

/// Rows of `x` as `[R, D]`, checked: f32, D > 0 dividing its size, `[D]` per-column arrays.
fn rows(kernel: &'static str, x: &Array, d: usize, per_column: &[(&str, &Array)]) -> Result<usize> {
    require_dtype(kernel, x, DType::F32)?;
    if d == 0 || !x.numel().is_multiple_of(d) || u32::try_from(x.numel()).is_err() {
        return shape_err(kernel, format!("x {:?} cannot be viewed as rows of {d} (at most 2^32 elements)", x.shape()));
    }
    for (name, a) in per_column {
        require_dtype(kernel, a, DType::F32)?;
        if a.numel() != d {
            return shape_err(kernel, format!("{name} {:?} for rows of {d} (x {:?})", a.shape(), x.shape()));
        }
    }
    Ok(x.numel() / d)
}

fn words(rows: usize, d: usize, eps: f32) -> [u32; 4] {
    [rows as u32, d as u32, eps.to_bits(), 0]
}

/// `(x - mean) / sqrt(var + eps) * w + b` per row of `d` values (biased variance; no affine
/// when `affine` is `None`), and the rows' statistics `[R, 2]` (mean, `1/sqrt(var + eps)`).
pub fn layer_norm(x: &Array, d: usize, affine: Option<(&Array, &Array)>, eps: f32) -> Result<(Array, Array)> {
    const K: &str = "layer_norm";
    let per_column: Vec<_> = affine.map(|(w, b)| vec![("weight", w), ("bias", b)]).unwrap_or_default();
    let r = rows(K, x, d, &per_column)?;
    let mut arrays = vec![x];
    arrays.extend(per_column.iter().map(|p| p.1));
    let device = same_device(K, &arrays)?;
    match &device {
        Device::Cpu => {
            let wb = affine.map(|(w, b)| (w.cpu_data().to_vec(), b.cpu_data().to_vec()));
            let (y, stats) = reference::forward(&x.cpu_data(), d, wb.as_ref(), eps);
            Ok((Array::cpu(y, x.shape(), DType::F32), Array::cpu(stats, &[r, 2], DType::F32)))
        }
        Device::Gpu(g) => {
            let y = Array::empty(&device, x.shape(), DType::F32, K)?;
            let stats = Array::empty(&device, &[r, 2], DType::F32, K)?;
            let (w, b) = affine.unwrap_or((x, x));
            let constants = [("AFFINE", affine.is_some() as u32 as f64)];
            let bufs = [x, w, b, &y, &stats].map(|a| a.gpu_buffer().unwrap());
            let kernel = Kernel::new(&LAYER_NORM, "ln_forward").with(&constants);
            g.dispatch(&kernel, param_bytes(&words(r, d, eps)), &bufs, grid_1d(r * 256, 256))?;
            Ok((y, stats))
        }
    }
}

/// The gradients of [`layer_norm`] given the output gradient `dy` and the forward pass's
/// `stats`: `dx`, and with a `weight` the weight and bias gradients `(dw, db)` (`[D]` each:
/// `dw = sum over rows of dy * xhat`, `db = sum of dy`).
pub fn layer_norm_backward(
    x: &Array,
    dy: &Array,
    stats: &Array,
    d: usize,
    weight: Option<&Array>,
) -> Result<(Array, Option<(Array, Array)>)> {
    const K: &str = "layer_norm_backward";
    let per_column: Vec<_> = weight.map(|w| ("weight", w)).into_iter().collect();
    let r = rows(K, x, d, &per_column)?;
    if dy.shape() != x.shape() || stats.shape() != [r, 2] {
        return shape_err(K, format!("dy {:?} and stats {:?} for x {:?}", dy.shape(), stats.shape(), x.shape()));
    }
    require_dtype(K, dy, DType::F32)?;
    let mut arrays = vec![x, dy, stats];
    arrays.extend(weight);
    let device = same_device(K, &arrays)?;
    match &device {
        Device::Cpu => {
            let w = weight.map(|w| w.cpu_data().to_vec());
            let (dx, dw, db) = reference::backward(&x.cpu_data(), &dy.cpu_data(), &stats.cpu_data(), d, w.as_deref());
            let column = |v| Array::cpu(v, &[d], DType::F32);
            Ok((Array::cpu(dx, x.shape(), DType::F32), weight.map(|_| (column(dw), column(db)))))
        }
        Device::Gpu(g) => {
            let p = words(r, d, 0.0);
            let dx = Array::empty(&device, x.shape(), DType::F32, K)?;
            let constants = [("AFFINE", weight.is_some() as u32 as f64)];
            let bufs = [x, dy, stats, weight.unwrap_or(x), &dx].map(|a| a.gpu_buffer().unwrap());
            let kernel = Kernel::new(&LAYER_NORM, "ln_grad_input").with(&constants);
            g.dispatch(&kernel, param_bytes(&p), &bufs, grid_1d(r * 256, 256))?;
            let Some(_) = weight else { return Ok((dx, None)) };
            let (dw, db) = (Array::empty(&device, &[d], DType::F32, K)?, Array::empty(&device, &[d], DType::F32, K)?);
            let bufs = [x, dy, stats, &dw, &db].map(|a| a.gpu_buffer().unwrap());
            g.dispatch(&Kernel::new(&LAYER_NORM, "ln_grad_params"), param_bytes(&p), &bufs, grid_1d(d * 256, 256))?;
            Ok((dx, Some((dw, db))))
        }
    }
}

/// CPU twins in f64, from the definitions: per row of `d` values, `xhat = (x - mean) * rstd`
/// with `rstd = 1/sqrt(var + eps)` (biased variance), `y = w * xhat + b`, and with `u = dy * w`,
/// `dx = rstd * (u - mean(u) - xhat * mean(u * xhat))`.
pub mod reference {
    pub fn forward(x: &[f64], d: usize, affine: Option<&(Vec<f64>, Vec<f64>)>, eps: f32) -> (Vec<f64>, Vec<f64>) {
        let (mut y, mut stats) = (vec![0.0; x.len()], Vec::with_capacity(2 * x.len() / d));
        for (row, out) in x.chunks(d).zip(y.chunks_mut(d)) {
            let mean = row.iter().sum::<f64>() / d as f64;
            let var = row.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / d as f64;
            let rstd = 1.0 / (var + eps as f64).sqrt();
            for (j, (o, v)) in out.iter_mut().zip(row).enumerate() {
                let (w, b) = affine.map_or((1.0, 0.0), |(w, b)| (w[j], b[j]));
                *o = (v - mean) * rstd * w + b;
            }
            stats.extend([mean, rstd]);
        }
        (y, stats)
    }

    pub fn backward(
        x: &[f64],
        dy: &[f64],
        stats: &[f64],
        d: usize,
        w: Option<&[f64]>,
    ) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
        let (mut dx, mut dw, mut db) = (vec![0.0; x.len()], vec![0.0; d], vec![0.0; d]);
        for (r, ((row, g), out)) in x.chunks(d).zip(dy.chunks(d)).zip(dx.chunks_mut(d)).enumerate() {
            let (mean, rstd) = (stats[2 * r], stats[2 * r + 1]);
            let xhat: Vec<f64> = row.iter().map(|v| (v - mean) * rstd).collect();
            let u: Vec<f64> = g.iter().enumerate().map(|(j, g)| g * w.map_or(1.0, |w| w[j])).collect();
            let mean_u = u.iter().sum::<f64>() / d as f64;
            let mean_ux = u.iter().zip(&xhat).map(|(u, h)| u * h).sum::<f64>() / d as f64;
            for j in 0..d {
                out[j] = rstd * (u[j] - mean_u - xhat[j] * mean_ux);
                dw[j] += g[j] * xhat[j];
                db[j] += g[j];
            }
        }
        (dx, dw, db)
    }
}
