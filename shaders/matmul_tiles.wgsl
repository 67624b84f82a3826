// matmul_tiles.wgsl -- the tile kernels, shared by the f32 and f16-input paths. Not a module
// on its own: it follows matmul.wgsl or matmul_f16.wgsl and matmul_common.wgsl.
//
// Both kernels: 256 threads per workgroup, dispatch (ceil(N/T), ceil(M/T), batches).
// K is walked in slabs staged through double-buffered workgroup memory (A stored k-major),
// the next slab is fetched into registers while the current one is multiplied: one barrier
// per slab. Loads outside the matrices read 0 and stores outside are skipped, so any M, N, K
// works (K = 0 writes zeros). With REDUCE, workgroup z sums its share of the batches into one
// partial C (see `batch_range` in matmul_common.wgsl). Adapted from shared/reference/matmul_f32_128x128.wgsl, with
// scalar loads (transposes and edges allow no vec4 alignment).

// ---- tile64: 64x64 tile of C, 4x4 per thread, K slabs of 16 (small or skinny problems)
var<workgroup> As64: array<vec4<f32>, 544>; // [buffer 2][k 16][m: 64 + 4 padding floats]
var<workgroup> Bs64: array<vec4<f32>, 544>; // [buffer 2][k 16][n: 64 + 4 padding floats]

fn put_a64(f: u32, v: f32) {
    As64[f / 4u][f % 4u] = v;
}

fn put_b64(f: u32, v: f32) {
    Bs64[f / 4u][f % 4u] = v;
}

