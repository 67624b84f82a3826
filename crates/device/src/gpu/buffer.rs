//! A GPU buffer: returns to its context's pool when the last array using it drops, unless it
//! came from an upload (see `GpuContext::upload`).

use super::GpuContext;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

pub struct GpuBuffer {
    buffer: Option<wgpu::Buffer>,
    bucket: u64,
    /// whether dropping it returns it to the pool
    pooled: bool,
    /// the array it was made for, named in errors
    shape: Vec<usize>,
    ctx: Arc<GpuContext>,
}

impl GpuBuffer {
    pub(crate) fn new(buffer: wgpu::Buffer, bucket: u64, pooled: bool, shape: &[usize], ctx: Arc<GpuContext>) -> Self {
        let live = ctx.counters.bytes_live.fetch_add(bucket, Relaxed) + bucket;
        ctx.counters.peak_bytes_live.fetch_max(live, Relaxed);
        ctx.counters.bytes_allocated.fetch_add(bucket, Relaxed);
        GpuBuffer { buffer: Some(buffer), bucket, pooled, shape: shape.to_vec(), ctx }
    }

    pub fn raw(&self) -> &wgpu::Buffer {
        self.buffer.as_ref().expect("buffer present until drop")
    }

    /// Size of the underlying allocation (its pool bucket), at least the array's bytes.
    pub fn capacity(&self) -> u64 {
        self.bucket
    }

    /// The shape of the array it was allocated for.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    pub fn context(&self) -> &Arc<GpuContext> {
        &self.ctx
    }
}

impl Drop for GpuBuffer {
    fn drop(&mut self) {
        if let Some(b) = self.buffer.take() {
            self.ctx.counters.bytes_live.fetch_sub(self.bucket, Relaxed);
            if self.pooled {
                self.ctx.counters.bytes_pooled.fetch_add(self.bucket, Relaxed);
                self.ctx.pool.give_back(self.bucket, b);
            }
        }
    }
}

impl std::fmt::Debug for GpuBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GpuBuffer({} bytes)", self.bucket)
    }
}
