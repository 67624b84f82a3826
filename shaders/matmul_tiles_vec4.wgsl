// matmul_tiles_vec4.wgsl -- `tile128v`, the f32 kernel for aligned problems on GPUs: the
// register-blocked 128x128 kernel measured at ~38 TFLOP/s on an H100 (../shared/reference,
// wgprobe's "reg128x128_t8x8_k8_db_w84"), here reading A and B as vec4 words (MA, MB) with no
// edge handling, and storing through store_c (so the epilogue applies). Follows matmul.wgsl
// and matmul_common.wgsl (f32 inputs only).
//
// * one workgroup (256 threads) computes a 128x128 block of C; dispatch (N/128, M/128, batches)
// * each thread an 8x8 micro-tile: rows {ty*4+0..3, 64+ty*4+0..3}, columns {tx*4+0..3,
//   64+tx*4+0..3}; K walked 8 at a time through double-buffered workgroup memory (A stored
//   transposed, k-major), the next slab prefetched into registers, one barrier per step
// * needs (the launcher checks): neither operand transposed, M % 128 == 0, N % 128 == 0,
//   K % 8 == 0, image and group strides multiples of 4; no REDUCE

var<workgroup> Av128: array<vec4<f32>, 512>; // [buffer 2][k 8][m 128] (A transposed)
var<workgroup> Bv128: array<vec4<f32>, 512>; // [buffer 2][k 8][n 128]

