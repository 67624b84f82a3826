//! 2-D convolution as one op: per chunk of the batch, `im2col` lays the receptive fields out
//! as columns and one GEMM over the whole chunk multiplies them by the weight. The backward
//! pass sits beside it: the weight gradient is one GEMM with batch and pixels in K (no
//! per-image weight gradients), the input gradient one GEMM plus `col2im`.
//!
//! Groups cost no launches: the weight is `[G, O/G, rows]` against the columns `[n, G, rows,
//! P]`, a product the matmul kernels broadcast per group (each group's weight for every
//! image's group), so each of the three products is one launch whatever the groups.
//!
//! Chunks exist because the columns (`C·KH·KW` rows by `OH·OW` pixels per image) are the
//! largest array of a step and must fit one storage binding (128 MiB on lavapipe, 2 GiB on
//! some GPUs): the batch is cut into as few chunks as keep each chunk's columns under the
//! limit. With one chunk the forward's columns are kept for the weight gradient; with
//! several, each chunk's columns are rebuilt in the backward pass, so memory never holds
//! more than one chunk's columns beyond what PyTorch keeps (the input).
//!
//! Under autocast with one chunk and no groups, the input, columns, output and the input
//! gradient are stored in f16 (`Plan::store`): the first layer's image is cast once, later
//! layers take the f16 output of the one before. With groups or several chunks the
//! slicing and joining (`narrow`, `concat`) move 32-bit words, so those stay f32 (the columns
//! cast to f16 as they are made).

use crate::amp::autocast::{half_if, half_operands, operand};
use crate::error::{invalid, shape_err, Result};
use crate::ops::matmul::{check_fusable, save_activation, through_activation};
use crate::ops::same_device;
use crate::tensor::Tensor;
use ferrograd_device::kernels::conv::{col2im, im2col, images_per_binding, Conv2dGeometry};
use ferrograd_device::kernels::copy::{cast, concat, narrow};
use ferrograd_device::kernels::elementwise::UnaryOp;
use ferrograd_device::kernels::elementwise::{binary, BinaryOp};
use ferrograd_device::kernels::epilogue::{Bias, Epilogue};
use ferrograd_device::kernels::matmul::{matmul_fused_stored, matmul_group_sums};
use ferrograd_device::kernels::reduce::sum_to_shape;
use ferrograd_device::{Array, DType};

/// Stride, padding, dilation and groups of a convolution (the kernel size comes from the weight).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dOptions {
    pub stride: [usize; 2],
    pub padding: [usize; 2],
    pub dilation: [usize; 2],
    pub groups: usize,
}

impl Default for Conv2dOptions {
    fn default() -> Self {
        Conv2dOptions { stride: [1; 2], padding: [0; 2], dilation: [1; 2], groups: 1 }
    }
}

impl Conv2dOptions {
    /// Equal stride and padding on both axes.
    pub fn new(stride: usize, padding: usize) -> Conv2dOptions {
        Conv2dOptions { stride: [stride; 2], padding: [padding; 2], ..Default::default() }
    }
}

/// Everything about one convolution's shapes that the forward and backward passes share.
#[derive(Clone, Copy)]
struct Plan {
    geometry: Conv2dGeometry,
    input: [usize; 4],
    out_ch: usize,
    groups: usize,
    /// Rows of the columns per group: `C/groups · KH · KW`.
    rows: usize,
    pixels: usize,
    /// Images per chunk of the batch.
    chunk: usize,
    /// the GEMMs take f16 operands (autocast): the columns are cast as they are made
    half: bool,
    /// what the input, columns, output and input gradient are stored as (f16 under autocast
    /// with one chunk and no groups)
    store: DType,
}

impl Plan {
    /// The batch ranges `(first image, images)` the chunks cover.
    fn chunks(&self) -> impl Iterator<Item = (usize, usize)> {
        let (n, chunk) = (self.input[0], self.chunk);
        (0..n.div_ceil(chunk)).map(move |i| (i * chunk, chunk.min(n - i * chunk)))
    }

    fn single_chunk(&self) -> bool {
        self.chunk >= self.input[0]
    }

    /// Images `[first, first + len)` of a `[N, ...]` array (the array itself for one chunk).
    fn slice(&self, a: &Array, first: usize, len: usize) -> Result<Array> {
        Ok(if self.single_chunk() { a.clone() } else { narrow(a, 0, first, len)? })
    }

    fn columns(&self, x: &Array, first: usize, len: usize) -> Result<Array> {
        half_if(im2col(&self.slice(x, first, len)?, &self.geometry)?, self.half)
    }

