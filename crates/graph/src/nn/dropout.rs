//! `Dropout`: drops in training mode (inverted scaling), identity in eval mode. Each call
//! draws a fresh mask seed from the global stream ([`crate::manual_seed`]).

use crate::error::Result;
use crate::nn::{Mode, Module};
use crate::ops::dropout::dropout;
use crate::random::next_seed;
use crate::tensor::Tensor;

pub struct Dropout {
    pub p: f32,
    mode: Mode,
}

impl Dropout {
    pub fn new(p: f32) -> Dropout {
        Dropout { p, mode: Mode::new() }
    }
}

impl Module for Dropout {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let training = self.mode.training();
        let seed = if training { next_seed() } else { 0 };
        dropout(x, self.p, training, seed)
    }

    fn set_own_training(&self, training: bool) {
        self.mode.set(training)
    }
}
