// pool: 2-D max, average and adaptive-average pooling over NCHW planes, with backward
// passes written as gathers (one thread per input pixel over the windows that hold it),
// so gradients are deterministic and need no atomics.
//
// Windows start at (oh*SH - PH, ow*SW - PW) and span KH x KW (no dilation, ceil_mode off).
// Max pooling treats padding as -inf; indices address the H*W plane (ih*W + iw).
//
// Values are stored as `T` (f32 or f16, prepended by `storage_shaders!`) and compared and
// summed in f32.

struct Params {
    total: u32,          // threads to run
    c: u32, h: u32, w: u32,
    oh: u32, ow: u32, kh: u32, kw: u32,
    sh: u32, sw: u32, ph: u32, pw: u32,
    dh: u32, dw: u32,    // unused (pooling has no dilation); kept so the block matches conv.wgsl
    include_pad: u32,    // avg pooling: divide by KH*KW (1) or by the in-bounds count (0)
    _pad: u32,
}
@group(0) @binding(0) var<uniform> P: Params;

fn linear_index(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * 256u;
}

// First and one-past-last output index whose window [o*s - p, o*s - p + k) holds pixel y.
fn windows_of(y: u32, k: u32, s: u32, p: u32, n_out: u32) -> vec2<u32> {
    let t = i32(y + p) - i32(k) + 1;
    var lo = 0u;
    if (t > 0) {
        lo = (u32(t) + s - 1u) / s;
    }
    let hi = min(n_out, (y + p) / s + 1u);
    return vec2<u32>(lo, max(lo, hi));
}

// In-bounds extent of the window starting at o*s - p along an axis of the given size.
fn clipped(o: u32, s: u32, p: u32, k: u32, size: u32) -> vec2<u32> {
    let start = i32(o * s) - i32(p);
    let lo = u32(max(start, 0));
    let hi = u32(min(start + i32(k), i32(size)));
    return vec2<u32>(lo, hi);
}

fn avg_divisor(oh: u32, ow: u32) -> f32 {
    if (P.include_pad == 1u) {
        return f32(P.kh * P.kw);
    }
    let ry = clipped(oh, P.sh, P.ph, P.kh, P.h);
    let rx = clipped(ow, P.sw, P.pw, P.kw, P.w);
    return f32((ry.y - ry.x) * (rx.y - rx.x));
}

@group(0) @binding(1) var<storage, read> mx: array<T>;
@group(0) @binding(2) var<storage, read_write> mout: array<T>;
@group(0) @binding(3) var<storage, read_write> midx: array<u32>;

// One thread per output; the first maximum wins, NaN propagates (as in PyTorch).
@compute @workgroup_size(256)
fn max_pool2d(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg);
    if (i >= P.total) {
        return;
    }
    let ow = i % P.ow;
    let oh = (i / P.ow) % P.oh;
    let plane = i / (P.ow * P.oh);
    let ry = clipped(oh, P.sh, P.ph, P.kh, P.h);
    let rx = clipped(ow, P.sw, P.pw, P.kw, P.w);
    let base = plane * P.h * P.w;
    var best = bitcast<f32>(0xff800000u); // -inf
    var at = ry.x * P.w + rx.x;
    for (var y = ry.x; y < ry.y; y = y + 1u) {
        for (var x = rx.x; x < rx.y; x = x + 1u) {
            let v = f32(mx[base + y * P.w + x]);
            if (v > best || is_nan(v)) {
                best = v;
                at = y * P.w + x;
            }
            if (is_nan(best)) {
                break;
            }
        }
        if (is_nan(best)) {
            break;
        }
    }
    mout[i] = T(best);
    midx[i] = at;
}

@group(0) @binding(1) var<storage, read> bg: array<T>;
@group(0) @binding(2) var<storage, read> bidx: array<u32>;
@group(0) @binding(3) var<storage, read_write> bdx: array<T>;

// One thread per input pixel: sum the gradients of the windows whose argmax it is.
// Indices outside their window (not from max_pool2d) match no pixel and are ignored.
@compute @workgroup_size(256)
fn max_pool2d_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg);
    if (i >= P.total) {
        return;
    }
    let x = i % P.w;
    let y = (i / P.w) % P.h;
    let plane = i / (P.w * P.h);
    let me = y * P.w + x;
    let wy = windows_of(y, P.kh, P.sh, P.ph, P.oh);
    let wx = windows_of(x, P.kw, P.sw, P.pw, P.ow);
    var acc = 0.0;
    for (var oh = wy.x; oh < wy.y; oh = oh + 1u) {
        for (var ow = wx.x; ow < wx.y; ow = ow + 1u) {
            let o = (plane * P.oh + oh) * P.ow + ow;
            if (bidx[o] == me) {
                acc = acc + f32(bg[o]);
            }
        }
    }
    bdx[i] = T(acc);
}

