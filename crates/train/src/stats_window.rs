//! Per-step statistics (`[loss * examples, correct, ...]`) summed on the device and read back
//! only every few steps: that read is a step's one wait for the GPU.

use crate::error::Result;
use ferrograd_graph::Tensor;

#[derive(Default)]
pub struct StatsWindow {
    /// the device-side sum of the statistics added since the last read
    sum: Option<Tensor>,
    examples: usize,
}

impl StatsWindow {
    /// Adds one batch's statistics; records an addition, waits for nothing.
    pub fn add(&mut self, stats: &Tensor, examples: usize) -> Result<()> {
        let stats = stats.detach();
        self.sum = Some(match self.sum.take() {
            Some(s) => s.add(&stats)?,
            None => stats,
        });
        self.examples += examples;
        Ok(())
    }

    /// The sums and the examples since the last read (one wait); starts a new window.
    pub fn read(&mut self) -> Result<(Vec<f64>, usize)> {
        let sums = self.sum.take().map(|s| s.to_vec_f64()).transpose()?.unwrap_or_default();
        Ok((sums, std::mem::take(&mut self.examples)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrograd_device::Device;

    #[test]
    fn sums_until_read_then_starts_again() {
        let stats = |v: &[f32]| Tensor::from_f32(&Device::Cpu, v, &[v.len()]).unwrap();
        let mut w = StatsWindow::default();
        w.add(&stats(&[2.0, 1.0]), 2).unwrap();
        w.add(&stats(&[6.0, 0.0]), 3).unwrap();
        assert_eq!(w.read().unwrap(), (vec![8.0, 1.0], 5));
        assert_eq!(w.read().unwrap(), (vec![], 0));
        w.add(&stats(&[f32::NAN, 1.0]), 1).unwrap();
        assert!(w.read().unwrap().0[0].is_nan());
    }
}
