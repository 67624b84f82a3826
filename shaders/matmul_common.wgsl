// matmul_common.wgsl -- shared by every matmul kernel: C[b] = op(A[b]) * op(B[b]), row-major.
// Not a module on its own: crates/device/src/kernels/matmul.rs appends it to an input file
// (matmul.wgsl, matmul_f16.wgsl or matmul_coop.wgsl) that declares the bindings MA and MB and
// `load_a`/`load_b` (element i of the A/B buffer as f32), and after it the alias `CT`, the type
// C is stored as (f32; f16 for `matmul_f16_out`, whose products round as they store). Names avoid
// A, B, C: those are cooperative-matrix role names.

// A is [M, K] ([K, M] when TRANS_A); B is [K, N] ([N, K] when TRANS_B); C is [M, N].
override TRANS_A: bool = false;
override TRANS_B: bool = false;
// C = sum over batches of op(A[b]) * op(B[b]): workgroup z sums batches z * nb .. z * nb + nb - 1
// (of nbatch) into partial C number z, and the launcher adds the partials (split-K over batches).
override REDUCE: bool = false;

// The epilogue, applied as C is stored (never with REDUCE): BIAS adds MBIAS[m] (1: one per
// row, a convolution's) or MBIAS[n] (2: one per column, a linear layer's); then ACT: 1 relu,
// 2 leaky relu (slope P.alpha), 3 tanh, 4 sigmoid. MBIAS is always bound (to B when unused).
override BIAS: u32 = 0u;
override ACT: u32 = 0u;

struct Params {
    M: u32,
    N: u32,
    K: u32,
    batch0: u32, // batch index of workgroup z = 0 (batches past the grid limit go in later dispatches)
    sa: u32,     // elements between images of A (0: one A shared by every image)
    sb: u32,     // same for B
    sc: u32,     // same for C (M * N)
    nb: u32,     // batches this dispatch covers (kernels that fold the batch into N); REDUCE: images per split
    nbatch: u32, // REDUCE: images in all
    alpha: f32,  // ACT 2: the leaky relu's slope
    groups: u32, // batch b is image b / groups of group b % groups (1: no groups)
    sag: u32,    // elements between groups of A (0: one A for every group)
    sbg: u32,    // same for B
    _pad1: u32,
    _pad2: u32,
    _pad3: u32,
}
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(3) var<storage, read_write> MC: array<CT>;
@group(0) @binding(4) var<storage, read> MBIAS: array<f32>;

// Groups: a product's batch b is image b / P.groups of group b % P.groups. The shorter
// operand of a broadcast ([G, M, K] against [N, G, K, P]: a grouped convolution's weight
// against its columns) steps by group only (sa = 0); without groups (P.groups = 1) the batch
// is the image. C is always [batch, M, N].

// The images [x, y) workgroup z multiplies: its batch's one, or with REDUCE its split's share
// (workgroup z sums split z / P.groups of group z % P.groups into partial C number z).
fn batch_range(z: u32) -> vec2<u32> {
    if (REDUCE) {
        let lo = (z / P.groups) * P.nb;
        return vec2<u32>(lo, min(lo + P.nb, P.nbatch));
    }
    let image = (P.batch0 + z) / P.groups;
    return vec2<u32>(image, image + 1u);
}

// The group workgroup z multiplies.
fn group_of(z: u32) -> u32 {
    if (REDUCE) {
        return z % P.groups;
    }
    return (P.batch0 + z) % P.groups;
}

// Where A and B of one image and group start.
fn a_base(image: u32, group: u32) -> u32 {
    return image * P.sa + group * P.sag;
}

fn b_base(image: u32, group: u32) -> u32 {
    return image * P.sb + group * P.sbg;
}

// Where a group's bias starts (a grouped convolution's bias holds one vector per group).
fn bias_base(group: u32) -> u32 {
    return select(group * P.N, group * P.M, BIAS == 1u);
}

// Where workgroup z's C starts: its batch's, or with REDUCE its partial's.
fn c_base(z: u32) -> u32 {
    if (REDUCE) {
        return z * P.sc;
    }
    return (P.batch0 + z) * P.sc;
}

// Element (m, k) of A in the batch starting at `base`; 0 outside the matrix (edge tiles).
fn a_at(base: u32, m: u32, k: u32) -> f32 {
    if (m >= P.M || k >= P.K) {
        return 0.0;
    }
    if (TRANS_A) {
        return load_a(base + k * P.M + m);
    }
    return load_a(base + m * P.K + k);
}

// Element (k, n) of B in the batch starting at `base`; 0 outside.
fn b_at(base: u32, k: u32, n: u32) -> f32 {
    if (k >= P.K || n >= P.N) {
        return 0.0;
    }
    if (TRANS_B) {
        return load_b(base + n * P.K + k);
    }
    return load_b(base + k * P.N + n);
}

// Which (m, k) of a bm x bk A tile loader slot e fetches: consecutive slots walk the
// dimension that is contiguous in memory, so neighbouring threads read neighbouring words.
fn a_slot(e: u32, bm: u32, bk: u32) -> vec2<u32> {
    if (TRANS_A) {
        return vec2<u32>(e % bm, e / bm);
    }
    return vec2<u32>(e / bk, e % bk);
}

// Which (k, n) of a bk x bn B tile loader slot e fetches.
fn b_slot(e: u32, bn: u32, bk: u32) -> vec2<u32> {
    if (TRANS_B) {
        return vec2<u32>(e % bk, e / bk);
    }
    return vec2<u32>(e / bn, e % bn);
}

// C's value at (m, n) from the product `v`, after the epilogue; the bias from MBIAS[bias0..].
fn epilogue(bias0: u32, m: u32, n: u32, v: f32) -> f32 {
    var y = v;
    if (BIAS == 1u) {
        y = y + MBIAS[bias0 + m];
    } else if (BIAS == 2u) {
        y = y + MBIAS[bias0 + n];
    }
    switch ACT {
        case 1u: { y = max(y, 0.0); }
        case 2u: { y = select(P.alpha * y, y, y > 0.0); }
        case 3u: { y = tanh(y); }
        case 4u: { y = 1.0 / (1.0 + exp(-y)); }
        default: {}
    }
    return y;
}

// Columns n..n+3 of row m of C (batch at `base`, its bias at `bias0`), skipping what lies outside.
fn store_c(base: u32, bias0: u32, m: u32, n: u32, product: vec4<f32>) {
    if (m >= P.M) {
        return;
    }
    var v = product;
    if (BIAS != 0u || ACT != 0u) {
        let last = P.N - 1u;
        v = vec4<f32>(
            epilogue(bias0, m, n, v.x),
            epilogue(bias0, m, min(n + 1u, last), v.y),
            epilogue(bias0, m, min(n + 2u, last), v.z),
            epilogue(bias0, m, min(n + 3u, last), v.w),
        );
    }
    let row = base + m * P.N;
    if (n + 3u < P.N) {
        MC[row + n] = CT(v.x);
        MC[row + n + 1u] = CT(v.y);
        MC[row + n + 2u] = CT(v.z);
        MC[row + n + 3u] = CT(v.w);
        return;
    }
    for (var j = 0u; j < 4u; j = j + 1u) {
        if (n + j < P.N) {
            MC[row + n + j] = CT(v[j]);
        }
    }
}
