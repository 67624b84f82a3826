//! Neural-network layers and the [`Module`] trait.
//!
//! A module reports its own parameters and buffers (local names like `weight`,
//! `running_mean`) and its children (named fields, or `"0"`, `"1"`, ... in a
//! `Sequential`); the provided methods join them into PyTorch `state_dict` names such as
//! `features.0.weight` or `layer1.0.bn1.running_mean`.

pub mod activation;
pub mod attention;
pub mod conv;
pub mod dropout;
pub mod embedding;
pub mod init;
pub mod linear;
pub mod norm;
pub mod pool;
pub mod recurrent;
pub mod sequential;
pub mod transformer;

pub use activation::{Flatten, Gelu, Identity, LeakyRelu, Relu, Sigmoid, Tanh};
pub use conv::Conv2d;
pub use dropout::Dropout;
pub use embedding::Embedding;
pub use linear::Linear;
pub use norm::{BatchNorm, BatchNorm1d, BatchNorm2d, LayerNorm, LocalResponseNorm};
pub use pool::{AdaptiveAvgPool2d, AvgPool2d, MaxPool2d};
pub use sequential::Sequential;

use crate::error::{GraphError, Result};
use crate::tensor::Tensor;
use ferrograd_device::kernels::elementwise::UnaryOp;
use ferrograd_device::{Array, DType, Device};
use std::sync::atomic::{AtomicBool, Ordering};

/// A layer or model. Implement `forward`, and whichever of `own_parameters`,
/// `own_buffers`, `children` and `set_own_training` apply; the rest is provided.
///
/// ```ignore
/// struct Mlp { fc1: Linear, fc2: Linear }
/// impl Module for Mlp {
///     fn forward(&self, x: &Tensor) -> Result<Tensor> { self.fc2.forward(&self.fc1.forward(x)?.relu()?) }
///     fn children(&self) -> Vec<(String, &dyn Module)> { children![self; fc1, fc2] }
/// }
/// ```
pub trait Module: Send + Sync {
    fn forward(&self, x: &Tensor) -> Result<Tensor>;

    /// Parameters held directly by this module, with local names (`weight`, `bias`).
    fn own_parameters(&self) -> Vec<(String, Tensor)> {
        Vec::new()
    }

    /// Buffers (state that is saved but not trained) held directly by this module.
    fn own_buffers(&self) -> Vec<(String, Tensor)> {
        Vec::new()
    }

    /// Sub-modules, with the names that prefix their entries.
    fn children(&self) -> Vec<(String, &dyn Module)> {
        Vec::new()
    }

    /// React to train/eval mode (BatchNorm, Dropout); called on every module by `train`/`eval`.
    fn set_own_training(&self, _training: bool) {}

    /// The elementwise activation this module is, if it is one (`Relu`, ...).
    fn activation(&self) -> Option<UnaryOp> {
        None
    }

    /// `activation(self.forward(x))` in one step, for modules that fuse the activation into
    /// their own output (`Conv2d`, `Linear`); `None` where they do not. `Sequential` uses it
    /// for a layer followed by an activation.
    fn forward_then(&self, _x: &Tensor, _activation: UnaryOp) -> Option<Result<Tensor>> {
        None
    }

    // ---- provided ---------------------------------------------------------------

    /// `activation(self.forward(x))`, fused where the module can.
    fn forward_act(&self, x: &Tensor, activation: UnaryOp) -> Result<Tensor> {
        match self.forward_then(x, activation) {
            Some(y) => y,
            None => self.forward(x)?.unary(activation),
        }
    }

