// Softmax and log-softmax over the last axis of f32 rows, and their backward passes.
// Two schedules (chosen in crates/device/src/kernels/softmax.rs): `forward`/`backward`, one
// workgroup per row, threads striding over the row (any width) and combining through a
// shared-memory tree; `forward_rows`/`backward_rows`, one thread per row, for short rows
// and for CPU adapters (lavapipe runs a workgroup's barriers lane by lane, which cost far
// more than a serial loop). Numerically stable: exponents are taken of x - max(row).
//
// OP must match `Kind::code` in crates/device/src/kernels/softmax.rs: 0 softmax, 1 log-softmax.

override OP: u32 = 0u;
const WG: u32 = 256u;

struct Params {
    rows: u32,
    cols: u32,
    _pad0: u32,
    _pad1: u32,
}
@group(0) @binding(0) var<uniform> P: Params;

var<workgroup> tree: array<f32, 256>;

// The row's total of every thread's `v` (max when `is_max`), seen by all threads.
fn row_combine(t: u32, v: f32, is_max: bool) -> f32 {
    tree[t] = v;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s = s / 2u) {
        if (t < s) {
            if (is_max) {
                tree[t] = max(tree[t], tree[t + s]);
            } else {
                tree[t] = tree[t] + tree[t + s];
            }
        }
        workgroupBarrier();
    }
    let total = tree[0];
    workgroupBarrier();
    return total;
}

@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(256)
fn forward(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) t: u32,
) {
    let row = wid.x + wid.y * nwg.x;
    if (row >= P.rows) {
        return;
    }
    let base = row * P.cols;
    var m = x[base];
    for (var c = t; c < P.cols; c = c + WG) {
        m = max(m, x[base + c]);
    }
    m = row_combine(t, m, true);
    var s = 0.0;
    for (var c = t; c < P.cols; c = c + WG) {
        s = s + exp(x[base + c] - m);
    }
    s = row_combine(t, s, false);
    if (OP == 1u) {
        let lse = m + log(s);
        for (var c = t; c < P.cols; c = c + WG) {
            y[base + c] = x[base + c] - lse;
        }
    } else {
        let inv = 1.0 / s;
        for (var c = t; c < P.cols; c = c + WG) {
            y[base + c] = exp(x[base + c] - m) * inv;
        }
    }
}

// softmax:     dx = y * (g - sum(g * y))
// log-softmax: dx = g - exp(y) * sum(g)
@group(0) @binding(1) var<storage, read> by: array<f32>;
@group(0) @binding(2) var<storage, read> bg: array<f32>;
@group(0) @binding(3) var<storage, read_write> bdx: array<f32>;

@compute @workgroup_size(256)
fn backward(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) t: u32,
) {
    let row = wid.x + wid.y * nwg.x;
    if (row >= P.rows) {
        return;
    }
    let base = row * P.cols;
    var d = 0.0;
    for (var c = t; c < P.cols; c = c + WG) {
        if (OP == 1u) {
            d = d + bg[base + c];
        } else {
            d = d + bg[base + c] * by[base + c];
        }
    }
    d = row_combine(t, d, false);
    for (var c = t; c < P.cols; c = c + WG) {
        if (OP == 1u) {
            bdx[base + c] = bg[base + c] - exp(by[base + c]) * d;
        } else {
            bdx[base + c] = by[base + c] * (bg[base + c] - d);
        }
    }
}

// One thread per row: the passes above, serially (row_logsumexp.wgsl is appended).
fn row_in(i: u32) -> f32 {
    return x[i];
}

@compute @workgroup_size(64)
fn forward_rows(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let row = gid.x + gid.y * nwg.x * 64u;
    if (row >= P.rows) {
        return;
    }
    let base = row * P.cols;
    let lse = row_logsumexp(base, P.cols);
    for (var c = 0u; c < P.cols; c = c + 1u) {
        if (OP == 1u) {
            y[base + c] = x[base + c] - lse;
        } else {
            y[base + c] = exp(x[base + c] - lse);
        }
    }
}

@compute @workgroup_size(64)
fn backward_rows(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let row = gid.x + gid.y * nwg.x * 64u;
    if (row >= P.rows) {
        return;
    }
    let base = row * P.cols;
    var d = 0.0;
    for (var c = 0u; c < P.cols; c = c + 1u) {
        if (OP == 1u) {
            d = d + bg[base + c];
        } else {
            d = d + bg[base + c] * by[base + c];
        }
    }
    for (var c = 0u; c < P.cols; c = c + 1u) {
        if (OP == 1u) {
            bdx[base + c] = bg[base + c] - exp(by[base + c]) * d;
        } else {
            bdx[base + c] = by[base + c] * (bg[base + c] - d);
        }
    }
}
