//! fill: one value everywhere (`full`, `zeros`), and the NaN poison used by the tests.

use crate::array::Array;
use crate::device::Device;
use crate::dtype::DType;
use crate::error::Result;
use crate::gpu::{GpuBuffer, GpuContext, Kernel};

crate::shader!(FILL, "fill");

/// Write `bits` into the first `words` 32-bit words of `buf` (in windows if it is larger than
/// one binding).
pub(crate) fn fill_words(g: &GpuContext, buf: &GpuBuffer, words: u64, bits: u32) -> Result<()> {
    g.dispatch_flat(&Kernel::new(&FILL, "fill"), words as usize, &[(buf, 4)], 256, |w| vec![w.len as u32, bits, 0, 0])
}

/// An array of `value` everywhere.
pub fn full(device: &Device, shape: &[usize], dtype: DType, value: f32) -> Result<Array> {
    let n = crate::array::numel(shape);
    match device {
        Device::Cpu => Ok(Array::cpu(vec![reference::round(dtype, value); n], shape, dtype)),
        Device::Gpu(g) => {
            let out = Array::empty(device, shape, dtype, "fill")?;
            let (words, bits) = match dtype {
                DType::F32 => (n, value.to_bits()),
                DType::U32 => (n, value as u32),
                DType::F16 => {
                    let h = half::f16::from_f32(value).to_bits() as u32;
                    (n.div_ceil(2), h | (h << 16))
                }
            };
            fill_words(g, out.gpu_buffer().unwrap(), words as u64, bits)?;
            Ok(out)
        }
    }
}

pub mod reference {
    use crate::dtype::DType;

    /// `value` as the dtype stores it.
    pub fn round(dtype: DType, value: f32) -> f64 {
        match dtype {
            DType::F32 => value as f64,
            DType::U32 => (value as u32) as f64,
            DType::F16 => half::f16::from_f32(value).to_f64(),
        }
    }
}
