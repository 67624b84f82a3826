// Fused in-place optimizer updates on f32, one thread per element, following PyTorch's
// torch.optim.SGD and torch.optim.Adam / AdamW update rules. Every written buffer is bound
// once, read_write. Host-side scalars (bias corrections, 1 - lr * wd) arrive precomputed.

const WG: u32 = 256u;
const NESTEROV: u32 = 1u;
const FIRST_STEP: u32 = 2u;
const DECOUPLED: u32 = 4u;

struct Params {
    n: u32,
    flags: u32,         // NESTEROV | FIRST_STEP | DECOUPLED
    lr: f32,            // sgd: learning rate; axpy: alpha; scale: the factor
    momentum: f32,
    dampening: f32,
    weight_decay: f32,
    beta1: f32,
    beta2: f32,
    eps: f32,
    step_size: f32,     // adam: lr / (1 - beta1^t)
    bc2_sqrt: f32,      // adam: sqrt(1 - beta2^t)
    decay: f32,         // adamw: 1 - lr * weight_decay
}
@group(0) @binding(0) var<uniform> P: Params;

fn index(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * WG;
}

@group(0) @binding(1) var<storage, read_write> param: array<f32>;
@group(0) @binding(2) var<storage, read> grad: array<f32>;
@group(0) @binding(3) var<storage, read_write> buf: array<f32>;

// SGD without momentum.
@compute @workgroup_size(256)
fn sgd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = index(gid, nwg);
    if (i < P.n) {
        let d = grad[i] + P.weight_decay * param[i];
        param[i] = param[i] - P.lr * d;
    }
}

// SGD with a momentum buffer: buf = grad on the first step, else
// momentum * buf + (1 - dampening) * grad; Nesterov steps along grad + momentum * buf.
@compute @workgroup_size(256)
fn sgd_momentum(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = index(gid, nwg);
    if (i >= P.n) {
        return;
    }
    var d = grad[i] + P.weight_decay * param[i];
    var b = d;
    if ((P.flags & FIRST_STEP) == 0u) {
        b = P.momentum * buf[i] + (1.0 - P.dampening) * d;
    }
    buf[i] = b;
    if ((P.flags & NESTEROV) != 0u) {
        d = d + P.momentum * b;
    } else {
        d = b;
    }
    param[i] = param[i] - P.lr * d;
}

@group(0) @binding(1) var<storage, read_write> a_param: array<f32>;
@group(0) @binding(2) var<storage, read> a_grad: array<f32>;
@group(0) @binding(3) var<storage, read_write> a_m: array<f32>;
@group(0) @binding(4) var<storage, read_write> a_v: array<f32>;

// Adam (L2 weight decay added to the gradient) or AdamW (decoupled: the parameter shrinks
// by 1 - lr * wd first), with bias correction.
@compute @workgroup_size(256)
fn adam(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = index(gid, nwg);
    if (i >= P.n) {
        return;
    }
    var p = a_param[i];
    var g = a_grad[i];
    if ((P.flags & DECOUPLED) != 0u) {
        p = p * P.decay;
    } else {
        g = g + P.weight_decay * p;
    }
    let m = P.beta1 * a_m[i] + (1.0 - P.beta1) * g;
    let v = P.beta2 * a_v[i] + (1.0 - P.beta2) * g * g;
    a_m[i] = m;
    a_v[i] = v;
    let denom = sqrt(v) / P.bc2_sqrt + P.eps;
    a_param[i] = p - P.step_size * m / denom;
}

@group(0) @binding(1) var<storage, read_write> dst: array<f32>;
@group(0) @binding(2) var<storage, read> src: array<f32>;

// dst += alpha * src (alpha in `lr`).
@compute @workgroup_size(256)
fn axpy(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = index(gid, nwg);
    if (i < P.n) {
        dst[i] = dst[i] + P.lr * src[i];
    }
}

@group(0) @binding(1) var<storage, read_write> s_dst: array<f32>;

// dst *= s (s in `lr`).
@compute @workgroup_size(256)
fn scale(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = index(gid, nwg);
    if (i < P.n) {
        s_dst[i] = s_dst[i] * P.lr;
    }
}