@compute @workgroup_size(256)
fn tile64(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    let range = batch_range(wid.z);
    let group = group_of(wid.z);
    let cbase = c_base(wid.z);
    let bias0 = bias_base(group);
    let bm0 = wid.y * 64u;
    let bn0 = wid.x * 64u;
    // thread (tx, ty) owns rows ty*4 + 0..3 and columns tx*4 + 0..3 of the tile
    let tx = lid % 16u;
    let ty = lid / 16u;
    let sa0 = a_slot(lid + 0u, 64u, 16u);
    let sb0 = b_slot(lid + 0u, 64u, 16u);
    let sa1 = a_slot(lid + 256u, 64u, 16u);
    let sb1 = b_slot(lid + 256u, 64u, 16u);
    let sa2 = a_slot(lid + 512u, 64u, 16u);
    let sb2 = b_slot(lid + 512u, 64u, 16u);
    let sa3 = a_slot(lid + 768u, 64u, 16u);
    let sb3 = b_slot(lid + 768u, 64u, 16u);
    var acc0_0 = vec4<f32>(0.0);
    var acc1_0 = vec4<f32>(0.0);
    var acc2_0 = vec4<f32>(0.0);
    var acc3_0 = vec4<f32>(0.0);
    var pa: vec4<f32>;
    var pb: vec4<f32>;
    // slab t covers image range.x + t / kt, k from (t % kt) * 16 (REDUCE sums several batches)
    let kt = (P.K + 15u) / 16u;
    let ntiles = (range.y - range.x) * kt;
    {
        let k0 = 0u;
        let abase = a_base(range.x, group);
        let bbase = b_base(range.x, group);
        let buf = 0u;
        pa.x = a_at(abase, bm0 + sa0.x, k0 + sa0.y);
        pb.x = b_at(bbase, k0 + sb0.x, bn0 + sb0.y);
        pa.y = a_at(abase, bm0 + sa1.x, k0 + sa1.y);
        pb.y = b_at(bbase, k0 + sb1.x, bn0 + sb1.y);
        pa.z = a_at(abase, bm0 + sa2.x, k0 + sa2.y);
        pb.z = b_at(bbase, k0 + sb2.x, bn0 + sb2.y);
        pa.w = a_at(abase, bm0 + sa3.x, k0 + sa3.y);
        pb.w = b_at(bbase, k0 + sb3.x, bn0 + sb3.y);
        put_a64(buf * 1088u + sa0.y * 68u + sa0.x, pa.x);
        put_b64(buf * 1088u + sb0.x * 68u + sb0.y, pb.x);
        put_a64(buf * 1088u + sa1.y * 68u + sa1.x, pa.y);
        put_b64(buf * 1088u + sb1.x * 68u + sb1.y, pb.y);
        put_a64(buf * 1088u + sa2.y * 68u + sa2.x, pa.z);
        put_b64(buf * 1088u + sb2.x * 68u + sb2.y, pb.z);
        put_a64(buf * 1088u + sa3.y * 68u + sa3.x, pa.w);
        put_b64(buf * 1088u + sb3.x * 68u + sb3.y, pb.w);
    }
    workgroupBarrier();
    for (var t = 0u; t < ntiles; t = t + 1u) {
        let cur = t & 1u;
        let more = t + 1u < ntiles;
        if (more) {
            let slab = range.x + (t + 1u) / kt;
            let k0 = ((t + 1u) % kt) * 16u;
            let abase = a_base(slab, group);
            let bbase = b_base(slab, group);
            pa.x = a_at(abase, bm0 + sa0.x, k0 + sa0.y);
            pb.x = b_at(bbase, k0 + sb0.x, bn0 + sb0.y);
            pa.y = a_at(abase, bm0 + sa1.x, k0 + sa1.y);
            pb.y = b_at(bbase, k0 + sb1.x, bn0 + sb1.y);
            pa.z = a_at(abase, bm0 + sa2.x, k0 + sa2.y);
            pb.z = b_at(bbase, k0 + sb2.x, bn0 + sb2.y);
            pa.w = a_at(abase, bm0 + sa3.x, k0 + sa3.y);
            pb.w = b_at(bbase, k0 + sb3.x, bn0 + sb3.y);
        }
        for (var kk = 0u; kk < 16u; kk = kk + 1u) {
            let row = cur * 272u + kk * 17u;
            let a0 = As64[row + ty];
            let b0 = Bs64[row + tx];
            acc0_0 = fma(vec4<f32>(a0.x), b0, acc0_0);
            acc1_0 = fma(vec4<f32>(a0.y), b0, acc1_0);
            acc2_0 = fma(vec4<f32>(a0.z), b0, acc2_0);
            acc3_0 = fma(vec4<f32>(a0.w), b0, acc3_0);
        }
        if (more) {
            let buf = cur ^ 1u;
            put_a64(buf * 1088u + sa0.y * 68u + sa0.x, pa.x);
            put_b64(buf * 1088u + sb0.x * 68u + sb0.y, pb.x);
            put_a64(buf * 1088u + sa1.y * 68u + sa1.x, pa.y);
            put_b64(buf * 1088u + sb1.x * 68u + sb1.y, pb.y);
            put_a64(buf * 1088u + sa2.y * 68u + sa2.x, pa.z);
            put_b64(buf * 1088u + sb2.x * 68u + sb2.y, pb.z);
            put_a64(buf * 1088u + sa3.y * 68u + sa3.x, pa.w);
            put_b64(buf * 1088u + sb3.x * 68u + sb3.y, pb.w);
        }
        workgroupBarrier();
    }
    store_c(cbase, bias0, bm0 + ty * 4u + 0u, bn0 + tx * 4u, acc0_0);
    store_c(cbase, bias0, bm0 + ty * 4u + 1u, bn0 + tx * 4u, acc1_0);
    store_c(cbase, bias0, bm0 + ty * 4u + 2u, bn0 + tx * 4u, acc2_0);
    store_c(cbase, bias0, bm0 + ty * 4u + 3u, bn0 + tx * 4u, acc3_0);
}

// ---- tile128: 128x128 tile of C, 8x8 per thread, K slabs of 8 (large problems)
var<workgroup> As128: array<vec4<f32>, 528>; // [buffer 2][k 8][m: 128 + 4 padding floats]
var<workgroup> Bs128: array<vec4<f32>, 528>; // [buffer 2][k 8][n: 128 + 4 padding floats]

fn put_a128(f: u32, v: f32) {
    As128[f / 4u][f % 4u] = v;
}

fn put_b128(f: u32, v: f32) {
    Bs128[f / 4u][f % 4u] = v;
}

