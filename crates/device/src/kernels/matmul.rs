//! Batched matrix multiply, the heart of the framework: `C[b] = op(A[b]) · op(B[b])`.
//!
//! Kernels (WGSL in `shaders/matmul*.wgsl`, assembled below):
//! - `tile64`: 64x64 tile of C per workgroup, 4x4 per thread (small and skinny problems);
//! - `tile128`: 128x128 tile, 8x8 per thread, register-blocked (large problems);
//! - `tile128v`: the same shape with vec4 loads and no edge handling, for f32 problems
//!   aligned to its tiles (`matmul_tiles_vec4.wgsl`, the probe's fastest kernel);
//! - `rows8`: 8 rows x 256 columns per workgroup (64 invocations, 8x4 each), no workgroup
//!   memory, the batch folded into the columns (small M such as the im2col GEMMs of narrow
//!   convolutions, small batched products, and CPU adapters);
//! - `coop`: f16 tensor-core tiles through cooperative matrices, 128x128 per workgroup
//!   (`Precision::Mixed` where the adapter has them; never on lavapipe).
//!
//! The tile kernels exist three times: with f32 inputs, with f16 inputs (the `Precision::Mixed`
//! fallback), both writing f32, and with f16 inputs writing f16 (`matmul_fused_stored`, mixed
//! precision's activations); all accumulate in f32. The stored type is the alias `CT` that
//! each assembly below declares after its input file. Transposes are override constants, so each
//! (kernel, transposes) pair is its own cached pipeline. Edges are handled in the kernels:
//! any M, N, K works.
//!
//! Groups: an operand whose batch dims are a suffix of the other's is broadcast over the
//! leading ones (`[G, M, K] · [N, G, K, P]`, a grouped convolution's weight against its
//! columns), so every kernel takes a group index from its batch index, and a grouped
//! convolution's forward, weight-gradient and input-gradient products are one launch each.

use crate::array::Array;
use crate::device::Device;
use crate::dtype::DType;
use crate::error::{shape_err, DeviceError, Result};
use crate::gpu::{Caps, GpuBuffer, GpuContext, Kernel, Shader};
use crate::kernels::common::{cpu_stored, param_bytes, require_dtype, same_device};
use crate::kernels::copy::cast;
use crate::kernels::epilogue::{self, Epilogue};
use crate::kernels::matmul_parts;
use crate::kernels::reduce::{reduce, ReduceOp};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

const NAME: &str = "matmul";

macro_rules! wgsl {
    ($file:literal) => {
        include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shaders/", $file, ".wgsl"))
    };
}

/// What C is stored as (`CT` in `matmul_common.wgsl`): after the input file, whose `enable`
/// directives must come first.
macro_rules! c_type {
    (f32) => {
        "alias CT = f32;\n"
    };
    (f16) => {
        "alias CT = f16;\n"
    };
}

/// The tile kernels with f32 inputs. WGSL has no includes: the shared body is appended here.
pub static MATMUL: Shader = Shader {
    name: "matmul",
    source: concat!(
        wgsl!("matmul"),
        c_type!(f32),
        wgsl!("matmul_common"),
        wgsl!("matmul_tiles"),
        wgsl!("matmul_tiles_vec4"),
        wgsl!("matmul_rows")
    ),
    runtime_checks: false,
};

/// The tile kernels with f16 inputs (needs `SHADER_F16`).
pub static MATMUL_F16: Shader = Shader {
    name: "matmul_f16",
    source: concat!(
        wgsl!("matmul_f16"),
        c_type!(f32),
        wgsl!("matmul_common"),
        wgsl!("matmul_tiles"),
        wgsl!("matmul_rows")
    ),
    runtime_checks: false,
};

/// The tile kernels with f16 inputs storing C as f16 (rounded once, after the epilogue).
pub static MATMUL_F16_OUT: Shader = Shader {
    name: "matmul_f16_out",
    source: concat!(
        wgsl!("matmul_f16"),
        c_type!(f16),
        wgsl!("matmul_common"),
        wgsl!("matmul_tiles"),
        wgsl!("matmul_rows")
    ),
    runtime_checks: false,
};

/// `rows8` with f32 inputs and A in a uniform buffer (see [`UBO_A_ELEMENTS`]).
pub static MATMUL_UBO: Shader = Shader {
    name: "matmul_ubo",
    source: concat!(wgsl!("matmul_ubo"), c_type!(f32), wgsl!("matmul_common"), wgsl!("matmul_rows")),
    runtime_checks: false,
};

/// Elements of the uniform buffer `matmul_ubo.wgsl` reads A from (64 KiB). `rows8` in f32 takes
/// A from there when one A of at most this size is shared by the whole batch.
pub const UBO_A_ELEMENTS: usize = 16384;

/// The cooperative-matrix kernel (needs `caps().coop_matrix_f16`).
/// Runtime checks stay on: it has never run on a GPU, and its full-tile stores are unproven.
pub static MATMUL_COOP: Shader = Shader {
    name: "matmul_coop",
    source: concat!(wgsl!("matmul_coop"), c_type!(f32), wgsl!("matmul_common")),
    runtime_checks: true,
};

