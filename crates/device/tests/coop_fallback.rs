//! Where the cooperative-matrix pipeline fails to build, Mixed products fall back to the f16
//! tile kernels with a warning: after `note_coop_failure`, the kernel chosen for an adapter
//! with cooperative matrices is a tile kernel. Its own binary: the flag is per process.

use ferrograd_device::gpu::Caps;
use ferrograd_device::kernels::matmul::{choose_variant, coop_failed, note_coop_failure, Precision, Problem, Variant};
use ferrograd_device::DeviceError;

#[test]
fn a_failed_cooperative_matrix_build_falls_back_to_the_tile_kernels() {
    let caps = Caps {
        f16: true,
        subgroups: true,
        subgroup_min_size: 32,
        subgroup_max_size: 32,
        coop_matrix_f16: true,
        timestamps: true,
        max_storage_binding: 1 << 31,
        max_buffer: 1 << 32,
        max_workgroup_storage: 49152,
        max_invocations: 1024,
        max_groups_per_dim: 65535,
        uniform_align: 256,
        storage_align: 256,
        max_storage_buffers: 8,
    };
    let p = Problem::new(&[1024, 1024], &[1024, 1024], false, false).unwrap();
    assert_eq!(choose_variant(&caps, Precision::Mixed, &p), Variant::Coop);
    assert!(!coop_failed());
    let why = DeviceError::Wgpu { context: "compiling matmul_coop::coop".into(), message: "driver said no".into() };
    note_coop_failure(&why);
    assert!(coop_failed());
    assert_eq!(choose_variant(&caps, Precision::Mixed, &p), Variant::Tile128);
    assert_eq!(choose_variant(&caps, Precision::F32, &p), Variant::Tile128Vec4, "f32 is unaffected");
}
