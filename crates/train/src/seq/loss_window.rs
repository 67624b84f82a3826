//! The step losses of a sequence trainer, summed on the device and read back only every few
//! steps (that read is a step's one wait for the GPU), with the epoch's running mean.

use crate::error::Result;
use ferrograd_graph::Tensor;

#[derive(Default)]
pub(crate) struct LossWindow {
    /// the device-side sum of the losses pushed since the last read
    sum: Option<Tensor>,
    steps: usize,
    epoch_sum: f64,
    epoch_steps: usize,
}

impl LossWindow {
    /// Adds one step's (scalar) loss; records an addition, waits for nothing.
    pub(crate) fn push(&mut self, loss: &Tensor) -> Result<()> {
        let loss = loss.detach();
        self.sum = Some(match self.sum.take() {
            Some(s) => s.add(&loss)?,
            None => loss,
        });
        self.steps += 1;
        Ok(())
    }

    /// The mean loss of the steps since the last read (one wait), also counted into the
    /// epoch's mean. NaN or infinite when a step's loss was.
    pub(crate) fn read(&mut self) -> Result<f64> {
        let sum = self.sum.take().map(|s| s.item()).transpose()?.unwrap_or(0.0);
        let steps = std::mem::take(&mut self.steps);
        self.epoch_sum += sum;
        self.epoch_steps += steps;
        Ok(sum / steps.max(1) as f64)
    }

    /// Mean loss of every step read so far.
    pub(crate) fn epoch_mean(&self) -> f64 {
        self.epoch_sum / self.epoch_steps.max(1) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrograd_device::Device;

    #[test]
    fn reads_window_means_and_keeps_the_epoch_mean() {
        let scalar = |v: f32| Tensor::from_f32(&Device::Cpu, &[v], &[]).unwrap();
        let mut w = LossWindow::default();
        w.push(&scalar(1.0)).unwrap();
        w.push(&scalar(3.0)).unwrap();
        assert_eq!(w.read().unwrap(), 2.0);
        w.push(&scalar(8.0)).unwrap();
        assert_eq!(w.read().unwrap(), 8.0);
        assert_eq!(w.epoch_mean(), 4.0);
        w.push(&scalar(f32::NAN)).unwrap();
        assert!(w.read().unwrap().is_nan());
    }
}
