//! SGD with momentum, dampening, Nesterov and weight decay (PyTorch's `torch.optim.SGD`),
//! fused kernels over many parameters per launch.

use crate::error::{invalid, Result};
use crate::optim::{state_entry, state_step, step_array, Optimizer};
use crate::range::{Allowed, OutOfRange};
use crate::tensor::Tensor;
use ferrograd_device::kernels::optim::{sgd_step, SgdParams, SgdTensors};
use ferrograd_device::Array;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SgdConfig {
    pub lr: f64,
    pub momentum: f64,
    pub dampening: f64,
    pub weight_decay: f64,
    pub nesterov: bool,
}

impl SgdConfig {
    /// Every setting finite and in range: lr and weight decay >= 0, momentum in [0, 1) (at 1
    /// the velocity never forgets, above it grows), dampening in [0, 1].
    pub fn validate(&self) -> std::result::Result<(), OutOfRange> {
        Allowed::NonNegative.check("lr", self.lr)?;
        Allowed::Fraction.check("momentum", self.momentum)?;
        Allowed::Probability.check("dampening", self.dampening)?;
        Allowed::NonNegative.check("weight_decay", self.weight_decay)
    }
}

impl Default for SgdConfig {
    fn default() -> Self {
        SgdConfig { lr: 0.01, momentum: 0.0, dampening: 0.0, weight_decay: 0.0, nesterov: false }
    }
}

pub struct Sgd {
    params: Vec<(String, Tensor)>,
    config: SgdConfig,
    momentum_buffers: Vec<Option<Array>>,
    steps: Vec<u64>,
}

impl Sgd {
    pub fn new(params: Vec<(String, Tensor)>, config: SgdConfig) -> Result<Sgd> {
        config.validate()?;
        if config.nesterov && (config.momentum <= 0.0 || config.dampening != 0.0) {
            return invalid("Sgd", "Nesterov momentum needs momentum > 0 and zero dampening");
        }
        let n = params.len();
        Ok(Sgd { params, config, momentum_buffers: vec![None; n], steps: vec![0; n] })
    }

    pub fn config(&self) -> &SgdConfig {
        &self.config
    }
}

impl Sgd {
    /// One update of every parameter with a gradient; skipped on the device by `skip`'s
    /// found-inf (mixed precision), and refreshing each parameter's f16 copy where it has one.
    fn update(&mut self, skip: Option<&Array>) -> Result<()> {
        self.validate()?;
        let c = &self.config;
        let hp = SgdParams {
            lr: c.lr as f32,
            momentum: c.momentum as f32,
            dampening: c.dampening as f32,
            weight_decay: c.weight_decay as f32,
            nesterov: c.nesterov,
        };
        // (param, grad, f16 copy, first step) of every parameter with a gradient
        let mut updates = Vec::new();
        for (i, (_, p)) in self.params.iter().enumerate() {
            let Some(grad) = p.grad() else { continue };
            let param = p.data();
            let first = self.momentum_buffers[i].is_none();
            if c.momentum != 0.0 && first {
                self.momentum_buffers[i] = Some(Array::zeros(&param.device(), param.shape())?);
            }
            updates.push((i, param, grad, p.half_copy(), first));
            self.steps[i] += 1;
        }
        // a parameter's first step sets its momentum buffer: one launch series per kind
        for first_step in [false, true] {
            let tensors: Vec<SgdTensors> = updates
                .iter()
                .filter(|u| u.4 == first_step)
                .map(|(i, param, grad, half, _)| SgdTensors {
                    param,
                    grad,
                    momentum_buf: self.momentum_buffers[*i].as_ref(),
                    half: half.as_ref(),
                })
                .collect();
            sgd_step(&tensors, &hp, first_step, skip)?;
        }
        Ok(())
    }
}

impl Optimizer for Sgd {
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
            if let Some(b) = &self.momentum_buffers[i] {
                out.push((format!("{name}.momentum_buffer"), b.clone()));
            }
            out.push((format!("{name}.step"), step_array(self.steps[i])));
        }
        out
    }

    fn load_state_dict(&mut self, state: &[(String, Array)]) -> Result<()> {
        for (i, (name, p)) in self.params.iter().enumerate() {
            let key = format!("{name}.momentum_buffer");
            self.momentum_buffers[i] = state_entry(state, &key, &p.shape(), &p.device())?;
            self.steps[i] = state_step(state, &format!("{name}.step"))?.unwrap_or(0);
        }
        Ok(())
    }
}