/// The longest inner dimension a CPU adapter multiplies with `rows8`: llvmpipe (lavapipe, Mesa
/// 22.3) stops a shader invocation after 65535 loop iterations summed over all its loops, and
/// `rows8` takes one per step of K.
pub const CPU_ADAPTER_MAX_K: usize = 65535;

/// The same for each variant: the tile kernels also loop within each K slab (16 or 8 steps) and
/// were measured to stop summing at K of about 52-58k, so they keep a margin below that.
pub fn cpu_adapter_max_k(variant: Variant) -> usize {
    match variant {
        Variant::Rows8 => CPU_ADAPTER_MAX_K,
        Variant::Tile64 | Variant::Tile128 | Variant::Tile128Vec4 | Variant::Coop => 49152,
    }
}

/// What the multiply reads its inputs as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Precision {
    /// f32 inputs, f32 accumulation
    F32,
    /// inputs rounded to f16, f32 accumulation and output; F32 where the adapter has no f16
    Mixed,
}

/// A kernel variant (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    Tile64,
    Tile128,
    Tile128Vec4,
    Coop,
    Rows8,
}

impl Variant {
    /// Rows and columns of C one workgroup computes.
    pub fn tile(self) -> [usize; 2] {
        match self {
            Variant::Tile64 => [64, 64],
            Variant::Tile128 | Variant::Tile128Vec4 | Variant::Coop => [128, 128],
            Variant::Rows8 => [8, 256],
        }
    }

    fn entry(self) -> &'static str {
        match self {
            Variant::Tile64 => "tile64",
            Variant::Tile128 => "tile128",
            Variant::Tile128Vec4 => "tile128v",
            Variant::Coop => "coop",
            Variant::Rows8 => "rows8",
        }
    }
}

/// The problem a pair of shapes describes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub batch: usize,
    pub m: usize,
    pub n: usize,
    pub k: usize,
    /// batch `b` is image `b / groups` of group `b % groups`: the groups are the batch dims of
    /// the operand that is broadcast over the other's leading ones (1 when neither is)
    pub groups: usize,
    /// elements between consecutive images of A and B (0 when one matrix serves every image)
    pub a_stride: usize,
    pub b_stride: usize,
    /// elements between consecutive groups of A and B (0 without groups)
    pub a_group_stride: usize,
    pub b_group_stride: usize,
    pub trans_a: bool,
    pub trans_b: bool,
    pub out_shape: Vec<usize>,
}

impl Problem {
    /// Checks the shapes: `a` is `[batch..., M, K]` (`[batch..., K, M]` when `trans_a`), `b` is
    /// `[batch..., K, N]` (`[batch..., N, K]` when `trans_b`); batch dimensions are equal, or
    /// one side's are a suffix of the other's (2-D: shared by every batch; `[G]` against
    /// `[N, G]`: group g's matrix for every image's batch g).
    pub fn new(a: &[usize], b: &[usize], trans_a: bool, trans_b: bool) -> Result<Problem> {
        let err = |why: &str| {
            shape_err(NAME, format!("{why}: a {a:?} (trans_a {trans_a}) times b {b:?} (trans_b {trans_b})"))
        };
        if a.len() < 2 || b.len() < 2 {
            return err("both operands need at least 2 dimensions");
        }
        let (ab, am) = a.split_at(a.len() - 2);
        let (bb, bm) = b.split_at(b.len() - 2);
        let (m, ka) = if trans_a { (am[1], am[0]) } else { (am[0], am[1]) };
        let (kb, n) = if trans_b { (bm[1], bm[0]) } else { (bm[0], bm[1]) };
        if ka != kb {
            return err(&format!("inner dimensions differ ({ka} vs {kb})"));
        }
        let (batch_dims, short) = if ab.len() >= bb.len() { (ab, bb) } else { (bb, ab) };
        if !batch_dims.ends_with(short) {
            return err("batch dimensions differ (they must be equal, or one side's a suffix of the other's)");
        }
        let batch: usize = batch_dims.iter().product();
        // broadcast operands with batch dims of their own are grouped; equal or 2-D ones are not
        let groups = if ab.len() == bb.len() { 1 } else { short.iter().product::<usize>() };
        let (a_mat, b_mat) = (m * ka, ka * n);
        // (image stride, group stride) of an operand with batch dims `dims`
        let strides = |dims: &[usize], mat: usize| match (dims.len() == batch_dims.len(), groups > 1) {
            (true, true) => (groups * mat, mat),
            (true, false) => (mat, 0),
            (false, true) => (0, mat),
            (false, false) => (0, 0),
        };
        let ((a_stride, a_group_stride), (b_stride, b_group_stride)) = (strides(ab, a_mat), strides(bb, b_mat));
        let mut out_shape = batch_dims.to_vec();
        out_shape.extend([m, n]);
        Ok(Problem {
            batch,
            m,
            n,
            k: ka,
            groups: groups.max(1),
            a_stride,
            b_stride,
            a_group_stride,
            b_group_stride,
            trans_a,
            trans_b,
            out_shape,
        })
    }

    /// Where batch `b` of A starts.
    pub fn a_offset(&self, b: usize) -> usize {
        (b / self.groups) * self.a_stride + (b % self.groups) * self.a_group_stride
    }

