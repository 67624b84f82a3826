//! `Tensor`: an `Array` on a device plus what autodiff needs (whether it requires grad,
//! its accumulated gradient, and the tape node of the op that made it). Cloning a
//! `Tensor` is cheap and shares everything, like a Python reference.

use crate::autograd::{is_grad_enabled, run_backward, BackwardFn, Node};
use crate::error::{GraphError, Result};
use ferrograd_device::kernels::copy::cast;
use ferrograd_device::kernels::{elementwise, fill};
use ferrograd_device::{Array, DType, Device};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

struct Inner {
    id: u64,
    data: RwLock<Array>,
    requires_grad: AtomicBool,
    grad: Mutex<Option<Array>>,
    node: Option<Node>,
    /// a parameter's f16 copy for mixed precision: made by its first autocast product,
    /// refreshed by the optimizer's update launch, dropped by `set_data`
    half: Mutex<Option<Array>>,
}

#[derive(Clone)]
pub struct Tensor {
    inner: Arc<Inner>,
}

impl Tensor {
    fn make(data: Array, requires_grad: bool, node: Option<Node>) -> Tensor {
        Tensor {
            inner: Arc::new(Inner {
                id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
                data: RwLock::new(data),
                requires_grad: AtomicBool::new(requires_grad),
                grad: Mutex::new(None),
                node,
                half: Mutex::new(None),
            }),
        }
    }

    // ---- construction -------------------------------------------------------------

    /// A leaf tensor holding `data` (no grad).
    pub fn new(data: Array) -> Tensor {
        Tensor::make(data, false, None)
    }

    /// A leaf that requires grad: a trainable parameter.
    pub fn parameter(data: Array) -> Tensor {
        Tensor::make(data, true, None)
    }

    pub fn from_f32(device: &Device, data: &[f32], shape: &[usize]) -> Result<Tensor> {
        Ok(Tensor::new(Array::from_f32(device, data, shape)?))
    }

    /// f64 values (kept in double precision on the CPU device, f32 on a GPU).
    pub fn from_f64(device: &Device, data: &[f64], shape: &[usize]) -> Result<Tensor> {
        Ok(Tensor::new(Array::from_f64(device, data, shape)?))
    }

    /// Integer indices (class targets, token ids) as a u32 tensor.
    pub fn from_u32(device: &Device, data: &[u32], shape: &[usize]) -> Result<Tensor> {
        Ok(Tensor::new(Array::from_u32(device, data, shape)?))
    }

    /// A one-element tensor of shape `[]`.
    pub fn scalar(device: &Device, value: f32) -> Result<Tensor> {
        Tensor::full(device, &[], value)
    }

    pub fn full(device: &Device, shape: &[usize], value: f32) -> Result<Tensor> {
        Ok(Tensor::new(fill::full(device, shape, DType::F32, value)?))
    }

    pub fn zeros(device: &Device, shape: &[usize]) -> Result<Tensor> {
        Tensor::full(device, shape, 0.0)
    }

    pub fn ones(device: &Device, shape: &[usize]) -> Result<Tensor> {
        Tensor::full(device, shape, 1.0)
    }

    /// The output of an op: records a tape node when grad is enabled and an input requires
    /// grad; otherwise a plain leaf. `backward` maps the output's gradient to the inputs'.
    pub fn from_op(
        op: &'static str,
        data: Array,
        inputs: &[&Tensor],
        backward: impl Fn(&Array, &[bool]) -> Result<Vec<Option<Array>>> + Send + Sync + 'static,
    ) -> Tensor {
        if !is_grad_enabled() || !inputs.iter().any(|t| t.requires_grad()) {
            return Tensor::new(data);
        }
        let backward: BackwardFn = Box::new(backward);
        let node = Node { op, inputs: inputs.iter().map(|&t| t.clone()).collect(), backward };
        Tensor::make(data, true, Some(node))
    }

    // ---- accessors ----------------------------------------------------------------

    pub(crate) fn id(&self) -> u64 {
        self.inner.id
    }

    pub(crate) fn node(&self) -> Option<&Node> {
        self.inner.node.as_ref()
    }

    /// The values (shares storage; cheap).
    pub fn data(&self) -> Array {
        self.inner.data.read().unwrap().clone()
    }

    /// Replace the values in place (optimizers, `load_state_dict`). The shape may change
    /// only for leaves; every clone of this tensor sees the new values.
    pub fn set_data(&self, data: Array) {
        *self.inner.data.write().unwrap() = data;
        *self.inner.half.lock().unwrap() = None;
    }

    /// The f16 copy of a parameter (a leaf that requires grad), made on first use and kept up
    /// to date by the optimizers, which write it in their update launch; for any other f32
    /// tensor a fresh cast.
    pub(crate) fn half_data(&self) -> Result<Array> {
        if !(self.is_leaf() && self.requires_grad()) {
            return Ok(cast(&self.data(), DType::F16)?);
        }
        let mut slot = self.inner.half.lock().unwrap();
        if let Some(h) = slot.as_ref() {
            return Ok(h.clone());
        }
        let h = cast(&self.data(), DType::F16)?;
        *slot = Some(h.clone());
        Ok(h)
    }

    /// The parameter's f16 copy, if a product under autocast made one (the optimizers refresh it).
    pub fn half_copy(&self) -> Option<Array> {
        self.inner.half.lock().unwrap().clone()
    }

    pub fn shape(&self) -> Vec<usize> {
        self.inner.data.read().unwrap().shape().to_vec()
    }

    pub fn ndim(&self) -> usize {
        self.inner.data.read().unwrap().ndim()
    }

