//! Adam and AdamW (PyTorch's `torch.optim.Adam` / `AdamW`), one fused kernel per parameter.
//! Adam adds `weight_decay * param` to the gradient; AdamW decays the parameter directly.

use crate::error::Result;
use crate::optim::{amp_update, state_entry, state_step, step_array, Optimizer};
use crate::range::{Allowed, OutOfRange};
use crate::tensor::Tensor;
use ferrograd_device::kernels::amp::adam_step_amp;
use ferrograd_device::kernels::optim::{adam_step, AdamParams};
use ferrograd_device::Array;

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

pub struct Adam {
    params: Vec<(String, Tensor)>,
    config: AdamConfig,
    decoupled: bool,
    /// (exp_avg, exp_avg_sq) per parameter, made on its first step
    moments: Vec<Option<(Array, Array)>>,
    steps: Vec<u64>,
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
        Adam { params, config, decoupled, moments: vec![None; n], steps: vec![0; n] }
    }

    pub fn config(&self) -> &AdamConfig {
        &self.config
    }
}

impl Adam {
    /// One update of every parameter with a gradient; skipped on the device by `skip`'s
    /// found-inf (mixed precision), and refreshing each parameter's f16 copy where it has one.
    /// A skipped step still counts in `<param>.step` (the host does not know it was skipped).
    fn update(&mut self, skip: Option<&Array>) -> Result<()> {
        self.validate()?;
        let c = self.config;
        for (i, (_, p)) in self.params.iter().enumerate() {
            let Some(grad) = p.grad() else { continue };
            let param = p.data();
            if self.moments[i].is_none() {
                let zeros = || Array::zeros(&param.device(), param.shape());
                self.moments[i] = Some((zeros()?, zeros()?));
            }
            self.steps[i] += 1;
            let hp = AdamParams {
                lr: c.lr as f32,
                beta1: c.betas.0 as f32,
                beta2: c.betas.1 as f32,
                eps: c.eps as f32,
                weight_decay: c.weight_decay as f32,
                decoupled_weight_decay: self.decoupled,
                step: self.steps[i] as u32,
            };
            let (m, v) = self.moments[i].as_ref().unwrap();
            match amp_update(p, skip)? {
                Some((state, half)) => adam_step_amp(&param, &grad, m, v, half.as_ref(), &state, &hp)?,
                None => adam_step(&param, &grad, m, v, &hp)?,
            }
        }
        Ok(())
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
            out.push((format!("{name}.step"), step_array(self.steps[i])));
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
        Ok(())
    }
}
