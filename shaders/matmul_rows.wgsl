// matmul_rows.wgsl -- the small-M kernel, shared by the f32 and f16-input paths. Not a module
// on its own: it follows matmul.wgsl or matmul_f16.wgsl and matmul_common.wgsl.
//
// Made for skinny products (M = a few output channels, N = many pixels, a batch of them) and
// for CPU adapters such as lavapipe, which run invocations as SIMD lanes and pay for every
// load inside a loop lane by lane: no workgroup memory, no barriers, and as many FMAs per load
// as registers allow. Each invocation keeps an 8-row x 4-column block of C in registers (4
// consecutive columns of one batch), so per step of K it loads 8 values of A and 4 of B for 32
// FMAs. The batch is folded into the grid's x: invocation i takes batch i / Q and columns
// 4 * (i % Q) + 0..3, Q = ceil(N / 4). Rows and columns past the edge are computed on clamped
// indices and not stored; invocations past the last column block return at once. Dispatch: (ceil(nb * Q / 64), ceil(M / 8), 1), nb = P.nb batches.
// REDUCE: splits take the batches' place: invocation i sums split i / Q's batches, (ceil(splits * Q / 64), ceil(M / 8), 1).
// SHARED_A (set when one A serves every batch) makes every A address the same for the whole
// workgroup, which lets lavapipe load A from a uniform buffer once instead of lane by lane
// (matmul_ubo.wgsl). LOCAL_A: A holds only this dispatch's batches, from P.batch0 on (a
// uniform-buffer copy of consecutive batches; a per-group A shared by the images is copied
// whole instead, and read as bound).

override SHARED_A: bool = false;
override LOCAL_A: bool = false;
// GROUP_Z: the group is the workgroup's z and the batches folded into x are its images (from
// image P.batch0), so a per-group A shared by the images (a grouped convolution's weight) sits
// at one address for the whole workgroup, as SHARED_A makes it for an ungrouped one.
override GROUP_Z: bool = false;
// VEC_B: B's four columns are one aligned load (not TRANS_B, N and B's batch stride multiples
// of 4; the launcher checks): lavapipe pays per load and lane, so this quarters B's cost.
override VEC_B: bool = false;
// A_K4: A's rows run along K in memory (not TRANS_A; K and A's batch stride multiples of 4, the
// launcher checks), so one load brings four steps of K of a row: K advances by 4 per iteration.
override A_K4: bool = false;
// B_K4 (with A_K4): B's columns run along K too (TRANS_B: a weight gradient, or x · W^T), so
// four steps of K of each column are one load as well.
override B_K4: bool = false;
// A_M8: A's columns run along M (TRANS_A, M a multiple of 4): a block's 8 rows of one step of
// K are two loads.
override A_M8: bool = false;

// The products of one row of A (four steps of K) with four columns of B.
fn dots(a: vec4<f32>, b0: vec4<f32>, b1: vec4<f32>, b2: vec4<f32>, b3: vec4<f32>) -> vec4<f32> {
    return vec4<f32>(dot(a, b0), dot(a, b1), dot(a, b2), dot(a, b3));
}

// Row k of B at the four columns `bk` already offset to that row.
fn b_row(bk: vec4<u32>) -> vec4<f32> {
    if (VEC_B) {
        return load_b4(bk.x);
    }
    return vec4<f32>(load_b(bk.x), load_b(bk.y), load_b(bk.z), load_b(bk.w));
}

// One row of A (four steps of K) times four rows of B (those steps, four columns).
fn steps4(a: vec4<f32>, b0: vec4<f32>, b1: vec4<f32>, b2: vec4<f32>, b3: vec4<f32>) -> vec4<f32> {
    return fma(vec4<f32>(a.x), b0, fma(vec4<f32>(a.y), b1, fma(vec4<f32>(a.z), b2, vec4<f32>(a.w) * b3)));
}