    /// Where batch `b` of B starts.
    pub fn b_offset(&self, b: usize) -> usize {
        (b / self.groups) * self.b_stride + (b % self.groups) * self.b_group_stride
    }

    /// Whether one A serves every batch.
    fn shared_a(&self) -> bool {
        self.batch == 1 || (self.a_stride == 0 && self.a_group_stride == 0)
    }

    /// The same product with equal batch dims `[images, groups]` read as images of groups (for
    /// a batch sum per group: the offsets are unchanged, the batch index splits).
    fn split_groups(mut self, groups: usize) -> Problem {
        self.groups = groups.max(1);
        (self.a_group_stride, self.b_group_stride) = (self.m * self.k, self.k * self.n);
        (self.a_stride, self.b_stride) = (self.groups * self.a_group_stride, self.groups * self.b_group_stride);
        self
    }

    pub fn flops(&self) -> f64 {
        2.0 * self.batch as f64 * self.m as f64 * self.n as f64 * self.k as f64
    }
}

/// Whether the cooperative-matrix kernel can run: it is written for 32-wide subgroups.
pub fn coop_available(caps: &Caps) -> bool {
    caps.coop_matrix_f16 && caps.subgroup_min_size == 32 && caps.subgroup_max_size == 32
}

/// Set when the cooperative-matrix pipeline failed to build on this process's driver: from
/// then on Mixed products take the f16 tile kernels (one context per process, so one flag).
static COOP_FAILED: AtomicBool = AtomicBool::new(false);

/// Whether the cooperative-matrix kernel failed to build here (see [`note_coop_failure`]).
pub fn coop_failed() -> bool {
    COOP_FAILED.load(Ordering::Relaxed)
}

/// Records that the cooperative-matrix pipeline did not build and warns once: the products
/// fall back to the f16 tile kernels, a warning and not an error, since they compute the same.
pub fn note_coop_failure(why: &DeviceError) {
    if !COOP_FAILED.swap(true, Ordering::Relaxed) {
        eprintln!(
            "warning: the cooperative-matrix matmul did not build on this driver ({why}); using the f16 tile kernels"
        );
    }
}

/// Whether `e` is a pipeline that failed to build (the pipeline cache's error).
fn is_build_failure(e: &DeviceError) -> bool {
    matches!(e, DeviceError::Wgpu { context, .. } if context.starts_with("compiling"))
}

/// Whether `tile128v` can take `p`: neither side transposed, C tiled exactly by 128x128, K a
/// multiple of 8, and every batch of A and B 16-byte aligned.
pub fn vec4_tiles_fit(p: &Problem) -> bool {
    !p.trans_a
        && !p.trans_b
        && p.m.is_multiple_of(128)
        && p.n.is_multiple_of(128)
        && p.k.is_multiple_of(8)
        && p.a_stride.is_multiple_of(4)
        && p.b_stride.is_multiple_of(4)
        && p.a_group_stride.is_multiple_of(4)
        && p.b_group_stride.is_multiple_of(4)
}

/// The precision actually used: Mixed needs f16 support.
pub fn effective_precision(caps: &Caps, precision: Precision) -> Precision {
    if caps.f16 {
        precision
    } else {
        Precision::F32
    }
}

/// The kernel the launcher picks on a GPU: cooperative matrices for Mixed where available;
/// `rows8` when M is at most 16 (a 64-row tile would be mostly empty); 128x128 tiles when C
/// is at least 128 in both directions and gives enough of them (64 workgroups) to fill a
/// large GPU, the vec4 ones where the problem is aligned to them; else 64x64 tiles. On a
/// CPU adapter see [`pick_variant`].
pub fn choose_variant(caps: &Caps, precision: Precision, p: &Problem) -> Variant {
    if effective_precision(caps, precision) == Precision::Mixed && coop_available(caps) && !coop_failed() {
        return Variant::Coop;
    }
    let tiles128 = p.m.div_ceil(128) * p.n.div_ceil(128) * p.batch;
    if p.m <= 16 {
        Variant::Rows8
    } else if p.m >= 128 && p.n >= 128 && tiles128 >= 64 {
        if effective_precision(caps, precision) == Precision::F32 && vec4_tiles_fit(p) {
            Variant::Tile128Vec4
        } else {
            Variant::Tile128
        }
    } else {
        Variant::Tile64
    }
}

/// The kernel the launcher picks on this context: `rows8` for every shape on a CPU adapter
/// (lavapipe runs workgroup memory and barriers lane by lane, which the tile kernels live on:
/// `ferrograd bench lenet-kernels` measured rows8 5-40x faster on LeNet's GEMMs), else
/// [`choose_variant`].
pub fn pick_variant(g: &GpuContext, precision: Precision, p: &Problem) -> Variant {
    if g.is_cpu_adapter() {
        Variant::Rows8
    } else {
        choose_variant(g.caps(), precision, p)
    }
}

/// `op(a) · op(b)` in f32; see [`Problem::new`] for the shapes.
pub fn matmul(a: &Array, b: &Array, trans_a: bool, trans_b: bool) -> Result<Array> {
    matmul_with(a, b, trans_a, trans_b, Precision::F32)
}

