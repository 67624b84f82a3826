//! Per-dispatch GPU timing for profiling (`GpuContext::set_profiling`).
//!
//! While profiling, the recorder gives every dispatch a compute pass of its own whose
//! `timestamp_writes` mark its start and end in a query set. Each submission resolves the
//! queries it used into a readback buffer; the records are read at the next wait. This costs
//! a compute pass per dispatch (~20 µs on an H100), so it is a measuring mode only.

use crate::error::{DeviceError, Result};

/// Queries per submission (two per dispatch); the recorder submits when they run out.
const QUERIES: u32 = 4096;

/// One timed dispatch: its kernel label (`shader::entry`) and GPU timestamps in nanoseconds.
#[derive(Clone, Debug, PartialEq)]
pub struct ProfileRecord {
    pub label: String,
    pub start_ns: f64,
    pub end_ns: f64,
}

impl ProfileRecord {
    /// The shader name, i.e. the kernel family (`matmul` for `matmul::rows8`).
    pub fn family(&self) -> &str {
        self.label.split("::").next().unwrap_or(&self.label)
    }

    pub fn ms(&self) -> f64 {
        (self.end_ns - self.start_ns) / 1e6
    }
}

pub(crate) struct Profiler {
    queries: wgpu::QuerySet,
    resolve: wgpu::Buffer,
    /// nanoseconds per timestamp tick
    period: f64,
    /// labels of the dispatches timed in the submission being recorded (query 2i and 2i+1)
    labels: Vec<String>,
    /// resolved submissions not yet read: readback buffer and labels
    pending: Vec<(wgpu::Buffer, Vec<String>)>,
    done: Vec<ProfileRecord>,
}

impl Profiler {
    pub(crate) fn new(device: &wgpu::Device, queue: &wgpu::Queue) -> Profiler {
        Profiler {
            queries: device.create_query_set(&wgpu::QuerySetDescriptor {
                label: Some("profile"),
                ty: wgpu::QueryType::Timestamp,
                count: QUERIES,
            }),
            resolve: device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("profile-resolve"),
                size: QUERIES as u64 * 8,
                usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            }),
            period: queue.get_timestamp_period() as f64,
            labels: Vec::new(),
            pending: Vec::new(),
            done: Vec::new(),
        }
    }

    /// Whether the current submission has no queries left for another dispatch.
    pub(crate) fn full(&self) -> bool {
        2 * self.labels.len() as u32 + 2 > QUERIES
    }

    /// The timestamp writes for the next dispatch, labelled `label`.
    pub(crate) fn next_writes(&mut self, label: String) -> wgpu::ComputePassTimestampWrites<'_> {
        let i = 2 * self.labels.len() as u32;
        self.labels.push(label);
        wgpu::ComputePassTimestampWrites {
            query_set: &self.queries,
            beginning_of_pass_write_index: Some(i),
            end_of_pass_write_index: Some(i + 1),
        }
    }

    /// Records, at the end of a submission's encoder, the resolve of its queries into a new
    /// readback buffer.
    pub(crate) fn resolve(&mut self, device: &wgpu::Device, encoder: &mut wgpu::CommandEncoder) {
        if self.labels.is_empty() {
            return;
        }
        let n = 2 * self.labels.len() as u32;
        let bytes = n as u64 * 8;
        let readback = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("profile-readback"),
            size: bytes,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        encoder.resolve_query_set(&self.queries, 0..n, &self.resolve, 0);
        encoder.copy_buffer_to_buffer(&self.resolve, 0, &readback, 0, bytes);
        self.pending.push((readback, std::mem::take(&mut self.labels)));
    }

    /// Reads every resolved submission (they must have completed) into records.
    pub(crate) fn collect(&mut self, device: &wgpu::Device) -> Result<()> {
        let err = |e: String| DeviceError::Wgpu { context: "reading profile timestamps".into(), message: e };
        for (buffer, labels) in std::mem::take(&mut self.pending) {
            let slice = buffer.slice(..);
            let (tx, rx) = std::sync::mpsc::channel();
            slice.map_async(wgpu::MapMode::Read, move |r| {
                let _ = tx.send(r);
            });
            device.poll(wgpu::PollType::wait_indefinitely()).map_err(|e| err(e.to_string()))?;
            rx.recv().map_err(|e| err(e.to_string()))?.map_err(|e| err(e.to_string()))?;
            let data = slice.get_mapped_range().map_err(|e| err(e.to_string()))?;
            let ticks: Vec<u64> = data.chunks_exact(8).map(bytemuck::pod_read_unaligned).collect();
            drop(data);
            buffer.unmap();
            for (label, t) in labels.into_iter().zip(ticks.chunks_exact(2)) {
                let start_ns = t[0] as f64 * self.period;
                self.done.push(ProfileRecord {
                    label,
                    start_ns,
                    end_ns: start_ns + t[1].wrapping_sub(t[0]) as f64 * self.period,
                });
            }
        }
        Ok(())
    }

    pub(crate) fn take(&mut self) -> Vec<ProfileRecord> {
        std::mem::take(&mut self.done)
    }
}

/// GPU time per group of records, in milliseconds, with the dispatch count.
#[derive(Clone, Debug, PartialEq)]
pub struct ProfileLine {
    pub name: String,
    pub ms: f64,
    pub dispatches: usize,
}

/// Totals of a profile: busy GPU time, the span from the first start to the last end, per
/// kernel family and per kernel label (largest first).
#[derive(Clone, Debug, PartialEq)]
pub struct ProfileSummary {
    pub busy_ms: f64,
    pub span_ms: f64,
    pub families: Vec<ProfileLine>,
    pub kernels: Vec<ProfileLine>,
}

impl ProfileSummary {
    pub fn of(records: &[ProfileRecord]) -> ProfileSummary {
        let group = |key: &dyn Fn(&ProfileRecord) -> &str| {
            let mut lines: Vec<ProfileLine> = Vec::new();
            for r in records {
                match lines.iter_mut().find(|l| l.name == key(r)) {
                    Some(l) => {
                        l.ms += r.ms();
                        l.dispatches += 1;
                    }
                    None => lines.push(ProfileLine { name: key(r).to_string(), ms: r.ms(), dispatches: 1 }),
                }
            }
            lines.sort_by(|a, b| b.ms.total_cmp(&a.ms));
            lines
        };
        let first = records.iter().map(|r| r.start_ns).fold(f64::INFINITY, f64::min);
        let last = records.iter().map(|r| r.end_ns).fold(f64::NEG_INFINITY, f64::max);
        ProfileSummary {
            busy_ms: records.iter().map(ProfileRecord::ms).sum(),
            span_ms: if records.is_empty() { 0.0 } else { (last - first) / 1e6 },
            families: group(&|r| r.family()),
            kernels: group(&|r| &r.label),
        }
    }

    /// Share of the span in which no profiled dispatch ran (host gaps, submits, copies).
    pub fn idle_share(&self) -> f64 {
        if self.span_ms > 0.0 {
            (1.0 - self.busy_ms / self.span_ms).max(0.0)
        } else {
            0.0
        }
    }
}
