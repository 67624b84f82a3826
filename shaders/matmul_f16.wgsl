// matmul_f16.wgsl -- f16 inputs, f32 accumulation and output (needs SHADER_F16, hence its own
// file). Followed by matmul_common.wgsl and matmul_tiles.wgsl (the tile kernels, which widen
// each element to f32 as it is loaded). Inputs are cast with `copy::cast`.
enable f16;

@group(0) @binding(1) var<storage, read> MA: array<f16>;
@group(0) @binding(2) var<storage, read> MB: array<f16>;

fn load_a(i: u32) -> f32 {
    return f32(MA[i]);
}

// Elements i .. i + 3 of A.
fn load_a4(i: u32) -> vec4<f32> {
    return vec4<f32>(f32(MA[i]), f32(MA[i + 1u]), f32(MA[i + 2u]), f32(MA[i + 3u]));
}

fn load_b(i: u32) -> f32 {
    return f32(MB[i]);
}

// Elements i .. i + 3 of B.
fn load_b4(i: u32) -> vec4<f32> {
    return vec4<f32>(f32(MB[i]), f32(MB[i + 1u]), f32(MB[i + 2u]), f32(MB[i + 3u]));
}