/// `op(a) · op(b)` at the given precision (inputs are f32 arrays either way; the output is f32).
pub fn matmul_with(a: &Array, b: &Array, trans_a: bool, trans_b: bool, precision: Precision) -> Result<Array> {
    matmul_using(a, b, trans_a, trans_b, precision, None)
}

/// Like [`matmul_with`], with the kernel variant forced (`None`: chosen by shape). Tests and the
/// benchmark use it to reach every variant; forcing `Coop` without the capability is an error.
pub fn matmul_using(
    a: &Array,
    b: &Array,
    trans_a: bool,
    trans_b: bool,
    precision: Precision,
    variant: Option<Variant>,
) -> Result<Array> {
    matmul_fused_using(a, b, trans_a, trans_b, precision, variant, &Epilogue::default())
}

/// `op(a) · op(b)` in f32 with a bias and/or activation applied as C is stored (see
/// [`Epilogue`]).
pub fn matmul_fused(a: &Array, b: &Array, trans_a: bool, trans_b: bool, epilogue: &Epilogue) -> Result<Array> {
    matmul_fused_using(a, b, trans_a, trans_b, Precision::F32, None, epilogue)
}

/// Like [`matmul_fused`] at a precision, with the kernel variant forced (`None`: by shape).
pub fn matmul_fused_using(
    a: &Array,
    b: &Array,
    trans_a: bool,
    trans_b: bool,
    precision: Precision,
    variant: Option<Variant>,
    epilogue: &Epilogue,
) -> Result<Array> {
    fused(a, b, trans_a, trans_b, precision, variant, epilogue, DType::F32)
}

/// Like [`matmul_fused`], C stored as `out` (f32, or f16: the inputs are then taken in f16,
/// `Precision::Mixed`, and each value is rounded once, after the epilogue). Mixed precision's
/// convolutions and linear layers write their activations this way.
pub fn matmul_fused_stored(
    a: &Array,
    b: &Array,
    trans_a: bool,
    trans_b: bool,
    epilogue: &Epilogue,
    out: DType,
) -> Result<Array> {
    let precision = if out == DType::F16 { Precision::Mixed } else { Precision::F32 };
    fused(a, b, trans_a, trans_b, precision, None, epilogue, out)
}

#[allow(clippy::too_many_arguments)]
fn fused(
    a: &Array,
    b: &Array,
    trans_a: bool,
    trans_b: bool,
    precision: Precision,
    variant: Option<Variant>,
    epilogue: &Epilogue,
    out_dtype: DType,
) -> Result<Array> {
    if !matches!(out_dtype, DType::F32 | DType::F16) {
        return Err(DeviceError::DType { kernel: NAME, detail: format!("cannot store a product as {out_dtype}") });
    }
    let mut operands = vec![a, b];
    operands.extend(epilogue.bias_array());
    let device = same_device(NAME, &operands)?;
    let precision = operand_precision(NAME, a, b, precision)?;
    let p = Problem::new(a.shape(), b.shape(), trans_a, trans_b)?;
    epilogue.check(NAME, p.m, p.n, p.groups)?;
    match &device {
        Device::Cpu => {
            let mut c = reference_product(a, b, &p, precision);
            epilogue::reference::apply(epilogue, &mut c, p.m, p.n, p.groups);
            Ok(cpu_stored(c, &p.out_shape, out_dtype))
        }
        Device::Gpu(g) if matmul_parts::needs_parts(g, a, b, &p) => {
            cast(&matmul_parts::product_in_parts(g, a, b, &p, precision, variant, epilogue)?, out_dtype)
        }
        Device::Gpu(g) => {
            let precision = effective_precision(g.caps(), precision);
            if out_dtype == DType::F16 && precision != Precision::Mixed {
                return Err(DeviceError::Unsupported {
                    kernel: NAME,
                    detail: "an f16 product needs SHADER_F16".into(),
                });
            }
            let forced = variant;
            let variant = variant.unwrap_or_else(|| pick_variant(g, precision, &p));
            if variant == Variant::Coop && !(precision == Precision::Mixed && coop_available(g.caps())) {
                return Err(DeviceError::Unsupported {
                    kernel: NAME,
                    detail: format!(
                        "the cooperative-matrix kernel needs Precision::Mixed and an adapter with 16x16 \
                         f16 cooperative matrices and 32-wide subgroups ({precision:?} requested)"
                    ),
                });
            }
            if variant == Variant::Tile128Vec4 && !(precision == Precision::F32 && vec4_tiles_fit(&p)) {
                return Err(DeviceError::Unsupported {
                    kernel: NAME,
                    detail: format!(
                        "tile128v needs f32, no transposes, M and N multiples of 128 and K of 8 \
                         ({precision:?}, shapes {:?} x {:?})",
                        a.shape(),
                        b.shape()
                    ),
                });
            }
            check_loop_limit(g, variant, p.k, a, b)?;
            // cooperative-matrix stores are f32: an f16 product is cast after them
            let direct = if variant == Variant::Coop { DType::F32 } else { out_dtype };
            let out = Array::empty(&device, &p.out_shape, direct, NAME)?;
            let ubo = precision == Precision::F32 && variant == Variant::Rows8 && a_fits_uniform(g, &p);
            let shader = match (precision, variant) {
                (Precision::F32, _) if ubo => &MATMUL_UBO,
                (Precision::F32, _) => &MATMUL,
                (Precision::Mixed, Variant::Coop) => &MATMUL_COOP,
                (Precision::Mixed, _) if out_dtype == DType::F16 => &MATMUL_F16_OUT,
                (Precision::Mixed, _) => &MATMUL_F16,
            };
            let (a2, b2) = inputs_at(a, b, precision)?;
            let bufs = [a2.expect_gpu(NAME)?, b2.expect_gpu(NAME)?, out.expect_gpu(NAME)?];
            if variant == Variant::Coop {
                // cooperative-matrix stores bypass store_c
                match launch(g, shader, variant, &p, bufs, ubo, None, &Epilogue::default()) {
                    Ok(()) => return cast(&epilogue.apply_separately(out, p.groups)?, out_dtype),
                    // chosen, not forced, and its pipeline failed to build: the tile kernels instead
                    Err(e) if forced.is_none() && is_build_failure(&e) => {
                        note_coop_failure(&e);
                        return fused(a, b, trans_a, trans_b, precision, None, epilogue, out_dtype);
                    }
                    Err(e) => return Err(e),
                }
            }
            launch(g, shader, variant, &p, bufs, ubo, None, epilogue)?;
            Ok(out)
        }
    }
}

