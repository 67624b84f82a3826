//! Shape ops: `reshape`/`view` (free: same storage), `flatten`, `squeeze`/`unsqueeze`,
//! and `permute`/`transpose` (a copy kernel; the gradient is the inverse permutation).

use crate::error::{invalid, shape_err, Result};
use crate::ops::axis;
use crate::tensor::Tensor;
use ferrograd_device::kernels::copy::permute;

impl Tensor {
    /// Same values in a new shape; one entry may be `-1` (inferred).
    pub fn reshape(&self, shape: &[isize]) -> Result<Tensor> {
        let from = self.shape();
        let numel: usize = from.iter().product();
        let known: usize = shape.iter().filter(|&&d| d >= 0).map(|&d| d as usize).product();
        let inferred = shape.iter().filter(|&&d| d < 0).count();
        let bad = || shape_err("reshape", format!("cannot reshape {from:?} ({numel} elements) to {shape:?}"));
        if inferred > 1
            || shape.iter().any(|&d| d < -1)
            || (inferred == 1 && (known == 0 || !numel.is_multiple_of(known)))
        {
            return bad();
        }
        let to: Vec<usize> = shape.iter().map(|&d| if d < 0 { numel / known } else { d as usize }).collect();
        if to.iter().product::<usize>() != numel {
            return bad();
        }
        self.reshape_to(&to)
    }

    /// Same values in `shape` (all dims given).
    pub fn reshape_to(&self, shape: &[usize]) -> Result<Tensor> {
        let from = self.shape();
        if from == shape {
            return Ok(self.clone());
        }
        let out = self.data().reshape(shape)?;
        Ok(Tensor::from_op("reshape", out, &[self], move |g, _| Ok(vec![Some(g.reshape(&from)?)])))
    }

    /// Alias of `reshape` (storage is always contiguous).
    pub fn view(&self, shape: &[isize]) -> Result<Tensor> {
        self.reshape(shape)
    }

    /// Merge dims `start..=end` into one (`flatten(1, -1)` keeps the batch dim).
    pub fn flatten(&self, start: isize, end: isize) -> Result<Tensor> {
        let shape = self.shape();
        if shape.is_empty() {
            return self.reshape_to(&[1]);
        }
        let (s, e) = (axis("flatten", start, shape.len())?, axis("flatten", end, shape.len())?);
        if s > e {
            return invalid("flatten", format!("start dim {start} after end dim {end} for shape {shape:?}"));
        }
        let mut to = shape[..s].to_vec();
        to.push(shape[s..=e].iter().product());
        to.extend_from_slice(&shape[e + 1..]);
        self.reshape_to(&to)
    }

    /// Insert a dim of size 1 at `dim` (`-1` appends).
    pub fn unsqueeze(&self, dim: isize) -> Result<Tensor> {
        let mut shape = self.shape();
        let d = axis("unsqueeze", dim, shape.len() + 1)?;
        shape.insert(d, 1);
        self.reshape_to(&shape)
    }

    /// Remove `dim` if it has size 1.
    pub fn squeeze(&self, dim: isize) -> Result<Tensor> {
        let mut shape = self.shape();
        let d = axis("squeeze", dim, shape.len())?;
        if shape[d] != 1 {
            return Ok(self.clone());
        }
        shape.remove(d);
        self.reshape_to(&shape)
    }

    /// Reorder dims: output dim `i` is input dim `perm[i]`.
    pub fn permute(&self, perm: &[usize]) -> Result<Tensor> {
        let n = self.ndim();
        let mut seen = vec![false; n];
        if perm.len() != n || perm.iter().any(|&p| p >= n || std::mem::replace(&mut seen[p], true)) {
            return invalid("permute", format!("{perm:?} is not a permutation of {n} dims (shape {:?})", self.shape()));
        }
        if perm.iter().enumerate().all(|(i, &p)| i == p) {
            return Ok(self.clone());
        }
        let this = self.in_f32()?;
        let out = permute(&this.data(), perm)?;
        let mut inverse = vec![0; n];
        for (i, &p) in perm.iter().enumerate() {
            inverse[p] = i;
        }
        Ok(Tensor::from_op("permute", out, &[&this], move |g, _| Ok(vec![Some(permute(g, &inverse)?)])))
    }

    /// Swap two dims.
    pub fn transpose(&self, d0: isize, d1: isize) -> Result<Tensor> {
        let n = self.ndim();
        let (a, b) = (axis("transpose", d0, n)?, axis("transpose", d1, n)?);
        let mut perm: Vec<usize> = (0..n).collect();
        perm.swap(a, b);
        self.permute(&perm)
    }

    /// Transpose of a 2-D tensor.
    pub fn t(&self) -> Result<Tensor> {
        if self.ndim() != 2 {
            return invalid("t", format!("expects 2 dims, got shape {:?}", self.shape()));
        }
        self.transpose(0, 1)
    }
}
