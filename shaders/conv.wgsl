// conv: im2col and its adjoint col2im, the data movement that turns a 2-D convolution
// into one matmul (weight[O, C*KH*KW] x cols[C*KH*KW, OH*OW] per image) and back.
//
// cols has shape [N, C*KH*KW, OH*OW] with row r = c*KH*KW + kh*KW + kw; input pixel
// (ih, iw) = (oh*SH - PH + kh*DH, ow*SW - PW + kw*DW), zero where it falls in the padding.
//
// Input and output are stored as `T` (f32 or f16, prepended by `storage_shaders!`): im2col
// copies values (exact either way), col2im sums its overlaps in f32.

struct Params {
    total: u32,   // threads to run: N*C*OH*OW (im2col) or input elements (col2im)
    c: u32, h: u32, w: u32,
    oh: u32, ow: u32, kh: u32, kw: u32,
    sh: u32, sw: u32, ph: u32, pw: u32,
    dh: u32, dw: u32, _pad0: u32, _pad1: u32,
}
@group(0) @binding(0) var<uniform> P: Params;

fn linear_index(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * 256u;
}

@group(0) @binding(1) var<storage, read> ix: array<T>;
@group(0) @binding(2) var<storage, read_write> icols: array<T>;

// One thread per (image, channel, output pixel), writing its KH*KW rows of cols: the index
// arithmetic (integer division, slow on CPU adapters) is done once per thread, not per
// element. Taps in the padding read a clamped address and store 0.
@compute @workgroup_size(256)
fn im2col(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg);
    if (i >= P.total) {
        return;
    }
    let ow = i % P.ow;
    let oh = (i / P.ow) % P.oh;
    let nc = i / (P.ow * P.oh); // n * C + c
    let plane = P.oh * P.ow;
    let taps = P.kh * P.kw;
    // cols[n][c * taps + t][oh][ow] = icols[(nc * taps + t) * plane + oh * ow_count + ow]
    let out0 = nc * taps * plane + oh * P.ow + ow;
    let in0 = nc * P.h * P.w;
    let y0 = i32(oh * P.sh) - i32(P.ph);
    let x0 = i32(ow * P.sw) - i32(P.pw);
    for (var kh = 0u; kh < P.kh; kh = kh + 1u) {
        let ih = y0 + i32(kh * P.dh);
        let row_ok = ih >= 0 && ih < i32(P.h);
        let row = in0 + u32(clamp(ih, 0, i32(P.h) - 1)) * P.w;
        for (var kw = 0u; kw < P.kw; kw = kw + 1u) {
            let iw = x0 + i32(kw * P.dw);
            let ok = row_ok && iw >= 0 && iw < i32(P.w);
            let v = f32(ix[row + u32(clamp(iw, 0, i32(P.w) - 1))]);
            icols[out0 + (kh * P.kw + kw) * plane] = T(select(0.0, v, ok));
        }
    }
}

@group(0) @binding(2) var<storage, read_write> icols4: array<vec4<T>>;

// im2col for output planes (OH * OW) that are multiples of 4: one thread per four consecutive
// output pixels of a plane (in one output row or across the end of one), each tap's four
// values one aligned vec4 store (a quarter of the stores, which CPU adapters pay for lane by
// lane). The pixels' coordinates are worked out once per thread, four lanes of a vec4.
@compute @workgroup_size(256)
fn im2col4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg);
    if (i >= P.total) {
        return;
    }
    let plane = P.oh * P.ow;
    let quads = plane / 4u;
    let p0 = (i % quads) * 4u;
    let nc = i / quads;
    let taps = P.kh * P.kw;
    let out0 = (nc * taps * plane + p0) / 4u;
    let in0 = nc * P.h * P.w;
    let p = vec4<u32>(p0) + vec4<u32>(0u, 1u, 2u, 3u);
    let oh = p / vec4<u32>(P.ow);
    let ow = p - oh * vec4<u32>(P.ow);
    let y0 = vec4<i32>(oh * vec4<u32>(P.sh)) - vec4<i32>(i32(P.ph));
    let x0 = vec4<i32>(ow * vec4<u32>(P.sw)) - vec4<i32>(i32(P.pw));
    let last_y = vec4<i32>(i32(P.h) - 1);
    let last_x = vec4<i32>(i32(P.w) - 1);
    for (var kh = 0u; kh < P.kh; kh = kh + 1u) {
        let ih = y0 + vec4<i32>(i32(kh * P.dh));
        let row_ok = (ih >= vec4<i32>(0)) & (ih <= last_y);
        let row = vec4<u32>(in0) + vec4<u32>(clamp(ih, vec4<i32>(0), last_y)) * P.w;
        for (var kw = 0u; kw < P.kw; kw = kw + 1u) {
            let iw = x0 + vec4<i32>(i32(kw * P.dw));
            let ok = row_ok & (iw >= vec4<i32>(0)) & (iw <= last_x);
            let at = vec4<u32>(clamp(iw, vec4<i32>(0), last_x)) + row;
            let v = vec4<f32>(f32(ix[at.x]), f32(ix[at.y]), f32(ix[at.z]), f32(ix[at.w]));
            icols4[out0 + (kh * P.kw + kw) * quads] = vec4<T>(select(vec4<f32>(0.0), v, ok));
        }
    }
}

