//! `Device`: a cheap handle to where arrays live and kernels run.

use crate::error::Result;
use crate::gpu::{GpuContext, Stats};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

/// Where arrays live. `Cpu` is the double-precision reference; `Gpu` runs WGSL kernels.
/// Every kernel takes the same arguments on both.
#[derive(Clone)]
pub enum Device {
    Cpu,
    Gpu(Arc<GpuContext>),
}

/// Environment variable that picks an adapter by a substring of its name.
pub const ADAPTER_ENV: &str = "FERROGRAD_ADAPTER";

impl Device {
    pub fn cpu() -> Device {
        Device::Cpu
    }

    /// The best GPU adapter, or the one named by `FERROGRAD_ADAPTER`. Opened once per
    /// process and shared by every later call.
    pub fn gpu() -> Result<Device> {
        let want = std::env::var(ADAPTER_ENV).ok().filter(|s| !s.is_empty());
        Device::gpu_named(want.as_deref())
    }

    /// The adapter whose name contains `want` (case-insensitive), or the best one.
    pub fn gpu_named(want: Option<&str>) -> Result<Device> {
        static OPEN: OnceLock<Mutex<HashMap<String, Arc<GpuContext>>>> = OnceLock::new();
        let key = want.unwrap_or("").to_lowercase();
        let mut open = OPEN.get_or_init(Default::default).lock().unwrap();
        if let Some(ctx) = open.get(&key) {
            return Ok(Device::Gpu(ctx.clone()));
        }
        let ctx = GpuContext::open(want)?;
        open.insert(key, ctx.clone());
        Ok(Device::Gpu(ctx))
    }

    /// `"cpu"`, `"gpu"` (best adapter) or `"gpu:NAME"` (adapter whose name contains NAME);
    /// anything else is an error saying which forms there are.
    pub fn parse(spec: &str) -> Result<Device> {
        match spec {
            "cpu" => Ok(Device::Cpu),
            "gpu" | "" => Device::gpu(),
            s => match s.strip_prefix("gpu:") {
                Some(name) if !name.is_empty() => Device::gpu_named(Some(name)),
                _ => Err(crate::error::DeviceError::UnknownDevice { spec: s.to_string() }),
            },
        }
    }

    pub fn is_gpu(&self) -> bool {
        matches!(self, Device::Gpu(_))
    }

    pub fn gpu_context(&self) -> Option<&Arc<GpuContext>> {
        match self {
            Device::Gpu(g) => Some(g),
            Device::Cpu => None,
        }
    }

    pub fn name(&self) -> String {
        match self {
            Device::Cpu => "cpu".into(),
            Device::Gpu(g) => format!("gpu ({}, {:?})", g.adapter_name(), g.adapter_info().backend),
        }
    }

    pub fn same(&self, other: &Device) -> bool {
        match (self, other) {
            (Device::Cpu, Device::Cpu) => true,
            (Device::Gpu(a), Device::Gpu(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }

    /// Submit recorded work and wait for it (no-op on the CPU).
    pub fn sync(&self) -> Result<()> {
        match self {
            Device::Cpu => Ok(()),
            Device::Gpu(g) => g.sync(),
        }
    }

    /// Submit recorded work without waiting (no-op on the CPU).
    pub fn flush(&self) {
        if let Device::Gpu(g) = self {
            g.flush()
        }
    }

    /// GPU counters (all zero on the CPU).
    pub fn stats(&self) -> Stats {
        match self {
            Device::Cpu => Stats::default(),
            Device::Gpu(g) => g.stats(),
        }
    }

    /// Restart the peak of bytes live from now (no-op on the CPU).
    pub fn reset_peak_bytes(&self) {
        if let Device::Gpu(g) = self {
            g.reset_peak_bytes()
        }
    }

    /// Whether the device can run f16 kernels.
    pub fn has_f16(&self) -> bool {
        match self {
            Device::Cpu => true,
            Device::Gpu(g) => g.caps().f16,
        }
    }
}

impl std::fmt::Debug for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name())
    }
}

impl PartialEq for Device {
    fn eq(&self, other: &Self) -> bool {
        self.same(other)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_device_specs_name_the_forms_there_are() {
        for spec in ["tpu", "gpu:", "cuda:0"] {
            let err = Device::parse(spec).unwrap_err().to_string();
            assert!(err.contains(&format!("unknown device {spec:?}")) && err.contains("gpu:NAME"), "{err}");
            assert!(!err.contains("Vulkan driver"), "{err}");
        }
        assert!(Device::parse("cpu").unwrap() == Device::Cpu);
    }
}
