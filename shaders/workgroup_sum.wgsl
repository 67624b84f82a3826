// workgroup_sum.wgsl -- appended to shaders whose workgroups of WG = 256 invocations sum a
// value across the workgroup (batch_norm, layer_norm).

var<workgroup> tree: array<f32, 256>;

// The workgroup's sum of `v` (every invocation passes its part; all get the total).
fn workgroup_sum(t: u32, v: f32) -> f32 {
    tree[t] = v;
    workgroupBarrier();
    for (var h = WG / 2u; h > 0u; h = h / 2u) {
        if (t < h) {
            tree[t] = tree[t] + tree[t + h];
        }
        workgroupBarrier();
    }
    let total = tree[0];
    workgroupBarrier();
    return total;
}