    /// Every parameter, named as PyTorch's `named_parameters()`.
    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        let mut out = self.own_parameters();
        for (name, child) in self.children() {
            out.extend(prefixed(&name, child.named_parameters()));
        }
        out
    }

    fn parameters(&self) -> Vec<Tensor> {
        self.named_parameters().into_iter().map(|(_, t)| t).collect()
    }

    /// Every buffer, named as PyTorch's `named_buffers()`.
    fn named_buffers(&self) -> Vec<(String, Tensor)> {
        let mut out = self.own_buffers();
        for (name, child) in self.children() {
            out.extend(prefixed(&name, child.named_buffers()));
        }
        out
    }

    /// Parameters and buffers in PyTorch's `state_dict()` order and naming.
    fn state_dict(&self) -> Vec<(String, Tensor)> {
        let mut out = self.own_parameters();
        out.extend(self.own_buffers());
        for (name, child) in self.children() {
            out.extend(prefixed(&name, child.state_dict()));
        }
        out
    }

    /// Copy values into this module's parameters and buffers (moved to their device).
    /// With `strict`, names missing from `state` or not in the module are an error; shape
    /// mismatches, dtypes other than the tensor's, and NaN or infinite values always are.
    /// Nothing is changed when an error is returned.
    fn load_state_dict(&self, state: &[(String, Array)], strict: bool) -> Result<()> {
        load_into(&self.state_dict(), state, strict, false)
    }

    /// `load_state_dict` that converts a dtype other than the tensor's when every value
    /// converts exactly (f16 into f32, whole numbers into u32, ...).
    fn load_state_dict_converting(&self, state: &[(String, Array)], strict: bool) -> Result<()> {
        load_into(&self.state_dict(), state, strict, true)
    }

    /// Number of trainable values.
    fn num_parameters(&self) -> usize {
        self.parameters().iter().map(Tensor::numel).sum()
    }

    /// Training mode (the default): BatchNorm uses batch statistics, Dropout drops.
    fn train(&self) {
        self.set_training(true)
    }

    /// Evaluation mode: BatchNorm uses running statistics, Dropout passes through.
    fn eval(&self) {
        self.set_training(false)
    }

    fn set_training(&self, training: bool) {
        self.set_own_training(training);
        for (_, child) in self.children() {
            child.set_training(training);
        }
    }

    /// Clear every parameter's gradient.
    fn zero_grad(&self) {
        for p in self.parameters() {
            p.zero_grad();
        }
    }

    /// Move every parameter and buffer to `device` in place (the tensors keep their identity,
    /// so create optimizers after moving).
    fn to_device(&self, device: &Device) -> Result<()> {
        for (_, t) in self.state_dict() {
            t.set_data(t.data().to_device(device)?);
        }
        Ok(())
    }
}

/// `children![self; a, b]` builds `children()`'s list from fields named like their entries.
#[macro_export]
macro_rules! children {
    ($s:ident; $($field:ident),* $(,)?) => {
        vec![$((stringify!($field).to_string(), &$s.$field as &dyn $crate::nn::Module)),*]
    };
}

/// `entries` with `prefix.` in front of every name.
pub fn prefixed(prefix: &str, entries: Vec<(String, Tensor)>) -> Vec<(String, Tensor)> {
    entries.into_iter().map(|(n, t)| (format!("{prefix}.{n}"), t)).collect()
}

/// Check `state` against `targets` (names, shapes, dtypes, finite values), then copy it in.
/// A dtype other than the target's is refused unless `convert` is set and every value
/// survives the conversion exactly.
pub fn load_into(targets: &[(String, Tensor)], state: &[(String, Array)], strict: bool, convert: bool) -> Result<()> {
    let mut problems = Vec::new();
    let mut updates = Vec::new();
    for (name, t) in targets {
        match state.iter().find(|(n, _)| n == name) {
            None if strict => problems.push(format!("missing key {name}")),
            None => {}
            Some((_, a)) if a.shape() != t.shape().as_slice() => {
                problems.push(format!("{name}: shape {:?} in the state, {:?} in the module", a.shape(), t.shape()))
            }
            Some((_, a)) => match check_values(name, a, t.dtype(), convert)? {
                Some(problem) => problems.push(problem),
                None => updates.push((t, a)),
            },
        }
    }
    if strict {
        for (name, _) in state {
            if !targets.iter().any(|(n, _)| n == name) {
                problems.push(format!("unexpected key {name}"));
            }
        }
    }
    if !problems.is_empty() {
        return Err(GraphError::StateDict(problems.join("; ")));
    }
    for (t, a) in updates {
        t.set_data(to_dtype(a, &t.device(), t.dtype())?);
    }
    Ok(())
}

