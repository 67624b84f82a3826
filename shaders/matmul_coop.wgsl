// matmul_coop.wgsl -- C(f32) = op(A(f16)) * op(B(f16)) on tensor cores through wgpu 30's
// EXPERIMENTAL_COOPERATIVE_MATRIX. Followed by matmul_common.wgsl (see
// crates/device/src/kernels/matmul.rs); used only where caps().coop_matrix_f16 holds and
// subgroups are 32 wide (never on lavapipe, so no test there runs it).
//
// Adapted from shared/reference/matmul_coop_f16.wgsl (150-204 TFLOP/s at 4096^3 on an H100):
// * workgroup = 4 subgroups (128 threads), 128x128 block of C, each subgroup 4x4 fragments of
//   16x16; dispatch (ceil(N/128), ceil(M/128), batches)
// * A/B K-slabs (32 deep) staged in workgroup memory as f16 (rows padded by 8 halves); unlike
//   the reference, loads are scalar and bounds-checked (any M, N, K, transposes), and edge
//   tiles, and tiles whose rows in C are not 16-byte aligned, store each fragment through
//   workgroup memory so that what lies outside C is skipped
// * naga 30 workaround: coopStore/coopStoreT operands must be named `let`s
enable f16;
enable wgpu_cooperative_matrix;

@group(0) @binding(1) var<storage, read> MA: array<f16>;
@group(0) @binding(2) var<storage, read> MB: array<f16>;

fn load_a(i: u32) -> f32 {
    return f32(MA[i]);
}

fn load_b(i: u32) -> f32 {
    return f32(MB[i]);
}

var<workgroup> As: array<f16, 5120>; // [m 128][k: 32 + 8 padding]
var<workgroup> Bs: array<f16, 4352>; // [k 32][n: 128 + 8 padding]
var<workgroup> Cs: array<f32, 1024>; // one 16x16 fragment per subgroup, for edge tiles

// Copy subgroup sg's fragment in Cs to C at (m0, n0), skipping what lies outside.
fn spill(cbase: u32, m0: u32, n0: u32, sg: u32, lane: u32) {
    for (var e = 0u; e < 8u; e = e + 1u) {
        let idx = lane + 32u * e;
        let m = m0 + idx / 16u;
        let n = n0 + idx % 16u;
        if (m < P.M && n < P.N) {
            MC[cbase + m * P.N + n] = Cs[sg * 256u + idx];
        }
    }
}