    pub fn numel(&self) -> usize {
        self.inner.data.read().unwrap().numel()
    }

    /// Size of one dimension; negative `dim` counts from the end.
    pub fn size(&self, dim: isize) -> Result<usize> {
        let shape = self.shape();
        let d = crate::ops::axis("size", dim, shape.len())?;
        Ok(shape[d])
    }

    pub fn dtype(&self) -> DType {
        self.inner.data.read().unwrap().dtype()
    }

    pub fn device(&self) -> Device {
        self.inner.data.read().unwrap().device()
    }

    /// Whether gradients flow to this tensor (a parameter, or an op output that depends on one).
    pub fn requires_grad(&self) -> bool {
        self.inner.requires_grad.load(Ordering::Relaxed)
    }

    /// Mark a leaf as requiring grad (like `x.requires_grad_()`); returns the same tensor.
    pub fn requires_grad_(self, on: bool) -> Result<Tensor> {
        if self.inner.node.is_some() && !on {
            return Err(GraphError::Backward("requires_grad_(false) on a non-leaf tensor: use detach()".into()));
        }
        self.inner.requires_grad.store(on, Ordering::Relaxed);
        Ok(self)
    }

    /// Whether this tensor was made by the user rather than by an op.
    pub fn is_leaf(&self) -> bool {
        self.inner.node.is_none()
    }

    /// The op that made this tensor, if it is on the tape.
    pub fn grad_fn(&self) -> Option<&'static str> {
        self.inner.node.as_ref().map(|n| n.op)
    }

    /// The gradient accumulated by `backward` calls (leaves only), if any.
    pub fn grad(&self) -> Option<Array> {
        self.inner.grad.lock().unwrap().clone()
    }

    /// Replace (or clear) the accumulated gradient.
    pub fn set_grad(&self, grad: Option<Array>) {
        *self.inner.grad.lock().unwrap() = grad;
    }

    /// Clear the gradient (PyTorch's `zero_grad(set_to_none=True)`).
    pub fn zero_grad(&self) {
        self.set_grad(None);
    }

    pub(crate) fn accumulate_grad(&self, g: Array) -> Result<()> {
        let mut slot = self.inner.grad.lock().unwrap();
        let old = slot.take();
        *slot = Some(crate::autograd::accumulate(old, g)?);
        Ok(())
    }

    /// Same values, cut from the tape, not requiring grad.
    pub fn detach(&self) -> Tensor {
        Tensor::new(self.data())
    }

    // ---- autodiff -----------------------------------------------------------------

    /// Backpropagate from a one-element tensor (seed 1). Gradients add into the leaves'
    /// `.grad()` (call `zero_grad` between steps). Records kernels only; never waits.
    pub fn backward(&self) -> Result<()> {
        if self.numel() != 1 {
            return Err(GraphError::Backward(format!(
                "backward() on a tensor of shape {:?}: only one-element tensors get an implicit seed; use backward_with(grad)",
                self.shape()
            )));
        }
        let seed = fill::full(&self.device(), &self.shape(), DType::F32, 1.0)?;
        run_backward(self, seed)
    }

    /// Backpropagate with an explicit seed gradient of this tensor's shape.
    pub fn backward_with(&self, grad: &Array) -> Result<()> {
        if !grad.device().same(&self.device()) {
            return Err(GraphError::DeviceMismatch {
                op: "backward",
                left: self.device().name(),
                right: grad.device().name(),
            });
        }
        run_backward(self, grad.clone())
    }

    // ---- host transfer --------------------------------------------------------------

    /// A copy on `device`; differentiable (the gradient is copied back).
    pub fn to(&self, device: &Device) -> Result<Tensor> {
        let src = self.device();
        if src.same(device) {
            return Ok(self.clone());
        }
        let out = self.data().to_device(device)?;
        Ok(Tensor::from_op("to", out, &[self], move |g, _| Ok(vec![Some(g.to_device(&src)?)])))
    }

    /// The values as f32 (a GPU tensor is read back: one submit + wait).
    pub fn to_vec(&self) -> Result<Vec<f32>> {
        Ok(self.data().to_f32_vec()?)
    }

    pub fn to_vec_f64(&self) -> Result<Vec<f64>> {
        Ok(self.data().to_f64_vec()?)
    }

    pub fn to_vec_u32(&self) -> Result<Vec<u32>> {
        Ok(self.data().to_u32_vec()?)
    }

    /// The value of a one-element tensor (reads back: one wait on a GPU).
    pub fn item(&self) -> Result<f64> {
        Ok(self.data().item()?)
    }
}

/// `a` on `device` in storage of its own (in-place kernels may then update it freely).
pub(crate) fn owned_copy(a: &Array, device: &Device) -> Result<Array> {
    if !a.device().same(device) {
        return Ok(a.to_device(device)?);
    }
    match a.dtype() {
        DType::F32 => scale(a, 1.0),
        _ => Ok(Array::from_f64(device, &a.to_f64_vec()?, a.shape())?.with_dtype(a.dtype())),
    }
}

/// `a * s` as a kernel (used by backward closures).
pub(crate) fn scale(a: &Array, s: f32) -> Result<Array> {
    Ok(elementwise::binary_scalar(elementwise::BinaryOp::Mul, a, s, elementwise::ScalarSide::Right)?)
}

impl std::fmt::Debug for Tensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tensor({:?}, {}, {:?}", self.shape(), self.dtype(), self.device())?;
        if let Some(op) = self.grad_fn() {
            write!(f, ", grad_fn={op}")?;
        } else if self.requires_grad() {
            write!(f, ", requires_grad")?;
        }
        f.write_str(")")
    }
}
