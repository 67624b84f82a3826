//! `Array`: a contiguous, row-major n-d array on a device. Cloning shares the storage.

use crate::device::Device;
use crate::dtype::DType;
use crate::error::{DeviceError, Result};
use crate::gpu::GpuBuffer;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Bit pattern written into outputs before a kernel runs when poisoning is on: a NaN as
/// f32, two NaNs as f16, and an index far out of range as u32.
pub const POISON_BITS: u32 = 0x7FC0_7FC0;

#[derive(Clone)]
pub(crate) enum Storage {
    /// every dtype held as f64 on the CPU reference device
    Cpu(Arc<RwLock<Vec<f64>>>),
    Gpu(Arc<GpuBuffer>),
}

#[derive(Clone)]
pub struct Array {
    storage: Storage,
    shape: Vec<usize>,
    dtype: DType,
}

pub fn numel(shape: &[usize]) -> usize {
    shape.iter().product()
}

impl Array {
    fn check_len(kernel: &'static str, len: usize, shape: &[usize]) -> Result<()> {
        if len != numel(shape) {
            return Err(DeviceError::Shape {
                kernel,
                detail: format!("{len} values do not fill shape {shape:?} ({} elements)", numel(shape)),
            });
        }
        Ok(())
    }

    pub fn from_f32(device: &Device, data: &[f32], shape: &[usize]) -> Result<Array> {
        Self::check_len("from_f32", data.len(), shape)?;
        match device {
            Device::Cpu => Ok(Self::cpu(data.iter().map(|&x| x as f64).collect(), shape, DType::F32)),
            Device::Gpu(g) => {
                let buf = g.upload(bytemuck::cast_slice(data), "from_f32", shape)?;
                Ok(Array { storage: Storage::Gpu(Arc::new(buf)), shape: shape.to_vec(), dtype: DType::F32 })
            }
        }
    }

    /// On the CPU device the values keep double precision; on a GPU they become f32.
    pub fn from_f64(device: &Device, data: &[f64], shape: &[usize]) -> Result<Array> {
        Self::check_len("from_f64", data.len(), shape)?;
        match device {
            Device::Cpu => Ok(Self::cpu(data.to_vec(), shape, DType::F32)),
            Device::Gpu(_) => Self::from_f32(device, &data.iter().map(|&x| x as f32).collect::<Vec<_>>(), shape),
        }
    }

    pub fn from_u32(device: &Device, data: &[u32], shape: &[usize]) -> Result<Array> {
        Self::check_len("from_u32", data.len(), shape)?;
        match device {
            Device::Cpu => Ok(Self::cpu(data.iter().map(|&x| x as f64).collect(), shape, DType::U32)),
            Device::Gpu(g) => {
                let buf = g.upload(bytemuck::cast_slice(data), "from_u32", shape)?;
                Ok(Array { storage: Storage::Gpu(Arc::new(buf)), shape: shape.to_vec(), dtype: DType::U32 })
            }
        }
    }

    pub fn from_f16(device: &Device, data: &[half::f16], shape: &[usize]) -> Result<Array> {
        Self::check_len("from_f16", data.len(), shape)?;
        match device {
            Device::Cpu => Ok(Self::cpu(data.iter().map(|x| x.to_f64()).collect(), shape, DType::F16)),
            Device::Gpu(g) => {
                if !g.caps().f16 {
                    return Err(DeviceError::Unsupported {
                        kernel: "from_f16",
                        detail: "adapter has no SHADER_F16".into(),
                    });
                }
                let buf = g.upload(bytemuck::cast_slice(data), "from_f16", shape)?;
                Ok(Array { storage: Storage::Gpu(Arc::new(buf)), shape: shape.to_vec(), dtype: DType::F16 })
            }
        }
    }

    /// A CPU array from f64 values (the reference device's native form).
    pub fn cpu(data: Vec<f64>, shape: &[usize], dtype: DType) -> Array {
        debug_assert_eq!(data.len(), numel(shape));
        Array { storage: Storage::Cpu(Arc::new(RwLock::new(data))), shape: shape.to_vec(), dtype }
    }

    /// An array of `value` everywhere.
    pub fn full(device: &Device, shape: &[usize], value: f32) -> Result<Array> {
        crate::kernels::fill::full(device, shape, DType::F32, value)
    }

    pub fn zeros(device: &Device, shape: &[usize]) -> Result<Array> {
        Self::full(device, shape, 0.0)
    }

