//! The GPU context: one wgpu device and queue, its pipeline cache, buffer pool and the
//! recorder that batches every dispatch into one command encoder until the host needs a
//! value.

use super::adapter::{self, Caps};
use super::buffer::GpuBuffer;
use super::pipelines::{Kernel, PipelineCache};
use super::pool::{bucket_size, Pool};
use super::profile::{ProfileRecord, Profiler};
use super::stats::{Counters, Stats};
use crate::error::{DeviceError, Result};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

/// Uniform bytes staged per submission; when full, the batch is submitted (without waiting).
const PARAM_ARENA_BYTES: u64 = 1 << 20;
/// What every pooled buffer may be used for (UNIFORM: a small operand a kernel wants in a
/// uniform buffer, such as the shared A of the `rows8` matmul, is copied into one).
const POOL_USAGE: wgpu::BufferUsages = wgpu::BufferUsages::STORAGE
    .union(wgpu::BufferUsages::UNIFORM)
    .union(wgpu::BufferUsages::COPY_SRC)
    .union(wgpu::BufferUsages::COPY_DST);
/// Largest parameter block one dispatch may use (the multi-tensor optimizer updates carry
/// a table of up to `kernels::optim` slots in theirs).
pub const MAX_PARAM_BYTES: usize = 2048;

pub struct GpuContext {
    pub(crate) device: wgpu::Device,
    pub(crate) queue: wgpu::Queue,
    pub(crate) info: wgpu::AdapterInfo,
    pub(crate) caps: Caps,
    pub(crate) pool: Pool,
    pub(crate) pipelines: PipelineCache,
    pub(crate) counters: Counters,
    recorder: Mutex<Recorder>,
    param_arena: wgpu::Buffer,
    poison: AtomicBool,
    /// the most bytes one storage binding takes (`set_binding_limit`; the adapter's limit at most)
    binding_limit: AtomicU64,
    /// per-dispatch timestamps (`set_profiling`); the flag spares the usual path the lock
    profiling: AtomicBool,
    profiler: Mutex<Option<Profiler>>,
    /// validation errors wgpu reported outside an error scope, surfaced at the next wait
    uncaptured: Arc<Mutex<Vec<String>>>,
}

/// One storage binding of a dispatch: `size` bytes of `buffer` from `offset` (which must be a
/// multiple of `Caps::storage_align`).
#[derive(Clone, Copy, Debug)]
pub struct Binding<'a> {
    pub buffer: &'a GpuBuffer,
    pub offset: u64,
    pub size: u64,
}

