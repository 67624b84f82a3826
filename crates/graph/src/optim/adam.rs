//! Adam and AdamW (PyTorch's `torch.optim.Adam` / `AdamW`), fused kernels over many
//! parameters per launch. Adam adds `weight_decay * param` to the gradient; AdamW decays the
//! parameter directly.
//!
//! The step counts live on the host, which works out the bias corrections in f64, until the
//! first step under the loss scaler: from then on they live on the device
//! (`AdamCount::Device`), advanced only by steps the scaler does not skip, and the kernel works
//! out the corrections from them in f32, as `torch.optim.Adam(capturable=True)` does. So a
//! skipped step leaves `<param>.step` where it was, as `GradScaler.step` does in PyTorch.

use crate::error::Result;
use crate::optim::{state_entry, state_step, step_array, Optimizer};
use crate::range::{Allowed, OutOfRange};
use crate::tensor::Tensor;
use ferrograd_device::kernels::copy::narrow;
use ferrograd_device::kernels::optim::{adam_step, AdamCount, AdamParams, AdamTensors};
use ferrograd_device::Array;
use std::collections::BTreeMap;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamConfig {
    pub lr: f64,
    pub betas: (f64, f64),
    pub eps: f64,
    pub weight_decay: f64,
}

impl AdamConfig {
    /// Every setting finite and in range: lr and weight decay >= 0, betas in [0, 1), eps > 0.
    pub fn validate(&self) -> std::result::Result<(), OutOfRange> {
        Allowed::NonNegative.check("lr", self.lr)?;
        Allowed::Fraction.check("beta1", self.betas.0)?;
        Allowed::Fraction.check("beta2", self.betas.1)?;
        Allowed::Positive.check("eps", self.eps)?;
        Allowed::NonNegative.check("weight_decay", self.weight_decay)
    }
}

impl Default for AdamConfig {
    /// PyTorch's Adam defaults (AdamW's default weight decay is 0.01: set it).
    fn default() -> Self {
        AdamConfig { lr: 1e-3, betas: (0.9, 0.999), eps: 1e-8, weight_decay: 0.0 }
    }
}

/// (param index, param, grad, f16 copy) of a parameter with a gradient.
type Update = (usize, Array, Array, Option<Array>);

pub struct Adam {
    params: Vec<(String, Tensor)>,
    config: AdamConfig,
    decoupled: bool,
    /// (exp_avg, exp_avg_sq) per parameter, made on its first step
    moments: Vec<Option<(Array, Array)>>,
    /// steps attempted per parameter: the step counts, while they live on the host
    steps: Vec<u64>,
    /// the step counts on the device once a step ran under the loss scaler: two cells per
    /// parameter, cell `steps[i] % 2` of pair `i` holding parameter `i`'s count
    device_counts: Option<Array>,
}

impl Adam {
    /// Adam (L2 weight decay added to the gradient).
    pub fn new(params: Vec<(String, Tensor)>, config: AdamConfig) -> Adam {
        Adam::make(params, config, false)
    }

    /// AdamW (decoupled weight decay).
    pub fn adamw(params: Vec<(String, Tensor)>, config: AdamConfig) -> Adam {
        Adam::make(params, config, true)
    }

    fn make(params: Vec<(String, Tensor)>, config: AdamConfig, decoupled: bool) -> Adam {
        let n = params.len();
        Adam { params, config, decoupled, moments: vec![None; n], steps: vec![0; n], device_counts: None }
    }

    pub fn config(&self) -> &AdamConfig {
        &self.config
    }
}