    /// The weight `[O, rows]` as `[G, O/G, rows]`.
    fn grouped_weight(&self, weight: &Array) -> Result<Array> {
        Ok(weight.reshape(&[self.groups, self.out_ch / self.groups, self.rows])?)
    }

    /// `[n, G·r, P]` (or `[n, G·r·P]`) as `[n, G, r, P]`.
    fn per_group(&self, a: &Array, r: usize) -> Result<Array> {
        Ok(a.reshape(&[a.shape()[0], self.groups, r, self.pixels])?)
    }

    /// `activation(weight [O, rows] · cols [n, groups·rows, P] + bias)` -> `[n, O, P]`, one GEMM
    /// for every group with the bias and activation in its store.
    fn product(
        &self,
        weight: &Array,
        cols: &Array,
        bias: Option<&Array>,
        activation: Option<UnaryOp>,
    ) -> Result<Array> {
        let epilogue = Epilogue { bias: bias.map(Bias::PerRow), activation };
        let (w, c) = (self.grouped_weight(weight)?, self.per_group(cols, self.rows)?);
        let y = matmul_fused_stored(&w, &c, false, false, &epilogue, self.store)?;
        Ok(y.reshape(&[cols.shape()[0], self.out_ch, self.pixels])?)
    }

    /// The weight gradient of one chunk: `Σ_n grad[n] · cols[n]^T` per group, `[O, rows]`.
    fn weight_grad(&self, grad: &Array, cols: &Array) -> Result<Array> {
        let og = self.out_ch / self.groups;
        let dw = matmul_group_sums(&self.per_group(grad, og)?, &self.per_group(cols, self.rows)?, false, true)?;
        Ok(dw.reshape(&[self.out_ch, self.rows])?)
    }

    /// The input gradient of one chunk of `len` images: `col2im(weight^T · grad)`, per group.
    fn input_grad(&self, weight: &Array, grad: &Array, len: usize) -> Result<Array> {
        let og = self.out_ch / self.groups;
        let (w, g) = (self.grouped_weight(weight)?, self.per_group(grad, og)?);
        let dcols = matmul_fused_stored(&w, &g, true, false, &Epilogue::default(), self.store)?;
        let [_, c, h, w] = self.input;
        Ok(col2im(&dcols.reshape(&[len, self.groups * self.rows, self.pixels])?, &self.geometry, &[len, c, h, w])?)
    }
}

/// `parts` joined along `axis` (the part itself when there is one).
fn join(parts: &[Array], axis: usize) -> Result<Array> {
    if let [one] = parts {
        return Ok(one.clone());
    }
    Ok(concat(&parts.iter().collect::<Vec<_>>(), axis)?)
}

impl Tensor {
    /// 2-D convolution (cross-correlation, as PyTorch): `self [N, C, H, W]`, `weight
    /// [O, C/groups, KH, KW]`, `bias [O]` -> `[N, O, OH, OW]`. The batch is cut into as few
    /// chunks as keep each chunk's im2col columns within one storage binding.
    pub fn conv2d(&self, weight: &Tensor, bias: Option<&Tensor>, o: &Conv2dOptions) -> Result<Tensor> {
        self.conv2d_act(weight, bias, o, None)
    }

    /// `activation(conv2d(self, weight, bias))`, the bias and activation (relu, leaky relu with
    /// a positive slope, tanh or sigmoid) applied in the GEMM's store.
    pub fn conv2d_act(
        &self,
        weight: &Tensor,
        bias: Option<&Tensor>,
        o: &Conv2dOptions,
        activation: Option<UnaryOp>,
    ) -> Result<Tensor> {
        self.convolve(weight, bias, o, activation, None)
    }

    /// [`Tensor::conv2d_act`] with the batch cut into chunks of `images` images (the last one
    /// may be smaller); the same values for any `images >= 1`.
    pub fn conv2d_in_chunks(
        &self,
        weight: &Tensor,
        bias: Option<&Tensor>,
        o: &Conv2dOptions,
        activation: Option<UnaryOp>,
        images: usize,
    ) -> Result<Tensor> {
        if images == 0 {
            return invalid("conv2d", "chunks must hold at least one image");
        }
        self.convolve(weight, bias, o, activation, Some(images))
    }