@group(0) @binding(1) var<storage, read> ix4: array<vec4<T>>;

// Four consecutive elements of a row held as aligned vec4s `lo` and `hi`, from element `s` of
// `lo` on (s in 0..3).
fn window4(lo: vec4<f32>, hi: vec4<f32>, s: u32) -> vec4<f32> {
    switch s {
        case 0u: { return lo; }
        case 1u: { return vec4<f32>(lo.yzw, hi.x); }
        case 2u: { return vec4<f32>(lo.zw, hi.xy); }
        default: { return vec4<f32>(lo.w, hi.xyz); }
    }
}

// im2col4 where the width has stride 1 and no dilation and W is a multiple of 4 too: the
// taps of one window row read input elements ow0 - PW .. ow0 - PW + KW + 2, so each kernel row
// takes ceil((KW + 3) / 4) + 1 aligned vec4 loads instead of 4 * KW scalar ones (3 for 4 with
// a 3x3 window, 15 for 100 with LeNet's 5x5). The vec4s roll along as kw advances; the
// shift into them, (ow0 - PW + kw) mod 4, is the same for every thread.
@compute @workgroup_size(256)
fn im2col4_unit_w(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg);
    if (i >= P.total) {
        return;
    }
    let quads = P.ow / 4u;
    let ow0 = (i % quads) * 4u;
    let oh = (i / quads) % P.oh;
    let nc = i / (quads * P.oh);
    let plane = P.oh * P.ow;
    let taps = P.kh * P.kw;
    let out0 = (nc * taps * plane + oh * P.ow + ow0) / 4u;
    let in0 = nc * P.h * P.w;
    let y0 = i32(oh * P.sh) - i32(P.ph);
    // input column of the window's first element, the aligned vec4 it falls in, its shift
    let x0 = i32(ow0) - i32(P.pw);
    let q0 = x0 >> 2u;
    let off0 = u32(x0 & 3);
    let iw0 = vec4<i32>(x0) + vec4<i32>(0, 1, 2, 3);
    let last_q = i32(P.w / 4u) - 1;
    for (var kh = 0u; kh < P.kh; kh = kh + 1u) {
        let ih = y0 + i32(kh * P.dh);
        let row_ok = ih >= 0 && ih < i32(P.h);
        let row4 = (in0 + u32(clamp(ih, 0, i32(P.h) - 1)) * P.w) / 4u;
        // vec4s past either end of the row hold only padding taps: any in-row vec4 will do
        var q = q0;
        var lo = vec4<f32>(ix4[row4 + u32(clamp(q, 0, last_q))]);
        var hi = vec4<f32>(ix4[row4 + u32(clamp(q + 1, 0, last_q))]);
        for (var kw = 0u; kw < P.kw; kw = kw + 1u) {
            let o = off0 + kw;
            if (q0 + i32(o / 4u) != q) {
                q = q + 1;
                lo = hi;
                hi = vec4<f32>(ix4[row4 + u32(clamp(q + 1, 0, last_q))]);
            }
            let iw = iw0 + vec4<i32>(i32(kw));
            let ok = vec4<bool>(row_ok) & (iw >= vec4<i32>(0)) & (iw < vec4<i32>(i32(P.w)));
            icols4[out0 + (kh * P.kw + kw) * (plane / 4u)] = vec4<T>(select(vec4<f32>(0.0), window4(lo, hi, o % 4u), ok));
        }
    }
}

// Stride 1 on both axes: the window offsets need no division (integer division is slow on CPU
// adapters, and col2im would otherwise divide four times per tap).
override UNIT_STRIDE: bool = false;

@group(0) @binding(1) var<storage, read> ccols: array<T>;
@group(0) @binding(2) var<storage, read_write> cx: array<T>;