// Windows that tile the input exactly (stride = kernel, no padding, H = OH*KH, W = OW*KW):
// each input pixel lies in one window, so one thread per window writes all of its pixels,
// the gradient at the argmax and 0 elsewhere. A quarter of the threads of the gather above
// for 2x2 windows, and none of its per-pixel divisions (slow on CPU adapters).
@compute @workgroup_size(256)
fn max_pool2d_backward_tiled(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let o = linear_index(gid, nwg);
    if (o >= P.total) {
        return;
    }
    let ow = o % P.ow;
    let oh = (o / P.ow) % P.oh;
    let plane = o / (P.ow * P.oh);
    let at = bidx[o];
    let g = f32(bg[o]);
    let base = plane * P.h * P.w;
    for (var y = oh * P.kh; y < oh * P.kh + P.kh; y = y + 1u) {
        for (var x = ow * P.kw; x < ow * P.kw + P.kw; x = x + 1u) {
            let me = y * P.w + x;
            bdx[base + me] = T(select(0.0, g, me == at));
        }
    }
}

// 2x2 windows that tile the input with W a multiple of 4 (the launcher checks): one thread per
// two neighbouring windows, whose four input columns are one aligned vec4 in each of the two
// rows. CPU adapters pay per load and store and lane, whatever the width: this takes 2 loads
// and 2 stores for two outputs instead of 8 and 4, and the backward 4 for 12.
@group(0) @binding(1) var<storage, read> px4: array<vec4<T>>;
@group(0) @binding(2) var<storage, read_write> pout2: array<vec2<T>>;
@group(0) @binding(3) var<storage, read_write> pidx2: array<vec2<u32>>;

struct WindowMax {
    value: f32,
    at: u32,
}

// NaN by its bits: lavapipe folds `v != v` to false (max_pool2d missed NaNs until this).
fn is_nan(v: f32) -> bool {
    return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u;
}

// Window maximum m after candidate v at plane index `at`: the first maximum, or the first NaN.
fn better(m: WindowMax, v: f32, at: u32) -> WindowMax {
    if (!is_nan(m.value) && (v > m.value || is_nan(v))) {
        return WindowMax(v, at);
    }
    return m;
}

// The max of one 2x2 window (a, b above c, d) and its index as max_pool2d picks them, `at`
// being the plane index of a.
fn max4(a: f32, b: f32, c: f32, d: f32, at: u32) -> WindowMax {
    return better(better(better(WindowMax(a, at), b, at + 1u), c, at + P.w), d, at + P.w + 1u);
}

@compute @workgroup_size(256)
fn max_pool2d_pairs(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg);
    if (i >= P.total) {
        return;
    }
    let pairs = P.ow / 2u;
    let x0 = (i % pairs) * 4u;
    let oh = (i / pairs) % P.oh;
    let plane = i / (pairs * P.oh);
    let at = 2u * oh * P.w + x0;
    let top = vec4<f32>(px4[(plane * P.h * P.w + at) / 4u]);
    let bottom = vec4<f32>(px4[(plane * P.h * P.w + at + P.w) / 4u]);
    let left = max4(top.x, top.y, bottom.x, bottom.y, at);
    let right = max4(top.z, top.w, bottom.z, bottom.w, at + 2u);
    pout2[i] = vec2<T>(vec2<f32>(left.value, right.value));
    pidx2[i] = vec2<u32>(left.at, right.at);
}

@group(0) @binding(1) var<storage, read> pg2: array<vec2<T>>;
@group(0) @binding(2) var<storage, read> pbidx2: array<vec2<u32>>;
@group(0) @binding(3) var<storage, read_write> pdx4: array<vec4<T>>;

@compute @workgroup_size(256)
fn max_pool2d_backward_pairs(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg);
    if (i >= P.total) {
        return;
    }
    let pairs = P.ow / 2u;
    let x0 = (i % pairs) * 4u;
    let oh = (i / pairs) % P.oh;
    let plane = i / (pairs * P.oh);
    let at = 2u * oh * P.w + x0;
    let g = vec2<f32>(pg2[i]);
    let idx = pbidx2[i];
    let gg = vec4<f32>(g.x, g.x, g.y, g.y);
    let want = vec4<u32>(idx.x, idx.x, idx.y, idx.y);
    let top = vec4<u32>(at) + vec4<u32>(0u, 1u, 2u, 3u);
    let row = (plane * P.h * P.w + at) / 4u;
    pdx4[row] = vec4<T>(select(vec4<f32>(0.0), gg, top == want));
    pdx4[row + P.w / 4u] = vec4<T>(select(vec4<f32>(0.0), gg, top + vec4<u32>(P.w) == want));
}