    /// An output array whose contents are undefined until a kernel writes them (filled with
    /// NaN when the device poisons outputs). `kernel` names the request in errors.
    pub fn empty(device: &Device, shape: &[usize], dtype: DType, kernel: &'static str) -> Result<Array> {
        match device {
            Device::Cpu => Ok(Self::cpu(vec![f64::NAN; numel(shape)], shape, dtype)),
            Device::Gpu(g) => {
                let bytes = (numel(shape) * dtype.size()) as u64;
                let buf = g.alloc(bytes, kernel, shape)?;
                if g.poison_outputs() {
                    crate::kernels::fill::fill_words(g, &buf, buf.capacity() / 4, POISON_BITS)?;
                }
                Ok(Array { storage: Storage::Gpu(Arc::new(buf)), shape: shape.to_vec(), dtype })
            }
        }
    }

    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    pub fn ndim(&self) -> usize {
        self.shape.len()
    }

    pub fn numel(&self) -> usize {
        numel(&self.shape)
    }

    pub fn dtype(&self) -> DType {
        self.dtype
    }

    pub fn device(&self) -> Device {
        match &self.storage {
            Storage::Cpu(_) => Device::Cpu,
            Storage::Gpu(b) => Device::Gpu(b.context().clone()),
        }
    }

    pub fn is_gpu(&self) -> bool {
        matches!(self.storage, Storage::Gpu(_))
    }

    /// The GPU buffer, if the array lives on a GPU.
    pub fn gpu_buffer(&self) -> Option<&GpuBuffer> {
        match &self.storage {
            Storage::Gpu(b) => Some(b),
            Storage::Cpu(_) => None,
        }
    }

    /// The GPU buffer; `kernel` names the caller in the error if the array is on the CPU.
    pub fn expect_gpu(&self, kernel: &'static str) -> Result<&GpuBuffer> {
        self.gpu_buffer().ok_or_else(|| DeviceError::DeviceMismatch { kernel, left: "gpu".into(), right: "cpu".into() })
    }

