// batch_norm.wgsl -- batch norm of x viewed as [N, C, S] (S: the spatial size, 1 for [N, C]),
// two launches each way:
//   forward:  bn_stats (training only; one workgroup per channel: batch mean, biased variance
//             and the new running statistics), then bn_apply: y = (x - mean) * rsqrt(var + eps)
//             * w + b, where mean/var are the batch's (training) or the running ones (eval);
//   backward: bn_grad_sums (one workgroup per channel: sum(dy) and sum(dy * xhat), the bias and
//             weight gradients), then bn_grad_input: dx = w * rsqrt(var + eps) * (dy - (sum(dy)
//             + xhat * sum(dy * xhat)) / count), the last term only when the statistics came
//             from the batch (TRAINING).
// AFFINE = false: no weight or bias (w = 1, b = 0); the launcher binds x in their slots.
// x, y, dy and dx are stored as `T` (f32 or f16, prepended by `storage_shaders!`); the
// statistics, weight, bias and sums are f32, and so is all the math.

override TRAINING: bool = true;
override AFFINE: bool = true;

struct Params {
    n: u32,
    c: u32,
    s: u32,
    count: u32,    // n * s: values per channel
    eps: f32,
    momentum: f32, // running = (1 - momentum) * running + momentum * batch (variance unbiased)
    _pad0: u32,
    _pad1: u32,
}
@group(0) @binding(0) var<uniform> P: Params;

const WG: u32 = 256u;

// The channel a workgroup owns (grids over C may spill into y).
fn channel_of(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return wid.x + wid.y * nwg.x;
}

// Offset in x of the j-th value of channel c (j = n * S + s).
fn at(c: u32, j: u32) -> u32 {
    let n = j / P.s;
    return (n * P.c + c) * P.s + (j - n * P.s);
}

@group(0) @binding(1) var<storage, read> sx: array<T>;
@group(0) @binding(2) var<storage, read> s_rmean: array<f32>;
@group(0) @binding(3) var<storage, read> s_rvar: array<f32>;
@group(0) @binding(4) var<storage, read_write> s_mean: array<f32>;
@group(0) @binding(5) var<storage, read_write> s_var: array<f32>;
@group(0) @binding(6) var<storage, read_write> s_new_rmean: array<f32>;
@group(0) @binding(7) var<storage, read_write> s_new_rvar: array<f32>;

// Two passes over the channel (mean, then the mean squared deviation) for accuracy.
@compute @workgroup_size(256)
fn bn_stats(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) t: u32,
) {
    let c = channel_of(wid, nwg);
    if (c >= P.c) {
        return;
    }
    var part = 0.0;
    for (var j = t; j < P.count; j = j + WG) {
        part = part + f32(sx[at(c, j)]);
    }
    let mean = workgroup_sum(t, part) / f32(P.count);
    part = 0.0;
    for (var j = t; j < P.count; j = j + WG) {
        let d = f32(sx[at(c, j)]) - mean;
        part = part + d * d;
    }
    store_stats(c, t, mean, workgroup_sum(t, part) / f32(P.count));
}

// Invocation 0 writes channel c's statistics and its new running ones.
fn store_stats(c: u32, t: u32, mean: f32, var_b: f32) {
    if (t == 0u) {
        s_mean[c] = mean;
        s_var[c] = var_b;
        let m = P.momentum;
        let unbiased = var_b * f32(P.count) / f32(max(P.count, 2u) - 1u);
        s_new_rmean[c] = (1.0 - m) * s_rmean[c] + m * mean;
        s_new_rvar[c] = (1.0 - m) * s_rvar[c] + m * unbiased;
    }
}

// The *4 entries below are the same kernels four values at a time, for S a multiple of 4 (the
// launcher checks): CPU adapters load lane by lane, whatever the width.

// Offset in x, counted in vec4s, of the j-th vec4 of channel c.
fn at4(c: u32, j: u32) -> u32 {
    let s4 = P.s / 4u;
    let n = j / s4;
    return (n * P.c + c) * s4 + (j - n * s4);
}

@group(0) @binding(1) var<storage, read> sx4: array<vec4<T>>;

@compute @workgroup_size(256)
fn bn_stats4(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) t: u32,
) {
    let c = channel_of(wid, nwg);
    if (c >= P.c) {
        return;
    }
    let count4 = P.count / 4u;
    var part = vec4<f32>(0.0);
    for (var j = t; j < count4; j = j + WG) {
        part = part + vec4<f32>(sx4[at4(c, j)]);
    }
    let mean = workgroup_sum(t, part.x + part.y + part.z + part.w) / f32(P.count);
    part = vec4<f32>(0.0);
    for (var j = t; j < count4; j = j + WG) {
        let d = vec4<f32>(sx4[at4(c, j)]) - vec4<f32>(mean);
        part = part + d * d;
    }
    store_stats(c, t, mean, workgroup_sum(t, part.x + part.y + part.z + part.w) / f32(P.count));
}

@group(0) @binding(1) var<storage, read> ax: array<T>;
@group(0) @binding(2) var<storage, read> a_mean: array<f32>;
@group(0) @binding(3) var<storage, read> a_var: array<f32>;
@group(0) @binding(4) var<storage, read> a_w: array<f32>;
@group(0) @binding(5) var<storage, read> a_b: array<f32>;
@group(0) @binding(6) var<storage, read_write> a_y: array<T>;

@compute @workgroup_size(256)
fn bn_apply(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * WG;
    if (i >= P.n * P.c * P.s) {
        return;
    }
    let c = (i / P.s) % P.c;
    var y = (f32(ax[i]) - a_mean[c]) * inverseSqrt(a_var[c] + P.eps);
    if (AFFINE) {
        y = y * a_w[c] + a_b[c];
    }
    a_y[i] = T(y);
}

