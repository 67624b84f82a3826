//! The autocast policy: which ops run on f16 operands under [`autocast`], which store their
//! outputs in f16, and why the rest stay in f32. It is written here once; the ops ask
//! [`half_operands`].
//!
//! | f16 operands, f32 accumulation, **f16 output** | why |
//! |---|---|
//! | `conv2d` (input, im2col columns, weight copy, output; grouped ones too; one chunk), `linear` | the products are where the time goes and where tensor cores (cooperative matrices) help; accumulating in f32 keeps K-long sums exact enough, and each output is rounded once, after the bias and fused activation |
//! | their input gradients (`col2im` of f16 columns for a convolution) | an f16 activation's gradient is f16, as in PyTorch: half the bytes kept and moved in backward; the loss scale keeps it in range |
//!
//! | f16 storage, f32 math (kept f16 when the input is) | why |
//! |---|---|
//! | relu and the other elementwise ops, add, mul (and their backward); max and average pooling (and backward); batch norm's input and output; flatten and reshape | memory-bound: storing f16 halves their traffic and what backward keeps; values are widened to f32 as they are loaded, so the math is the f32 math |
//!
//! | stays f32 | why |
//! |---|---|
//! | `matmul_t`'s output | attention and the recurrent cells take it into softmax and gate math, which are f32 |
//! | softmax, log-softmax, cross-entropy, NLL, MSE, BCE (an f16 input is cast) | exp overflows f16 past 11, and the sums over classes lose digits in f16 |
//! | batch norm's statistics, weight, bias and their gradients; layer norm (input cast) | the mean and variance are sums over many elements, and 1/sqrt(var + eps) is ill-conditioned in f16 |
//! | reductions' results (sum, mean: f16 inputs are summed in f32) | long sums lose digits in f16 |
//! | the bias gradient and every weight gradient | they are the scaled f32 sums the scaler unscales and checks; the master weights they update are f32 |
//! | convolutions cut into several chunks, `cat`, `narrow`, `permute`, `index_select` (f16 inputs cast) | their copies move 32-bit words (not converted yet) |
//! | recurrent cells (the projections cast), dropout (the input cast to its f32 mask), embeddings | gate math in f32 by the policy; dropout's mask and embeddings not converted yet |
//!
//! Where f16 meets f32 (a binary op, the loss) the f16 side is cast to f32 by the `cast` op,
//! whose backward casts the gradient back; autograd stores every gradient as its tensor is
//! (a cast where an op returned the other type). Gradients of f16 values are where underflow
//! and overflow happen: the [`crate::amp::GradScaler`] scales the loss so they stay in f16's
//! range, and skips a step whose gradients overflowed.

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