/// The precision of a product of `a` and `b`: f32 operands take the one asked for; an f16
/// operand (mixed precision's activations and weight copies) makes it `Mixed`.
fn operand_precision(kernel: &'static str, a: &Array, b: &Array, precision: Precision) -> Result<Precision> {
    for x in [a, b] {
        if !matches!(x.dtype(), DType::F32 | DType::F16) {
            require_dtype(kernel, x, DType::F32)?;
        }
    }
    Ok(if a.dtype() == DType::F16 || b.dtype() == DType::F16 { Precision::Mixed } else { precision })
}

/// The CPU device's product, on the inputs rounded to f16 for `Precision::Mixed`.
fn reference_product(a: &Array, b: &Array, p: &Problem, precision: Precision) -> Vec<f64> {
    let (av, bv) = (a.cpu_data(), b.cpu_data());
    match precision {
        Precision::F32 => reference::matmul(&av, &bv, p),
        Precision::Mixed => reference::matmul(&reference::round_f16(&av), &reference::round_f16(&bv), p),
    }
}

/// The GPU kernels' inputs: the arrays themselves, or cast to f16 for `Precision::Mixed`
/// (a no-op for an operand that is f16 already).
fn inputs_at(a: &Array, b: &Array, precision: Precision) -> Result<(Array, Array)> {
    Ok(match precision {
        Precision::F32 => (a.clone(), b.clone()),
        Precision::Mixed => (cast(a, DType::F16)?, cast(b, DType::F16)?),
    })
}

/// An error where a CPU adapter would cut `variant`'s loop over `k` products short.
fn check_loop_limit(g: &GpuContext, variant: Variant, k: usize, a: &Array, b: &Array) -> Result<()> {
    let limit = cpu_adapter_max_k(variant);
    if g.is_cpu_adapter() && k > limit {
        return Err(DeviceError::Unsupported {
            kernel: NAME,
            detail: format!(
                "{k} products per output exceed {limit} for {variant:?}: lavapipe ends a shader's loops after \
                 65535 iterations, so the sum would be cut short (shapes {:?} x {:?})",
                a.shape(),
                b.shape()
            ),
        });
    }
    Ok(())
}

/// `sum over batches of op(a[b]) · op(b[b])`, `[M, N]`: the weight gradient of a layer applied
/// to a batch (a convolution's, with batch and pixels both in K) without materialising the
/// per-batch products. Shapes as [`Problem::new`]; the batch dims must be equal.
pub fn matmul_batch_sum(a: &Array, b: &Array, trans_a: bool, trans_b: bool) -> Result<Array> {
    matmul_batch_sum_using(a, b, trans_a, trans_b, Precision::F32, None)
}

/// Like [`matmul_batch_sum`] at a precision, with the kernel variant forced (`None`: chosen by
/// shape). Workgroups split the batches (split-K), each writing a partial `[M, N]`, and one
/// reduction adds the partials: [`batch_sum_splits`] keeps their number to what fills the
/// device and, on a CPU adapter, keeps each invocation's loops under lavapipe's limit.
pub fn matmul_batch_sum_using(
    a: &Array,
    b: &Array,
    trans_a: bool,
    trans_b: bool,
    precision: Precision,
    variant: Option<Variant>,
) -> Result<Array> {
    batch_sums("matmul_batch_sum", a, b, trans_a, trans_b, false, precision, variant)
}

/// `sum over n of op(a[n, g]) · op(b[n, g])` for each g, `[G, M, N]`: a grouped convolution's
/// weight gradient, every group's in one launch (plus the reduction of the partials). `a`
/// and `b` are `[N, G, ., .]` (shapes otherwise as [`Problem::new`]).
pub fn matmul_group_sums(a: &Array, b: &Array, trans_a: bool, trans_b: bool) -> Result<Array> {
    matmul_group_sums_using(a, b, trans_a, trans_b, Precision::F32, None)
}

