// In-place f32 helpers of the optimizers, one thread per element: gradient accumulation
// (`axpy`) and scaling. Appended to optim_rules.wgsl (its `Params` and `index`); the update
// rules themselves run in the multi-tensor kernels (kernels/optim/multi.rs).

@group(0) @binding(0) var<uniform> P: Params;

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
