//! Counters that let tests and benchmarks prove how a step used the GPU.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

#[derive(Default, Debug)]
pub(crate) struct Counters {
    pub dispatches: AtomicU64,
    pub compute_passes: AtomicU64,
    pub submits: AtomicU64,
    pub waits: AtomicU64,
    pub bytes_live: AtomicU64,
    pub peak_bytes_live: AtomicU64,
    pub bytes_pooled: AtomicU64,
    pub bytes_allocated: AtomicU64,
    pub pool_hits: AtomicU64,
    pub pool_misses: AtomicU64,
    pub pipelines_compiled: AtomicU64,
    pub uploads: AtomicU64,
}

/// A snapshot of the GPU counters. Subtract two snapshots to see what a span of work did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// compute dispatches recorded
    pub dispatches: u64,
    /// compute passes begun (a copy or a submit ends the open one)
    pub compute_passes: u64,
    /// command buffers submitted to the queue
    pub submits: u64,
    /// times the host blocked until the GPU finished (readback or `sync`)
    pub waits: u64,
    /// bytes held by live arrays (pooled free buffers not counted)
    pub bytes_live: u64,
    /// the most `bytes_live` has been since the context opened or since `reset_peak_bytes`;
    /// a snapshot's value, not a difference, in `a - b`
    pub peak_bytes_live: u64,
    /// bytes of the free buffers the pool keeps for reuse
    pub bytes_pooled: u64,
    /// bytes of every buffer handed out (pool hits, new buffers and uploads alike)
    pub bytes_allocated: u64,
    /// allocations served from the pool / that created a new buffer
    pub pool_hits: u64,
    pub pool_misses: u64,
    /// pipelines compiled (each kernel variant once)
    pub pipelines_compiled: u64,
    /// host-to-device uploads
    pub uploads: u64,
}

impl Counters {
    pub fn snapshot(&self) -> Stats {
        Stats {
            dispatches: self.dispatches.load(Relaxed),
            compute_passes: self.compute_passes.load(Relaxed),
            submits: self.submits.load(Relaxed),
            waits: self.waits.load(Relaxed),
            bytes_live: self.bytes_live.load(Relaxed),
            peak_bytes_live: self.peak_bytes_live.load(Relaxed),
            bytes_pooled: self.bytes_pooled.load(Relaxed),
            bytes_allocated: self.bytes_allocated.load(Relaxed),
            pool_hits: self.pool_hits.load(Relaxed),
            pool_misses: self.pool_misses.load(Relaxed),
            pipelines_compiled: self.pipelines_compiled.load(Relaxed),
            uploads: self.uploads.load(Relaxed),
        }
    }
}

impl std::ops::Sub for Stats {
    type Output = Stats;
    fn sub(self, o: Stats) -> Stats {
        Stats {
            dispatches: self.dispatches - o.dispatches,
            compute_passes: self.compute_passes - o.compute_passes,
            submits: self.submits - o.submits,
            waits: self.waits - o.waits,
            bytes_live: self.bytes_live.wrapping_sub(o.bytes_live),
            peak_bytes_live: self.peak_bytes_live,
            bytes_pooled: self.bytes_pooled.wrapping_sub(o.bytes_pooled),
            bytes_allocated: self.bytes_allocated - o.bytes_allocated,
            pool_hits: self.pool_hits - o.pool_hits,
            pool_misses: self.pool_misses - o.pool_misses,
            pipelines_compiled: self.pipelines_compiled - o.pipelines_compiled,
            uploads: self.uploads - o.uploads,
        }
    }
}