/// Like [`matmul_group_sums`] at a precision, with the kernel variant forced (`None`: by shape).
pub fn matmul_group_sums_using(
    a: &Array,
    b: &Array,
    trans_a: bool,
    trans_b: bool,
    precision: Precision,
    variant: Option<Variant>,
) -> Result<Array> {
    batch_sums("matmul_group_sums", a, b, trans_a, trans_b, true, precision, variant)
}

/// The batch sum over every batch dim, or with `per_group` over the first of two (`[N, G]`),
/// keeping the second.
#[allow(clippy::too_many_arguments)]
fn batch_sums(
    kernel: &'static str,
    a: &Array,
    b: &Array,
    trans_a: bool,
    trans_b: bool,
    per_group: bool,
    precision: Precision,
    variant: Option<Variant>,
) -> Result<Array> {
    let device = same_device(kernel, &[a, b])?;
    let precision = operand_precision(kernel, a, b, precision)?;
    let p = Problem::new(a.shape(), b.shape(), trans_a, trans_b)?;
    if a.ndim() != b.ndim() || (per_group && a.ndim() != 4) {
        let want = if per_group { "the same batch dimensions [N, G]" } else { "the same batch dimensions" };
        return shape_err(kernel, format!("a {:?} and b {:?} need {want}", a.shape(), b.shape()));
    }
    let groups = if per_group { a.shape()[1] } else { 1 };
    let p = p.split_groups(groups);
    let out_shape = if per_group { vec![groups, p.m, p.n] } else { vec![p.m, p.n] };
    match &device {
        Device::Cpu => {
            let per_batch = reference_product(a, b, &p, precision);
            Ok(Array::cpu(reference::sum_batches(&per_batch, groups * p.m * p.n), &out_shape, DType::F32))
        }
        Device::Gpu(g) => {
            let precision = effective_precision(g.caps(), precision);
            // the cooperative-matrix and vec4 kernels have no batch sum: the plain tiles do it
            let variant = match variant.unwrap_or_else(|| pick_variant(g, Precision::F32, &p)) {
                Variant::Coop => choose_variant(g.caps(), Precision::F32, &p),
                v => v,
            };
            let variant = if variant == Variant::Tile128Vec4 { Variant::Tile128 } else { variant };
            let images = p.batch / p.groups;
            let per_split = images.div_ceil(batch_sum_splits(g, variant, &p));
            check_loop_limit(g, variant, per_split * p.k, a, b)?;
            let splits = images.div_ceil(per_split.max(1)).max(1);
            let partial = Array::empty(&device, &[splits, groups, p.m, p.n], DType::F32, kernel)?;
            let shader = if precision == Precision::Mixed { &MATMUL_F16 } else { &MATMUL };
            let (a, b) = inputs_at(a, b, precision)?;
            let bufs = [a.expect_gpu(kernel)?, b.expect_gpu(kernel)?, partial.expect_gpu(kernel)?];
            launch(g, shader, variant, &p, bufs, false, Some(per_split), &Epilogue::default())?;
            if splits == 1 {
                return partial.reshape(&out_shape);
            }
            reduce(ReduceOp::Sum, &partial, &[0], false)?.reshape(&out_shape)
        }
    }
}

/// How many partial products `matmul_batch_sum` splits the images into (per group, for
/// `matmul_group_sums`): enough to fill the device (8 workgroups on a CPU adapter, 512 on a
/// GPU; `rows8` counts the invocations of its 8x4 blocks, since it folds the splits into
/// workgroups) but no more than there are images, and on a CPU adapter at least enough that
/// each invocation's loops stay under lavapipe's limit. The partials take `splits x groups x M
/// x N` floats: at most the fill target's worth of output blocks, or `images x K / 49152`
/// products per group on a CPU adapter, never `images x M x N` per group.
pub fn batch_sum_splits(g: &GpuContext, variant: Variant, p: &Problem) -> usize {
    let fill: usize = if g.is_cpu_adapter() { 8 } else { 512 };
    let images = p.batch / p.groups.max(1);
    let (units, target) = match variant {
        Variant::Rows8 => (p.m.div_ceil(8) * p.n.div_ceil(4) * p.groups, fill * 64),
        _ => {
            let [tm, tn] = variant.tile();
            (p.m.div_ceil(tm) * p.n.div_ceil(tn) * p.groups, fill)
        }
    };
    let mut splits = target.div_ceil(units.max(1)).min(images).max(1);
    if g.is_cpu_adapter() && p.k > 0 {
        let per_split = (cpu_adapter_max_k(variant) / p.k).max(1);
        splits = splits.max(images.div_ceil(per_split));
    }
    splits.min(g.caps().max_groups_per_dim as usize / p.groups.max(1)).max(1)
}

/// Whether A goes through `matmul_ubo.wgsl`'s uniform buffer: on a CPU adapter only (the copy
/// ends the compute pass, a price worth paying only where uniform loads are what is fast),
/// when one batch of A fits (every group's A, when the images share them) and the adapter
/// binds a uniform buffer that large. Each dispatch then copies as many consecutive batches
/// of A as fit there.
fn a_fits_uniform(g: &GpuContext, p: &Problem) -> bool {
    let bytes = (UBO_A_ELEMENTS * 4) as u64;
    g.is_cpu_adapter()
        && uniform_a_len(p, 1) <= UBO_A_ELEMENTS
        && g.raw_device().limits().max_uniform_buffer_binding_size >= bytes
}