// One thread per input pixel, summing every cols entry that im2col copied from it: a
// gather, so the result does not depend on thread timing (no atomics).
@compute @workgroup_size(256)
fn col2im(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg);
    if (i >= P.total) {
        return;
    }
    let x = i % P.w;
    let y = (i / P.w) % P.h;
    let c = (i / (P.w * P.h)) % P.c;
    let n = i / (P.w * P.h * P.c);
    let rows = P.c * P.kh * P.kw;
    var acc = 0.0;
    // with unit strides, the taps kh whose row y + PH - kh * DH lies in [0, OH): a range
    var kh_lo = 0u;
    var kh_end = P.kh;
    if (UNIT_STRIDE) {
        let top = y + P.ph;
        kh_end = min(P.kh, top / P.dh + 1u);
        if (top >= P.oh) {
            kh_lo = (top - P.oh) / P.dh + 1u;
        }
    }
    for (var kh = kh_lo; kh < kh_end; kh = kh + 1u) {
        // oh * SH = y + PH - kh * DH must be a non-negative multiple of SH below OH * SH
        let ty = i32(y + P.ph) - i32(kh * P.dh);
        var oh = u32(ty);
        if (UNIT_STRIDE) {
            if (ty < 0 || oh >= P.oh) {
                continue;
            }
        } else {
            if (ty < 0 || oh % P.sh != 0u || oh / P.sh >= P.oh) {
                continue;
            }
            oh = oh / P.sh;
        }
        for (var kw = 0u; kw < P.kw; kw = kw + 1u) {
            let tx = i32(x + P.pw) - i32(kw * P.dw);
            var ow = u32(tx);
            if (UNIT_STRIDE) {
                if (tx < 0 || ow >= P.ow) {
                    continue;
                }
            } else {
                if (tx < 0 || ow % P.sw != 0u || ow / P.sw >= P.ow) {
                    continue;
                }
                ow = ow / P.sw;
            }
            let r = (c * P.kh + kh) * P.kw + kw;
            acc = acc + f32(ccols[((n * rows + r) * P.oh + oh) * P.ow + ow]);
        }
    }
    cx[i] = T(acc);
}

@group(0) @binding(1) var<storage, read> ccols4: array<vec4<T>>;
@group(0) @binding(2) var<storage, read_write> cx4: array<vec4<T>>;

// col2im for four neighbouring input pixels per thread, where the width has stride 1 and no
// dilation and W and OW are multiples of 4: the four pixels' entries of one tap are four
// consecutive elements of a cols row, ow = x0 + PW - kw + 0..3, which two aligned vec4 loads
// cover (one where PW - kw is a multiple of 4) instead of four scalar ones.
@compute @workgroup_size(256)
fn col2im4_unit_w(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg);
    if (i >= P.total) {
        return;
    }
    let quads = P.w / 4u;
    let x0 = (i % quads) * 4u;
    let y = (i / quads) % P.h;
    let c = (i / (quads * P.h)) % P.c;
    let n = i / (quads * P.h * P.c);
    let rows = P.c * P.kh * P.kw;
    let last_q = i32(P.ow / 4u) - 1;
    var acc = vec4<f32>(0.0);
    for (var kh = 0u; kh < P.kh; kh = kh + 1u) {
        let ty = i32(y + P.ph) - i32(kh * P.dh);
        var oh = u32(ty);
        if (UNIT_STRIDE) {
            if (ty < 0 || oh >= P.oh) {
                continue;
            }
        } else {
            if (ty < 0 || oh % P.sh != 0u || oh / P.sh >= P.oh) {
                continue;
            }
            oh = oh / P.sh;
        }
        for (var kw = 0u; kw < P.kw; kw = kw + 1u) {
            let r = (c * P.kh + kh) * P.kw + kw;
            let row4 = ((n * rows + r) * P.oh + oh) * (P.ow / 4u);
            let t = i32(x0 + P.pw) - i32(kw);
            let ow = vec4<i32>(t) + vec4<i32>(0, 1, 2, 3);
            let q = t >> 2u;
            let s = u32(t & 3);
            let lo = vec4<f32>(ccols4[row4 + u32(clamp(q, 0, last_q))]);
            var v = lo;
            if (s != 0u) {
                v = window4(lo, vec4<f32>(ccols4[row4 + u32(clamp(q + 1, 0, last_q))]), s);
            }
            let ok = (ow >= vec4<i32>(0)) & (ow < vec4<i32>(i32(P.ow)));
            acc = acc + select(vec4<f32>(0.0), v, ok);
        }
    }
    cx4[i] = vec4<T>(acc);
}
