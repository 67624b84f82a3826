// fill: write one 32-bit pattern into the first n words of a buffer.
// Used for `full`/`zeros` (f32, u32, or two packed f16) and for poisoning outputs in tests.

struct Params { n: u32, bits: u32, _pad0: u32, _pad1: u32 }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read_write> out: array<u32>;

@compute @workgroup_size(256)
fn fill(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i < P.n) {
        out[i] = P.bits;
    }
}
