// pool: 2-D max, average and adaptive-average pooling over NCHW planes, with backward
// passes written as gathers (one thread per input pixel over the windows that hold it),
// so gradients are deterministic and need no atomics.
//
// Windows start at (oh*SH - PH, ow*SW - PW) and span KH x KW (no dilation, ceil_mode off).
// Max pooling treats padding as -inf; indices address the H*W plane (ih*W + iw).

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

@group(0) @binding(1) var<storage, read> mx: array<f32>;
@group(0) @binding(2) var<storage, read_write> mout: array<f32>;
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
            let v = mx[base + y * P.w + x];
            if (v > best || v != v) {
                best = v;
                at = y * P.w + x;
            }
            if (best != best) {
                break;
            }
        }
        if (best != best) {
            break;
        }
    }
    mout[i] = best;
    midx[i] = at;
}

@group(0) @binding(1) var<storage, read> bg: array<f32>;
@group(0) @binding(2) var<storage, read> bidx: array<u32>;
@group(0) @binding(3) var<storage, read_write> bdx: array<f32>;

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
                acc = acc + bg[o];
            }
        }
    }
    bdx[i] = acc;
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
    let g = bg[o];
    let base = plane * P.h * P.w;
    for (var y = oh * P.kh; y < oh * P.kh + P.kh; y = y + 1u) {
        for (var x = ow * P.kw; x < ow * P.kw + P.kw; x = x + 1u) {
            let me = y * P.w + x;
            bdx[base + me] = select(0.0, g, me == at);
        }
    }
}

@group(0) @binding(1) var<storage, read> ax: array<f32>;
@group(0) @binding(2) var<storage, read_write> aout: array<f32>;

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
            acc = acc + ax[base + y * P.w + x];
        }
    }
    aout[i] = acc / avg_divisor(oh, ow);
}

@group(0) @binding(1) var<storage, read> ag: array<f32>;
@group(0) @binding(2) var<storage, read_write> adx: array<f32>;

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
            acc = acc + ag[(plane * P.oh + oh) * P.ow + ow] / avg_divisor(oh, ow);
        }
    }
    adx[i] = acc;
}

// Adaptive windows along an axis: [floor(o*in/out), ceil((o+1)*in/out)).
fn adaptive(o: u32, n_in: u32, n_out: u32) -> vec2<u32> {
    return vec2<u32>((o * n_in) / n_out, ((o + 1u) * n_in + n_out - 1u) / n_out);
}

// Outputs whose adaptive window holds pixel y: [floor(y*out/in), ceil((y+1)*out/in)).
fn adaptive_windows_of(y: u32, n_in: u32, n_out: u32) -> vec2<u32> {
    return vec2<u32>((y * n_out) / n_in, ((y + 1u) * n_out + n_in - 1u) / n_in);
}

@group(0) @binding(1) var<storage, read> dx_in: array<f32>;
@group(0) @binding(2) var<storage, read_write> dout: array<f32>;

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
            acc = acc + dx_in[base + y * P.w + x];
        }
    }
    dout[i] = acc / f32((ry.y - ry.x) * (rx.y - rx.x));
}

@group(0) @binding(1) var<storage, read> dg: array<f32>;
@group(0) @binding(2) var<storage, read_write> ddx: array<f32>;

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
            acc = acc + dg[(plane * P.oh + oh) * P.ow + ow] / f32((ry.y - ry.x) * (rx.y - rx.x));
        }
    }
    ddx[i] = acc;
}
