// copy: data movement on 32-bit elements (f32 or u32, moved as raw bits): permute, block
// copies for concat and narrow, index_select, and the deterministic index_select backward.
//
// Block copies view every array as [outer, axis * inner] rows: a row of `src_block` words
// maps onto words [offset, offset + src_block) of a `dst_block`-word row, or back.

fn linear_index(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * 256u;
}

const NAN_BITS: u32 = 0x7fc00000u;

// ---- permute ------------------------------------------------------------------------

struct PermuteParams {
    n: u32,
    ndim: u32,
    _pad0: u32,
    _pad1: u32,
    dims: array<vec4<u32>, 2>,     // output dimensions
    strides: array<vec4<u32>, 2>,  // input stride of each output dimension
}
@group(0) @binding(0) var<uniform> PP: PermuteParams;
@group(0) @binding(1) var<storage, read> px: array<u32>;
@group(0) @binding(2) var<storage, read_write> pout: array<u32>;

@compute @workgroup_size(256)
fn permute(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg);
    if (i >= PP.n) {
        return;
    }
    var rem = i;
    var src = 0u;
    for (var d = i32(PP.ndim) - 1; d >= 0; d = d - 1) {
        let du = u32(d);
        let size = PP.dims[du / 4u][du % 4u];
        src = src + (rem % size) * PP.strides[du / 4u][du % 4u];
        rem = rem / size;
    }
    pout[i] = px[src];
}

// ---- block copies: concat pieces, narrow, narrow backward -----------------------------

struct BlockParams {
    n: u32,          // threads
    src_block: u32,  // words per row of the source
    dst_block: u32,  // words per row of the destination
    offset: u32,     // where the smaller row starts inside the larger one
}
@group(0) @binding(0) var<uniform> BP: BlockParams;
@group(0) @binding(1) var<storage, read> bsrc: array<u32>;
@group(0) @binding(2) var<storage, read_write> bdst: array<u32>;

// One thread per source word: write it into its slot of the larger destination row.
@compute @workgroup_size(256)
fn place(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg);
    if (i < BP.n) {
        bdst[(i / BP.src_block) * BP.dst_block + BP.offset + i % BP.src_block] = bsrc[i];
    }
}

// One thread per destination word: read it from its slot of the larger source row.
@compute @workgroup_size(256)
fn take(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg);
    if (i < BP.n) {
        bdst[i] = bsrc[(i / BP.dst_block) * BP.src_block + BP.offset + i % BP.dst_block];
    }
}

// One thread per destination word: the source row where it overlaps, zero elsewhere.
@compute @workgroup_size(256)
fn place_or_zero(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg);
    if (i >= BP.n) {
        return;
    }
    let r = i % BP.dst_block;
    var v = 0u;
    if (r >= BP.offset && r < BP.offset + BP.src_block) {
        v = bsrc[(i / BP.dst_block) * BP.src_block + r - BP.offset];
    }
    bdst[i] = v;
}

// ---- index_select ---------------------------------------------------------------------

struct SelectParams {
    n: u32,       // output words: outer * count * inner
    axis: u32,    // length of the selected axis in the source
    count: u32,   // number of indices
    inner: u32,   // words after the axis
}
@group(0) @binding(0) var<uniform> SP: SelectParams;
@group(0) @binding(1) var<storage, read> sx: array<u32>;
@group(0) @binding(2) var<storage, read> sidx: array<u32>;
@group(0) @binding(3) var<storage, read_write> sout: array<u32>;

// Out-of-range indices write NaN instead of reading out of bounds.
@compute @workgroup_size(256)
fn index_select(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg);
    if (i >= SP.n) {
        return;
    }
    let r = i % SP.inner;
    let j = (i / SP.inner) % SP.count;
    let o = i / (SP.inner * SP.count);
    let at = sidx[j];
    var v = NAN_BITS;
    if (at < SP.axis) {
        v = sx[(o * SP.axis + at) * SP.inner + r];
    }
    sout[i] = v;
}

// ---- index_select backward: stable radix sort of (index, position), then a gather -------
//
// Sorting positions by index (LSD radix, 8 bits a pass, blocks of 256 positions) lists,
// for every row v, the positions that selected it in increasing order; each output element
// then sums its gradients in that fixed order. No float atomics, so results are
// deterministic. Keys are min(index, rows), so out-of-range indices sort last and feed no row.

struct SortParams {
    n: u32,       // number of indices
    rows: u32,    // length of the axis in the full array (the key sentinel)
    shift: u32,   // digit of this radix pass
    blocks: u32,  // ceil(n / 256)
    inner: u32,   // elements after the axis
    outer: u32,   // elements before the axis
    total: u32,   // gather threads: outer * rows * inner
    _pad: u32,
}
@group(0) @binding(0) var<uniform> SO: SortParams;

fn block_of(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return wid.x + wid.y * nwg.x;
}

@group(0) @binding(1) var<storage, read> init_idx: array<u32>;
@group(0) @binding(2) var<storage, read_write> init_keys: array<u32>;
@group(0) @binding(3) var<storage, read_write> init_vals: array<u32>;

