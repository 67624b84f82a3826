//! Learning-rate schedules as pure functions of the step (or epoch) count, as PyTorch's
//! `lr_scheduler`s compute them in closed form. Apply with `opt.set_lr(s.lr(step))`.

use std::f64::consts::PI;

pub trait LrSchedule: Send + Sync {
    /// The learning rate at `step` (0-based).
    fn lr(&self, step: usize) -> f64;
}

/// The same rate throughout.
pub struct ConstantLr(pub f64);

impl LrSchedule for ConstantLr {
    fn lr(&self, _: usize) -> f64 {
        self.0
    }
}

/// `base * gamma^(step / step_size)` (PyTorch's `StepLR`).
pub struct StepLr {
    pub base: f64,
    pub step_size: usize,
    pub gamma: f64,
}

impl LrSchedule for StepLr {
    fn lr(&self, step: usize) -> f64 {
        self.base * self.gamma.powi((step / self.step_size.max(1)) as i32)
    }
}

/// `base * gamma^(milestones passed)` (PyTorch's `MultiStepLR`).
pub struct MultiStepLr {
    pub base: f64,
    pub milestones: Vec<usize>,
    pub gamma: f64,
}

impl LrSchedule for MultiStepLr {
    fn lr(&self, step: usize) -> f64 {
        self.base * self.gamma.powi(self.milestones.iter().filter(|&&m| m <= step).count() as i32)
    }
}

/// `eta_min + (base - eta_min) * (1 + cos(pi * step / t_max)) / 2` (PyTorch's
/// `CosineAnnealingLR`), held at `eta_min` after `t_max`.
pub struct CosineAnnealingLr {
    pub base: f64,
    pub t_max: usize,
    pub eta_min: f64,
}

impl LrSchedule for CosineAnnealingLr {
    fn lr(&self, step: usize) -> f64 {
        let t = step.min(self.t_max) as f64 / self.t_max.max(1) as f64;
        self.eta_min + (self.base - self.eta_min) * (1.0 + (PI * t).cos()) / 2.0
    }
}

/// Linear ramp from `start_factor * inner(0)` to `inner(warmup)` over `warmup` steps, then
/// `inner` shifted by the warmup (`inner.lr(step - warmup)`).
pub struct LinearWarmup {
    pub warmup: usize,
    pub start_factor: f64,
    pub inner: Box<dyn LrSchedule>,
}

impl LrSchedule for LinearWarmup {
    fn lr(&self, step: usize) -> f64 {
        if step >= self.warmup {
            return self.inner.lr(step - self.warmup);
        }
        let f = self.start_factor + (1.0 - self.start_factor) * step as f64 / self.warmup as f64;
        f * self.inner.lr(0)
    }
}

/// PyTorch's `OneCycleLR` (cosine annealing, two phases): from `max_lr / div_factor` up to
/// `max_lr` over `pct_start` of `total_steps`, then down to `initial / final_div_factor`.
pub struct OneCycleLr {
    pub max_lr: f64,
    pub total_steps: usize,
    pub pct_start: f64,
    pub div_factor: f64,
    pub final_div_factor: f64,
}

impl OneCycleLr {
    /// PyTorch's defaults: `pct_start` 0.3, `div_factor` 25, `final_div_factor` 1e4.
    pub fn new(max_lr: f64, total_steps: usize) -> OneCycleLr {
        OneCycleLr { max_lr, total_steps, pct_start: 0.3, div_factor: 25.0, final_div_factor: 1e4 }
    }
}

fn cos_anneal(start: f64, end: f64, pct: f64) -> f64 {
    end + (start - end) / 2.0 * ((PI * pct).cos() + 1.0)
}

impl LrSchedule for OneCycleLr {
    fn lr(&self, step: usize) -> f64 {
        let initial = self.max_lr / self.div_factor;
        let min_lr = initial / self.final_div_factor;
        let up_end = self.pct_start * self.total_steps as f64 - 1.0;
        let down_end = self.total_steps as f64 - 1.0;
        let s = step as f64;
        if s <= up_end {
            cos_anneal(initial, self.max_lr, s / up_end.max(1e-12))
        } else {
            cos_anneal(self.max_lr, min_lr, ((s - up_end) / (down_end - up_end)).min(1.0))
        }
    }
}
