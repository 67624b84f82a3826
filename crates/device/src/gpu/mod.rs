//! Everything that talks to wgpu.

mod adapter;
mod buffer;
mod context;
mod pipelines;
mod pool;
mod profile;
mod stats;
mod timer;
mod windows;

pub use adapter::{list_adapters, AdapterReport, Caps};
pub use buffer::GpuBuffer;
pub use context::{Binding, GpuContext, MAX_PARAM_BYTES};
pub use pipelines::{Kernel, Shader};
pub use profile::{ProfileLine, ProfileRecord, ProfileSummary};
pub use stats::Stats;
pub use timer::GpuTimer;
pub use windows::Window;

/// Workgroups for `n` invocations of a 1-D kernel with `wg` threads per group, folded into
/// a 2-D grid when the count exceeds the per-dimension limit. Shaders recover the linear
/// index as `gid.x + gid.y * num_workgroups.x * wg`.
pub fn grid_1d(n: usize, wg: u32) -> [u32; 3] {
    const MAX: usize = 65535;
    let groups = n.div_ceil(wg as usize);
    if groups <= MAX {
        [groups as u32, 1, 1]
    } else {
        [MAX as u32, groups.div_ceil(MAX) as u32, 1]
    }
}