@compute @workgroup_size(256)
fn sort_init(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let j = linear_index(gid, nwg);
    if (j < SO.n) {
        init_keys[j] = min(init_idx[j], SO.rows);
        init_vals[j] = j;
    }
}

@group(0) @binding(1) var<storage, read> hist_keys: array<u32>;
@group(0) @binding(2) var<storage, read_write> hist_table: array<u32>;
var<workgroup> hist: array<atomic<u32>, 256>;

// Per block, how many keys have each digit; table[digit * blocks + block], digit-major so
// that its exclusive scan is every (digit, block)'s first slot in the sorted order.
@compute @workgroup_size(256)
fn sort_histogram(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) t: u32,
) {
    let b = block_of(wid, nwg);
    if (b >= SO.blocks) {
        return; // the folded grid's spare groups (uniform across the workgroup)
    }
    atomicStore(&hist[t], 0u);
    workgroupBarrier();
    let j = b * 256u + t;
    if (j < SO.n) {
        atomicAdd(&hist[(hist_keys[j] >> SO.shift) & 255u], 1u);
    }
    workgroupBarrier();
    hist_table[t * SO.blocks + b] = atomicLoad(&hist[t]);
}

@group(0) @binding(1) var<storage, read_write> scan_table: array<u32>;
var<workgroup> partial: array<u32, 256>;

// One workgroup: thread t owns digit t's row of `blocks` counts. Exclusive scan in place.
@compute @workgroup_size(256)
fn sort_scan(@builtin(local_invocation_index) t: u32) {
    var sum = 0u;
    for (var b = 0u; b < SO.blocks; b = b + 1u) {
        sum = sum + scan_table[t * SO.blocks + b];
    }
    partial[t] = sum;
    workgroupBarrier();
    // Hillis-Steele inclusive scan of the 256 row sums
    for (var step = 1u; step < 256u; step = step * 2u) {
        var add = 0u;
        if (t >= step) {
            add = partial[t - step];
        }
        workgroupBarrier();
        partial[t] = partial[t] + add;
        workgroupBarrier();
    }
    var run = partial[t] - sum;
    for (var b = 0u; b < SO.blocks; b = b + 1u) {
        let c = scan_table[t * SO.blocks + b];
        scan_table[t * SO.blocks + b] = run;
        run = run + c;
    }
}

@group(0) @binding(1) var<storage, read> sc_keys: array<u32>;
@group(0) @binding(2) var<storage, read> sc_vals: array<u32>;
@group(0) @binding(3) var<storage, read> sc_table: array<u32>;
@group(0) @binding(4) var<storage, read_write> sc_keys_out: array<u32>;
@group(0) @binding(5) var<storage, read_write> sc_vals_out: array<u32>;
var<workgroup> digits: array<u32, 256>;

// Stable scatter: a key's slot is its (digit, block) start plus the number of earlier keys
// in the block with the same digit.
@compute @workgroup_size(256)
fn sort_scatter(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) t: u32,
) {
    let b = block_of(wid, nwg);
    if (b >= SO.blocks) {
        return;
    }
    let j = b * 256u + t;
    var d = 256u; // no digit: past the end
    var key = 0u;
    if (j < SO.n) {
        key = sc_keys[j];
        d = (key >> SO.shift) & 255u;
    }
    digits[t] = d;
    workgroupBarrier();
    if (j < SO.n) {
        var rank = 0u;
        for (var u = 0u; u < t; u = u + 1u) {
            rank = rank + select(0u, 1u, digits[u] == d);
        }
        let dest = sc_table[d * SO.blocks + b] + rank;
        sc_keys_out[dest] = key;
        sc_vals_out[dest] = sc_vals[j];
    }
}

@group(0) @binding(1) var<storage, read> seg_keys: array<u32>;
@group(0) @binding(2) var<storage, read_write> seg_starts: array<u32>;

// starts[v] = first sorted position whose key is >= v, for v in 0..=rows.
@compute @workgroup_size(256)
fn segment_starts(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let v = linear_index(gid, nwg);
    if (v > SO.rows) {
        return;
    }
    var lo = 0u;
    var hi = SO.n;
    while (lo < hi) {
        let mid = (lo + hi) / 2u;
        if (seg_keys[mid] < v) {
            lo = mid + 1u;
        } else {
            hi = mid;
        }
    }
    seg_starts[v] = lo;
}

@group(0) @binding(1) var<storage, read> ga_grad: array<f32>;
@group(0) @binding(2) var<storage, read> ga_vals: array<u32>;
@group(0) @binding(3) var<storage, read> ga_starts: array<u32>;
@group(0) @binding(4) var<storage, read_write> ga_out: array<f32>;

// One thread per element of the full-shape gradient [outer, rows, inner].
@compute @workgroup_size(256)
fn gather_rows(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg);
    if (i >= SO.total) {
        return;
    }
    let r = i % SO.inner;
    let v = (i / SO.inner) % SO.rows;
    let o = i / (SO.inner * SO.rows);
    var acc = 0.0;
    for (var k = ga_starts[v]; k < ga_starts[v + 1u]; k = k + 1u) {
        acc = acc + ga_grad[(o * SO.n + ga_vals[k]) * SO.inner + r];
    }
    ga_out[i] = acc;
}
