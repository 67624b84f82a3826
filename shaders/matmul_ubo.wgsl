// matmul_ubo.wgsl -- f32 inputs with A in a uniform buffer of 64 KiB: the launcher copies there
// as many consecutive batches of A as fit (one matrix when the batch shares it). Followed by
// matmul_common.wgsl and matmul_rows.wgsl. On lavapipe a load from a storage buffer inside a
// loop is done lane by lane, while a uniform-buffer load is one load when its address is the
// same for every lane, and a cheaper gather otherwise.

@group(0) @binding(1) var<uniform> UA: array<vec4<f32>, 4096>;
// B is bound as vec4 words so `rows8` can load four neighbouring columns in one load
@group(0) @binding(2) var<storage, read> MB: array<vec4<f32>>;

fn load_a(i: u32) -> f32 {
    return UA[i / 4u][i % 4u];
}

// Elements i .. i + 3 of A (i a multiple of 4).
fn load_a4(i: u32) -> vec4<f32> {
    return UA[i / 4u];
}

fn load_b(i: u32) -> f32 {
    return MB[i / 4u][i % 4u];
}

// Elements i .. i + 3 of B (i a multiple of 4).
fn load_b4(i: u32) -> vec4<f32> {
    return MB[i / 4u];
}