@group(0) @binding(1) var<storage, read> ax4: array<vec4<T>>;
@group(0) @binding(6) var<storage, read_write> a_y4: array<vec4<T>>;

@compute @workgroup_size(256)
fn bn_apply4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * WG;
    if (i >= P.n * P.c * P.s / 4u) {
        return;
    }
    let c = (i / (P.s / 4u)) % P.c;
    var y = (vec4<f32>(ax4[i]) - vec4<f32>(a_mean[c])) * inverseSqrt(a_var[c] + P.eps);
    if (AFFINE) {
        y = y * a_w[c] + vec4<f32>(a_b[c]);
    }
    a_y4[i] = vec4<T>(y);
}

@group(0) @binding(1) var<storage, read> gx: array<T>;
@group(0) @binding(2) var<storage, read> gdy: array<T>;
@group(0) @binding(3) var<storage, read> g_mean: array<f32>;
@group(0) @binding(4) var<storage, read> g_var: array<f32>;
@group(0) @binding(5) var<storage, read_write> g_sum_dy: array<f32>;
@group(0) @binding(6) var<storage, read_write> g_sum_dy_xhat: array<f32>;

@compute @workgroup_size(256)
fn bn_grad_sums(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) t: u32,
) {
    let c = channel_of(wid, nwg);
    if (c >= P.c) {
        return;
    }
    let mean = g_mean[c];
    let inv = inverseSqrt(g_var[c] + P.eps);
    var sdy = 0.0;
    var sdyx = 0.0;
    for (var j = t; j < P.count; j = j + WG) {
        let k = at(c, j);
        sdy = sdy + f32(gdy[k]);
        sdyx = sdyx + f32(gdy[k]) * (f32(gx[k]) - mean) * inv;
    }
    store_grad_sums(c, t, sdy, sdyx);
}

// Channel c's sums of dy and dy * xhat from every invocation's parts (invocation 0 writes).
fn store_grad_sums(c: u32, t: u32, sdy: f32, sdyx: f32) {
    let total_dy = workgroup_sum(t, sdy);
    let total_dyx = workgroup_sum(t, sdyx);
    if (t == 0u) {
        g_sum_dy[c] = total_dy;
        g_sum_dy_xhat[c] = total_dyx;
    }
}

@group(0) @binding(1) var<storage, read> gx4: array<vec4<T>>;
@group(0) @binding(2) var<storage, read> gdy4: array<vec4<T>>;

@compute @workgroup_size(256)
fn bn_grad_sums4(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) t: u32,
) {
    let c = channel_of(wid, nwg);
    if (c >= P.c) {
        return;
    }
    let mean = vec4<f32>(g_mean[c]);
    let inv = inverseSqrt(g_var[c] + P.eps);
    var sdy = vec4<f32>(0.0);
    var sdyx = vec4<f32>(0.0);
    for (var j = t; j < P.count / 4u; j = j + WG) {
        let k = at4(c, j);
        let dy = vec4<f32>(gdy4[k]);
        sdy = sdy + dy;
        sdyx = sdyx + dy * (vec4<f32>(gx4[k]) - mean) * inv;
    }
    store_grad_sums(c, t, sdy.x + sdy.y + sdy.z + sdy.w, sdyx.x + sdyx.y + sdyx.z + sdyx.w);
}

@group(0) @binding(1) var<storage, read> ix: array<T>;
@group(0) @binding(2) var<storage, read> idy: array<T>;
@group(0) @binding(3) var<storage, read> i_mean: array<f32>;
@group(0) @binding(4) var<storage, read> i_var: array<f32>;
@group(0) @binding(5) var<storage, read> i_w: array<f32>;
@group(0) @binding(6) var<storage, read> i_sum_dy: array<f32>;
@group(0) @binding(7) var<storage, read> i_sum_dy_xhat: array<f32>;
@group(0) @binding(8) var<storage, read_write> i_dx: array<T>;

@compute @workgroup_size(256)
fn bn_grad_input(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * WG;
    if (i >= P.n * P.c * P.s) {
        return;
    }
    let c = (i / P.s) % P.c;
    let inv = inverseSqrt(i_var[c] + P.eps);
    var scale = inv;
    if (AFFINE) {
        scale = scale * i_w[c];
    }
    var g = f32(idy[i]);
    if (TRAINING) {
        let xhat = (f32(ix[i]) - i_mean[c]) * inv;
        g = g - (i_sum_dy[c] + xhat * i_sum_dy_xhat[c]) / f32(P.count);
    }
    i_dx[i] = T(scale * g);
}

@group(0) @binding(1) var<storage, read> ix4: array<vec4<T>>;
@group(0) @binding(2) var<storage, read> idy4: array<vec4<T>>;
@group(0) @binding(8) var<storage, read_write> i_dx4: array<vec4<T>>;

@compute @workgroup_size(256)
fn bn_grad_input4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * WG;
    if (i >= P.n * P.c * P.s / 4u) {
        return;
    }
    let c = (i / (P.s / 4u)) % P.c;
    let inv = inverseSqrt(i_var[c] + P.eps);
    var scale = inv;
    if (AFFINE) {
        scale = scale * i_w[c];
    }
    var g = vec4<f32>(idy4[i]);
    if (TRAINING) {
        let xhat = (vec4<f32>(ix4[i]) - vec4<f32>(i_mean[c])) * inv;
        g = g - (vec4<f32>(i_sum_dy[c]) + xhat * i_sum_dy_xhat[c]) / f32(P.count);
    }
    i_dx4[i] = vec4<T>(scale * g);
}