@compute @workgroup_size(256)
fn tile128(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    let range = batch_range(wid.z);
    let group = group_of(wid.z);
    let cbase = c_base(wid.z);
    let bias0 = bias_base(group);
    let bm0 = wid.y * 128u;
    let bn0 = wid.x * 128u;
    // thread (tx, ty) owns rows {ty*4, 64 + ty*4} + 0..3 and columns {tx*4, 64 + tx*4} + 0..3
    // (conflict-free vec4 reads of workgroup memory); each 32-thread warp covers 8 tx x 4 ty
    let lane = lid % 32u;
    let warp = lid / 32u;
    let tx = (warp % 2u) * 8u + lane % 8u;
    let ty = (warp / 2u) * 4u + lane / 8u;
    let sa0 = a_slot(lid + 0u, 128u, 8u);
    let sb0 = b_slot(lid + 0u, 128u, 8u);
    let sa1 = a_slot(lid + 256u, 128u, 8u);
    let sb1 = b_slot(lid + 256u, 128u, 8u);
    let sa2 = a_slot(lid + 512u, 128u, 8u);
    let sb2 = b_slot(lid + 512u, 128u, 8u);
    let sa3 = a_slot(lid + 768u, 128u, 8u);
    let sb3 = b_slot(lid + 768u, 128u, 8u);
    var acc0_0 = vec4<f32>(0.0);
    var acc0_1 = vec4<f32>(0.0);
    var acc1_0 = vec4<f32>(0.0);
    var acc1_1 = vec4<f32>(0.0);
    var acc2_0 = vec4<f32>(0.0);
    var acc2_1 = vec4<f32>(0.0);
    var acc3_0 = vec4<f32>(0.0);
    var acc3_1 = vec4<f32>(0.0);
    var acc4_0 = vec4<f32>(0.0);
    var acc4_1 = vec4<f32>(0.0);
    var acc5_0 = vec4<f32>(0.0);
    var acc5_1 = vec4<f32>(0.0);
    var acc6_0 = vec4<f32>(0.0);
    var acc6_1 = vec4<f32>(0.0);
    var acc7_0 = vec4<f32>(0.0);
    var acc7_1 = vec4<f32>(0.0);
    var pa: vec4<f32>;
    var pb: vec4<f32>;
    // slab t covers image range.x + t / kt, k from (t % kt) * 8 (REDUCE sums several batches)
    let kt = (P.K + 7u) / 8u;
    let ntiles = (range.y - range.x) * kt;
    {
        let k0 = 0u;
        let abase = a_base(range.x, group);
        let bbase = b_base(range.x, group);
        let buf = 0u;
        pa.x = a_at(abase, bm0 + sa0.x, k0 + sa0.y);
        pb.x = b_at(bbase, k0 + sb0.x, bn0 + sb0.y);
        pa.y = a_at(abase, bm0 + sa1.x, k0 + sa1.y);
        pb.y = b_at(bbase, k0 + sb1.x, bn0 + sb1.y);
        pa.z = a_at(abase, bm0 + sa2.x, k0 + sa2.y);
        pb.z = b_at(bbase, k0 + sb2.x, bn0 + sb2.y);
        pa.w = a_at(abase, bm0 + sa3.x, k0 + sa3.y);
        pb.w = b_at(bbase, k0 + sb3.x, bn0 + sb3.y);
        put_a128(buf * 1056u + sa0.y * 132u + sa0.x, pa.x);
        put_b128(buf * 1056u + sb0.x * 132u + sb0.y, pb.x);
        put_a128(buf * 1056u + sa1.y * 132u + sa1.x, pa.y);
        put_b128(buf * 1056u + sb1.x * 132u + sb1.y, pb.y);
        put_a128(buf * 1056u + sa2.y * 132u + sa2.x, pa.z);
        put_b128(buf * 1056u + sb2.x * 132u + sb2.y, pb.z);
        put_a128(buf * 1056u + sa3.y * 132u + sa3.x, pa.w);
        put_b128(buf * 1056u + sb3.x * 132u + sb3.y, pb.w);
    }
    workgroupBarrier();
    for (var t = 0u; t < ntiles; t = t + 1u) {
        let cur = t & 1u;
        let more = t + 1u < ntiles;
        if (more) {
            let slab = range.x + (t + 1u) / kt;
            let k0 = ((t + 1u) % kt) * 8u;
            let abase = a_base(slab, group);
            let bbase = b_base(slab, group);
            pa.x = a_at(abase, bm0 + sa0.x, k0 + sa0.y);
            pb.x = b_at(bbase, k0 + sb0.x, bn0 + sb0.y);
            pa.y = a_at(abase, bm0 + sa1.x, k0 + sa1.y);
            pb.y = b_at(bbase, k0 + sb1.x, bn0 + sb1.y);
            pa.z = a_at(abase, bm0 + sa2.x, k0 + sa2.y);
            pb.z = b_at(bbase, k0 + sb2.x, bn0 + sb2.y);
            pa.w = a_at(abase, bm0 + sa3.x, k0 + sa3.y);
            pb.w = b_at(bbase, k0 + sb3.x, bn0 + sb3.y);
        }
        for (var kk = 0u; kk < 8u; kk = kk + 1u) {
            let row = cur * 264u + kk * 33u;
            let a0 = As128[row + ty];
            let a1 = As128[row + 16u + ty];
            let b0 = Bs128[row + tx];
            let b1 = Bs128[row + 16u + tx];
            acc0_0 = fma(vec4<f32>(a0.x), b0, acc0_0);
            acc0_1 = fma(vec4<f32>(a0.x), b1, acc0_1);
            acc1_0 = fma(vec4<f32>(a0.y), b0, acc1_0);
            acc1_1 = fma(vec4<f32>(a0.y), b1, acc1_1);
            acc2_0 = fma(vec4<f32>(a0.z), b0, acc2_0);
            acc2_1 = fma(vec4<f32>(a0.z), b1, acc2_1);
            acc3_0 = fma(vec4<f32>(a0.w), b0, acc3_0);
            acc3_1 = fma(vec4<f32>(a0.w), b1, acc3_1);
            acc4_0 = fma(vec4<f32>(a1.x), b0, acc4_0);
            acc4_1 = fma(vec4<f32>(a1.x), b1, acc4_1);
            acc5_0 = fma(vec4<f32>(a1.y), b0, acc5_0);
            acc5_1 = fma(vec4<f32>(a1.y), b1, acc5_1);
            acc6_0 = fma(vec4<f32>(a1.z), b0, acc6_0);
            acc6_1 = fma(vec4<f32>(a1.z), b1, acc6_1);
            acc7_0 = fma(vec4<f32>(a1.w), b0, acc7_0);
            acc7_1 = fma(vec4<f32>(a1.w), b1, acc7_1);
        }
        if (more) {
            let buf = cur ^ 1u;
            put_a128(buf * 1056u + sa0.y * 132u + sa0.x, pa.x);
            put_b128(buf * 1056u + sb0.x * 132u + sb0.y, pb.x);
            put_a128(buf * 1056u + sa1.y * 132u + sa1.x, pa.y);
            put_b128(buf * 1056u + sb1.x * 132u + sb1.y, pb.y);
            put_a128(buf * 1056u + sa2.y * 132u + sa2.x, pa.z);
            put_b128(buf * 1056u + sb2.x * 132u + sb2.y, pb.z);
            put_a128(buf * 1056u + sa3.y * 132u + sa3.x, pa.w);
            put_b128(buf * 1056u + sb3.x * 132u + sb3.y, pb.w);
        }
        workgroupBarrier();
    }
    store_c(cbase, bias0, bm0 + 0u + ty * 4u + 0u, bn0 + 0u + tx * 4u, acc0_0);
    store_c(cbase, bias0, bm0 + 0u + ty * 4u + 0u, bn0 + 64u + tx * 4u, acc0_1);
    store_c(cbase, bias0, bm0 + 0u + ty * 4u + 1u, bn0 + 0u + tx * 4u, acc1_0);
    store_c(cbase, bias0, bm0 + 0u + ty * 4u + 1u, bn0 + 64u + tx * 4u, acc1_1);
    store_c(cbase, bias0, bm0 + 0u + ty * 4u + 2u, bn0 + 0u + tx * 4u, acc2_0);
    store_c(cbase, bias0, bm0 + 0u + ty * 4u + 2u, bn0 + 64u + tx * 4u, acc2_1);
    store_c(cbase, bias0, bm0 + 0u + ty * 4u + 3u, bn0 + 0u + tx * 4u, acc3_0);
    store_c(cbase, bias0, bm0 + 0u + ty * 4u + 3u, bn0 + 64u + tx * 4u, acc3_1);
    store_c(cbase, bias0, bm0 + 64u + ty * 4u + 0u, bn0 + 0u + tx * 4u, acc4_0);
    store_c(cbase, bias0, bm0 + 64u + ty * 4u + 0u, bn0 + 64u + tx * 4u, acc4_1);
    store_c(cbase, bias0, bm0 + 64u + ty * 4u + 1u, bn0 + 0u + tx * 4u, acc5_0);
    store_c(cbase, bias0, bm0 + 64u + ty * 4u + 1u, bn0 + 64u + tx * 4u, acc5_1);
    store_c(cbase, bias0, bm0 + 64u + ty * 4u + 2u, bn0 + 0u + tx * 4u, acc6_0);
    store_c(cbase, bias0, bm0 + 64u + ty * 4u + 2u, bn0 + 64u + tx * 4u, acc6_1);
    store_c(cbase, bias0, bm0 + 64u + ty * 4u + 3u, bn0 + 0u + tx * 4u, acc7_0);
    store_c(cbase, bias0, bm0 + 64u + ty * 4u + 3u, bn0 + 64u + tx * 4u, acc7_1);
}
