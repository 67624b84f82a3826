// copy_f16: casts between f32 and f16. Its own file because `enable f16;` fails to compile
// on adapters without SHADER_F16; the launcher checks `caps().f16` first.
enable f16;

struct Params { n: u32, _pad0: u32, _pad1: u32, _pad2: u32 }
@group(0) @binding(0) var<uniform> P: Params;

fn linear_index(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * 256u;
}

@group(0) @binding(1) var<storage, read> hx32: array<f32>;
@group(0) @binding(2) var<storage, read_write> hout16: array<f16>;

@compute @workgroup_size(256)
fn f32_to_f16(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg);
    if (i < P.n) {
        hout16[i] = f16(hx32[i]);
    }
}

@group(0) @binding(1) var<storage, read> hx16: array<f16>;
@group(0) @binding(2) var<storage, read_write> hout32: array<f32>;

@compute @workgroup_size(256)
fn f16_to_f32(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg);
    if (i < P.n) {
        hout32[i] = f32(hx16[i]);
    }
}