/// Elements of A that `nb` batches from `b0` read: consecutive batches `M·K` apart, or, where
/// the images share A, every group's from the start.
fn uniform_a_range(p: &Problem, b0: usize, nb: usize) -> (usize, usize) {
    match (p.shared_a(), p.a_stride == 0) {
        (true, _) => (0, p.m * p.k),
        (false, true) => (0, (p.groups - 1) * p.a_group_stride + p.m * p.k),
        (false, false) => (p.a_offset(b0), nb * p.m * p.k),
    }
}

fn uniform_a_len(p: &Problem, nb: usize) -> usize {
    uniform_a_range(p, 0, nb).1
}

/// Batches `b0 .. b0 + nb` of A (see [`uniform_a_range`]) copied to the start of a buffer of
/// exactly `UBO_A_ELEMENTS` f32, the size the shader declares, so it can be bound whole as a
/// uniform buffer.
fn uniform_copy(g: &Arc<GpuContext>, a: &GpuBuffer, p: &Problem, b0: usize, nb: usize) -> Result<GpuBuffer> {
    let buffer = g.alloc((UBO_A_ELEMENTS * 4) as u64, NAME, &p.out_shape)?;
    let (start, len) = uniform_a_range(p, b0, nb);
    g.copy(a, (start * 4) as u64, &buffer, 0, (len * 4) as u64);
    Ok(buffer)
}

