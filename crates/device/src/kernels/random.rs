//! Counter-based random tensors: element `i` drawn with `seed` depends only on
//! Philox4x32-10(counter = (i, 0, 0, 0), key = (seed_lo, seed_hi)) (Salmon et al., SC'11),
//! computed in the same u32 arithmetic on the GPU and in the CPU twin, so the same seed gives
//! the same tensor on either device. WGSL: `shaders/random.wgsl`.
//!
//! Precision: the unit value `(bits >> 8) * 2^-24` is exact, so `bernoulli` and `uniform`
//! on [0, 1) are bit-identical on GPU and CPU; `uniform` on [low, high) is one f32
//! multiply-add, equal up to a fused-vs-separate rounding (1 ulp). `normal` (Box–Muller)
//! goes through the GPU's log, sqrt and cos and agrees with the f64 twin to ~1e-5 relative
//! to the tensor's scale (looser relative to values near zero).
//!
//! Parameters are not range-checked: `low > high`, a negative `std` or `p` outside [0, 1]
//! give what the formulas give.

use crate::array::Array;
use crate::device::Device;
use crate::dtype::DType;
use crate::error::Result;
use crate::gpu::{Kernel, Window};

crate::shader!(RANDOM, "random");

#[derive(Clone, Copy, Debug, PartialEq)]
enum Dist {
    Uniform { low: f32, high: f32 },
    Normal { mean: f32, std: f32 },
    Bernoulli { p: f32 },
}

impl Dist {
    fn code(self) -> u32 {
        match self {
            Dist::Uniform { .. } => 0,
            Dist::Normal { .. } => 1,
            Dist::Bernoulli { .. } => 2,
        }
    }

    fn args(self) -> (f32, f32) {
        match self {
            Dist::Uniform { low, high } => (low, high),
            Dist::Normal { mean, std } => (mean, std),
            Dist::Bernoulli { p } => (p, 0.0),
        }
    }
}

fn sample(device: &Device, shape: &[usize], seed: u64, dist: Dist) -> Result<Array> {
    let n = crate::array::numel(shape);
    match device {
        Device::Cpu => {
            let v = match dist {
                Dist::Uniform { low, high } => reference::uniform(n, seed, low, high),
                Dist::Normal { mean, std } => reference::normal(n, seed, mean as f64, std as f64),
                Dist::Bernoulli { p } => reference::bernoulli(n, seed, p),
            };
            Ok(Array::cpu(v, shape, DType::F32))
        }
        Device::Gpu(g) => {
            let out = Array::empty(device, shape, DType::F32, "random")?;
            let (a, b) = dist.args();
            let code = [("DIST", dist.code() as f64)];
            let kernel = Kernel::new(&RANDOM, "sample").with(&code);
            // a window's first element keeps its place in the stream
            let p = |w: Window| {
                vec![w.len as u32, seed as u32, (seed >> 32) as u32, w.start as u32, a.to_bits(), b.to_bits(), 0, 0]
            };
            g.dispatch_flat(&kernel, n, &[(out.gpu_buffer().unwrap(), 4)], 256, p)?;
            Ok(out)
        }
    }
}

/// Uniform in `[low, high)`.
pub fn uniform(device: &Device, shape: &[usize], seed: u64, low: f32, high: f32) -> Result<Array> {
    sample(device, shape, seed, Dist::Uniform { low, high })
}

/// Normal with mean `mean` and standard deviation `std` (Box–Muller).
pub fn normal(device: &Device, shape: &[usize], seed: u64, mean: f32, std: f32) -> Result<Array> {
    sample(device, shape, seed, Dist::Normal { mean, std })
}

/// 1.0 with probability `p`, else 0.0 (f32).
pub fn bernoulli(device: &Device, shape: &[usize], seed: u64, p: f32) -> Result<Array> {
    sample(device, shape, seed, Dist::Bernoulli { p })
}

/// CPU twins: the generator in u32 arithmetic as the shader runs it; the distributions in
/// f32 where the GPU result is exact (uniform, bernoulli) and in f64 otherwise (normal).
pub mod reference {
    const M0: u32 = 0xD251_1F53;
    const M1: u32 = 0xCD9E_8D57;
    const W0: u32 = 0x9E37_79B9;
    const W1: u32 = 0xBB67_AE85;

    fn mulhilo(a: u32, b: u32) -> (u32, u32) {
        let p = a as u64 * b as u64;
        ((p >> 32) as u32, p as u32)
    }

    /// Philox4x32 with 10 rounds (Random123's `philox4x32_R(10, counter, key)`).
    pub fn philox4x32_10(counter: [u32; 4], key: [u32; 2]) -> [u32; 4] {
        let (mut c, mut k) = (counter, key);
        for _ in 0..10 {
            let (hi0, lo0) = mulhilo(M0, c[0]);
            let (hi1, lo1) = mulhilo(M1, c[2]);
            c = [hi1 ^ c[1] ^ k[0], lo1, hi0 ^ c[3] ^ k[1], lo0];
            k = [k[0].wrapping_add(W0), k[1].wrapping_add(W1)];
        }
        c
    }

    /// The four random words of element `i` under `seed`.
    pub fn bits(i: usize, seed: u64) -> [u32; 4] {
        philox4x32_10([i as u32, 0, 0, 0], [seed as u32, (seed >> 32) as u32])
    }

    /// `(bits >> 8) * 2^-24`, in [0, 1).
    pub fn unit(bits: u32) -> f32 {
        (bits >> 8) as f32 * (1.0 / (1u32 << 24) as f32)
    }

    pub fn uniform(n: usize, seed: u64, low: f32, high: f32) -> Vec<f64> {
        (0..n).map(|i| (low + (high - low) * unit(bits(i, seed)[0])) as f64).collect()
    }

    pub fn bernoulli(n: usize, seed: u64, p: f32) -> Vec<f64> {
        (0..n).map(|i| if unit(bits(i, seed)[0]) < p { 1.0 } else { 0.0 }).collect()
    }

    /// Box–Muller with u1 in (0, 1] and the angle in [-pi, pi), as the shader does it.
    pub fn normal(n: usize, seed: u64, mean: f64, std: f64) -> Vec<f64> {
        (0..n)
            .map(|i| {
                let r = bits(i, seed);
                let u1 = unit(r[0]) as f64 + 1.0 / (1u64 << 24) as f64;
                let theta = std::f64::consts::PI * (2.0 * unit(r[1]) as f64 - 1.0);
                mean + std * ((-2.0 * u1.ln()).sqrt() * theta.cos())
            })
            .collect()
    }
}
