// Reductions: the input stored as `T` (f32 or f16, prepended by `storage_shaders!`), the
// accumulation and the output f32. The launcher reads the input as [outputs, reduced]: the kept axes
// (merged where adjacent) index an output, the reduced axes the elements it combines, each
// group given as sizes and element strides. Two schedules:
//   *_thread: one thread per output, looping over its (few) reduced elements;
//   *_wg:     one workgroup per (output, chunk): threads stride over the chunk, then a
//             shared-memory tree. With several chunks per output the launcher reduces the
//             partials in a second pass.
//
// OP must match `ReduceOp::code` in crates/device/src/kernels/reduce.rs: 0 sum, 1 max, 2 min.

override OP: u32 = 0u;
const WG: u32 = 256u;

struct Params {
    n_out: u32,      // outputs
    n_red: u32,      // reduced elements per output
    chunk: u32,      // reduced elements per workgroup (_wg entries)
    chunks: u32,     // workgroups per output (_wg entries)
    scale: f32,      // multiplies each result (1/count for a mean)
    nkept: u32,      // kept axis groups
    nred: u32,       // reduced axis groups
    init_bits: u32,  // the identity of OP as f32 bits (0, -inf or +inf)
    kept_size: array<vec4<u32>, 2>,
    kept_stride: array<vec4<u32>, 2>,
    red_size: array<vec4<u32>, 2>,
    red_stride: array<vec4<u32>, 2>,
}
@group(0) @binding(0) var<uniform> P: Params;

// Offset of output o's first element.
fn out_base(o: u32) -> u32 {
    var rem = o;
    var off = 0u;
    for (var d = i32(P.nkept) - 1; d >= 0; d = d - 1) {
        let s = P.kept_size[d / 4][d % 4];
        off = off + (rem % s) * P.kept_stride[d / 4][d % 4];
        rem = rem / s;
    }
    return off;
}

// Offset of the r-th reduced element from its output's base (any number of groups).
fn red_offset(r: u32) -> u32 {
    var rem = r;
    var off = 0u;
    for (var d = i32(P.nred) - 1; d >= 0; d = d - 1) {
        let s = P.red_size[d / 4][d % 4];
        off = off + (rem % s) * P.red_stride[d / 4][d % 4];
        rem = rem / s;
    }
    return off;
}

fn combine(a: f32, b: f32) -> f32 {
    switch OP {
        case 1u: { return max(a, b); }
        case 2u: { return min(a, b); }
        default: { return a + b; }
    }
}

@group(0) @binding(1) var<storage, read> x: array<T>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

// OP over reduced elements first, first + step, ... below end of the output at `base`.
// With at most two reduced groups, read as [rows, inner], the walk steps its coordinates
// instead of dividing per element (integer division is slow on every GPU).
fn accumulate(base: u32, first: u32, end: u32, step: u32) -> f32 {
    var acc = bitcast<f32>(P.init_bits);
    if (P.nred > 2u) {
        for (var r = first; r < end; r = r + step) {
            acc = combine(acc, f32(x[base + red_offset(r)]));
        }
        return acc;
    }
    var size = 1u;
    var inner_stride = 0u;
    var row_stride = 0u;
    if (P.nred > 0u) {
        size = P.red_size[0][P.nred - 1u];
        inner_stride = P.red_stride[0][P.nred - 1u];
    }
    if (P.nred == 2u) {
        row_stride = P.red_stride[0].x;
    }
    var inner = first % size;
    var row = first / size;
    let d_inner = step % size;
    let d_row = step / size;
    for (var r = first; r < end; r = r + step) {
        acc = combine(acc, f32(x[base + row * row_stride + inner * inner_stride]));
        inner = inner + d_inner;
        row = row + d_row;
        if (inner >= size) {
            inner = inner - size;
            row = row + 1u;
        }
    }
    return acc;
}

@compute @workgroup_size(256)
fn reduce_thread(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let o = gid.x + gid.y * nwg.x * WG;
    if (o >= P.n_out) {
        return;
    }
    out[o] = accumulate(out_base(o), 0u, P.n_red, 1u) * P.scale;
}

var<workgroup> tree: array<f32, 256>;

@compute @workgroup_size(256)
fn reduce_wg(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) t: u32,
) {
    let w = wid.x + wid.y * nwg.x;
    if (w >= P.n_out * P.chunks) {
        return;
    }
    let o = w / P.chunks;
    let start = (w % P.chunks) * P.chunk;
    let end = min(start + P.chunk, P.n_red);
    tree[t] = accumulate(out_base(o), start + t, end, WG);
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s = s / 2u) {
        if (t < s) {
            tree[t] = combine(tree[t], tree[t + s]);
        }
        workgroupBarrier();
    }
    if (t == 0u) {
        out[w] = tree[0] * P.scale;
    }
}

