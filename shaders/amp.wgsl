// amp.wgsl -- mixed precision's device side (needs SHADER_F16, hence its own file):
// dynamic loss scaling with torch.cuda.amp.GradScaler's semantics, and the optimizer updates
// of f32 master weights that skip a step whose gradients overflowed and refresh the
// parameter's f16 copy in the same launch. Nothing here is read back by the host: the scale
// and the found-inf flag live in device buffers, so a step with a scaler waits no more than
// one without.
//
// The scaler's state is four words: scale (f32 bits), growth tracker (good steps since the
// scale last changed), found_inf (0 or 1) and skipped steps so far.
enable f16;

const WG: u32 = 256u;
const NESTEROV: u32 = 1u;
const FIRST_STEP: u32 = 2u;
const DECOUPLED: u32 = 4u;
const SCALE: u32 = 0u;
const GROWTH: u32 = 1u;
const FOUND_INF: u32 = 2u;
const SKIPPED: u32 = 3u;

// optim.wgsl's parameter block, so one host-side packing serves both files; update_scale
// reads the growth interval from `n` and the growth and backoff factors from `lr`, `momentum`.
struct Params {
    n: u32,
    flags: u32,
    lr: f32,
    momentum: f32,
    dampening: f32,
    weight_decay: f32,
    beta1: f32,
    beta2: f32,
    eps: f32,
    step_size: f32,
    bc2_sqrt: f32,
    decay: f32,
}
@group(0) @binding(0) var<uniform> P: Params;

fn index(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * WG;
}

// Whether the bits are an infinity or a NaN (the exponent all ones): comparisons on floats
// may be folded away by a fast-math compiler, bit tests may not.
fn non_finite(x: f32) -> bool {
    return (bitcast<u32>(x) & 0x7f800000u) == 0x7f800000u;
}

@group(0) @binding(1) var<storage, read_write> u_grad: array<f32>;
@group(0) @binding(2) var<storage, read_write> u_state: array<atomic<u32>>;

// grad *= 1 / scale in place; any non-finite value sets found_inf.
@compute @workgroup_size(256)
fn unscale_check(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = index(gid, nwg);
    if (i >= P.n) {
        return;
    }
    let inv = 1.0 / bitcast<f32>(atomicLoad(&u_state[SCALE]));
    let g = u_grad[i] * inv;
    u_grad[i] = g;
    if (non_finite(g)) {
        atomicStore(&u_state[FOUND_INF], 1u);
    }
}

@group(0) @binding(1) var<storage, read_write> s_state: array<u32>;

// After the step: on found_inf the scale is multiplied by the backoff factor and the tracker
// restarts; otherwise the tracker counts the step and, at the growth interval, the scale is
// multiplied by the growth factor and the tracker restarts. found_inf is cleared for the
// next step.
@compute @workgroup_size(1)
fn update_scale() {
    var scale = bitcast<f32>(s_state[SCALE]);
    var growth = s_state[GROWTH] + 1u;
    if (s_state[FOUND_INF] != 0u) {
        scale = scale * P.momentum;
        growth = 0u;
        s_state[SKIPPED] = s_state[SKIPPED] + 1u;
    } else if (growth >= P.n) {
        let grown = scale * P.lr;
        // PyTorch keeps the scale when growing it would overflow f32
        if (!non_finite(grown)) {
            scale = grown;
        }
        growth = 0u;
    }
    s_state[SCALE] = bitcast<u32>(scale);
    s_state[GROWTH] = growth;
    s_state[FOUND_INF] = 0u;
}

// ---- optimizer updates that skip on found_inf; `_half` also writes the f16 copy --------
// Bindings: param, grad, state, then the optimizer's buffers (none, momentum, or exp_avg and
// exp_avg_sq), then the f16 copy: dense, so each entry point declares its own f16 binding.

@group(0) @binding(1) var<storage, read_write> param: array<f32>;
@group(0) @binding(2) var<storage, read> grad: array<f32>;
@group(0) @binding(3) var<storage, read> state: array<u32>;
@group(0) @binding(4) var<storage, read_write> buf: array<f32>;
@group(0) @binding(5) var<storage, read_write> buf2: array<f32>;
@group(0) @binding(4) var<storage, read_write> half4: array<f16>;
@group(0) @binding(5) var<storage, read_write> half5: array<f16>;
@group(0) @binding(6) var<storage, read_write> half6: array<f16>;

fn skipped() -> bool {
    return state[FOUND_INF] != 0u;
}

fn sgd_new(i: u32) -> f32 {
    return param[i] - P.lr * (grad[i] + P.weight_decay * param[i]);
}

// torch.optim.SGD's momentum rule, as optim.wgsl's sgd_momentum.
fn sgd_momentum_new(i: u32) -> f32 {
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
    return param[i] - P.lr * d;
}

// torch.optim.Adam / AdamW, as optim.wgsl's adam; `buf` holds exp_avg, `buf2` exp_avg_sq.
fn adam_new(i: u32) -> f32 {
    var p = param[i];
    var g = grad[i];
    if ((P.flags & DECOUPLED) != 0u) {
        p = p * P.decay;
    } else {
        g = g + P.weight_decay * p;
    }
    let m = P.beta1 * buf[i] + (1.0 - P.beta1) * g;
    let v = P.beta2 * buf2[i] + (1.0 - P.beta2) * g * g;
    buf[i] = m;
    buf2[i] = v;
    return p - P.step_size * m / (sqrt(v) / P.bc2_sqrt + P.eps);
}

@compute @workgroup_size(256)
fn sgd_amp(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = index(gid, nwg);
    if (i < P.n && !skipped()) {
        param[i] = sgd_new(i);
    }
}

@compute @workgroup_size(256)
fn sgd_amp_half(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = index(gid, nwg);
    if (i < P.n && !skipped()) {
        let p = sgd_new(i);
        param[i] = p;
        half4[i] = f16(p);
    }
}

@compute @workgroup_size(256)
fn sgd_momentum_amp(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = index(gid, nwg);
    if (i < P.n && !skipped()) {
        param[i] = sgd_momentum_new(i);
    }
}

@compute @workgroup_size(256)
fn sgd_momentum_amp_half(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = index(gid, nwg);
    if (i < P.n && !skipped()) {
        let p = sgd_momentum_new(i);
        param[i] = p;
        half5[i] = f16(p);
    }
}

@compute @workgroup_size(256)
fn adam_amp(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = index(gid, nwg);
    if (i < P.n && !skipped()) {
        param[i] = adam_new(i);
    }
}

@compute @workgroup_size(256)
fn adam_amp_half(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = index(gid, nwg);
    if (i < P.n && !skipped()) {
        let p = adam_new(i);
        param[i] = p;
        half6[i] = f16(p);
    }
}
