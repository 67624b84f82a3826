// Elementwise kernels: unary ops and their gradients, and binary ops with NumPy
// broadcasting (or a scalar operand). The op is an override constant, so each op is its
// own compiled pipeline with the switch folded away.
//
// Storage is `T` (f32 or f16, prepended by `storage_shaders!`); the math is f32: values are
// widened as loaded and rounded to T as stored.
//
// Op codes must match `UnaryOp::code` / `BinaryOp::code` in crates/device/src/kernels/elementwise.rs.

override OP: u32 = 0u;

struct Params {
    n: u32,          // output elements
    alpha: f32,      // leaky-relu slope, or the scalar operand
    ndim: u32,       // output rank (binary)
    mode: u32,       // binary: 0 same shapes, 1 broadcast, 2 scalar right (a op s), 3 scalar left (s op a)
    shape: array<vec4<u32>, 2>,
    sa: array<vec4<u32>, 2>,
    sb: array<vec4<u32>, 2>,
}
@group(0) @binding(0) var<uniform> P: Params;

fn linear_index(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * 256u;
}

fn dim_of(d: u32) -> u32 { return P.shape[d / 4u][d % 4u]; }
fn stride_a(d: u32) -> u32 { return P.sa[d / 4u][d % 4u]; }
fn stride_b(d: u32) -> u32 { return P.sb[d / 4u][d % 4u]; }

// Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7); the CPU reference uses the same formula.
fn erf_approx(x: f32) -> f32 {
    let s = sign(x);
    let a = abs(x);
    let t = 1.0 / (1.0 + 0.3275911 * a);
    let poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
    return s * (1.0 - poly * exp(-a * a));
}

fn unary_op(x: f32) -> f32 {
    switch OP {
        case 0u: { return max(x, 0.0); }                               // relu
        case 1u: { return select(P.alpha * x, x, x > 0.0); }            // leaky relu
        case 2u: { return tanh(x); }
        case 3u: { return 1.0 / (1.0 + exp(-x)); }                      // sigmoid
        case 4u: { return exp(x); }
        case 5u: { return log(x); }
        case 6u: { return sqrt(x); }
        case 7u: { return -x; }
        case 8u: { return abs(x); }
        case 9u: { return 0.5 * x * (1.0 + erf_approx(x * 0.70710678118654752)); } // gelu (erf)
        case 10u: { return x * x; }                                     // square
        case 11u: { return 1.0 / x; }                                   // reciprocal
        case 12u: { return sin(x); }
        case 13u: { return cos(x); }
        default: { return x; }
    }
}

// d(op)/dx times g, given the forward input x and output y.
fn unary_grad_op(x: f32, y: f32, g: f32) -> f32 {
    switch OP {
        case 0u: { return select(0.0, g, x > 0.0); }
        case 1u: { return select(P.alpha * g, g, x > 0.0); }
        case 2u: { return g * (1.0 - y * y); }
        case 3u: { return g * y * (1.0 - y); }
        case 4u: { return g * y; }
        case 5u: { return g / x; }
        case 6u: { return g * 0.5 / y; }
        case 7u: { return -g; }
        case 8u: { return g * sign(x); }
        case 9u: {
            let cdf = 0.5 * (1.0 + erf_approx(x * 0.70710678118654752));
            let pdf = 0.39894228040143268 * exp(-0.5 * x * x);
            return g * (cdf + x * pdf);
        }
        case 10u: { return 2.0 * x * g; }
        case 11u: { return -g * y * y; }
        case 12u: { return g * cos(x); }
        case 13u: { return -g * sin(x); }
        default: { return g; }
    }
}

fn binary_op(a: f32, b: f32) -> f32 {
    switch OP {
        case 0u: { return a + b; }
        case 1u: { return a - b; }
        case 2u: { return a * b; }
        case 3u: { return a / b; }
        case 4u: { return max(a, b); }
        case 5u: { return min(a, b); }
        case 6u: { return pow(a, b); }
        case 7u: { return select(0.0, 1.0, a > b); }
        case 8u: { return select(0.0, 1.0, a >= b); }
        case 9u: { return select(0.0, 1.0, a < b); }
        case 10u: { return select(0.0, 1.0, a <= b); }
        case 11u: { return select(0.0, 1.0, a == b); }
        default: { return a; }
    }
}

@group(0) @binding(1) var<storage, read> ux: array<T>;
@group(0) @binding(2) var<storage, read_write> uy: array<T>;