@compute @workgroup_size(256, 1, 1)
fn tile128v(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    let K4 = P.K / 4u;
    let N4 = P.N / 4u;
    let lane = lid % 32u;
    let warp = lid / 32u;
    let tx = (warp % 2u) * 8u + lane % 8u;
    let ty = (warp / 2u) * 4u + lane / 8u;
    let bm0 = wid.y * 128u;
    let bn0 = wid.x * 128u;
    // this workgroup's batch, in vec4 words of A and B
    let image = batch_range(wid.z).x;
    let group = group_of(wid.z);
    let abase = a_base(image, group) / 4u;
    let bbase4 = b_base(image, group) / 4u;
    let cbase = c_base(wid.z);
    let bias0 = bias_base(group);
    let a_m0 = (lid + 0u) / 2u;
    let a_k0 = (lid + 0u) % 2u;
    var a_g0 = abase + (bm0 + a_m0) * K4 + a_k0; // vec4 index into A, advances by 2 per K step
    let b_k0 = (lid + 0u) / 32u;
    let b_n0 = (lid + 0u) % 32u;
    var b_g0 = bbase4 + b_k0 * N4 + bn0 / 4u + b_n0; // advances by 8*N4 per K step
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
    let ntiles = P.K / 8u;
    var pa0 = MA[a_g0];
    a_g0 = a_g0 + 2u;
    var pb0 = MB[b_g0];
    b_g0 = b_g0 + 8u * N4;
    { let fi = 0u * 1024u + (a_k0 * 4u + 0u) * 128u + a_m0; Av128[fi / 4u][fi % 4u] = pa0.x; }
    { let fi = 0u * 1024u + (a_k0 * 4u + 1u) * 128u + a_m0; Av128[fi / 4u][fi % 4u] = pa0.y; }
    { let fi = 0u * 1024u + (a_k0 * 4u + 2u) * 128u + a_m0; Av128[fi / 4u][fi % 4u] = pa0.z; }
    { let fi = 0u * 1024u + (a_k0 * 4u + 3u) * 128u + a_m0; Av128[fi / 4u][fi % 4u] = pa0.w; }
    Bv128[0u * 256u + b_k0 * 32u + b_n0] = pb0;
    workgroupBarrier();
    for (var t = 0u; t < ntiles; t = t + 1u) {
        let cur = t & 1u;
        let more = t + 1u < ntiles;
        if (more) {
            pa0 = MA[a_g0];
            a_g0 = a_g0 + 2u;
            pb0 = MB[b_g0];
            b_g0 = b_g0 + 8u * N4;
        }
        let at = cur * 256u + ty;
        let bt = cur * 256u + tx;
        let a0_0 = Av128[at + 0u];
        let a0_1 = Av128[at + 16u];
        let b0_0 = Bv128[bt + 0u];
        let b0_1 = Bv128[bt + 16u];
        acc0_0 = fma(vec4<f32>(a0_0.x), b0_0, acc0_0);
        acc0_1 = fma(vec4<f32>(a0_0.x), b0_1, acc0_1);
        acc1_0 = fma(vec4<f32>(a0_0.y), b0_0, acc1_0);
        acc1_1 = fma(vec4<f32>(a0_0.y), b0_1, acc1_1);
        acc2_0 = fma(vec4<f32>(a0_0.z), b0_0, acc2_0);
        acc2_1 = fma(vec4<f32>(a0_0.z), b0_1, acc2_1);
        acc3_0 = fma(vec4<f32>(a0_0.w), b0_0, acc3_0);
        acc3_1 = fma(vec4<f32>(a0_0.w), b0_1, acc3_1);
        acc4_0 = fma(vec4<f32>(a0_1.x), b0_0, acc4_0);
        acc4_1 = fma(vec4<f32>(a0_1.x), b0_1, acc4_1);
        acc5_0 = fma(vec4<f32>(a0_1.y), b0_0, acc5_0);
        acc5_1 = fma(vec4<f32>(a0_1.y), b0_1, acc5_1);
        acc6_0 = fma(vec4<f32>(a0_1.z), b0_0, acc6_0);
        acc6_1 = fma(vec4<f32>(a0_1.z), b0_1, acc6_1);
        acc7_0 = fma(vec4<f32>(a0_1.w), b0_0, acc7_0);
        acc7_1 = fma(vec4<f32>(a0_1.w), b0_1, acc7_1);
        let a1_0 = Av128[at + 32u];
        let a1_1 = Av128[at + 48u];
        let b1_0 = Bv128[bt + 32u];
        let b1_1 = Bv128[bt + 48u];
        acc0_0 = fma(vec4<f32>(a1_0.x), b1_0, acc0_0);
        acc0_1 = fma(vec4<f32>(a1_0.x), b1_1, acc0_1);
        acc1_0 = fma(vec4<f32>(a1_0.y), b1_0, acc1_0);
        acc1_1 = fma(vec4<f32>(a1_0.y), b1_1, acc1_1);
        acc2_0 = fma(vec4<f32>(a1_0.z), b1_0, acc2_0);
        acc2_1 = fma(vec4<f32>(a1_0.z), b1_1, acc2_1);
        acc3_0 = fma(vec4<f32>(a1_0.w), b1_0, acc3_0);
        acc3_1 = fma(vec4<f32>(a1_0.w), b1_1, acc3_1);
        acc4_0 = fma(vec4<f32>(a1_1.x), b1_0, acc4_0);
        acc4_1 = fma(vec4<f32>(a1_1.x), b1_1, acc4_1);
        acc5_0 = fma(vec4<f32>(a1_1.y), b1_0, acc5_0);
        acc5_1 = fma(vec4<f32>(a1_1.y), b1_1, acc5_1);
        acc6_0 = fma(vec4<f32>(a1_1.z), b1_0, acc6_0);
        acc6_1 = fma(vec4<f32>(a1_1.z), b1_1, acc6_1);
        acc7_0 = fma(vec4<f32>(a1_1.w), b1_0, acc7_0);
        acc7_1 = fma(vec4<f32>(a1_1.w), b1_1, acc7_1);
        let a2_0 = Av128[at + 64u];
        let a2_1 = Av128[at + 80u];
        let b2_0 = Bv128[bt + 64u];
        let b2_1 = Bv128[bt + 80u];
        acc0_0 = fma(vec4<f32>(a2_0.x), b2_0, acc0_0);
        acc0_1 = fma(vec4<f32>(a2_0.x), b2_1, acc0_1);
        acc1_0 = fma(vec4<f32>(a2_0.y), b2_0, acc1_0);
        acc1_1 = fma(vec4<f32>(a2_0.y), b2_1, acc1_1);
        acc2_0 = fma(vec4<f32>(a2_0.z), b2_0, acc2_0);
        acc2_1 = fma(vec4<f32>(a2_0.z), b2_1, acc2_1);
        acc3_0 = fma(vec4<f32>(a2_0.w), b2_0, acc3_0);
        acc3_1 = fma(vec4<f32>(a2_0.w), b2_1, acc3_1);
        acc4_0 = fma(vec4<f32>(a2_1.x), b2_0, acc4_0);
        acc4_1 = fma(vec4<f32>(a2_1.x), b2_1, acc4_1);
        acc5_0 = fma(vec4<f32>(a2_1.y), b2_0, acc5_0);
        acc5_1 = fma(vec4<f32>(a2_1.y), b2_1, acc5_1);
        acc6_0 = fma(vec4<f32>(a2_1.z), b2_0, acc6_0);
        acc6_1 = fma(vec4<f32>(a2_1.z), b2_1, acc6_1);
        acc7_0 = fma(vec4<f32>(a2_1.w), b2_0, acc7_0);
        acc7_1 = fma(vec4<f32>(a2_1.w), b2_1, acc7_1);
        let a3_0 = Av128[at + 96u];
        let a3_1 = Av128[at + 112u];
        let b3_0 = Bv128[bt + 96u];
        let b3_1 = Bv128[bt + 112u];
        acc0_0 = fma(vec4<f32>(a3_0.x), b3_0, acc0_0);
        acc0_1 = fma(vec4<f32>(a3_0.x), b3_1, acc0_1);
        acc1_0 = fma(vec4<f32>(a3_0.y), b3_0, acc1_0);
        acc1_1 = fma(vec4<f32>(a3_0.y), b3_1, acc1_1);
        acc2_0 = fma(vec4<f32>(a3_0.z), b3_0, acc2_0);
        acc2_1 = fma(vec4<f32>(a3_0.z), b3_1, acc2_1);
        acc3_0 = fma(vec4<f32>(a3_0.w), b3_0, acc3_0);
        acc3_1 = fma(vec4<f32>(a3_0.w), b3_1, acc3_1);
        acc4_0 = fma(vec4<f32>(a3_1.x), b3_0, acc4_0);
        acc4_1 = fma(vec4<f32>(a3_1.x), b3_1, acc4_1);
        acc5_0 = fma(vec4<f32>(a3_1.y), b3_0, acc5_0);
        acc5_1 = fma(vec4<f32>(a3_1.y), b3_1, acc5_1);
        acc6_0 = fma(vec4<f32>(a3_1.z), b3_0, acc6_0);
        acc6_1 = fma(vec4<f32>(a3_1.z), b3_1, acc6_1);
        acc7_0 = fma(vec4<f32>(a3_1.w), b3_0, acc7_0);
        acc7_1 = fma(vec4<f32>(a3_1.w), b3_1, acc7_1);
        let a4_0 = Av128[at + 128u];
        let a4_1 = Av128[at + 144u];
        let b4_0 = Bv128[bt + 128u];
        let b4_1 = Bv128[bt + 144u];
        acc0_0 = fma(vec4<f32>(a4_0.x), b4_0, acc0_0);
        acc0_1 = fma(vec4<f32>(a4_0.x), b4_1, acc0_1);
        acc1_0 = fma(vec4<f32>(a4_0.y), b4_0, acc1_0);
        acc1_1 = fma(vec4<f32>(a4_0.y), b4_1, acc1_1);
        acc2_0 = fma(vec4<f32>(a4_0.z), b4_0, acc2_0);
        acc2_1 = fma(vec4<f32>(a4_0.z), b4_1, acc2_1);
        acc3_0 = fma(vec4<f32>(a4_0.w), b4_0, acc3_0);
        acc3_1 = fma(vec4<f32>(a4_0.w), b4_1, acc3_1);
        acc4_0 = fma(vec4<f32>(a4_1.x), b4_0, acc4_0);
        acc4_1 = fma(vec4<f32>(a4_1.x), b4_1, acc4_1);
        acc5_0 = fma(vec4<f32>(a4_1.y), b4_0, acc5_0);
        acc5_1 = fma(vec4<f32>(a4_1.y), b4_1, acc5_1);
        acc6_0 = fma(vec4<f32>(a4_1.z), b4_0, acc6_0);
        acc6_1 = fma(vec4<f32>(a4_1.z), b4_1, acc6_1);
        acc7_0 = fma(vec4<f32>(a4_1.w), b4_0, acc7_0);
        acc7_1 = fma(vec4<f32>(a4_1.w), b4_1, acc7_1);
        let a5_0 = Av128[at + 160u];
        let a5_1 = Av128[at + 176u];
        let b5_0 = Bv128[bt + 160u];
        let b5_1 = Bv128[bt + 176u];
        acc0_0 = fma(vec4<f32>(a5_0.x), b5_0, acc0_0);
        acc0_1 = fma(vec4<f32>(a5_0.x), b5_1, acc0_1);
        acc1_0 = fma(vec4<f32>(a5_0.y), b5_0, acc1_0);
        acc1_1 = fma(vec4<f32>(a5_0.y), b5_1, acc1_1);
        acc2_0 = fma(vec4<f32>(a5_0.z), b5_0, acc2_0);
        acc2_1 = fma(vec4<f32>(a5_0.z), b5_1, acc2_1);
        acc3_0 = fma(vec4<f32>(a5_0.w), b5_0, acc3_0);
        acc3_1 = fma(vec4<f32>(a5_0.w), b5_1, acc3_1);
        acc4_0 = fma(vec4<f32>(a5_1.x), b5_0, acc4_0);
        acc4_1 = fma(vec4<f32>(a5_1.x), b5_1, acc4_1);
        acc5_0 = fma(vec4<f32>(a5_1.y), b5_0, acc5_0);
        acc5_1 = fma(vec4<f32>(a5_1.y), b5_1, acc5_1);
        acc6_0 = fma(vec4<f32>(a5_1.z), b5_0, acc6_0);
        acc6_1 = fma(vec4<f32>(a5_1.z), b5_1, acc6_1);
        acc7_0 = fma(vec4<f32>(a5_1.w), b5_0, acc7_0);
        acc7_1 = fma(vec4<f32>(a5_1.w), b5_1, acc7_1);
        let a6_0 = Av128[at + 192u];
        let a6_1 = Av128[at + 208u];
        let b6_0 = Bv128[bt + 192u];
        let b6_1 = Bv128[bt + 208u];
        acc0_0 = fma(vec4<f32>(a6_0.x), b6_0, acc0_0);
        acc0_1 = fma(vec4<f32>(a6_0.x), b6_1, acc0_1);
        acc1_0 = fma(vec4<f32>(a6_0.y), b6_0, acc1_0);
        acc1_1 = fma(vec4<f32>(a6_0.y), b6_1, acc1_1);
        acc2_0 = fma(vec4<f32>(a6_0.z), b6_0, acc2_0);
        acc2_1 = fma(vec4<f32>(a6_0.z), b6_1, acc2_1);
        acc3_0 = fma(vec4<f32>(a6_0.w), b6_0, acc3_0);
        acc3_1 = fma(vec4<f32>(a6_0.w), b6_1, acc3_1);
        acc4_0 = fma(vec4<f32>(a6_1.x), b6_0, acc4_0);
        acc4_1 = fma(vec4<f32>(a6_1.x), b6_1, acc4_1);
        acc5_0 = fma(vec4<f32>(a6_1.y), b6_0, acc5_0);
        acc5_1 = fma(vec4<f32>(a6_1.y), b6_1, acc5_1);
        acc6_0 = fma(vec4<f32>(a6_1.z), b6_0, acc6_0);
        acc6_1 = fma(vec4<f32>(a6_1.z), b6_1, acc6_1);
        acc7_0 = fma(vec4<f32>(a6_1.w), b6_0, acc7_0);
        acc7_1 = fma(vec4<f32>(a6_1.w), b6_1, acc7_1);
        let a7_0 = Av128[at + 224u];
        let a7_1 = Av128[at + 240u];
        let b7_0 = Bv128[bt + 224u];
        let b7_1 = Bv128[bt + 240u];
        acc0_0 = fma(vec4<f32>(a7_0.x), b7_0, acc0_0);
        acc0_1 = fma(vec4<f32>(a7_0.x), b7_1, acc0_1);
        acc1_0 = fma(vec4<f32>(a7_0.y), b7_0, acc1_0);
        acc1_1 = fma(vec4<f32>(a7_0.y), b7_1, acc1_1);
        acc2_0 = fma(vec4<f32>(a7_0.z), b7_0, acc2_0);
        acc2_1 = fma(vec4<f32>(a7_0.z), b7_1, acc2_1);
        acc3_0 = fma(vec4<f32>(a7_0.w), b7_0, acc3_0);
        acc3_1 = fma(vec4<f32>(a7_0.w), b7_1, acc3_1);
        acc4_0 = fma(vec4<f32>(a7_1.x), b7_0, acc4_0);
        acc4_1 = fma(vec4<f32>(a7_1.x), b7_1, acc4_1);
        acc5_0 = fma(vec4<f32>(a7_1.y), b7_0, acc5_0);
        acc5_1 = fma(vec4<f32>(a7_1.y), b7_1, acc5_1);
        acc6_0 = fma(vec4<f32>(a7_1.z), b7_0, acc6_0);
        acc6_1 = fma(vec4<f32>(a7_1.z), b7_1, acc6_1);
        acc7_0 = fma(vec4<f32>(a7_1.w), b7_0, acc7_0);
        acc7_1 = fma(vec4<f32>(a7_1.w), b7_1, acc7_1);
        if (more) {
            let nxt = cur ^ 1u;
            { let fi = nxt * 1024u + (a_k0 * 4u + 0u) * 128u + a_m0; Av128[fi / 4u][fi % 4u] = pa0.x; }
            { let fi = nxt * 1024u + (a_k0 * 4u + 1u) * 128u + a_m0; Av128[fi / 4u][fi % 4u] = pa0.y; }
            { let fi = nxt * 1024u + (a_k0 * 4u + 2u) * 128u + a_m0; Av128[fi / 4u][fi % 4u] = pa0.z; }
            { let fi = nxt * 1024u + (a_k0 * 4u + 3u) * 128u + a_m0; Av128[fi / 4u][fi % 4u] = pa0.w; }
            Bv128[nxt * 256u + b_k0 * 32u + b_n0] = pb0;
        }
        workgroupBarrier();
    }
    let row0 = bm0 + 0u + ty * 4u + 0u;
    store_c(cbase, bias0, row0, bn0 + tx * 4u, acc0_0);
    store_c(cbase, bias0, row0, bn0 + 64u + tx * 4u, acc0_1);
    let row1 = bm0 + 0u + ty * 4u + 1u;
    store_c(cbase, bias0, row1, bn0 + tx * 4u, acc1_0);
    store_c(cbase, bias0, row1, bn0 + 64u + tx * 4u, acc1_1);
    let row2 = bm0 + 0u + ty * 4u + 2u;
    store_c(cbase, bias0, row2, bn0 + tx * 4u, acc2_0);
    store_c(cbase, bias0, row2, bn0 + 64u + tx * 4u, acc2_1);
    let row3 = bm0 + 0u + ty * 4u + 3u;
    store_c(cbase, bias0, row3, bn0 + tx * 4u, acc3_0);
    store_c(cbase, bias0, row3, bn0 + 64u + tx * 4u, acc3_1);
    let row4 = bm0 + 64u + ty * 4u + 0u;
    store_c(cbase, bias0, row4, bn0 + tx * 4u, acc4_0);
    store_c(cbase, bias0, row4, bn0 + 64u + tx * 4u, acc4_1);
    let row5 = bm0 + 64u + ty * 4u + 1u;
    store_c(cbase, bias0, row5, bn0 + tx * 4u, acc5_0);
    store_c(cbase, bias0, row5, bn0 + 64u + tx * 4u, acc5_1);
    let row6 = bm0 + 64u + ty * 4u + 2u;
    store_c(cbase, bias0, row6, bn0 + tx * 4u, acc6_0);
    store_c(cbase, bias0, row6, bn0 + 64u + tx * 4u, acc6_1);
    let row7 = bm0 + 64u + ty * 4u + 3u;
    store_c(cbase, bias0, row7, bn0 + tx * 4u, acc7_0);
    store_c(cbase, bias0, row7, bn0 + 64u + tx * 4u, acc7_1);
}
