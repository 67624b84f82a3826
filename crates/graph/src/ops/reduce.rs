//! Reductions over axes (sum, mean, max, min), `expand` (broadcast to a shape), and
//! `argmax` (no gradient).

use crate::error::Result;
use crate::ops::axis;
use crate::tensor::{scale, Tensor};
use ferrograd_device::kernels::elementwise::{binary, BinaryOp};
use ferrograd_device::kernels::fill;
use ferrograd_device::kernels::reduce::{argmax, reduce, sum_to_shape, ReduceOp};
use ferrograd_device::{Array, DType};

/// Sorted, deduplicated axes; an empty list means every axis.
fn norm_axes(op: &'static str, dims: &[isize], ndim: usize) -> Result<Vec<usize>> {
    if dims.is_empty() {
        return Ok((0..ndim).collect());
    }
    let mut axes = dims.iter().map(|&d| axis(op, d, ndim)).collect::<Result<Vec<_>>>()?;
    axes.sort_unstable();
    axes.dedup();
    Ok(axes)
}

/// The input shape with reduced axes set to 1.
fn keep_shape(shape: &[usize], axes: &[usize]) -> Vec<usize> {
    shape.iter().enumerate().map(|(i, &d)| if axes.contains(&i) { 1 } else { d }).collect()
}

fn out_shape(shape: &[usize], axes: &[usize], keepdim: bool) -> Vec<usize> {
    if keepdim {
        return keep_shape(shape, axes);
    }
    shape.iter().enumerate().filter(|(i, _)| !axes.contains(i)).map(|(_, &d)| d).collect()
}

/// `g` (of a reduced shape with the same element count as `keep`) broadcast to `shape`.
fn expand_array(g: &Array, keep: &[usize], shape: &[usize]) -> Result<Array> {
    let g = g.reshape(keep)?;
    if keep == shape {
        return Ok(g);
    }
    let zeros = fill::full(&g.device(), shape, DType::F32, 0.0)?;
    Ok(binary(BinaryOp::Add, &zeros, &g)?)
}

impl Tensor {
    fn reduce_op(&self, op: ReduceOp, name: &'static str, dims: &[isize], keepdim: bool) -> Result<Tensor> {
        let x = self.data();
        let shape = x.shape().to_vec();
        let axes = norm_axes(name, dims, shape.len())?;
        let keep = keep_shape(&shape, &axes);
        let out = reduce(op, &x, &axes, true)?;
        let count: usize = axes.iter().map(|&a| shape[a]).product();
        let kept_out = out.clone();
        let final_shape = out_shape(&shape, &axes, keepdim);
        let backward = move |g: &Array, _: &[bool]| -> Result<Vec<Option<Array>>> {
            let gx = match op {
                ReduceOp::Sum => expand_array(g, &keep, &shape)?,
                ReduceOp::Mean => scale(&expand_array(g, &keep, &shape)?, 1.0 / count.max(1) as f32)?,
                ReduceOp::Max | ReduceOp::Min => {
                    // the extreme elements share the gradient equally (as torch.amax)
                    let mask = binary(BinaryOp::Eq, &x, &kept_out)?;
                    let ties = reduce(ReduceOp::Sum, &mask, &axes, true)?;
                    let share = binary(BinaryOp::Div, &g.reshape(&keep)?, &ties)?;
                    binary(BinaryOp::Mul, &mask, &share)?
                }
            };
            Ok(vec![Some(gx)])
        };
        let out = out.reshape(&final_shape)?;
        Ok(Tensor::from_op(name, out, &[self], backward))
    }

    /// Sum over `dims` (empty = all; negative counts from the end).
    pub fn sum(&self, dims: &[isize], keepdim: bool) -> Result<Tensor> {
        self.reduce_op(ReduceOp::Sum, "sum", dims, keepdim)
    }
    pub fn mean(&self, dims: &[isize], keepdim: bool) -> Result<Tensor> {
        self.reduce_op(ReduceOp::Mean, "mean", dims, keepdim)
    }
    /// Largest value over `dims` (as `torch.amax`: ties share the gradient).
    pub fn max(&self, dims: &[isize], keepdim: bool) -> Result<Tensor> {
        self.reduce_op(ReduceOp::Max, "max", dims, keepdim)
    }
    pub fn min(&self, dims: &[isize], keepdim: bool) -> Result<Tensor> {
        self.reduce_op(ReduceOp::Min, "min", dims, keepdim)
    }
    /// Sum of every element, shape `[]`.
    pub fn sum_all(&self) -> Result<Tensor> {
        self.sum(&[], false)
    }
    /// Mean of every element, shape `[]`.
    pub fn mean_all(&self) -> Result<Tensor> {
        self.mean(&[], false)
    }

    /// Index of the largest value along `dim` (u32, no gradient).
    pub fn argmax(&self, dim: isize, keepdim: bool) -> Result<Tensor> {
        let d = axis("argmax", dim, self.ndim())?;
        Ok(Tensor::new(argmax(&self.data(), d, keepdim)?))
    }

    /// Broadcast to `shape` (NumPy rules); the gradient is summed back.
    pub fn expand(&self, shape: &[usize]) -> Result<Tensor> {
        let x = self.data();
        let from = x.shape().to_vec();
        if from == shape {
            return Ok(self.clone());
        }
        let zeros = fill::full(&x.device(), shape, DType::F32, 0.0)?;
        let out = binary(BinaryOp::Add, &zeros, &x)?;
        if out.shape() != shape {
            return crate::error::shape_err("expand", format!("cannot expand {from:?} to {shape:?}"));
        }
        Ok(Tensor::from_op("expand", out, &[self], move |g, _| Ok(vec![Some(sum_to_shape(g, &from)?)])))
    }

    /// Sum of squares of every element, shape `[]` (used by gradient clipping and norms).
    pub fn sum_squares(&self) -> Result<Tensor> {
        self.square()?.sum_all()
    }
}