@compute @workgroup_size(256)
fn unary(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg);
    if (i < P.n) {
        uy[i] = T(unary_op(f32(ux[i])));
    }
}

@group(0) @binding(1) var<storage, read> gx: array<T>;
@group(0) @binding(2) var<storage, read> gy: array<T>;
@group(0) @binding(3) var<storage, read> gg: array<T>;
@group(0) @binding(4) var<storage, read_write> gdx: array<T>;

@compute @workgroup_size(256)
fn unary_grad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg);
    if (i < P.n) {
        gdx[i] = T(unary_grad_op(f32(gx[i]), f32(gy[i]), f32(gg[i])));
    }
}

@group(0) @binding(1) var<storage, read> ba: array<T>;
@group(0) @binding(2) var<storage, read> bb: array<T>;
@group(0) @binding(3) var<storage, read_write> bout: array<T>;

@compute @workgroup_size(256)
fn binary(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg);
    if (i >= P.n) {
        return;
    }
    if (P.mode == 0u) {
        bout[i] = T(binary_op(f32(ba[i]), f32(bb[i])));
        return;
    }
    // The launcher collapses the dimensions first (usually to 2 or 3), and each costs one
    // division: integer division is not vectorised on CPU adapters.
    var rem = i;
    var ia = 0u;
    var ib = 0u;
    for (var d = P.ndim - 1u; d > 0u; d = d - 1u) {
        let q = rem / dim_of(d);
        let c = rem - q * dim_of(d);
        rem = q;
        ia = ia + c * stride_a(d);
        ib = ib + c * stride_b(d);
    }
    ia = ia + rem * stride_a(0u);
    ib = ib + rem * stride_b(0u);
    bout[i] = T(binary_op(f32(ba[ia]), f32(bb[ib])));
}

// The same three on four elements per thread (the launcher picks them when the element count
// is a multiple of 4; P.n counts vec4s): CPU adapters load and store lane by lane, whatever
// the width, so this quarters the loads and stores.
@group(0) @binding(1) var<storage, read> ux4: array<vec4<T>>;
@group(0) @binding(2) var<storage, read_write> uy4: array<vec4<T>>;

@compute @workgroup_size(256)
fn unary4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg);
    if (i < P.n) {
        let x = vec4<f32>(ux4[i]);
        uy4[i] = vec4<T>(vec4<f32>(unary_op(x.x), unary_op(x.y), unary_op(x.z), unary_op(x.w)));
    }
}

@group(0) @binding(1) var<storage, read> gx4: array<vec4<T>>;
@group(0) @binding(2) var<storage, read> gy4: array<vec4<T>>;
@group(0) @binding(3) var<storage, read> gg4: array<vec4<T>>;
@group(0) @binding(4) var<storage, read_write> gdx4: array<vec4<T>>;

@compute @workgroup_size(256)
fn unary_grad4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg);
    if (i < P.n) {
        let x = vec4<f32>(gx4[i]);
        let y = vec4<f32>(gy4[i]);
        let g = vec4<f32>(gg4[i]);
        gdx4[i] = vec4<T>(vec4<f32>(
            unary_grad_op(x.x, y.x, g.x),
            unary_grad_op(x.y, y.y, g.y),
            unary_grad_op(x.z, y.z, g.z),
            unary_grad_op(x.w, y.w, g.w),
        ));
    }
}

@group(0) @binding(1) var<storage, read> ba4: array<vec4<T>>;
@group(0) @binding(2) var<storage, read> bb4: array<vec4<T>>;
@group(0) @binding(3) var<storage, read_write> bout4: array<vec4<T>>;

// Equal shapes only (mode 0).
@compute @workgroup_size(256)
fn binary4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg);
    if (i < P.n) {
        let a = vec4<f32>(ba4[i]);
        let b = vec4<f32>(bb4[i]);
        bout4[i] = vec4<T>(vec4<f32>(binary_op(a.x, b.x), binary_op(a.y, b.y), binary_op(a.z, b.z), binary_op(a.w, b.w)));
    }
}

@group(0) @binding(1) var<storage, read> sa_in: array<T>;
@group(0) @binding(2) var<storage, read_write> s_out: array<T>;

@compute @workgroup_size(256)
fn binary_scalar(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg);
    if (i < P.n) {
        if (P.mode == 3u) {
            s_out[i] = T(binary_op(P.alpha, f32(sa_in[i])));
        } else {
            s_out[i] = T(binary_op(f32(sa_in[i]), P.alpha));
        }
    }
}
