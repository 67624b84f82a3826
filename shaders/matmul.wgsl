// matmul.wgsl -- f32 inputs. Followed by matmul_common.wgsl and matmul_tiles.wgsl (see
// crates/device/src/kernels/matmul.rs), which hold the tile kernels.

// A and B are bound as vec4 words so `rows8` can load four neighbouring elements in one load
@group(0) @binding(1) var<storage, read> MA: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> MB: array<vec4<f32>>;

fn load_a(i: u32) -> f32 {
    return MA[i / 4u][i % 4u];
}

// Elements i .. i + 3 of A (i a multiple of 4).
fn load_a4(i: u32) -> vec4<f32> {
    return MA[i / 4u];
}

fn load_b(i: u32) -> f32 {
    return MB[i / 4u][i % 4u];
}

// Elements i .. i + 3 of B (i a multiple of 4).
fn load_b4(i: u32) -> vec4<f32> {
    return MB[i / 4u];
}
