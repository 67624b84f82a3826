// Counter-based random numbers: element i of a tensor drawn with seed s is a function of
// Philox4x32-10(counter = (i, 0, 0, 0), key = (s_lo, s_hi)) alone, computed in u32
// arithmetic exactly as the CPU twin does, so the same seed gives the same tensor anywhere.
//
// DIST must match `Dist::code` in crates/device/src/kernels/random.rs:
// 0 uniform in [a, b), 1 normal (mean a, std b), 2 bernoulli (1.0 with probability a).

override DIST: u32 = 0u;
const WG: u32 = 256u;

struct Params {
    n: u32,
    seed_lo: u32,
    seed_hi: u32,
    first: u32,      // the element of the tensor that invocation 0 draws (windows of large tensors)
    a: f32,
    b: f32,
    _pad1: u32,
    _pad2: u32,
}
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;

// (high, low) words of the 64-bit product a * b, from 16-bit halves (WGSL has no mul-hi).
fn mulhilo(a: u32, b: u32) -> vec2<u32> {
    let al = a & 0xffffu;
    let ah = a >> 16u;
    let bl = b & 0xffffu;
    let bh = b >> 16u;
    let ll = al * bl;
    let hl = ah * bl;
    let lh = al * bh;
    // cannot overflow: at most 2 * (2^16 - 1) + (2^16 - 1)^2 = 2^32 - 1
    let mid = (ll >> 16u) + (hl & 0xffffu) + lh;
    return vec2<u32>(ah * bh + (hl >> 16u) + (mid >> 16u), a * b);
}

fn philox4x32_10(counter: vec4<u32>, key: vec2<u32>) -> vec4<u32> {
    var c = counter;
    var k = key;
    for (var j = 0u; j < 10u; j = j + 1u) {
        let p0 = mulhilo(0xD2511F53u, c.x);
        let p1 = mulhilo(0xCD9E8D57u, c.z);
        c = vec4<u32>(p1.x ^ c.y ^ k.x, p1.y, p0.x ^ c.w ^ k.y, p0.y);
        k = k + vec2<u32>(0x9E3779B9u, 0xBB67AE85u);
    }
    return c;
}

// The top 24 bits as a float in [0, 1): exact in f32.
fn unit(bits: u32) -> f32 {
    return f32(bits >> 8u) * 5.9604644775390625e-8;
}

@compute @workgroup_size(256)
fn sample(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * WG;
    if (i >= P.n) {
        return;
    }
    let r = philox4x32_10(vec4<u32>(P.first + i, 0u, 0u, 0u), vec2<u32>(P.seed_lo, P.seed_hi));
    switch DIST {
        case 1u: {
            // Box-Muller: u1 in (0, 1] keeps the log finite; the angle in [-pi, pi) keeps
            // cos on the range where GPUs evaluate it accurately.
            let u1 = unit(r.x) + 5.9604644775390625e-8;
            let theta = 3.14159265358979 * (2.0 * unit(r.y) - 1.0);
            out[i] = P.a + P.b * (sqrt(-2.0 * log(u1)) * cos(theta));
        }
        case 2u: {
            out[i] = select(0.0, 1.0, unit(r.x) < P.a);
        }
        default: {
            out[i] = P.a + (P.b - P.a) * unit(r.x);
        }
    }
}
