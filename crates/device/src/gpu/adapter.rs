//! Adapter discovery and capability reading: nothing is assumed, everything is asked.

use crate::error::{DeviceError, Result};

/// What a kernel may rely on, read from the adapter and the device we opened on it.
#[derive(Clone, Debug)]
pub struct Caps {
    pub f16: bool,
    pub subgroups: bool,
    pub subgroup_min_size: u32,
    pub subgroup_max_size: u32,
    /// 16x16x16 f16-input, f32-accumulate cooperative matrices (tensor cores)
    pub coop_matrix_f16: bool,
    pub timestamps: bool,
    pub max_storage_binding: u64,
    pub max_buffer: u64,
    pub max_workgroup_storage: u32,
    pub max_invocations: u32,
    pub max_groups_per_dim: u32,
    pub uniform_align: u32,
    /// where a storage binding may start in a buffer (`min_storage_buffer_offset_alignment`)
    pub storage_align: u32,
    /// storage buffers one kernel may bind: the per-stage limit, within the bind group's
    pub max_storage_buffers: u32,
}

/// One adapter as `ferrograd devices` prints it.
#[derive(Clone, Debug)]
pub struct AdapterReport {
    pub index: usize,
    pub name: String,
    pub backend: String,
    pub device_type: String,
    pub driver: String,
    pub driver_info: String,
    pub caps: Caps,
}

pub(crate) fn instance() -> wgpu::Instance {
    wgpu::Instance::new(wgpu::InstanceDescriptor {
        backends: wgpu::Backends::from_env().unwrap_or(wgpu::Backends::PRIMARY),
        ..wgpu::InstanceDescriptor::new_without_display_handle()
    })
}

pub(crate) fn enumerate(instance: &wgpu::Instance) -> Vec<wgpu::Adapter> {
    pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()))
}

pub(crate) fn coop_f16_supported(adapter: &wgpu::Adapter) -> bool {
    adapter.features().contains(wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX)
        && adapter.cooperative_matrix_properties().iter().any(|c| {
            c.m_size == 16
                && c.n_size == 16
                && c.k_size == 16
                && format!("{:?}", c.ab_type).contains("16")
                && format!("{:?}", c.cr_type).contains("32")
        })
}

pub(crate) fn caps_of(adapter: &wgpu::Adapter, features: wgpu::Features, limits: &wgpu::Limits) -> Caps {
    let info = adapter.get_info();
    Caps {
        f16: features.contains(wgpu::Features::SHADER_F16),
        subgroups: features.contains(wgpu::Features::SUBGROUP),
        subgroup_min_size: info.subgroup_min_size,
        subgroup_max_size: info.subgroup_max_size,
        coop_matrix_f16: features.contains(wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX)
            && features.contains(wgpu::Features::SHADER_F16)
            && coop_f16_supported(adapter),
        timestamps: features.contains(wgpu::Features::TIMESTAMP_QUERY),
        max_storage_binding: limits.max_storage_buffer_binding_size,
        max_buffer: limits.max_buffer_size,
        max_workgroup_storage: limits.max_compute_workgroup_storage_size,
        max_invocations: limits.max_compute_invocations_per_workgroup,
        max_groups_per_dim: limits.max_compute_workgroups_per_dimension,
        uniform_align: limits.min_uniform_buffer_offset_alignment,
        storage_align: limits.min_storage_buffer_offset_alignment,
        // binding 0 of every kernel is its parameter block
        max_storage_buffers: limits
            .max_storage_buffers_per_shader_stage
            .min(limits.max_bindings_per_bind_group.saturating_sub(1)),
    }
}

/// Every adapter wgpu can see, with what it offers.
pub fn list_adapters() -> Vec<AdapterReport> {
    let instance = instance();
    enumerate(&instance)
        .iter()
        .enumerate()
        .map(|(index, a)| {
            let info = a.get_info();
            AdapterReport {
                index,
                name: info.name.clone(),
                backend: format!("{:?}", info.backend),
                device_type: format!("{:?}", info.device_type),
                driver: info.driver.clone(),
                driver_info: info.driver_info.clone(),
                caps: caps_of(a, a.features(), &a.limits()),
            }
        })
        .collect()
}

/// Best adapter: the one whose name contains `want` (case-insensitive) if given,
/// else discrete, integrated, virtual, other, CPU (lavapipe), in that order. `want` may end in
/// `#K`: the K-th (counted from 0, wrapping around) of the matching adapters, or with no name
/// before it of the best kind's, which is how the processes of a data-parallel job on one host
/// share its GPUs (`#LOCAL_RANK`).
pub(crate) fn pick(adapters: Vec<wgpu::Adapter>, want: Option<&str>) -> Result<wgpu::Adapter> {
    if adapters.is_empty() {
        return Err(DeviceError::NoAdapter);
    }
    let names: Vec<String> = adapters.iter().map(|a| a.get_info().name).collect();
    if let Some((name, k)) = want.and_then(|w| w.rsplit_once('#')).and_then(|(n, k)| Some((n, k.parse().ok()?))) {
        return pick_kth(adapters, name, k, names);
    }
    if let Some(w) = want {
        let w = w.to_lowercase();
        return adapters
            .into_iter()
            .find(|a| a.get_info().name.to_lowercase().contains(&w))
            .ok_or_else(|| DeviceError::NoMatchingAdapter { want: w.clone(), names: names.clone() });
    }
    use wgpu::DeviceType as D;
    let rank = |t: D| match t {
        D::DiscreteGpu => 0,
        D::IntegratedGpu => 1,
        D::VirtualGpu => 2,
        D::Other => 3,
        D::Cpu => 4,
    };
    adapters.into_iter().min_by_key(|a| rank(a.get_info().device_type)).ok_or(DeviceError::NoAdapter)
}

/// The `k`-th (mod their count) of the adapters whose name contains `name`, or, for an empty
/// name, of the adapters of the best kind.
fn pick_kth(adapters: Vec<wgpu::Adapter>, name: &str, k: usize, names: Vec<String>) -> Result<wgpu::Adapter> {
    let mut matching: Vec<wgpu::Adapter> = if name.is_empty() {
        let best = pick(adapters.clone(), None)?.get_info().device_type;
        adapters.into_iter().filter(|a| a.get_info().device_type == best).collect()
    } else {
        let w = name.to_lowercase();
        adapters.into_iter().filter(|a| a.get_info().name.to_lowercase().contains(&w)).collect()
    };
    if matching.is_empty() {
        return Err(DeviceError::NoMatchingAdapter { want: name.to_lowercase(), names });
    }
    let index = k % matching.len();
    Ok(matching.swap_remove(index))
}

/// Features we use when the adapter has them.
pub(crate) fn wanted_features() -> wgpu::Features {
    use wgpu::Features as F;
    F::SHADER_F16 | F::SUBGROUP | F::TIMESTAMP_QUERY | F::EXPERIMENTAL_COOPERATIVE_MATRIX
}