    /// The convolution in chunks of `images` images, or of as many as one storage binding
    /// holds the columns of.
    fn convolve(
        &self,
        weight: &Tensor,
        bias: Option<&Tensor>,
        o: &Conv2dOptions,
        activation: Option<UnaryOp>,
        images: Option<usize>,
    ) -> Result<Tensor> {
        check_fusable("conv2d", activation)?;
        let mut inputs = vec![self, weight];
        inputs.extend(bias);
        same_device("conv2d", &inputs)?;
        let mut plan = plan(&self.shape(), &weight.shape(), bias.map(|b| b.shape()).as_deref(), o)?;
        let images =
            images.unwrap_or_else(|| images_per_binding(&self.device(), plan.groups * plan.rows * plan.pixels));
        plan.chunk = images.min(plan.input[0].max(1));
        plan.half = half_operands(&self.device());
        plan.store = if plan.half && plan.single_chunk() { DType::F16 } else { DType::F32 };
        let x = cast(&self.data(), plan.store)?;
        let w2 = operand(weight, plan.half)?.reshape(&[plan.out_ch, plan.rows])?;
        let [n, ..] = plan.input;
        let out_shape = [n, plan.out_ch, plan.pixels];
        let b = bias.map(|b| b.data());
        let mut saved_cols = None;
        let mut outs = Vec::new();
        for (first, len) in plan.chunks() {
            let cols = plan.columns(&x, first, len)?;
            outs.push(plan.product(&w2, &cols, b.as_ref(), activation)?);
            if plan.single_chunk() {
                saved_cols = Some(cols);
            }
        }
        let y = join(&outs, 0)?;
        let saved = save_activation(activation, &y);
        let [oh, ow] = plan.geometry.out_hw(plan.input[2], plan.input[3])?;
        let y = y.reshape(&[n, plan.out_ch, oh, ow])?;

        let weight_shape = weight.shape().to_vec();
        let backward = move |g: &Array, needs: &[bool]| -> Result<Vec<Option<Array>>> {
            let g = g.reshape(&out_shape)?;
            let g = through_activation(&saved, &g)?;
            let (mut dw, mut dx) = (None::<Array>, Vec::new());
            for (first, len) in plan.chunks() {
                let gc = half_if(plan.slice(&g, first, len)?, plan.half)?;
                if needs[1] {
                    let cols = match &saved_cols {
                        Some(c) => c.clone(),
                        None => plan.columns(&x, first, len)?,
                    };
                    let part = plan.weight_grad(&gc, &cols)?;
                    dw = Some(match dw {
                        Some(sum) => binary(BinaryOp::Add, &sum, &part)?,
                        None => part,
                    });
                }
                if needs[0] {
                    dx.push(plan.input_grad(&w2, &gc, len)?);
                }
            }
            let mut grads = vec![
                if needs[0] { Some(join(&dx, 0)?) } else { None },
                dw.map(|d| d.reshape(&weight_shape)).transpose()?,
            ];
            if needs.len() > 2 {
                let db = needs[2].then(|| sum_to_shape(&g, &[1, plan.out_ch, 1])?.reshape(&[plan.out_ch]));
                grads.push(db.transpose()?);
            }
            Ok(grads)
        };
        Ok(Tensor::from_op("conv2d", y, &inputs, backward))
    }
}

/// Checks the shapes of a convolution and works out its plan (one chunk until the caller sets it).
fn plan(xs: &[usize], ws: &[usize], bias: Option<&[usize]>, o: &Conv2dOptions) -> Result<Plan> {
    let (&[n, c, h, w], &[out_ch, per_group, kh, kw]) = (xs, ws) else {
        return shape_err("conv2d", format!("input {xs:?} and weight {ws:?} must both be 4-D"));
    };
    let groups = o.groups;
    if groups == 0 || !c.is_multiple_of(groups) || !out_ch.is_multiple_of(groups) || per_group * groups != c {
        return invalid(
            "conv2d",
            format!("input {xs:?}, weight {ws:?}, groups {groups}: need C and O divisible by groups and weight dim 1 = C/groups"),
        );
    }
    if let Some(b) = bias {
        if b != [out_ch] {
            return shape_err("conv2d", format!("bias {b:?} for weight {ws:?} (expected [{out_ch}])"));
        }
    }
    let geometry = Conv2dGeometry { kernel: [kh, kw], stride: o.stride, padding: o.padding, dilation: o.dilation };
    let [oh, ow] = geometry.out_hw(h, w)?;
    Ok(Plan {
        geometry,
        input: [n, c, h, w],
        out_ch,
        groups,
        rows: per_group * kh * kw,
        pixels: oh * ow,
        chunk: n.max(1),
        half: false,
        store: DType::F32,
    })
}
