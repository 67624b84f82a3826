//! Embedding lookup: rows of a `[V, D]` table picked by u32 indices of any shape.

use crate::error::shape_err;
use crate::error::Result;
use crate::tensor::Tensor;

/// `weight [V, D]` rows at `indices [...]` -> `[..., D]`. The backward sums the gradients
/// of repeated indices into their row.
pub fn embedding(indices: &Tensor, weight: &Tensor) -> Result<Tensor> {
    let ws = weight.shape();
    if ws.len() != 2 {
        return shape_err("embedding", format!("weight {ws:?} must be [num_embeddings, dim]"));
    }
    let ishape = indices.shape();
    let flat = Tensor::new(indices.data().reshape(&[indices.numel()])?);
    let mut out_shape = ishape;
    out_shape.push(ws[1]);
    weight.index_select(0, &flat)?.reshape_to(&out_shape)
}
