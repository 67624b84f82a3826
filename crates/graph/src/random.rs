//! The global seed stream: every random draw (init, dropout masks, `randn`) takes the next
//! seed, so `manual_seed(s)` makes a whole run reproducible.

use crate::error::Result;
use crate::tensor::Tensor;
use ferrograd_device::kernels::random as kernels;
use ferrograd_device::{Array, Device};
use std::sync::atomic::{AtomicU64, Ordering};

static SEED: AtomicU64 = AtomicU64::new(0x5EED);
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Restart the seed stream from `seed` (like `torch.manual_seed`).
pub fn manual_seed(seed: u64) {
    SEED.store(seed, Ordering::SeqCst);
    COUNTER.store(0, Ordering::SeqCst);
}

/// Where the seed stream stands: (seed, draws taken). A checkpoint keeps it so that a resumed
/// run draws the dropout masks an uninterrupted one would.
pub fn seed_position() -> (u64, u64) {
    (SEED.load(Ordering::SeqCst), COUNTER.load(Ordering::SeqCst))
}

/// Puts the seed stream back where [`seed_position`] found it.
pub fn set_seed_position((seed, draws): (u64, u64)) {
    SEED.store(seed, Ordering::SeqCst);
    COUNTER.store(draws, Ordering::SeqCst);
}

/// The next seed of the stream (splitmix64 of seed + counter).
pub fn next_seed() -> u64 {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let mut z = SEED.load(Ordering::SeqCst).wrapping_add(n.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

pub(crate) fn uniform(device: &Device, shape: &[usize], low: f32, high: f32) -> Result<Array> {
    Ok(kernels::uniform(device, shape, next_seed(), low, high)?)
}

pub(crate) fn normal(device: &Device, shape: &[usize], mean: f32, std: f32) -> Result<Array> {
    Ok(kernels::normal(device, shape, next_seed(), mean, std)?)
}

impl Tensor {
    /// Uniform in `[low, high)` from the global seed stream ([`manual_seed`]).
    pub fn rand(device: &Device, shape: &[usize], low: f32, high: f32) -> Result<Tensor> {
        Ok(Tensor::new(uniform(device, shape, low, high)?))
    }

    /// Normal(mean, std) from the global seed stream.
    pub fn randn(device: &Device, shape: &[usize], mean: f32, std: f32) -> Result<Tensor> {
        Ok(Tensor::new(normal(device, shape, mean, std)?))
    }
}
