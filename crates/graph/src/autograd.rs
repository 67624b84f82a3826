//! The tape: each op's output keeps a `Node` (its inputs and a backward closure), so the
//! graph is built as the program runs. `backward` walks it in reverse topological order,
//! summing gradients with kernels (never reading values back).

use crate::error::{GraphError, Result};
use crate::tensor::Tensor;
use ferrograd_device::kernels::copy::cast;
use ferrograd_device::kernels::elementwise::{binary, BinaryOp};
use ferrograd_device::{Array, DType};
use std::cell::Cell;
use std::collections::{HashMap, HashSet};

/// Gradients of an op's inputs given the gradient of its output. `needs[i]` says whether
/// input `i` wants a gradient; the closure may return `None` for the others.
pub type BackwardFn = Box<dyn Fn(&Array, &[bool]) -> Result<Vec<Option<Array>>> + Send + Sync>;

pub(crate) struct Node {
    pub op: &'static str,
    pub inputs: Vec<Tensor>,
    pub backward: BackwardFn,
}

thread_local! {
    static NO_GRAD_DEPTH: Cell<usize> = const { Cell::new(0) };
}

/// While alive, ops record nothing on the tape (like `torch.no_grad()`). Made by [`no_grad`].
pub struct NoGradGuard {
    _not_send: std::marker::PhantomData<*const ()>,
}

/// Turn off tape recording on this thread until the returned guard drops.
///
/// ```ignore
/// let _g = no_grad();
/// let y = model.forward(&x)?; // no graph kept
/// ```
pub fn no_grad() -> NoGradGuard {
    NO_GRAD_DEPTH.with(|d| d.set(d.get() + 1));
    NoGradGuard { _not_send: std::marker::PhantomData }
}

impl Drop for NoGradGuard {
    fn drop(&mut self) {
        NO_GRAD_DEPTH.with(|d| d.set(d.get() - 1));
    }
}

/// Whether ops record onto the tape on this thread.
pub fn is_grad_enabled() -> bool {
    NO_GRAD_DEPTH.with(|d| d.get() == 0)
}

/// Sum two gradients with a kernel (shapes are equal by construction).
pub(crate) fn accumulate(old: Option<Array>, new: Array) -> Result<Array> {
    match old {
        None => Ok(new),
        Some(o) => Ok(binary(BinaryOp::Add, &o, &new)?),
    }
}

/// A gradient in its tensor's storage type: an f16 activation's gradient is f16 (as PyTorch's
/// are), an f32 tensor's f32. Ops produce it so where they can; this cast covers the rest (a
/// bias-style reduction of an f16 gradient, which sums in f32).
fn as_stored(g: Array, input: &Tensor) -> Result<Array> {
    let want = input.dtype();
    if g.dtype() == want || !matches!((g.dtype(), want), (DType::F32, DType::F16) | (DType::F16, DType::F32)) {
        return Ok(g);
    }
    Ok(cast(&g, want)?)
}

/// Tensors reachable from `root` through nodes that require grad, inputs before outputs.
fn topological_order(root: &Tensor) -> Vec<Tensor> {
    let mut order = Vec::new();
    let mut seen = HashSet::new();
    // (tensor, children pushed) — iterative so long recurrent graphs cannot overflow the stack
    let mut stack = vec![(root.clone(), false)];
    while let Some((t, expanded)) = stack.pop() {
        if expanded {
            order.push(t);
            continue;
        }
        if !seen.insert(t.id()) {
            continue;
        }
        stack.push((t.clone(), true));
        if let Some(node) = t.node() {
            for input in &node.inputs {
                if input.requires_grad() && !seen.contains(&input.id()) {
                    stack.push((input.clone(), false));
                }
            }
        }
    }
    order
}

/// Reverse-mode sweep from `root` seeded with `seed` (same shape as `root`). Leaves that
/// require grad get the result added to their `.grad()`.
pub(crate) fn run_backward(root: &Tensor, seed: Array) -> Result<()> {
    if !root.requires_grad() {
        return Err(GraphError::Backward(format!(
            "tensor of shape {:?} does not require grad (no parameter or requires_grad input reaches it)",
            root.shape()
        )));
    }
    if seed.shape() != root.shape().as_slice() {
        return Err(GraphError::Backward(format!(
            "seed gradient shape {:?} differs from the tensor's shape {:?}",
            seed.shape(),
            root.shape()
        )));
    }
    let order = topological_order(root);
    let mut grads: HashMap<u64, Array> = HashMap::new();
    grads.insert(root.id(), seed);
    for t in order.iter().rev() {
        let Some(g) = grads.remove(&t.id()) else { continue };
        let Some(node) = t.node() else {
            t.accumulate_grad(g)?;
            continue;
        };
        let needs: Vec<bool> = node.inputs.iter().map(Tensor::requires_grad).collect();
        let input_grads = (node.backward)(&g, &needs)?;
        for ((input, ig), need) in node.inputs.iter().zip(input_grads).zip(&needs) {
            let (Some(ig), true) = (ig, *need) else { continue };
            if ig.shape() != input.shape().as_slice() {
                return Err(GraphError::Backward(format!(
                    "{}: gradient of shape {:?} for an input of shape {:?} (internal error)",
                    node.op,
                    ig.shape(),
                    input.shape()
                )));
            }
            let ig = as_stored(ig, input)?;
            let old = grads.remove(&input.id());
            grads.insert(input.id(), accumulate(old, ig)?);
        }
    }
    Ok(())
}
