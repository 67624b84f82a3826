// Fused cross-entropy on f32 logits [N, C] with u32 targets [N] and label smoothing eps
// (PyTorch's definition): loss = (1 - eps) * (-log p_t) + eps * mean_c(-log p_c).
// A target >= C gives NaN (its loss, and its row of the gradient): checking it on the host
// would need a GPU wait.

const WG: u32 = 256u;

struct Params {
    rows: u32,
    cols: u32,
    eps: f32,      // label smoothing
    nan_bits: u32, // a NaN, passed in because WGSL has no NaN constant
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

@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> targets: array<u32>;
@group(0) @binding(3) var<storage, read_write> loss: array<f32>;
@group(0) @binding(4) var<storage, read_write> log_probs: array<f32>;

// One workgroup per sample: log-softmax of its row, then its loss. (`forward_rows` below: a
// thread per sample, for short rows and CPU adapters; see `row_schedule` in softmax.rs.)
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
    var m = logits[base];
    for (var c = t; c < P.cols; c = c + WG) {
        m = max(m, logits[base + c]);
    }
    m = row_combine(t, m, true);
    var s = 0.0;
    for (var c = t; c < P.cols; c = c + WG) {
        s = s + exp(logits[base + c] - m);
    }
    let lse = m + log(row_combine(t, s, false));
    var sum_lp = 0.0;
    for (var c = t; c < P.cols; c = c + WG) {
        let lp = logits[base + c] - lse;
        log_probs[base + c] = lp;
        sum_lp = sum_lp + lp;
    }
    sum_lp = row_combine(t, sum_lp, false);
    if (t == 0u) {
        store_loss(row, lse, sum_lp);
    }
}

// Sample `row`'s loss from its log-sum-exp and the sum of its log-probabilities.
fn store_loss(row: u32, lse: f32, sum_lp: f32) {
    let tgt = targets[row];
    if (tgt < P.cols) {
        let nll = lse - logits[row * P.cols + tgt];
        loss[row] = (1.0 - P.eps) * nll - P.eps * sum_lp / f32(P.cols);
    } else {
        loss[row] = bitcast<f32>(P.nan_bits);
    }
}

fn row_in(i: u32) -> f32 {
    return logits[i];
}

// (row_logsumexp.wgsl is appended)
@compute @workgroup_size(64)
fn forward_rows(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let row = gid.x + gid.y * nwg.x * 64u;
    if (row >= P.rows) {
        return;
    }
    let base = row * P.cols;
    let lse = row_logsumexp(base, P.cols);
    var sum_lp = 0.0;
    for (var c = 0u; c < P.cols; c = c + 1u) {
        let lp = logits[base + c] - lse;
        log_probs[base + c] = lp;
        sum_lp = sum_lp + lp;
    }
    store_loss(row, lse, sum_lp);
}

@group(0) @binding(1) var<storage, read> b_log_probs: array<f32>;
@group(0) @binding(2) var<storage, read> b_targets: array<u32>;
@group(0) @binding(3) var<storage, read> b_grad: array<f32>;
@group(0) @binding(4) var<storage, read_write> dlogits: array<f32>;

// One thread per logit: grad_n * (p_c - (1 - eps) * [c == t] - eps / C).
@compute @workgroup_size(256)
fn backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * WG;
    if (i >= P.rows * P.cols) {
        return;
    }
    let row = i / P.cols;
    let tgt = b_targets[row];
    if (tgt >= P.cols) {
        dlogits[i] = bitcast<f32>(P.nan_bits);
        return;
    }
    let hit = select(0.0, 1.0 - P.eps, i - row * P.cols == tgt);
    dlogits[i] = b_grad[row] * (exp(b_log_probs[i]) - hit - P.eps / f32(P.cols));
}
