//! `ferrograd devices`: every adapter wgpu sees, and what it can do.

use ferrograd_device::list_adapters;

pub fn run() -> anyhow::Result<()> {
    let adapters = list_adapters();
    if adapters.is_empty() {
        anyhow::bail!(
            "no GPU adapter found (install a Vulkan driver, e.g. `apt-get install mesa-vulkan-drivers` for lavapipe)"
        );
    }
    let yes = |b: bool| if b { "yes" } else { "no" };
    for a in adapters {
        let c = &a.caps;
        println!("[{}] {}", a.index, a.name);
        println!("    backend {}, type {}, driver {} {}", a.backend, a.device_type, a.driver, a.driver_info);
        println!(
            "    f16 {}, subgroups {} (size {}..{}), cooperative matrix f16 {}, timestamps {}",
            yes(c.f16),
            yes(c.subgroups),
            c.subgroup_min_size,
            c.subgroup_max_size,
            yes(c.coop_matrix_f16),
            yes(c.timestamps)
        );
        println!(
            "    max storage binding {} MiB, max buffer {} MiB, workgroup storage {} KiB, {} invocations/workgroup",
            c.max_storage_binding >> 20,
            c.max_buffer >> 20,
            c.max_workgroup_storage >> 10,
            c.max_invocations
        );
    }
    Ok(())
}