    /// Read access to a CPU array's values (panics on a GPU array: use `to_f64_vec`).
    pub fn cpu_data(&self) -> RwLockReadGuard<'_, Vec<f64>> {
        match &self.storage {
            Storage::Cpu(v) => v.read().unwrap(),
            Storage::Gpu(_) => panic!("cpu_data on a GPU array"),
        }
    }

    /// Write access to a CPU array's values, for in-place kernels.
    pub fn cpu_data_mut(&self) -> RwLockWriteGuard<'_, Vec<f64>> {
        match &self.storage {
            Storage::Cpu(v) => v.write().unwrap(),
            Storage::Gpu(_) => panic!("cpu_data_mut on a GPU array"),
        }
    }

    /// Whether two arrays share storage (an in-place kernel must not read what it writes
    /// through a second binding).
    pub fn same_storage(&self, other: &Array) -> bool {
        match (&self.storage, &other.storage) {
            (Storage::Cpu(a), Storage::Cpu(b)) => Arc::ptr_eq(a, b),
            (Storage::Gpu(a), Storage::Gpu(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }

    /// Same storage, new shape with the same element count.
    pub fn reshape(&self, shape: &[usize]) -> Result<Array> {
        if numel(shape) != self.numel() {
            return Err(DeviceError::Shape {
                kernel: "reshape",
                detail: format!("cannot reshape {:?} ({} elements) to {shape:?}", self.shape, self.numel()),
            });
        }
        Ok(Array { storage: self.storage.clone(), shape: shape.to_vec(), dtype: self.dtype })
    }

    /// A copy of `len` entries of the first axis from `start` (rows of a matrix, elements of a
    /// vector). On a GPU it is a buffer copy, which no binding limit constrains: how a kernel
    /// takes an array too large to bind whole in pieces.
    pub fn rows(&self, start: usize, len: usize) -> Result<Array> {
        let (row, _) = self.row_extent("rows", start, len)?;
        let mut shape = self.shape.clone();
        shape[0] = len;
        match &self.storage {
            Storage::Cpu(v) => {
                Ok(Self::cpu(v.read().unwrap()[start * row..(start + len) * row].to_vec(), &shape, self.dtype))
            }
            Storage::Gpu(b) => {
                let out = Array::empty(&self.device(), &shape, self.dtype, "rows")?;
                let bytes = self.dtype.size() as u64;
                let dst = out.expect_gpu("rows")?;
                b.context().copy(b, (start * row) as u64 * bytes, dst, 0, (len * row) as u64 * bytes);
                Ok(out)
            }
        }
    }

    /// Overwrites entries `start..` of the first axis with `src` (shaped as those entries), by
    /// a buffer copy on a GPU: the inverse of [`Array::rows`].
    pub fn write_rows(&self, start: usize, src: &Array) -> Result<()> {
        let len = src.shape.first().copied().unwrap_or(1);
        let (row, _) = self.row_extent("write_rows", start, len)?;
        if src.numel() != len * row || src.dtype != self.dtype {
            return Err(DeviceError::Shape {
                kernel: "write_rows",
                detail: format!("{:?} {} cannot fill rows of {:?} {}", src.shape, src.dtype, self.shape, self.dtype),
            });
        }
        match (&self.storage, &src.storage) {
            (Storage::Cpu(dst), Storage::Cpu(s)) => {
                dst.write().unwrap()[start * row..(start + len) * row].copy_from_slice(&s.read().unwrap());
            }
            (Storage::Gpu(dst), Storage::Gpu(s)) => {
                let bytes = self.dtype.size() as u64;
                dst.context().copy(s, 0, dst, (start * row) as u64 * bytes, (len * row) as u64 * bytes);
            }
            _ => {
                return Err(DeviceError::DeviceMismatch {
                    kernel: "write_rows",
                    left: self.device().name(),
                    right: src.device().name(),
                })
            }
        }
        Ok(())
    }

    /// Elements per entry of the first axis, and that axis's length, checking that
    /// `start..start + len` lies within it and that a buffer copy can address it.
    fn row_extent(&self, kernel: &'static str, start: usize, len: usize) -> Result<(usize, usize)> {
        let total = self.shape.first().copied().unwrap_or(1);
        let row = self.numel().checked_div(total).unwrap_or(0);
        let aligned = (row * self.dtype.size()).is_multiple_of(4);
        if start + len > total || (self.is_gpu() && !aligned) {
            return Err(DeviceError::Shape {
                kernel,
                detail: format!(
                    "entries {start}..{} of {:?} {} (a GPU copy needs rows of a multiple of 4 bytes)",
                    start + len,
                    self.shape,
                    self.dtype
                ),
            });
        }
        Ok((row, total))
    }

    /// Same storage read as another dtype of the same size (e.g. u32 indices kept in an f32 slot).
    pub fn with_dtype(&self, dtype: DType) -> Array {
        Array { storage: self.storage.clone(), shape: self.shape.clone(), dtype }
    }

    fn gpu_bytes(&self) -> Result<Vec<u8>> {
        let buf = self.expect_gpu("readback")?;
        buf.context().read(buf, (self.numel() * self.dtype.size()) as u64)
    }

    /// Values as f64. Reading a GPU array submits recorded work and waits once.
    pub fn to_f64_vec(&self) -> Result<Vec<f64>> {
        match &self.storage {
            Storage::Cpu(v) => Ok(v.read().unwrap().clone()),
            Storage::Gpu(_) => {
                let bytes = self.gpu_bytes()?;
                Ok(match self.dtype {
                    DType::F32 => {
                        bytemuck::pod_collect_to_vec::<u8, f32>(&bytes).into_iter().map(|x| x as f64).collect()
                    }
                    DType::U32 => {
                        bytemuck::pod_collect_to_vec::<u8, u32>(&bytes).into_iter().map(|x| x as f64).collect()
                    }
                    DType::F16 => {
                        bytes.chunks_exact(2).map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f64()).collect()
                    }
                })
            }
        }
    }

    pub fn to_f32_vec(&self) -> Result<Vec<f32>> {
        match (&self.storage, self.dtype) {
            (Storage::Gpu(_), DType::F32) => Ok(bytemuck::pod_collect_to_vec(&self.gpu_bytes()?)),
            _ => Ok(self.to_f64_vec()?.into_iter().map(|x| x as f32).collect()),
        }
    }

    pub fn to_u32_vec(&self) -> Result<Vec<u32>> {
        match (&self.storage, self.dtype) {
            (Storage::Gpu(_), DType::U32) => Ok(bytemuck::pod_collect_to_vec(&self.gpu_bytes()?)),
            _ => Ok(self.to_f64_vec()?.into_iter().map(|x| x as u32).collect()),
        }
    }

    /// The single value of a one-element array.
    pub fn item(&self) -> Result<f64> {
        if self.numel() != 1 {
            return Err(DeviceError::Shape {
                kernel: "item",
                detail: format!("shape {:?} is not one element", self.shape),
            });
        }
        Ok(self.to_f64_vec()?[0])
    }

    /// A copy on `device` (the same storage if it is already there).
    pub fn to_device(&self, device: &Device) -> Result<Array> {
        if self.device().same(device) {
            return Ok(self.clone());
        }
        match self.dtype {
            DType::U32 => Array::from_u32(device, &self.to_u32_vec()?, &self.shape),
            DType::F16 if device.is_gpu() => {
                let v: Vec<half::f16> = self.to_f64_vec()?.into_iter().map(half::f16::from_f64).collect();
                Array::from_f16(device, &v, &self.shape)
            }
            _ => Array::from_f64(device, &self.to_f64_vec()?, &self.shape).map(|a| a.with_dtype(self.dtype)),
        }
    }
}

impl std::fmt::Debug for Array {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Array({:?}, {}, {:?})", self.shape, self.dtype, self.device())
    }
}
