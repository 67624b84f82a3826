//! Joining and slicing: `cat`, `stack`, `narrow`, `split`, `chunk`, `select`,
//! `index_select`, and dtype casts. Each backward routes the gradient to where the values
//! came from (a narrow of the gradient, or a scatter-add for `index_select`).

use crate::error::{invalid, shape_err, Result};
use crate::ops::{axis, same_device};
use crate::tensor::Tensor;
use ferrograd_device::kernels::copy::{cast, concat, index_select, index_select_backward, narrow, narrow_backward};
use ferrograd_device::{Array, DType};

impl Tensor {
    /// Concatenate along `dim` (all other dims equal).
    pub fn cat(tensors: &[&Tensor], dim: isize) -> Result<Tensor> {
        if tensors.is_empty() {
            return invalid("cat", "no tensors given");
        }
        same_device("cat", tensors)?;
        let d = axis("cat", dim, tensors[0].ndim())?;
        // the moves take 32-bit words: f16 parts join as f32
        let parts = tensors.iter().map(|t| t.in_f32()).collect::<Result<Vec<_>>>()?;
        let tensors: Vec<&Tensor> = parts.iter().collect();
        let arrays: Vec<Array> = tensors.iter().map(|t| t.data()).collect();
        let refs: Vec<&Array> = arrays.iter().collect();
        let out = concat(&refs, d)?;
        let lens: Vec<usize> = arrays.iter().map(|a| a.shape()[d]).collect();
        let backward = move |g: &Array, needs: &[bool]| -> Result<Vec<Option<Array>>> {
            let mut start = 0;
            let mut grads = Vec::with_capacity(lens.len());
            for (&len, &need) in lens.iter().zip(needs) {
                grads.push(if need { Some(narrow(g, d, start, len)?) } else { None });
                start += len;
            }
            Ok(grads)
        };
        Ok(Tensor::from_op("cat", out, &tensors, backward))
    }

    /// Stack equal-shaped tensors along a new dim `dim`.
    pub fn stack(tensors: &[&Tensor], dim: isize) -> Result<Tensor> {
        if tensors.is_empty() {
            return invalid("stack", "no tensors given");
        }
        let shape = tensors[0].shape();
        if let Some(t) = tensors.iter().find(|t| t.shape() != shape) {
            return shape_err("stack", format!("shapes differ: {shape:?} vs {:?}", t.shape()));
        }
        let d = axis("stack", dim, shape.len() + 1)? as isize;
        let expanded = tensors.iter().map(|t| t.unsqueeze(d)).collect::<Result<Vec<_>>>()?;
        Tensor::cat(&expanded.iter().collect::<Vec<_>>(), d)
    }

    /// `len` entries of `dim` starting at `start` (a copy).
    pub fn narrow(&self, dim: isize, start: usize, len: usize) -> Result<Tensor> {
        let this = self.in_f32()?;
        let x = this.data();
        let d = axis("narrow", dim, x.ndim())?;
        let out = narrow(&x, d, start, len)?;
        let full = x.shape().to_vec();
        Ok(Tensor::from_op("narrow", out, &[&this], move |g, _| Ok(vec![Some(narrow_backward(g, &full, d, start)?)])))
    }

    /// Entry `index` of `dim`, with that dim removed.
    pub fn select(&self, dim: isize, index: usize) -> Result<Tensor> {
        let d = axis("select", dim, self.ndim())?;
        self.narrow(d as isize, index, 1)?.squeeze(d as isize)
    }

    /// Pieces of `size` along `dim` (the last may be shorter), like `torch.split`.
    pub fn split(&self, size: usize, dim: isize) -> Result<Vec<Tensor>> {
        let d = axis("split", dim, self.ndim())?;
        if size == 0 {
            return invalid("split", "split size 0");
        }
        let n = self.shape()[d];
        (0..n).step_by(size).map(|s| self.narrow(d as isize, s, size.min(n - s))).collect()
    }

    /// `chunks` pieces of (nearly) equal size along `dim`, like `torch.chunk`.
    pub fn chunk(&self, chunks: usize, dim: isize) -> Result<Vec<Tensor>> {
        let d = axis("chunk", dim, self.ndim())?;
        if chunks == 0 {
            return invalid("chunk", "0 chunks");
        }
        self.split(self.shape()[d].div_ceil(chunks).max(1), d as isize)
    }

    /// Entries of `dim` picked by `indices` (a u32 tensor, any shape flattened to 1-D order).
    pub fn index_select(&self, dim: isize, indices: &Tensor) -> Result<Tensor> {
        same_device("index_select", &[self, indices])?;
        let this = self.in_f32()?;
        let x = this.data();
        let d = axis("index_select", dim, x.ndim())?;
        let idx = indices.data();
        let out = index_select(&x, d, &idx)?;
        let full = x.shape().to_vec();
        Ok(Tensor::from_op("index_select", out, &[&this], move |g, _| {
            Ok(vec![Some(index_select_backward(g, &full, d, &idx)?)])
        }))
    }

    /// The values as `dtype` (f32 <-> f16 keeps the gradient; u32 results carry none).
    pub fn to_dtype(&self, dtype: DType) -> Result<Tensor> {
        let from = self.dtype();
        if from == dtype {
            return Ok(self.clone());
        }
        let out = cast(&self.data(), dtype)?;
        if dtype == DType::U32 || from == DType::U32 {
            return Ok(Tensor::new(out));
        }
        Ok(Tensor::from_op("to_dtype", out, &[self], move |g, _| Ok(vec![Some(cast(g, from)?)])))
    }
}