@compute @workgroup_size(64)
fn rows8(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    let q = (P.N + 3u) / 4u;
    let slot = wid.x * 64u + lid;
    // (lavapipe skips the loads of lanes that have left, which the edge workgroup's mostly are)
    // with REDUCE the (split, group) pairs are folded into x as the batches are otherwise
    let folded = select(P.nb, (P.nbatch + P.nb - 1u) / P.nb * P.groups, REDUCE);
    if (slot >= q * folded) {
        return;
    }
    // images [range.x, range.y) of `group` summed into this invocation's C: its batch's one,
    // or with REDUCE split slot / q's share, into partial slot / q (see batch_range)
    var range = batch_range(slot / q);
    var group = group_of(slot / q);
    var cbase = c_base(slot / q);
    if (GROUP_Z) {
        let image = P.batch0 + slot / q;
        range = vec2<u32>(image, image + 1u);
        group = wid.z;
        cbase = (image * P.groups + group) * P.sc;
    }
    let bias0 = bias_base(group);
    // LOCAL_A: A's copy starts at the dispatch's first batch
    let alocal = select(0u, a_base(P.batch0 / P.groups, P.batch0 % P.groups), LOCAL_A);
    let n0 = (slot % q) * 4u;
    let arow = select(P.K, 1u, TRANS_A);
    let acol = select(1u, P.M, TRANS_A);
    let m0 = wid.y * 8u;
    let last = P.M - 1u;
    // A[m, k] sits at abase + r(m) + k * acol
    let r0 = min(m0 + 0u, last) * arow;
    let r1 = min(m0 + 1u, last) * arow;
    let r2 = min(m0 + 2u, last) * arow;
    let r3 = min(m0 + 3u, last) * arow;
    let r4 = min(m0 + 4u, last) * arow;
    let r5 = min(m0 + 5u, last) * arow;
    let r6 = min(m0 + 6u, last) * arow;
    let r7 = min(m0 + 7u, last) * arow;
    // B[k, n] sits at bbase + boff(n) + k * bstep; columns past N read column N - 1
    let n = min(vec4<u32>(n0) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(P.N - 1u));
    let boff = select(n, n * P.K, TRANS_B);
    let bstep = select(P.N, 1u, TRANS_B);
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    var acc4 = vec4<f32>(0.0);
    var acc5 = vec4<f32>(0.0);
    var acc6 = vec4<f32>(0.0);
    var acc7 = vec4<f32>(0.0);
    for (var image = range.x; image < range.y; image = image + 1u) {
        var abase = a_base(image, group) - alocal;
        if (SHARED_A) {
            abase = 0u;
        }
        let bb = boff + vec4<u32>(b_base(image, group));
        if (A_K4) {
            for (var k = 0u; k < P.K; k = k + 4u) {
                let ak = abase + k;
                let a0 = load_a4(r0 + ak);
                let a1 = load_a4(r1 + ak);
                let a2 = load_a4(r2 + ak);
                let a3 = load_a4(r3 + ak);
                let a4 = load_a4(r4 + ak);
                let a5 = load_a4(r5 + ak);
                let a6 = load_a4(r6 + ak);
                let a7 = load_a4(r7 + ak);
                var b0: vec4<f32>;
                var b1: vec4<f32>;
                var b2: vec4<f32>;
                var b3: vec4<f32>;
                if (B_K4) {
                    // four columns, each four steps of K
                    b0 = load_b4(bb.x + k);
                    b1 = load_b4(bb.y + k);
                    b2 = load_b4(bb.z + k);
                    b3 = load_b4(bb.w + k);
                    acc0 = acc0 + dots(a0, b0, b1, b2, b3);
                    acc1 = acc1 + dots(a1, b0, b1, b2, b3);
                    acc2 = acc2 + dots(a2, b0, b1, b2, b3);
                    acc3 = acc3 + dots(a3, b0, b1, b2, b3);
                    acc4 = acc4 + dots(a4, b0, b1, b2, b3);
                    acc5 = acc5 + dots(a5, b0, b1, b2, b3);
                    acc6 = acc6 + dots(a6, b0, b1, b2, b3);
                    acc7 = acc7 + dots(a7, b0, b1, b2, b3);
                } else {
                    // four rows of K, each four columns
                    b0 = b_row(bb + vec4<u32>(k * bstep));
                    b1 = b_row(bb + vec4<u32>((k + 1u) * bstep));
                    b2 = b_row(bb + vec4<u32>((k + 2u) * bstep));
                    b3 = b_row(bb + vec4<u32>((k + 3u) * bstep));
                    acc0 = acc0 + steps4(a0, b0, b1, b2, b3);
                    acc1 = acc1 + steps4(a1, b0, b1, b2, b3);
                    acc2 = acc2 + steps4(a2, b0, b1, b2, b3);
                    acc3 = acc3 + steps4(a3, b0, b1, b2, b3);
                    acc4 = acc4 + steps4(a4, b0, b1, b2, b3);
                    acc5 = acc5 + steps4(a5, b0, b1, b2, b3);
                    acc6 = acc6 + steps4(a6, b0, b1, b2, b3);
                    acc7 = acc7 + steps4(a7, b0, b1, b2, b3);
                }
            }
            continue;
        }
        for (var k = 0u; k < P.K; k = k + 1u) {
            let bv = b_row(bb + vec4<u32>(k * bstep));
            let ak = abase + k * acol;
            if (A_M8) {
                // rows m0 .. m0 + 7 of step k are contiguous; the upper four clamped at the edge
                let lo = load_a4(ak + m0);
                let hi = load_a4(ak + min(m0 + 4u, P.M - 4u));
                acc0 = fma(vec4<f32>(lo.x), bv, acc0);
                acc1 = fma(vec4<f32>(lo.y), bv, acc1);
                acc2 = fma(vec4<f32>(lo.z), bv, acc2);
                acc3 = fma(vec4<f32>(lo.w), bv, acc3);
                acc4 = fma(vec4<f32>(hi.x), bv, acc4);
                acc5 = fma(vec4<f32>(hi.y), bv, acc5);
                acc6 = fma(vec4<f32>(hi.z), bv, acc6);
                acc7 = fma(vec4<f32>(hi.w), bv, acc7);
                continue;
            }
            acc0 = fma(vec4<f32>(load_a(r0 + ak)), bv, acc0);
            acc1 = fma(vec4<f32>(load_a(r1 + ak)), bv, acc1);
            acc2 = fma(vec4<f32>(load_a(r2 + ak)), bv, acc2);
            acc3 = fma(vec4<f32>(load_a(r3 + ak)), bv, acc3);
            acc4 = fma(vec4<f32>(load_a(r4 + ak)), bv, acc4);
            acc5 = fma(vec4<f32>(load_a(r5 + ak)), bv, acc5);
            acc6 = fma(vec4<f32>(load_a(r6 + ak)), bv, acc6);
            acc7 = fma(vec4<f32>(load_a(r7 + ak)), bv, acc7);
        }
    }
    store_c(cbase, bias0, m0 + 0u, n0, acc0);
    store_c(cbase, bias0, m0 + 1u, n0, acc1);
    store_c(cbase, bias0, m0 + 2u, n0, acc2);
    store_c(cbase, bias0, m0 + 3u, n0, acc3);
    store_c(cbase, bias0, m0 + 4u, n0, acc4);
    store_c(cbase, bias0, m0 + 5u, n0, acc5);
    store_c(cbase, bias0, m0 + 6u, n0, acc6);
    store_c(cbase, bias0, m0 + 7u, n0, acc7);
}