@group(0) @binding(1) var<storage, read> ax: array<T>;
@group(0) @binding(2) var<storage, read_write> aout: array<T>;

@compute @workgroup_size(256)
fn avg_pool2d(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg);
    if (i >= P.total) {
        return;
    }
    let ow = i % P.ow;
    let oh = (i / P.ow) % P.oh;
    let plane = i / (P.ow * P.oh);
    let ry = clipped(oh, P.sh, P.ph, P.kh, P.h);
    let rx = clipped(ow, P.sw, P.pw, P.kw, P.w);
    let base = plane * P.h * P.w;
    var acc = 0.0;
    for (var y = ry.x; y < ry.y; y = y + 1u) {
        for (var x = rx.x; x < rx.y; x = x + 1u) {
            acc = acc + f32(ax[base + y * P.w + x]);
        }
    }
    aout[i] = T(acc / avg_divisor(oh, ow));
}

@group(0) @binding(1) var<storage, read> ag: array<T>;
@group(0) @binding(2) var<storage, read_write> adx: array<T>;

@compute @workgroup_size(256)
fn avg_pool2d_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg);
    if (i >= P.total) {
        return;
    }
    let x = i % P.w;
    let y = (i / P.w) % P.h;
    let plane = i / (P.w * P.h);
    let wy = windows_of(y, P.kh, P.sh, P.ph, P.oh);
    let wx = windows_of(x, P.kw, P.sw, P.pw, P.ow);
    var acc = 0.0;
    for (var oh = wy.x; oh < wy.y; oh = oh + 1u) {
        for (var ow = wx.x; ow < wx.y; ow = ow + 1u) {
            acc = acc + f32(ag[(plane * P.oh + oh) * P.ow + ow]) / avg_divisor(oh, ow);
        }
    }
    adx[i] = T(acc);
}

// Adaptive windows along an axis: [floor(o*in/out), ceil((o+1)*in/out)).
fn adaptive(o: u32, n_in: u32, n_out: u32) -> vec2<u32> {
    return vec2<u32>((o * n_in) / n_out, ((o + 1u) * n_in + n_out - 1u) / n_out);
}

// Outputs whose adaptive window holds pixel y: [floor(y*out/in), ceil((y+1)*out/in)).
fn adaptive_windows_of(y: u32, n_in: u32, n_out: u32) -> vec2<u32> {
    return vec2<u32>((y * n_out) / n_in, ((y + 1u) * n_out + n_in - 1u) / n_in);
}

@group(0) @binding(1) var<storage, read> dx_in: array<T>;
@group(0) @binding(2) var<storage, read_write> dout: array<T>;

@compute @workgroup_size(256)
fn adaptive_avg_pool2d(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg);
    if (i >= P.total) {
        return;
    }
    let ow = i % P.ow;
    let oh = (i / P.ow) % P.oh;
    let plane = i / (P.ow * P.oh);
    let ry = adaptive(oh, P.h, P.oh);
    let rx = adaptive(ow, P.w, P.ow);
    let base = plane * P.h * P.w;
    var acc = 0.0;
    for (var y = ry.x; y < ry.y; y = y + 1u) {
        for (var x = rx.x; x < rx.y; x = x + 1u) {
            acc = acc + f32(dx_in[base + y * P.w + x]);
        }
    }
    dout[i] = T(acc / f32((ry.y - ry.x) * (rx.y - rx.x)));
}

@group(0) @binding(1) var<storage, read> dg: array<T>;
@group(0) @binding(2) var<storage, read_write> ddx: array<T>;

@compute @workgroup_size(256)
fn adaptive_avg_pool2d_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg);
    if (i >= P.total) {
        return;
    }
    let x = i % P.w;
    let y = (i / P.w) % P.h;
    let plane = i / (P.w * P.h);
    let wy = adaptive_windows_of(y, P.h, P.oh);
    let wx = adaptive_windows_of(x, P.w, P.ow);
    var acc = 0.0;
    for (var oh = wy.x; oh < wy.y; oh = oh + 1u) {
        let ry = adaptive(oh, P.h, P.oh);
        for (var ow = wx.x; ow < wx.y; ow = ow + 1u) {
            let rx = adaptive(ow, P.w, P.ow);
            acc = acc + f32(dg[(plane * P.oh + oh) * P.ow + ow]) / f32((ry.y - ry.x) * (rx.y - rx.x));
        }
    }
    ddx[i] = T(acc);
}