impl<'a> Binding<'a> {
    pub fn whole(buffer: &'a GpuBuffer) -> Binding<'a> {
        Binding { buffer, offset: 0, size: buffer.capacity() }
    }
}

/// Dispatches recorded but not yet submitted.
#[derive(Default)]
struct Recorder {
    encoder: Option<wgpu::CommandEncoder>,
    pass: Option<wgpu::ComputePass<'static>>,
    params: Vec<u8>,
}

impl GpuContext {
    pub(crate) fn open(want: Option<&str>) -> Result<Arc<GpuContext>> {
        let instance = adapter::instance();
        let adapter = adapter::pick(adapter::enumerate(&instance), want)?;
        let features = adapter.features() & adapter::wanted_features();
        let features = if adapter::coop_f16_supported(&adapter) {
            features
        } else {
            features - wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX
        };
        let experimental = features.contains(wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX);
        let limits = adapter.limits();
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("ferrograd"),
            required_features: features,
            required_limits: limits.clone(),
            // SAFETY: experimental features are enabled only when the adapter reports
            // cooperative matrices, and only the cooperative-matrix matmul uses them.
            experimental_features: if experimental {
                unsafe { wgpu::ExperimentalFeatures::enabled() }
            } else {
                wgpu::ExperimentalFeatures::disabled()
            },
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        }))
        .map_err(|e| DeviceError::Wgpu { context: "request_device".into(), message: e.to_string() })?;
        let uncaptured = Arc::new(Mutex::new(Vec::new()));
        let sink = uncaptured.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            sink.lock().unwrap().push(e.to_string());
        }));
        let param_arena = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("param-arena"),
            size: PARAM_ARENA_BYTES,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let caps = adapter::caps_of(&adapter, device.features(), &device.limits());
        Ok(Arc::new(GpuContext {
            info: adapter.get_info(),
            binding_limit: AtomicU64::new(caps.max_storage_binding),
            caps,
            device,
            queue,
            pool: Pool::default(),
            pipelines: PipelineCache::default(),
            counters: Counters::default(),
            recorder: Mutex::new(Recorder::default()),
            param_arena,
            poison: AtomicBool::new(false),
            profiling: AtomicBool::new(false),
            profiler: Mutex::new(None),
            uncaptured,
        }))
    }

    pub fn caps(&self) -> &Caps {
        &self.caps
    }

    pub fn adapter_name(&self) -> &str {
        &self.info.name
    }

    pub fn adapter_info(&self) -> &wgpu::AdapterInfo {
        &self.info
    }

    /// Whether the adapter is a CPU rasterizer (lavapipe, WARP), which several kernels and
    /// benchmarks treat differently.
    pub fn is_cpu_adapter(&self) -> bool {
        self.info.device_type == wgpu::DeviceType::Cpu
    }

    pub fn raw_device(&self) -> &wgpu::Device {
        &self.device
    }

    pub fn raw_queue(&self) -> &wgpu::Queue {
        &self.queue
    }

    pub fn stats(&self) -> Stats {
        self.counters.snapshot()
    }

    /// Restart `Stats::peak_bytes_live` from the bytes live now.
    pub fn reset_peak_bytes(&self) {
        let live = self.counters.bytes_live.load(Relaxed);
        self.counters.peak_bytes_live.store(live, Relaxed);
    }

    /// Fill every newly allocated kernel output with NaN, so a kernel that forgets to
    /// write an element fails its parity test. Off by default; the tests turn it on.
    pub fn set_poison_outputs(&self, on: bool) {
        self.poison.store(on, Relaxed);
    }

    pub fn poison_outputs(&self) -> bool {
        self.poison.load(Relaxed)
    }

    /// Time every dispatch from now on with timestamp queries, each in a compute pass of its
    /// own (slower: for measuring only); `take_profile` returns the records. Switching waits
    /// for the GPU and drops records not yet taken. An error where the adapter has no
    /// timestamp queries.
    pub fn set_profiling(&self, on: bool) -> Result<()> {
        if on && !self.caps.timestamps {
            return Err(DeviceError::Unsupported {
                kernel: "profiler",
                detail: format!("adapter {} has no timestamp queries", self.info.name),
            });
        }
        self.sync()?;
        let mut rec = self.recorder.lock().unwrap();
        let mut profiler = self.profiler.lock().unwrap();
        *profiler = on.then(|| Profiler::new(&self.device, &self.queue));
        self.profiling.store(on, Relaxed);
        drop(rec.pass.take());
        Ok(())
    }

    pub fn profiling(&self) -> bool {
        self.profiling.load(Relaxed)
    }

    /// Waits for the GPU and returns the dispatches timed since the last call, in recording
    /// order (empty when not profiling).
    pub fn take_profile(&self) -> Result<Vec<ProfileRecord>> {
        self.sync()?;
        Ok(self.profiler.lock().unwrap().as_mut().map(Profiler::take).unwrap_or_default())
    }

    /// Free the pool's cached (unused) buffers; returns the bytes released.
    pub fn trim_pool(&self) -> u64 {
        let bytes = self.pool.trim();
        self.counters.bytes_pooled.fetch_sub(bytes, Relaxed);
        bytes
    }

    /// Bind at most `bytes` (rounded down to the binding alignment; at least 64 KiB, the
    /// uniform copy `rows8` makes of an operand; at most what the adapter allows) per storage
    /// binding from now on. Kernels then take larger arrays in windows or parts, as they do
    /// arrays over the adapter's limit: tests use it to reach those paths with small arrays.
    pub fn set_binding_limit(&self, bytes: u64) {
        const SMALLEST: u64 = 64 << 10;
        let align = self.caps.storage_align.max(4) as u64;
        let bytes = (bytes / align * align).clamp(SMALLEST, self.caps.max_storage_binding);
        self.binding_limit.store(bytes, Relaxed);
    }

    /// The most bytes one storage binding takes (see [`GpuContext::set_binding_limit`]).
    pub fn binding_limit(&self) -> u64 {
        self.binding_limit.load(Relaxed)
    }

    /// The size an allocation of `bytes` gets: its pool bucket, or for an array larger than one
    /// binding (which kernels bind in windows, and which is rarely repeated: a large weight or
    /// its gradient) exactly its bytes, unpooled, so that a buffer bound whole always fits.
    fn allocation(&self, bytes: u64, kernel: &'static str, shape: &[usize]) -> Result<(u64, bool)> {
        let bucket = bucket_size(bytes);
        let (size, pooled) = if bucket > self.binding_limit() {
            (bytes.next_multiple_of(self.caps.storage_align.max(4) as u64), false)
        } else {
            (bucket, true)
        };
        if size > self.caps.max_buffer {
            return Err(DeviceError::TooLarge { kernel, bytes, limit: self.caps.max_buffer, shape: shape.to_vec() });
        }
        Ok((size, pooled))
    }

    /// A buffer of at least `bytes`, from the pool where it fits a bucket. `kernel` and `shape`
    /// name the request in errors.
    pub fn alloc(self: &Arc<Self>, bytes: u64, kernel: &'static str, shape: &[usize]) -> Result<GpuBuffer> {
        let (size, pooled) = self.allocation(bytes, kernel, shape)?;
        if let Some(b) = pooled.then(|| self.pool.take(size)).flatten() {
            self.counters.pool_hits.fetch_add(1, Relaxed);
            self.counters.bytes_pooled.fetch_sub(size, Relaxed);
            return Ok(GpuBuffer::new(b, size, true, shape, self.clone()));
        }
        self.counters.pool_misses.fetch_add(1, Relaxed);
        let buffer = match self.create_storage(size) {
            Some(b) => b,
            None => {
                // Out of memory: release the pool's idle buffers and try once more.
                self.sync()?;
                self.trim_pool();
                self.create_storage(size).ok_or(DeviceError::OutOfMemory { kernel, bytes })?
            }
        };
        Ok(GpuBuffer::new(buffer, size, pooled, shape, self.clone()))
    }

    fn create_storage(&self, size: u64) -> Option<wgpu::Buffer> {
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let b = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: None,
            size,
            usage: POOL_USAGE,
            mapped_at_creation: false,
        });
        match pollster::block_on(scope.pop()) {
            None => Some(b),
            Some(_) => None,
        }
    }

    /// A new buffer holding `bytes`. It is filled through its mapping at creation, so it
    /// is ordered correctly against dispatches already recorded. It is freed, not pooled, when
    /// dropped: uploads never draw from the pool, so pooling them grew it by every byte uploaded
    /// (an evaluation pass's test set, each epoch).
    pub fn upload(self: &Arc<Self>, bytes: &[u8], kernel: &'static str, shape: &[usize]) -> Result<GpuBuffer> {
        let (bucket, _) = self.allocation(bytes.len() as u64, kernel, shape)?;
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let buffer = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: None,
            size: bucket,
            usage: POOL_USAGE,
            mapped_at_creation: true,
        });
        if pollster::block_on(scope.pop()).is_some() {
            return Err(DeviceError::OutOfMemory { kernel, bytes: bucket });
        }
        // Mapped ranges must be a multiple of 4 bytes (f16 arrays of odd length are not).
        let mapped = (bytes.len() as u64).next_multiple_of(wgpu::COPY_BUFFER_ALIGNMENT);
        let mut view = buffer
            .slice(..mapped)
            .get_mapped_range_mut()
            .map_err(|e| DeviceError::Wgpu { context: format!("{kernel}: mapping upload"), message: e.to_string() })?;
        view.slice(..bytes.len()).copy_from_slice(bytes);
        drop(view);
        buffer.unmap();
        self.counters.uploads.fetch_add(1, Relaxed);
        Ok(GpuBuffer::new(buffer, bucket, false, shape, self.clone()))
    }

    /// Record one dispatch: `params` becomes the uniform at binding 0, `buffers` the storage
    /// bindings 1, 2, ... in order, each bound whole. Nothing is submitted.
    pub fn dispatch(&self, kernel: &Kernel, params: &[u8], buffers: &[&GpuBuffer], groups: [u32; 3]) -> Result<()> {
        let bindings: Vec<Binding> = buffers.iter().map(|&b| Binding::whole(b)).collect();
        self.dispatch_bound(kernel, params, &bindings, groups)
    }

    /// Like [`GpuContext::dispatch`], with each storage binding a range of its buffer. A binding
    /// over [`GpuContext::binding_limit`] is an error naming the kernel and the array.
    pub fn dispatch_bound(&self, kernel: &Kernel, params: &[u8], bindings: &[Binding], groups: [u32; 3]) -> Result<()> {
        let limit = self.binding_limit();
        if let Some(b) = bindings.iter().find(|b| b.size > limit) {
            return Err(DeviceError::TooLarge {
                kernel: kernel.shader.name,
                bytes: b.size,
                limit,
                shape: b.buffer.shape().to_vec(),
            });
        }
        if groups.contains(&0) {
            return Ok(());
        }
        if let Some(&g) = groups.iter().find(|&&g| g > self.caps.max_groups_per_dim) {
            return Err(DeviceError::TooLarge {
                kernel: kernel.shader.name,
                bytes: g as u64,
                limit: self.caps.max_groups_per_dim as u64,
                shape: groups.iter().map(|&x| x as usize).collect(),
            });
        }
        assert!(params.len() <= MAX_PARAM_BYTES, "{}: parameter block too large", kernel.label());
        let mut compiled = false;
        let compiled_kernel = self.pipelines.get(&self.device, kernel, &mut compiled)?;
        if compiled {
            self.counters.pipelines_compiled.fetch_add(1, Relaxed);
        }
        let mut rec = self.recorder.lock().unwrap();
        let align = self.caps.uniform_align.max(16) as usize;
        let slot = rec.params.len().next_multiple_of(align);
        let padded = params.len().max(16).next_multiple_of(16);
        if (slot + padded) as u64 > PARAM_ARENA_BYTES {
            self.submit_locked(&mut rec);
        }
        let slot = rec.params.len().next_multiple_of(align);
        rec.params.resize(slot, 0);
        rec.params.extend_from_slice(params);
        rec.params.resize(slot + padded, 0);

        let mut entries = vec![wgpu::BindGroupEntry {
            binding: 0,
            resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                buffer: &self.param_arena,
                offset: slot as u64,
                size: std::num::NonZeroU64::new(padded as u64),
            }),
        }];
        for (i, b) in bindings.iter().enumerate() {
            let whole = b.offset == 0 && b.size == b.buffer.capacity();
            let resource = wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                buffer: b.buffer.raw(),
                offset: b.offset,
                size: if whole { None } else { std::num::NonZeroU64::new(b.size) },
            });
            entries.push(wgpu::BindGroupEntry { binding: i as u32 + 1, resource });
        }
        let bind_group = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout: &compiled_kernel.layout,
            entries: &entries,
        });
        if self.profiling.load(Relaxed) {
            self.profiled_pass(&mut rec, kernel.label(), |pass| {
                pass.set_pipeline(&compiled_kernel.pipeline);
                pass.set_bind_group(0, &bind_group, &[]);
                pass.dispatch_workgroups(groups[0], groups[1], groups[2]);
            });
        } else {
            let pass = self.pass(&mut rec);
            pass.set_pipeline(&compiled_kernel.pipeline);
            pass.set_bind_group(0, &bind_group, &[]);
            pass.dispatch_workgroups(groups[0], groups[1], groups[2]);
        }
        self.counters.dispatches.fetch_add(1, Relaxed);
        Ok(())
    }

    /// Runs `record` in a compute pass of its own whose start and end are timestamped.
    fn profiled_pass(&self, rec: &mut Recorder, label: String, record: impl FnOnce(&mut wgpu::ComputePass<'_>)) {
        rec.pass = None;
        if self.profiler.lock().unwrap().as_ref().is_some_and(Profiler::full) {
            self.submit_locked(rec);
        }
        let mut profiler = self.profiler.lock().unwrap();
        let Some(profiler) = profiler.as_mut() else { return };
        let encoder = rec
            .encoder
            .get_or_insert_with(|| self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor::default()));
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: None,
            timestamp_writes: Some(profiler.next_writes(label)),
        });
        self.counters.compute_passes.fetch_add(1, Relaxed);
        record(&mut pass);
    }

    fn pass<'r>(&self, rec: &'r mut Recorder) -> &'r mut wgpu::ComputePass<'static> {
        if rec.pass.is_none() {
            let encoder = rec
                .encoder
                .get_or_insert_with(|| self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor::default()));
            let pass = encoder
                .begin_compute_pass(&wgpu::ComputePassDescriptor { label: None, timestamp_writes: None })
                .forget_lifetime();
            self.counters.compute_passes.fetch_add(1, Relaxed);
            rec.pass = Some(pass);
        }
        rec.pass.as_mut().unwrap()
    }

    /// Record a buffer-to-buffer copy (ends the open compute pass).
    pub fn copy(&self, src: &GpuBuffer, src_offset: u64, dst: &GpuBuffer, dst_offset: u64, bytes: u64) {
        if bytes == 0 {
            return;
        }
        let mut rec = self.recorder.lock().unwrap();
        rec.pass = None;
        let encoder = rec
            .encoder
            .get_or_insert_with(|| self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor::default()));
        encoder.copy_buffer_to_buffer(src.raw(), src_offset, dst.raw(), dst_offset, bytes);
    }

    fn submit_locked(&self, rec: &mut Recorder) -> Option<wgpu::SubmissionIndex> {
        rec.pass = None;
        let mut encoder = rec.encoder.take()?;
        if self.profiling.load(Relaxed) {
            if let Some(p) = self.profiler.lock().unwrap().as_mut() {
                p.resolve(&self.device, &mut encoder);
            }
        }
        if !rec.params.is_empty() {
            self.queue.write_buffer(&self.param_arena, 0, &rec.params);
            rec.params.clear();
        }
        self.counters.submits.fetch_add(1, Relaxed);
        Some(self.queue.submit([encoder.finish()]))
    }

    /// Submit what has been recorded, without waiting for it.
    pub fn flush(&self) {
        let mut rec = self.recorder.lock().unwrap();
        self.submit_locked(&mut rec);
    }

    /// Submit and block until the GPU is idle; reports any error wgpu raised meanwhile.
    pub fn sync(&self) -> Result<()> {
        let idx = {
            let mut rec = self.recorder.lock().unwrap();
            self.submit_locked(&mut rec)
        };
        self.wait(idx)
    }

    fn wait(&self, idx: Option<wgpu::SubmissionIndex>) -> Result<()> {
        self.counters.waits.fetch_add(1, Relaxed);
        self.device
            .poll(wgpu::PollType::Wait { submission_index: idx, timeout: None })
            .map_err(|e| DeviceError::Wgpu { context: "waiting for the GPU".into(), message: e.to_string() })?;
        if self.profiling.load(Relaxed) {
            if let Some(p) = self.profiler.lock().unwrap().as_mut() {
                p.collect(&self.device)?;
            }
        }
        self.take_uncaptured()
    }

    fn take_uncaptured(&self) -> Result<()> {
        let mut errs = self.uncaptured.lock().unwrap();
        if errs.is_empty() {
            return Ok(());
        }
        let message = errs.join("; ");
        errs.clear();
        Err(DeviceError::Wgpu { context: "a recorded dispatch".into(), message })
    }

    /// Read `bytes` bytes from the start of `src`: submits everything recorded and waits once.
    pub fn read(&self, src: &GpuBuffer, bytes: u64) -> Result<Vec<u8>> {
        if bytes == 0 {
            return Ok(Vec::new());
        }
        let size = bytes.next_multiple_of(wgpu::COPY_BUFFER_ALIGNMENT);
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let idx = {
            let mut rec = self.recorder.lock().unwrap();
            rec.pass = None;
            let encoder = rec
                .encoder
                .get_or_insert_with(|| self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor::default()));
            encoder.copy_buffer_to_buffer(src.raw(), 0, &staging, 0, size);
            self.submit_locked(&mut rec)
        };
        let slice = staging.slice(..);
        let (tx, rx) = std::sync::mpsc::channel();
        slice.map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        self.wait(idx)?;
        rx.recv()
            .map_err(|e| DeviceError::Wgpu { context: "readback".into(), message: e.to_string() })?
            .map_err(|e| DeviceError::Wgpu { context: "readback".into(), message: e.to_string() })?;
        let data = slice
            .get_mapped_range()
            .map_err(|e| DeviceError::Wgpu { context: "readback".into(), message: e.to_string() })?;
        let out = data[..bytes as usize].to_vec();
        drop(data);
        staging.unmap();
        Ok(out)
    }
}

impl std::fmt::Debug for GpuContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GpuContext({} / {:?})", self.info.name, self.info.backend)
    }
}