impl Adam {
    /// One update of every parameter with a gradient; skipped on the device by `skip`'s
    /// found-inf (mixed precision), and refreshing each parameter's f16 copy where it has one.
    fn update(&mut self, skip: Option<&Array>) -> Result<()> {
        self.validate()?;
        let c = self.config;
        if skip.is_some() && self.device_counts.is_none() {
            self.device_counts = self.counts_on_device()?;
        }
        let mut by_step: BTreeMap<u64, Vec<Update>> = BTreeMap::new();
        for (i, (_, p)) in self.params.iter().enumerate() {
            let Some(grad) = p.grad() else { continue };
            let param = p.data();
            if self.moments[i].is_none() {
                let zeros = || Array::zeros(&param.device(), param.shape());
                self.moments[i] = Some((zeros()?, zeros()?));
            }
            self.steps[i] += 1;
            by_step.entry(self.steps[i]).or_default().push((i, param, grad, p.half_copy()));
        }
        for (step, updates) in by_step {
            let hp = AdamParams {
                lr: c.lr as f32,
                beta1: c.betas.0 as f32,
                beta2: c.betas.1 as f32,
                eps: c.eps as f32,
                weight_decay: c.weight_decay as f32,
                decoupled_weight_decay: self.decoupled,
                step: step as u32,
            };
            let tensors: Vec<AdamTensors> = updates
                .iter()
                .map(|(i, param, grad, half)| {
                    let (m, v) = self.moments[*i].as_ref().unwrap();
                    AdamTensors { param, grad, m, v, half: half.as_ref() }
                })
                .collect();
            let pairs: Vec<usize> = updates.iter().map(|u| u.0).collect();
            let count = match &self.device_counts {
                Some(counts) => AdamCount::Device { counts, pairs: &pairs },
                None => AdamCount::Host,
            };
            adam_step(&tensors, &hp, count, skip)?;
        }
        Ok(())
    }

    /// The host's step counts as a device array of `AdamCount::Device` pairs (both cells of
    /// a pair hold the count), on the parameters' device; `None` without parameters.
    fn counts_on_device(&self) -> Result<Option<Array>> {
        let Some((_, first)) = self.params.first() else { return Ok(None) };
        let cells: Vec<u32> = self.steps.iter().flat_map(|&s| [s as u32, s as u32]).collect();
        Ok(Some(Array::from_u32(&first.device(), &cells, &[cells.len()])?))
    }

    /// Parameter `i`'s step count: the host's, or its cell of the device counts (a copy on
    /// the device: nothing waits here).
    fn step_count(&self, i: usize) -> Array {
        match &self.device_counts {
            None => step_array(self.steps[i]),
            Some(counts) => {
                let cell = 2 * i + (self.steps[i] % 2) as usize;
                narrow(counts, 0, cell, 1)
                    .and_then(|a| a.reshape(&[]))
                    .expect("a count cell of the optimizer's own counts array")
            }
        }
    }
}

impl Optimizer for Adam {
    fn step(&mut self) -> Result<()> {
        self.update(None)
    }

    fn step_unless_overflow(&mut self, scaler_state: &Array) -> Result<()> {
        self.update(Some(scaler_state))
    }

    fn validate(&self) -> Result<()> {
        Ok(self.config.validate()?)
    }

    fn params(&self) -> &[(String, Tensor)] {
        &self.params
    }

    fn lr(&self) -> f64 {
        self.config.lr
    }

    fn set_lr(&mut self, lr: f64) {
        self.config.lr = lr;
    }

    fn state_dict(&self) -> Vec<(String, Array)> {
        let mut out = Vec::new();
        for (i, (name, _)) in self.params.iter().enumerate() {
            if let Some((m, v)) = &self.moments[i] {
                out.push((format!("{name}.exp_avg"), m.clone()));
                out.push((format!("{name}.exp_avg_sq"), v.clone()));
            }
            out.push((format!("{name}.step"), self.step_count(i)));
        }
        out
    }

    fn load_state_dict(&mut self, state: &[(String, Array)]) -> Result<()> {
        for (i, (name, p)) in self.params.iter().enumerate() {
            let (shape, device) = (p.shape(), p.device());
            let m = state_entry(state, &format!("{name}.exp_avg"), &shape, &device)?;
            let v = state_entry(state, &format!("{name}.exp_avg_sq"), &shape, &device)?;
            self.moments[i] = m.zip(v);
            self.steps[i] = state_step(state, &format!("{name}.step"))?.unwrap_or(0);
        }
        // the next step under the scaler moves the restored counts to the device
        self.device_counts = None;
        Ok(())
    }
}
