//! GPU time of recorded work, from timestamp queries (for benchmarks).
//!
//! The recorder's compute pass carries no timestamp writes, so the timer brackets the work
//! instead: an empty compute pass that writes a timestamp is submitted just before the
//! recorded batch and another just after it. The measured span is the batch plus the time
//! of one `submit` call between the markers (microseconds).

use super::context::GpuContext;
use crate::error::{DeviceError, Result};

pub struct GpuTimer {
    queries: wgpu::QuerySet,
    resolve: wgpu::Buffer,
    readback: wgpu::Buffer,
    /// nanoseconds per timestamp tick
    period: f64,
}

impl GpuTimer {
    /// A timer, or `None` where the adapter has no timestamp queries.
    pub fn new(g: &GpuContext) -> Option<GpuTimer> {
        if !g.caps().timestamps {
            return None;
        }
        let device = g.raw_device();
        let buffer = |label, usage| {
            device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: 16,
                usage,
                mapped_at_creation: false,
            })
        };
        Some(GpuTimer {
            queries: device.create_query_set(&wgpu::QuerySetDescriptor {
                label: Some("timer"),
                ty: wgpu::QueryType::Timestamp,
                count: 2,
            }),
            resolve: buffer("timer-resolve", wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC),
            readback: buffer("timer-readback", wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST),
            period: g.raw_queue().get_timestamp_period() as f64,
        })
    }

    /// Milliseconds of GPU time for the work `record` records (through the context's usual
    /// launchers). Waits for everything recorded before, and for the timed work.
    pub fn time(&self, g: &GpuContext, record: impl FnOnce() -> Result<()>) -> Result<f64> {
        g.sync()?;
        record()?;
        self.marker(g, 0, false);
        g.flush();
        self.marker(g, 1, true);
        let slice = self.readback.slice(..);
        let (tx, rx) = std::sync::mpsc::channel();
        slice.map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        g.sync()?;
        let err = |e: String| DeviceError::Wgpu { context: "reading timestamps".into(), message: e };
        rx.recv().map_err(|e| err(e.to_string()))?.map_err(|e| err(e.to_string()))?;
        let ticks: [u64; 2] = {
            let data = slice.get_mapped_range().map_err(|e| err(e.to_string()))?;
            bytemuck::pod_read_unaligned(&data[..16])
        };
        self.readback.unmap();
        Ok(ticks[1].wrapping_sub(ticks[0]) as f64 * self.period / 1e6)
    }

    /// Submits an empty compute pass writing timestamp `index`; the last one also resolves
    /// both timestamps into the readback buffer.
    fn marker(&self, g: &GpuContext, index: u32, last: bool) {
        let mut encoder = g.raw_device().create_command_encoder(&wgpu::CommandEncoderDescriptor::default());
        drop(encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("timer"),
            timestamp_writes: Some(wgpu::ComputePassTimestampWrites {
                query_set: &self.queries,
                beginning_of_pass_write_index: Some(index),
                end_of_pass_write_index: None,
            }),
        }));
        if last {
            encoder.resolve_query_set(&self.queries, 0..2, &self.resolve, 0);
            encoder.copy_buffer_to_buffer(&self.resolve, 0, &self.readback, 0, 16);
        }
        g.raw_queue().submit([encoder.finish()]);
    }
}
