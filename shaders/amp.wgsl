// amp.wgsl -- mixed precision's loss scaler on the device: dynamic loss scaling with
// torch.cuda.amp.GradScaler's semantics. Nothing here is read back by the host: the scale
// and the found-inf flag live in device buffers, so a step with a scaler waits no more than
// one without. The optimizer updates that skip a step on found-inf (and write the f16 copy)
// are the multi-tensor update kernels (kernels/optim/multi.rs). Appended: optim_rules.wgsl
// (the shared `Params`; update_scale reads the growth interval from `n` and the growth and
// backoff factors from `lr`, `momentum`).
//
// The scaler's state is four words: scale (f32 bits), growth tracker (good steps since the
// scale last changed), found_inf (0 or 1) and skipped steps so far.

const SCALE: u32 = 0u;
const GROWTH: u32 = 1u;
const FOUND_INF: u32 = 2u;
const SKIPPED: u32 = 3u;

@group(0) @binding(0) var<uniform> P: Params;

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
