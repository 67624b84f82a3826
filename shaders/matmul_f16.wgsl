// matmul_f16.wgsl -- f16 inputs, f32 accumulation and output (needs SHADER_F16, hence its own
// file). Followed by matmul_common.wgsl and matmul_tiles.wgsl (the tile kernels, which widen
// each element to f32 as it is loaded). Also holds the f32 -> f16 cast the launcher uses.
enable f16;

@group(0) @binding(1) var<storage, read> MA: array<f16>;
@group(0) @binding(2) var<storage, read> MB: array<f16>;

fn load_a(i: u32) -> f32 {
    return f32(MA[i]);
}

fn load_b(i: u32) -> f32 {
    return f32(MB[i]);
}

// cast_f16: dst[i] = f16(src[i]) for i < P.M (the element count), 1-D grid of 256.
@group(0) @binding(1) var<storage, read> cast_src: array<f32>;
@group(0) @binding(2) var<storage, read_write> cast_dst: array<f16>;

@compute @workgroup_size(256)
fn cast_f16(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i < P.M) {
        cast_dst[i] = f16(cast_src[i]);
    }
}