/// What is wrong with loading `a` into a tensor of `dtype`, if anything: a different dtype
/// (unless `convert` and lossless), or values that are NaN or infinite.
fn check_values(name: &str, a: &Array, dtype: DType, convert: bool) -> Result<Option<String>> {
    if a.dtype() != dtype && !convert {
        return Ok(Some(format!(
            "{name}: dtype {:?} in the state, {dtype:?} in the module (a lossless conversion must be asked for)",
            a.dtype()
        )));
    }
    // loading happens rarely, so reading every array back once is fine
    let values = a.to_f64_vec()?;
    let non_finite = values.iter().filter(|v| !v.is_finite()).count();
    if non_finite > 0 {
        return Ok(Some(format!("{name}: {non_finite} of its {} values are NaN or infinite", values.len())));
    }
    if a.dtype() != dtype {
        if let Some(v) = values.iter().find(|&&v| !survives(v, dtype)) {
            return Ok(Some(format!("{name}: {v} ({:?}) does not convert exactly to {dtype:?}", a.dtype())));
        }
    }
    Ok(None)
}

/// Whether `v` is exactly representable in `dtype`.
fn survives(v: f64, dtype: DType) -> bool {
    match dtype {
        DType::F32 => (v as f32) as f64 == v,
        DType::F16 => half::f16::from_f64(v).to_f64() == v,
        DType::U32 => v.fract() == 0.0 && (0.0..=u32::MAX as f64).contains(&v),
    }
}

/// `a` on `device` as `dtype`, its values already checked to survive the conversion.
fn to_dtype(a: &Array, device: &Device, dtype: DType) -> Result<Array> {
    if a.dtype() == dtype {
        return crate::tensor::owned_copy(a, device);
    }
    let v = a.to_f64_vec()?;
    Ok(match dtype {
        DType::F32 => Array::from_f64(device, &v, a.shape())?,
        DType::U32 => Array::from_u32(device, &v.iter().map(|&x| x as u32).collect::<Vec<_>>(), a.shape())?,
        DType::F16 => {
            Array::from_f16(device, &v.iter().map(|&x| half::f16::from_f64(x)).collect::<Vec<_>>(), a.shape())?
        }
    })
}

/// The train/eval flag of a layer whose behaviour depends on it.
#[derive(Debug)]
pub struct Mode(AtomicBool);

impl Mode {
    pub fn new() -> Mode {
        Mode(AtomicBool::new(true))
    }
    pub fn training(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
    pub fn set(&self, training: bool) {
        self.0.store(training, Ordering::Relaxed)
    }
}

impl Default for Mode {
    fn default() -> Self {
        Mode::new()
    }
}

/// Any `Fn(&Tensor) -> Result<Tensor>` as a parameterless module (for `Sequential`).
pub struct Lambda<F>(pub F);

impl<F: Fn(&Tensor) -> Result<Tensor> + Send + Sync> Module for Lambda<F> {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        (self.0)(x)
    }
}

/// Boxed modules are modules.
impl Module for Box<dyn Module> {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        (**self).forward(x)
    }
    fn own_parameters(&self) -> Vec<(String, Tensor)> {
        (**self).own_parameters()
    }
    fn own_buffers(&self) -> Vec<(String, Tensor)> {
        (**self).own_buffers()
    }
    fn children(&self) -> Vec<(String, &dyn Module)> {
        (**self).children()
    }
    fn set_own_training(&self, training: bool) {
        (**self).set_own_training(training)
    }
    fn activation(&self) -> Option<UnaryOp> {
        (**self).activation()
    }
    fn forward_then(&self, x: &Tensor, activation: UnaryOp) -> Option<Result<Tensor>> {
        (**self).forward_then(x, activation)
    }
    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        (**self).named_parameters()
    }
    fn named_buffers(&self) -> Vec<(String, Tensor)> {
        (**self).named_buffers()
    }
    fn state_dict(&self) -> Vec<(String, Tensor)> {
        (**self).state_dict()
    }
    fn load_state_dict(&self, state: &[(String, Array)], strict: bool) -> Result<()> {
        (**self).load_state_dict(state, strict)
    }
    fn set_training(&self, training: bool) {
        (**self).set_training(training)
    }
}