// reduce_wg four values at a time: the launcher hands over a layout counted in vec4s (the
// innermost reduced axis contiguous, every size and stride along it a multiple of 4, at most two
// reduced groups), as CPU adapters load lane by lane whatever the width.
@group(0) @binding(1) var<storage, read> x4: array<vec4<T>>;

// `accumulate`'s walk over [rows, inner] on vec4s, combined per component.
fn accumulate4(base: u32, first: u32, end: u32, step: u32) -> vec4<f32> {
    var acc = vec4<f32>(bitcast<f32>(P.init_bits));
    var size = 1u;
    var inner_stride = 0u;
    var row_stride = 0u;
    if (P.nred > 0u) {
        size = P.red_size[0][P.nred - 1u];
        inner_stride = P.red_stride[0][P.nred - 1u];
    }
    if (P.nred == 2u) {
        row_stride = P.red_stride[0].x;
    }
    var inner = first % size;
    var row = first / size;
    let d_inner = step % size;
    let d_row = step / size;
    for (var r = first; r < end; r = r + step) {
        let v = vec4<f32>(x4[base + row * row_stride + inner * inner_stride]);
        switch OP {
            case 1u: { acc = max(acc, v); }
            case 2u: { acc = min(acc, v); }
            default: { acc = acc + v; }
        }
        inner = inner + d_inner;
        row = row + d_row;
        if (inner >= size) {
            inner = inner - size;
            row = row + 1u;
        }
    }
    return acc;
}

@compute @workgroup_size(256)
fn reduce_wg4(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) t: u32,
) {
    let w = wid.x + wid.y * nwg.x;
    if (w >= P.n_out * P.chunks) {
        return;
    }
    let o = w / P.chunks;
    let start = (w % P.chunks) * P.chunk;
    let end = min(start + P.chunk, P.n_red);
    let v = accumulate4(out_base(o), start + t, end, WG);
    tree[t] = combine(combine(v.x, v.y), combine(v.z, v.w));
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s = s / 2u) {
        if (t < s) {
            tree[t] = combine(tree[t], tree[t + s]);
        }
        workgroupBarrier();
    }
    if (t == 0u) {
        out[w] = tree[0] * P.scale;
    }
}

// argmax over one reduced axis (nred == 1): the first index of the largest value.
@group(0) @binding(1) var<storage, read> ax: array<f32>;
@group(0) @binding(2) var<storage, read_write> aout: array<u32>;

// Whether candidate (vb, ib) beats (va, ia); index n_red marks "no candidate yet".
fn beats(va: f32, ia: u32, vb: f32, ib: u32) -> bool {
    if (ib >= P.n_red) {
        return false;
    }
    return ia >= P.n_red || vb > va || (vb == va && ib < ia);
}

@compute @workgroup_size(256)
fn argmax_thread(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let o = gid.x + gid.y * nwg.x * WG;
    if (o >= P.n_out) {
        return;
    }
    let base = out_base(o);
    var best = ax[base];
    var best_i = 0u;
    for (var r = 1u; r < P.n_red; r = r + 1u) {
        let v = ax[base + r * P.red_stride[0].x];
        if (v > best) {
            best = v;
            best_i = r;
        }
    }
    aout[o] = best_i;
}

var<workgroup> tree_v: array<f32, 256>;
var<workgroup> tree_i: array<u32, 256>;

@compute @workgroup_size(256)
fn argmax_wg(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) t: u32,
) {
    let o = wid.x + wid.y * nwg.x;
    if (o >= P.n_out) {
        return;
    }
    let base = out_base(o);
    var best = 0.0;
    var best_i = P.n_red;
    for (var r = t; r < P.n_red; r = r + WG) {
        let v = ax[base + r * P.red_stride[0].x];
        if (beats(best, best_i, v, r)) {
            best = v;
            best_i = r;
        }
    }
    tree_v[t] = best;
    tree_i[t] = best_i;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s = s / 2u) {
        if (t < s && beats(tree_v[t], tree_i[t], tree_v[t + s], tree_i[t + s])) {
            tree_v[t] = tree_v[t + s];
            tree_i[t] = tree_i[t + s];
        }
        workgroupBarrier();
    }
    if (t == 0u) {
        aout[o] = tree_i[0];
    }
}
