// optim_rules.wgsl -- the optimizer update rules, once: PyTorch's torch.optim.SGD and
// torch.optim.Adam / AdamW on f32, as functions of one element's values, and the parameter
// block every optimizer and scaler kernel shares. No bindings and no `enable`: optim.wgsl,
// amp.wgsl and the multi-tensor update kernels (generated per slot count in
// crates/device/src/kernels/optim/multi.rs) append their own.

const WG: u32 = 256u;
const NESTEROV: u32 = 1u;
const FIRST_STEP: u32 = 2u;
const DECOUPLED: u32 = 4u;
// the multi-tensor Adam with step counts on the device: which of each count's two cells
// holds the count before this step (the other receives the count after it)
const COUNT_PARITY: u32 = 8u;

struct Params {
    n: u32,
    flags: u32,         // NESTEROV | FIRST_STEP | DECOUPLED | COUNT_PARITY
    lr: f32,            // sgd: learning rate; axpy: alpha; scale: the factor
    momentum: f32,
    dampening: f32,
    weight_decay: f32,
    beta1: f32,
    beta2: f32,
    eps: f32,
    step_size: f32,     // adam, step counted on the host: lr / (1 - beta1^t)
    bc2_sqrt: f32,      // adam, step counted on the host: sqrt(1 - beta2^t)
    decay: f32,         // adamw: 1 - lr * weight_decay
}

fn index(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * WG;
}

// SGD without momentum: the new parameter.
fn sgd_rule(q: Params, p: f32, g: f32) -> f32 {
    return p - q.lr * (g + q.weight_decay * p);
}

// SGD with a momentum buffer: buf = grad on the first step, else
// momentum * buf + (1 - dampening) * grad; Nesterov steps along grad + momentum * buf.
// Returns (new parameter, new buffer).
fn sgd_momentum_rule(q: Params, p: f32, g: f32, buf: f32) -> vec2<f32> {
    var d = g + q.weight_decay * p;
    var b = d;
    if ((q.flags & FIRST_STEP) == 0u) {
        b = q.momentum * buf + (1.0 - q.dampening) * d;
    }
    if ((q.flags & NESTEROV) != 0u) {
        d = d + q.momentum * b;
    } else {
        d = b;
    }
    return vec2<f32>(p - q.lr * d, b);
}

// Adam (L2 weight decay added to the gradient) or AdamW (decoupled: the parameter shrinks
// by 1 - lr * wd first), with bias correction `bc` = (lr / (1 - beta1^t), sqrt(1 - beta2^t)).
// Returns (new parameter, new exp_avg, new exp_avg_sq).
fn adam_rule(q: Params, p0: f32, g0: f32, m0: f32, v0: f32, bc: vec2<f32>) -> vec3<f32> {
    var p = p0;
    var g = g0;
    if ((q.flags & DECOUPLED) != 0u) {
        p = p * q.decay;
    } else {
        g = g + q.weight_decay * p;
    }
    let m = q.beta1 * m0 + (1.0 - q.beta1) * g;
    let v = q.beta2 * v0 + (1.0 - q.beta2) * g * g;
    let denom = sqrt(v) / bc.y + q.eps;
    return vec3<f32>(p - bc.x * m / denom, m, v);
}

// b^t in f32 by repeated squaring (the CPU twin multiplies in the same order).
fn powi(b: f32, t: u32) -> f32 {
    var r = 1.0;
    var x = b;
    var e = t;
    while (e != 0u) {
        if ((e & 1u) != 0u) {
            r = r * x;
        }
        x = x * x;
        e = e >> 1u;
    }
    return r;
}

// Adam's bias correction from a step count on the device, in f32 (as torch.optim.Adam's
// `capturable=True` computes it from its step tensor).
fn adam_bias_correction(q: Params, t: u32) -> vec2<f32> {
    return vec2<f32>(q.lr / (1.0 - powi(q.beta1, t)), sqrt(1.0 - powi(q.beta2, t)));
}
