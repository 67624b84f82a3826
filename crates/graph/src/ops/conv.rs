//! 2-D convolution as im2col + matmul. `im2col` is an op of its own (backward: `col2im`),
//! so `conv2d` is a composition and its gradients follow from the parts: for weight
//! `[O, C/groups, KH, KW]`, `out = W_g @ im2col(x)_g` per group, plus the bias.

use crate::error::{invalid, shape_err, Result};
use crate::ops::same_device;
use crate::tensor::Tensor;
use ferrograd_device::kernels::conv::{col2im, im2col, Conv2dGeometry};

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

impl Tensor {
    /// Every receptive field of `x [N, C, H, W]` as a column: `[N, C*KH*KW, OH*OW]`.
    pub fn im2col(&self, g: &Conv2dGeometry) -> Result<Tensor> {
        let x = self.data();
        let out = im2col(&x, g)?;
        let (g, shape) = (*g, x.shape().to_vec());
        Ok(Tensor::from_op("im2col", out, &[self], move |grad, _| Ok(vec![Some(col2im(grad, &g, &shape)?)])))
    }

    /// 2-D convolution (cross-correlation, as PyTorch): `self [N, C, H, W]`, `weight
    /// [O, C/groups, KH, KW]`, `bias [O]` -> `[N, O, OH, OW]`.
    pub fn conv2d(&self, weight: &Tensor, bias: Option<&Tensor>, o: &Conv2dOptions) -> Result<Tensor> {
        same_device("conv2d", &[self, weight])?;
        let (xs, ws) = (self.shape(), weight.shape());
        if xs.len() != 4 || ws.len() != 4 {
            return shape_err("conv2d", format!("input {xs:?} and weight {ws:?} must both be 4-D"));
        }
        let (n, c, out_ch, groups) = (xs[0], xs[1], ws[0], o.groups);
        if groups == 0 || !c.is_multiple_of(groups) || !out_ch.is_multiple_of(groups) || ws[1] * groups != c {
            return invalid(
                "conv2d",
                format!("input {xs:?}, weight {ws:?}, groups {groups}: need C and O divisible by groups and weight dim 1 = C/groups"),
            );
        }
        if let Some(b) = bias {
            if b.shape() != [out_ch] {
                return shape_err("conv2d", format!("bias {:?} for weight {ws:?} (expected [{out_ch}])", b.shape()));
            }
        }
        let g = Conv2dGeometry { kernel: [ws[2], ws[3]], stride: o.stride, padding: o.padding, dilation: o.dilation };
        let [oh, ow] = g.out_hw(xs[2], xs[3])?;
        let cols = self.im2col(&g)?;
        let rows = ws[1] * ws[2] * ws[3];
        let w2 = weight.reshape_to(&[out_ch, rows])?;
        let out = if groups == 1 {
            w2.matmul(&cols)?
        } else {
            let og = out_ch / groups;
            let parts = (0..groups)
                .map(|k| w2.narrow(0, k * og, og)?.matmul(&cols.narrow(1, k * rows, rows)?))
                .collect::<Result<Vec<_>>>()?;
            Tensor::cat(&parts.iter().collect::<Vec<_>>(), 1)?
        };
        let out = out.reshape_to(&[n, out_ch, oh, ow])?;
        match bias {
            Some(b) => out.add(&b.reshape_to(&[1, out_ch, 1, 1])?),
            None => Ok(out),
        }
    }
}
