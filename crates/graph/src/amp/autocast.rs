//! The autocast policy: which ops run on f16 operands under [`autocast`], and why the rest
//! stay in f32. It is written here once; the ops ask [`half_operands`].
//!
//! | runs in f16 (operands), f32 accumulation and f32 output | why |
//! |---|---|
//! | `conv2d` (its im2col columns and weight; grouped ones too), `linear`, `matmul_t` | the products are where the time goes and where tensor cores (cooperative matrices) help; accumulating in f32 keeps K-long sums exact enough |
//! | their backward products (the upstream gradient, cast) | the same products, transposed |
//!
//! | stays f32 | why |
//! |---|---|
//! | the products' outputs (hence relu, add, pooling, flatten after them) | an f32 store costs one write per output against K f16 reads per output; f16 activation storage between ops is not built yet |
//! | softmax, log-softmax, cross-entropy, NLL | exp overflows f16 past 11, and the sums over classes lose digits in f16 |
//! | batch norm, layer norm | the mean and variance are sums over many elements, and 1/sqrt(var + eps) is ill-conditioned in f16 |
//! | reductions (sum, mean) | long sums lose digits in f16 |
//! | the bias gradient and every weight gradient | they are the scaled f32 sums the scaler unscales and checks; the master weights they update are f32 |
//! | recurrent cells, attention's softmax, dropout masks, embeddings | not converted yet (their products still take f16 operands through `matmul_t`/`linear`) |
//!
//! Gradients of the f16 operands (the upstream gradient cast for the backward products) are
//! where underflow and overflow happen: the [`crate::amp::GradScaler`] scales the loss so
//! they stay in f16's range, and skips a step whose gradients overflowed.

use crate::tensor::Tensor;
use ferrograd_device::kernels::copy::cast;
use ferrograd_device::{Array, DType, Device};
use std::cell::Cell;

/// What a training run computes its products in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Precision {
    /// everything in f32
    #[default]
    F32,
    /// the products on f16 operands with f32 accumulation, the rest as the policy says
    Mixed,
}

impl Precision {
    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::Mixed => "mixed",
        }
    }

    /// `"f32"` or `"mixed"`.
    pub fn parse(s: &str) -> Option<Precision> {
        match s {
            "f32" => Some(Precision::F32),
            "mixed" => Some(Precision::Mixed),
            _ => None,
        }
    }
}

thread_local! {
    static MIXED_DEPTH: Cell<usize> = const { Cell::new(0) };
}

/// While alive (and made with `Precision::Mixed`), the products on this thread run on f16
/// operands. Made by [`autocast`].
pub struct AutocastGuard {
    mixed: bool,
    _not_send: std::marker::PhantomData<*const ()>,
}

/// Turn the policy on for this thread until the guard drops (`Precision::F32` changes
/// nothing, so a caller can pass its setting through).
pub fn autocast(precision: Precision) -> AutocastGuard {
    let mixed = precision == Precision::Mixed;
    if mixed {
        MIXED_DEPTH.with(|d| d.set(d.get() + 1));
    }
    AutocastGuard { mixed, _not_send: std::marker::PhantomData }
}

impl Drop for AutocastGuard {
    fn drop(&mut self) {
        if self.mixed {
            MIXED_DEPTH.with(|d| d.set(d.get() - 1));
        }
    }
}

/// Whether an autocast scope is open on this thread.
pub fn autocast_enabled() -> bool {
    MIXED_DEPTH.with(|d| d.get() > 0)
}

/// Whether a product on `device` takes f16 operands now: inside an autocast scope, on the CPU
/// reference device (which rounds as f16 would) or an adapter with f16. Elsewhere the
/// product stays f32, as PyTorch's autocast leaves ops alone on a device it does not cover.
pub(crate) fn half_operands(device: &Device) -> bool {
    autocast_enabled()
        && match device {
            Device::Cpu => true,
            Device::Gpu(g) => g.caps().f16,
        }
}

/// A product's operand: its f16 copy (a parameter's is kept by the optimizer) when
/// `half`, else the values themselves.
pub(crate) fn operand(t: &Tensor, half: bool) -> crate::Result<Array> {
    if half {
        t.half_data()
    } else {
        Ok(t.data())
    }
}

/// `a` in f16 when `half` (an upstream gradient or im2col columns for a product).
pub(crate) fn half_if(a: Array, half: bool) -> crate::Result<Array> {
    Ok(if half { cast(&a, DType::F16)? } else { a })
}
