// matmul.wgsl -- f32 inputs. Followed by matmul_common.wgsl and matmul_tiles.wgsl (see
// crates/device/src/kernels/matmul.rs), which hold the tile kernels.

@group(0) @binding(1) var<storage, read> MA: array<f32>;
@group(0) @binding(2) var<storage, read> MB: array<f32>;

fn load_a(i: u32) -> f32 {
    return MA[i];
}

fn load_b(i: u32) -> f32 {
    return MB[i];
}
