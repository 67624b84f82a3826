//! Size-bucketed buffer pool: arrays return their buffers here when dropped, and the
//! next allocation of the same bucket reuses one instead of calling `create_buffer`.
//!
//! Reuse is safe without waiting for the GPU: every dispatch is recorded in queue order,
//! and wgpu inserts the barriers between a dispatch that last read a buffer and the next
//! one that writes it.

use std::collections::HashMap;
use std::sync::Mutex;

/// Buffers are never smaller than this, so tiny arrays share one bucket.
const MIN_BUCKET: u64 = 256;

/// Round `bytes` up to its bucket: eight buckets per power of two, so at most 12.5% is wasted.
pub(crate) fn bucket_size(bytes: u64) -> u64 {
    if bytes <= MIN_BUCKET {
        return MIN_BUCKET;
    }
    let pow = bytes.next_power_of_two();
    let step = (pow / 16).max(MIN_BUCKET);
    bytes.div_ceil(step) * step
}

#[derive(Default)]
pub(crate) struct Pool {
    free: Mutex<HashMap<u64, Vec<wgpu::Buffer>>>,
}

impl Pool {
    pub fn take(&self, bucket: u64) -> Option<wgpu::Buffer> {
        self.free.lock().unwrap().get_mut(&bucket).and_then(Vec::pop)
    }

    pub fn give_back(&self, bucket: u64, buffer: wgpu::Buffer) {
        self.free.lock().unwrap().entry(bucket).or_default().push(buffer);
    }

    /// Drop every cached buffer (called before retrying an allocation that ran out of memory).
    pub fn trim(&self) -> u64 {
        let mut free = self.free.lock().unwrap();
        let bytes = free.iter().map(|(b, v)| b * v.len() as u64).sum();
        free.clear();
        bytes
    }
}

#[cfg(test)]
mod tests {
    use super::bucket_size;

    #[test]
    fn buckets_cover_the_request_and_waste_little() {
        for bytes in [1u64, 255, 256, 257, 1000, 4096, 4097, 1 << 20, (1 << 20) + 1, 123_456_789] {
            let b = bucket_size(bytes);
            assert!(b >= bytes, "{bytes} -> {b}");
            assert!(b - bytes < 256 || (b - bytes) as f64 / bytes as f64 <= 0.125, "{bytes} -> {b}");
            assert_eq!(bucket_size(b), b, "a bucket size maps to itself");
        }
    }
}
