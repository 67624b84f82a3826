//! Helpers for parity tests (used by this crate's tests and the other crates' tests).

use crate::device::Device;

/// The GPU device with output poisoning on. A missing adapter is a test failure, never a
/// silent skip: install Mesa's lavapipe (`apt-get install mesa-vulkan-drivers`).
pub fn gpu() -> Device {
    match Device::gpu() {
        Ok(d) => {
            d.gpu_context().unwrap().set_poison_outputs(true);
            d
        }
        Err(e) => panic!("GPU tests need an adapter and none was found: {e}"),
    }
}

/// Deterministic generator (splitmix64) for test inputs.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Magnitude in [0.1, 1), random sign: never zero.
    pub fn nonzero(&mut self) -> f32 {
        let m = 0.1 + 0.9 * self.uniform();
        (if self.next_u64() & 1 == 0 { m } else { -m }) as f32
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// `n` values of magnitude in [0.1, 1) with random signs.
    pub fn vec(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.nonzero()).collect()
    }

    /// `n` values in [0.1, 1).
    pub fn vec_positive(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.nonzero().abs()).collect()
    }
}

/// Relative error bound for f32 kernels against the f64 reference.
pub const F32_TOL: f64 = 1e-5;
/// Relative error bound for f16 kernels.
pub const F16_TOL: f64 = 1e-3;

/// Assert `got` equals `want` elementwise within `tol` relative to each value, with a floor
/// of `tol` times the largest |want| (so values near zero are judged on the array's scale).
/// Fails on any NaN, including an unwritten poisoned output.
pub fn assert_close(what: &str, got: &[f64], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "{what}: {} values, expected {}", got.len(), want.len());
    let scale = want.iter().fold(0.0f64, |m, w| m.max(w.abs()));
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let bound = tol * (w.abs() + scale);
        let err = (g - w).abs();
        assert!(err <= bound, "{what}: element {i}: got {g}, expected {w} (|error| {err:.3e} > bound {bound:.3e})");
    }
}