/// `rows8`'s wide loads that `p` allows (f32 words, 16-byte aligned; see `matmul_rows.wgsl`):
/// VEC_B (B's four columns of a step, B not transposed), A_K4 (A's rows four steps of K at a
/// time), B_K4 (with A_K4, B's columns the same: a weight gradient, or `x · W^T`) and A_M8 (a
/// transposed A's eight rows of a step in two loads).
fn wide_loads(shader: &Shader, p: &Problem) -> [(&'static str, f64); 4] {
    let f32_words = !std::ptr::eq(shader, &MATMUL_F16) && !std::ptr::eq(shader, &MATMUL_F16_OUT);
    let b_aligned = p.b_stride.is_multiple_of(4) && p.b_group_stride.is_multiple_of(4);
    let vec_b = f32_words && !p.trans_b && p.n.is_multiple_of(4) && b_aligned;
    let a_aligned = f32_words && p.a_stride.is_multiple_of(4) && p.a_group_stride.is_multiple_of(4);
    let a_k4 = a_aligned && !p.trans_a && p.k.is_multiple_of(4);
    let b_k4 = a_k4 && p.trans_b && b_aligned;
    let a_m8 = a_aligned && p.trans_a && p.m.is_multiple_of(4);
    let on = |flag: bool| flag as u32 as f64;
    [("VEC_B", on(vec_b)), ("A_K4", on(a_k4)), ("B_K4", on(b_k4)), ("A_M8", on(a_m8))]
}

fn u32_of(v: usize, shape: &[usize]) -> Result<u32> {
    u32::try_from(v)
        .map_err(|_| DeviceError::Shape { kernel: NAME, detail: format!("{v} exceeds u32 indexing (shape {shape:?})") })
}

/// The shader's `Params` (`matmul_common.wgsl`) for a dispatch of `nb` batches from `b0`
/// (REDUCE: `nb` images per split of `nbatch`).
fn params(p: &Problem, b0: usize, nb: usize, nbatch: usize, slope: f32) -> Result<Vec<u32>> {
    let words = [p.m, p.n, p.k, b0, p.a_stride, p.b_stride, p.m * p.n, nb, nbatch];
    let grouping = [p.groups, p.a_group_stride, p.b_group_stride, 0, 0, 0];
    let mut out = words.iter().map(|&v| u32_of(v, &p.out_shape)).collect::<Result<Vec<u32>>>()?;
    out.push(slope.to_bits());
    for v in grouping {
        out.push(u32_of(v, &p.out_shape)?);
    }
    Ok(out)
}

/// Records the multiply; `bufs` are A, B and C. With `ubo`, A goes through uniform-buffer
/// copies (`matmul_ubo.wgsl`), as many batches per dispatch as fit. With `reduce_per_split`,
/// C holds partial sums over that many images each, one per (split, group) workgroup z
/// (REDUCE): `[splits, groups, M, N]`; the epilogue must be empty.
#[allow(clippy::too_many_arguments)]
fn launch(
    g: &Arc<GpuContext>,
    shader: &'static Shader,
    variant: Variant,
    p: &Problem,
    bufs: [&GpuBuffer; 3],
    ubo: bool,
    reduce_per_split: Option<usize>,
    epilogue: &Epilogue,
) -> Result<()> {
    let words = |v: usize| u32_of(v, &p.out_shape);
    let (epilogue_constants, slope) = epilogue.constants();
    // every kernel but the cooperative-matrix one binds MBIAS; B stands in when there is no bias
    let bias = match epilogue.bias_array() {
        Some(b) => b.expect_gpu(NAME)?,
        None => bufs[1],
    };
    let bound: Vec<&GpuBuffer> =
        if variant == Variant::Coop { bufs.to_vec() } else { vec![bufs[0], bufs[1], bufs[2], bias] };
    if let Some(per_split) = reduce_per_split {
        let mut constants =
            vec![("TRANS_A", p.trans_a as u32 as f64), ("TRANS_B", p.trans_b as u32 as f64), ("REDUCE", 1.0)];
        if variant == Variant::Rows8 {
            constants.extend(wide_loads(shader, p));
        }
        let kernel = Kernel::new(shader, variant.entry()).with(&constants);
        let [tm, tn] = variant.tile();
        let images = p.batch / p.groups;
        let partials = images.div_ceil(per_split.max(1)) * p.groups;
        let grid = if variant == Variant::Rows8 {
            [words((partials * p.n.div_ceil(4)).div_ceil(64))?, words(p.m.div_ceil(tm))?, 1]
        } else {
            [words(p.n.div_ceil(tn))?, words(p.m.div_ceil(tm))?, words(partials)?]
        };
        let params = params(p, 0, per_split, images, 0.0)?;
        return g.dispatch(&kernel, param_bytes(&params), &bound, grid);
    }
    let fold = variant == Variant::Rows8;
    let shared_a = p.shared_a();
    let mut constants = vec![("TRANS_A", p.trans_a as u32 as f64), ("TRANS_B", p.trans_b as u32 as f64)];
    if variant != Variant::Coop {
        constants.extend(epilogue_constants);
    }
    // rows8 over a per-group A: the groups along z, the images folded into x (see GROUP_Z)
    let group_z = fold && p.groups > 1 && p.a_stride == 0;
    if fold {
        constants.push(("SHARED_A", shared_a as u32 as f64));
        constants.push(("GROUP_Z", group_z as u32 as f64));
        // a per-group A shared by the images is copied whole and read as bound
        constants.push(("LOCAL_A", (ubo && p.a_stride != 0) as u32 as f64));
        constants.extend(wide_loads(shader, p));
    }
    let kernel = Kernel::new(shader, variant.entry()).with(&constants);
    let [tm, tn] = variant.tile();
    let gy = words(p.m.div_ceil(tm))?;
    // Batches beyond the per-dimension workgroup limit go in further dispatches; folded into
    // the columns (rows8), as many as keep the column groups within it.
    let per = g.caps().max_groups_per_dim.max(1) as usize;
    let per = if fold { (per * tn / p.n.next_multiple_of(4).max(4)).max(1) } else { per };
    let per = if ubo && p.a_stride != 0 { per.min(UBO_A_ELEMENTS / (p.m * p.k).max(1)).max(1) } else { per };
    let (batches, gz_fold) = if group_z { (p.batch / p.groups, words(p.groups)?) } else { (p.batch, 1) };
    let mut b0 = 0;
    while b0 < batches {
        let nb = per.min(batches - b0);
        let (gx, gz) = if fold {
            (words((nb * p.n.next_multiple_of(4)).div_ceil(tn))?, gz_fold)
        } else {
            (words(p.n.div_ceil(tn))?, nb as u32)
        };
        let params = params(p, b0, nb, p.batch, slope)?;
        if ubo {
            let a = uniform_copy(g, bufs[0], p, b0, nb)?;
            g.dispatch(&kernel, param_bytes(&params), &[&a, bufs[1], bufs[2], bias], [gx, gy, gz])?;
        } else {
            g.dispatch(&kernel, param_bytes(&params), &bound, [gx, gy, gz])?;
        }
        b0 += nb;
    }
    Ok(())
}

/// CPU twins, in f64, from the definition `C[b][i][j] = Σ_k op(A[b])[i][k] · op(B[b])[k][j]`
/// (A[b] and B[b] where `Problem::a_offset` and `b_offset` put batch b).
pub mod reference {
    use super::Problem;

    pub fn matmul(a: &[f64], b: &[f64], p: &Problem) -> Vec<f64> {
        let (m, n, k) = (p.m, p.n, p.k);
        let mut c = vec![0.0; p.batch * m * n];
        for bi in 0..p.batch {
            let (ab, bb) = (p.a_offset(bi), p.b_offset(bi));
            for i in 0..m {
                for j in 0..n {
                    let mut s = 0.0;
                    for kk in 0..k {
                        let x = if p.trans_a { a[ab + kk * m + i] } else { a[ab + i * k + kk] };
                        let y = if p.trans_b { b[bb + j * k + kk] } else { b[bb + kk * n + j] };
                        s += x * y;
                    }
                    c[(bi * m + i) * n + j] = s;
                }
            }
        }
        c
    }

    /// `[batch, len]` summed over the batch.
    pub fn sum_batches(per_batch: &[f64], len: usize) -> Vec<f64> {
        let mut out = vec![0.0; len];
        for chunk in per_batch.chunks(len.max(1)) {
            out.iter_mut().zip(chunk).for_each(|(o, v)| *o += v);
        }
        out
    }

    /// Values rounded to f16 (what `Precision::Mixed` multiplies).
    pub fn round_f16(x: &[f64]) -> Vec<f64> {
        x.iter().map(|&v| half::f16::from_f64(v).to_f64()).collect()
    }
}