@compute @workgroup_size(128, 1, 1)
fn coop(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    let sg = lid / 32u;
    let lane = lid % 32u;
    let sgm = sg / 2u;
    let sgn = sg % 2u;
    let image = batch_range(wid.z).x;
    let group = group_of(wid.z);
    let abase = a_base(image, group);
    let bbase = b_base(image, group);
    let cbase = c_base(wid.z);
    let bm0 = wid.y * 128u;
    let bn0 = wid.x * 128u;
    var c0_0 = coop_mat16x16<f32, C>();
    var c0_1 = coop_mat16x16<f32, C>();
    var c0_2 = coop_mat16x16<f32, C>();
    var c0_3 = coop_mat16x16<f32, C>();
    var c1_0 = coop_mat16x16<f32, C>();
    var c1_1 = coop_mat16x16<f32, C>();
    var c1_2 = coop_mat16x16<f32, C>();
    var c1_3 = coop_mat16x16<f32, C>();
    var c2_0 = coop_mat16x16<f32, C>();
    var c2_1 = coop_mat16x16<f32, C>();
    var c2_2 = coop_mat16x16<f32, C>();
    var c2_3 = coop_mat16x16<f32, C>();
    var c3_0 = coop_mat16x16<f32, C>();
    var c3_1 = coop_mat16x16<f32, C>();
    var c3_2 = coop_mat16x16<f32, C>();
    var c3_3 = coop_mat16x16<f32, C>();
    for (var k0 = 0u; k0 < P.K; k0 = k0 + 32u) {
        for (var i = 0u; i < 32u; i = i + 1u) {
            let s = a_slot(lid + 128u * i, 128u, 32u);
            As[s.x * 40u + s.y] = f16(a_at(abase, bm0 + s.x, k0 + s.y));
            let t = b_slot(lid + 128u * i, 128u, 32u);
            Bs[t.x * 136u + t.y] = f16(b_at(bbase, k0 + t.x, bn0 + t.y));
        }
        workgroupBarrier();
        for (var kk = 0u; kk < 32u; kk = kk + 16u) {
            let a0 = coopLoadT<coop_mat16x16<f16, A>>(&As[(sgm * 64u + 0u) * 40u + kk], 40u);
            let a1 = coopLoadT<coop_mat16x16<f16, A>>(&As[(sgm * 64u + 16u) * 40u + kk], 40u);
            let a2 = coopLoadT<coop_mat16x16<f16, A>>(&As[(sgm * 64u + 32u) * 40u + kk], 40u);
            let a3 = coopLoadT<coop_mat16x16<f16, A>>(&As[(sgm * 64u + 48u) * 40u + kk], 40u);
            let b0 = coopLoadT<coop_mat16x16<f16, B>>(&Bs[kk * 136u + sgn * 64u + 0u], 136u);
            let b1 = coopLoadT<coop_mat16x16<f16, B>>(&Bs[kk * 136u + sgn * 64u + 16u], 136u);
            let b2 = coopLoadT<coop_mat16x16<f16, B>>(&Bs[kk * 136u + sgn * 64u + 32u], 136u);
            let b3 = coopLoadT<coop_mat16x16<f16, B>>(&Bs[kk * 136u + sgn * 64u + 48u], 136u);
            c0_0 = coopMultiplyAdd(a0, b0, c0_0);
            c0_1 = coopMultiplyAdd(a0, b1, c0_1);
            c0_2 = coopMultiplyAdd(a0, b2, c0_2);
            c0_3 = coopMultiplyAdd(a0, b3, c0_3);
            c1_0 = coopMultiplyAdd(a1, b0, c1_0);
            c1_1 = coopMultiplyAdd(a1, b1, c1_1);
            c1_2 = coopMultiplyAdd(a1, b2, c1_2);
            c1_3 = coopMultiplyAdd(a1, b3, c1_3);
            c2_0 = coopMultiplyAdd(a2, b0, c2_0);
            c2_1 = coopMultiplyAdd(a2, b1, c2_1);
            c2_2 = coopMultiplyAdd(a2, b2, c2_2);
            c2_3 = coopMultiplyAdd(a2, b3, c2_3);
            c3_0 = coopMultiplyAdd(a3, b0, c3_0);
            c3_1 = coopMultiplyAdd(a3, b1, c3_1);
            c3_2 = coopMultiplyAdd(a3, b2, c3_2);
            c3_3 = coopMultiplyAdd(a3, b3, c3_3);
        }
        workgroupBarrier();
    }
    // coopStoreT writes 16-byte rows: straight into C only where every fragment's start and
    // row stride are 16-byte aligned (N and the batch stride multiples of 4 floats)
    let aligned = (P.N % 4u) == 0u && (cbase % 4u) == 0u;
    if (bm0 + 128u <= P.M && bn0 + 128u <= P.N && aligned) {
        let ldc = P.N;
        { let o = cbase + (bm0 + sgm * 64u + 0u) * ldc + bn0 + sgn * 64u + 0u; let cv = c0_0; coopStoreT(cv, &MC[o], ldc); }
        { let o = cbase + (bm0 + sgm * 64u + 0u) * ldc + bn0 + sgn * 64u + 16u; let cv = c0_1; coopStoreT(cv, &MC[o], ldc); }
        { let o = cbase + (bm0 + sgm * 64u + 0u) * ldc + bn0 + sgn * 64u + 32u; let cv = c0_2; coopStoreT(cv, &MC[o], ldc); }
        { let o = cbase + (bm0 + sgm * 64u + 0u) * ldc + bn0 + sgn * 64u + 48u; let cv = c0_3; coopStoreT(cv, &MC[o], ldc); }
        { let o = cbase + (bm0 + sgm * 64u + 16u) * ldc + bn0 + sgn * 64u + 0u; let cv = c1_0; coopStoreT(cv, &MC[o], ldc); }
        { let o = cbase + (bm0 + sgm * 64u + 16u) * ldc + bn0 + sgn * 64u + 16u; let cv = c1_1; coopStoreT(cv, &MC[o], ldc); }
        { let o = cbase + (bm0 + sgm * 64u + 16u) * ldc + bn0 + sgn * 64u + 32u; let cv = c1_2; coopStoreT(cv, &MC[o], ldc); }
        { let o = cbase + (bm0 + sgm * 64u + 16u) * ldc + bn0 + sgn * 64u + 48u; let cv = c1_3; coopStoreT(cv, &MC[o], ldc); }
        { let o = cbase + (bm0 + sgm * 64u + 32u) * ldc + bn0 + sgn * 64u + 0u; let cv = c2_0; coopStoreT(cv, &MC[o], ldc); }
        { let o = cbase + (bm0 + sgm * 64u + 32u) * ldc + bn0 + sgn * 64u + 16u; let cv = c2_1; coopStoreT(cv, &MC[o], ldc); }
        { let o = cbase + (bm0 + sgm * 64u + 32u) * ldc + bn0 + sgn * 64u + 32u; let cv = c2_2; coopStoreT(cv, &MC[o], ldc); }
        { let o = cbase + (bm0 + sgm * 64u + 32u) * ldc + bn0 + sgn * 64u + 48u; let cv = c2_3; coopStoreT(cv, &MC[o], ldc); }
        { let o = cbase + (bm0 + sgm * 64u + 48u) * ldc + bn0 + sgn * 64u + 0u; let cv = c3_0; coopStoreT(cv, &MC[o], ldc); }
        { let o = cbase + (bm0 + sgm * 64u + 48u) * ldc + bn0 + sgn * 64u + 16u; let cv = c3_1; coopStoreT(cv, &MC[o], ldc); }
        { let o = cbase + (bm0 + sgm * 64u + 48u) * ldc + bn0 + sgn * 64u + 32u; let cv = c3_2; coopStoreT(cv, &MC[o], ldc); }
        { let o = cbase + (bm0 + sgm * 64u + 48u) * ldc + bn0 + sgn * 64u + 48u; let cv = c3_3; coopStoreT(cv, &MC[o], ldc); }
    } else {
        { let cv = c0_0; let o = sg * 256u; let s = 16u; coopStoreT(cv, &Cs[o], s); }
        workgroupBarrier();
        spill(cbase, bm0 + sgm * 64u + 0u, bn0 + sgn * 64u + 0u, sg, lane);
        workgroupBarrier();
        { let cv = c0_1; let o = sg * 256u; let s = 16u; coopStoreT(cv, &Cs[o], s); }
        workgroupBarrier();
        spill(cbase, bm0 + sgm * 64u + 0u, bn0 + sgn * 64u + 16u, sg, lane);
        workgroupBarrier();
        { let cv = c0_2; let o = sg * 256u; let s = 16u; coopStoreT(cv, &Cs[o], s); }
        workgroupBarrier();
        spill(cbase, bm0 + sgm * 64u + 0u, bn0 + sgn * 64u + 32u, sg, lane);
        workgroupBarrier();
        { let cv = c0_3; let o = sg * 256u; let s = 16u; coopStoreT(cv, &Cs[o], s); }
        workgroupBarrier();
        spill(cbase, bm0 + sgm * 64u + 0u, bn0 + sgn * 64u + 48u, sg, lane);
        workgroupBarrier();
        { let cv = c1_0; let o = sg * 256u; let s = 16u; coopStoreT(cv, &Cs[o], s); }
        workgroupBarrier();
        spill(cbase, bm0 + sgm * 64u + 16u, bn0 + sgn * 64u + 0u, sg, lane);
        workgroupBarrier();
        { let cv = c1_1; let o = sg * 256u; let s = 16u; coopStoreT(cv, &Cs[o], s); }
        workgroupBarrier();
        spill(cbase, bm0 + sgm * 64u + 16u, bn0 + sgn * 64u + 16u, sg, lane);
        workgroupBarrier();
        { let cv = c1_2; let o = sg * 256u; let s = 16u; coopStoreT(cv, &Cs[o], s); }
        workgroupBarrier();
        spill(cbase, bm0 + sgm * 64u + 16u, bn0 + sgn * 64u + 32u, sg, lane);
        workgroupBarrier();
        { let cv = c1_3; let o = sg * 256u; let s = 16u; coopStoreT(cv, &Cs[o], s); }
        workgroupBarrier();
        spill(cbase, bm0 + sgm * 64u + 16u, bn0 + sgn * 64u + 48u, sg, lane);
        workgroupBarrier();
        { let cv = c2_0; let o = sg * 256u; let s = 16u; coopStoreT(cv, &Cs[o], s); }
        workgroupBarrier();
        spill(cbase, bm0 + sgm * 64u + 32u, bn0 + sgn * 64u + 0u, sg, lane);
        workgroupBarrier();
        { let cv = c2_1; let o = sg * 256u; let s = 16u; coopStoreT(cv, &Cs[o], s); }
        workgroupBarrier();
        spill(cbase, bm0 + sgm * 64u + 32u, bn0 + sgn * 64u + 16u, sg, lane);
        workgroupBarrier();
        { let cv = c2_2; let o = sg * 256u; let s = 16u; coopStoreT(cv, &Cs[o], s); }
        workgroupBarrier();
        spill(cbase, bm0 + sgm * 64u + 32u, bn0 + sgn * 64u + 32u, sg, lane);
        workgroupBarrier();
        { let cv = c2_3; let o = sg * 256u; let s = 16u; coopStoreT(cv, &Cs[o], s); }
        workgroupBarrier();
        spill(cbase, bm0 + sgm * 64u + 32u, bn0 + sgn * 64u + 48u, sg, lane);
        workgroupBarrier();
        { let cv = c3_0; let o = sg * 256u; let s = 16u; coopStoreT(cv, &Cs[o], s); }
        workgroupBarrier();
        spill(cbase, bm0 + sgm * 64u + 48u, bn0 + sgn * 64u + 0u, sg, lane);
        workgroupBarrier();
        { let cv = c3_1; let o = sg * 256u; let s = 16u; coopStoreT(cv, &Cs[o], s); }
        workgroupBarrier();
        spill(cbase, bm0 + sgm * 64u + 48u, bn0 + sgn * 64u + 16u, sg, lane);
        workgroupBarrier();
        { let cv = c3_2; let o = sg * 256u; let s = 16u; coopStoreT(cv, &Cs[o], s); }
        workgroupBarrier();
        spill(cbase, bm0 + sgm * 64u + 48u, bn0 + sgn * 64u + 32u, sg, lane);
        workgroupBarrier();
        { let cv = c3_3; let o = sg * 256u; let s = 16u; coopStoreT(cv, &Cs[o], s); }
        workgroupBarrier();
        spill(cbase, bm0 + sgm * 64u + 48u, bn0 + sgn * 64u + 48u, sg, lane);
        workgroupBarrier();
    }
}
