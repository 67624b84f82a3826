//! Multi-layer recurrent layers as PyTorch's `torch.nn.RNN`, `LSTM` and `GRU`: the same
//! parameter names and shapes (`weight_ih_l0`, `weight_hh_l0`, `bias_ih_l0`, `bias_hh_l0`,
//! `_reverse` for the backward direction), gate order (LSTM i, f, g, o; GRU r, z, n), init
//! `U(-1/sqrt(H), 1/sqrt(H))`, input `[T, B, I]` (or `[B, T, I]` with `batch_first`),
//! states `[layers * directions, B, H]`, dropout on the outputs of every layer but the last.
//!
//! Per layer and direction, the input projection of all time steps is ONE matmul before the
//! loop; each step is a hidden-side matmul plus one fused cell op (`ops::recurrent`).
//!
//! Truncated backpropagation through time: carry the final state into the next chunk cut
//! from the tape with [`RecurrentState::detach`], so each `backward` stops at the chunk edge:
//!
//! ```ignore
//! let mut state: Option<RecurrentState> = None;
//! for chunk in sequence_chunks {
//!     let (out, last) = lstm.forward_with(&chunk, state.as_ref())?;
//!     loss_of(&out)?.backward()?;
//!     optimizer.step()?;
//!     state = Some(last.detach()); // values kept, history dropped
//! }
//! ```

use crate::error::{invalid, shape_err, Result};
use crate::nn::{init, Mode, Module};
use crate::ops::dropout::dropout;
use crate::ops::recurrent::{gru_cell, lstm_cell, rnn_cell, unbind_steps};
use crate::random::next_seed;
use crate::tensor::Tensor;
use ferrograd_device::Device;

/// The cell a [`Recurrent`] stack runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CellKind {
    /// `h = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh)` (the fused kernel).
    RnnTanh,
    /// The same with ReLU (PyTorch's `nonlinearity='relu'`), composed from elementwise ops.
    RnnRelu,
    Lstm,
    Gru,
}

impl CellKind {
    /// Rows of `W_ih` per hidden unit.
    pub fn gates(self) -> usize {
        match self {
            CellKind::RnnTanh | CellKind::RnnRelu => 1,
            CellKind::Lstm => 4,
            CellKind::Gru => 3,
        }
    }

    fn name(self) -> &'static str {
        match self {
            CellKind::RnnTanh | CellKind::RnnRelu => "RNN",
            CellKind::Lstm => "LSTM",
            CellKind::Gru => "GRU",
        }
    }
}

/// The constructor arguments of `torch.nn.RNN/LSTM/GRU`; `new` gives PyTorch's defaults.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RecurrentConfig {
    pub input_size: usize,
    pub hidden_size: usize,
    pub num_layers: usize,
    pub bias: bool,
    pub batch_first: bool,
    /// Dropout probability on every layer's output except the last's (training mode only).
    pub dropout: f32,
    pub bidirectional: bool,
}

impl RecurrentConfig {
    /// One unidirectional layer with biases, sequence-first, no dropout.
    pub fn new(input_size: usize, hidden_size: usize) -> RecurrentConfig {
        RecurrentConfig {
            input_size,
            hidden_size,
            num_layers: 1,
            bias: true,
            batch_first: false,
            dropout: 0.0,
            bidirectional: false,
        }
    }
    pub fn num_layers(self, n: usize) -> Self {
        RecurrentConfig { num_layers: n, ..self }
    }
    pub fn bias(self, on: bool) -> Self {
        RecurrentConfig { bias: on, ..self }
    }
    pub fn batch_first(self, on: bool) -> Self {
        RecurrentConfig { batch_first: on, ..self }
    }
    pub fn dropout(self, p: f32) -> Self {
        RecurrentConfig { dropout: p, ..self }
    }
    pub fn bidirectional(self, on: bool) -> Self {
        RecurrentConfig { bidirectional: on, ..self }
    }
    pub fn directions(&self) -> usize {
        if self.bidirectional {
            2
        } else {
            1
        }
    }
}

/// The carried state: `h` for RNN and GRU, `h` and `c` for LSTM, each `[layers * dirs, B, H]`.
#[derive(Clone, Debug)]
pub struct RecurrentState {
    pub h: Tensor,
    pub c: Option<Tensor>,
}

impl RecurrentState {
    /// The same values cut from the tape (truncated BPTT: gradients stop here).
    pub fn detach(&self) -> RecurrentState {
        RecurrentState { h: self.h.detach(), c: self.c.as_ref().map(Tensor::detach) }
    }
}

/// One direction of one layer.
struct DirectionWeights {
    w_ih: Tensor,
    w_hh: Tensor,
    /// `(b_ih, b_hh)`, absent when the layer has no biases.
    biases: Option<(Tensor, Tensor)>,
    suffix: String,
}

/// A stack of recurrent layers of one [`CellKind`]; [`Rnn`], [`Lstm`] and [`Gru`] wrap it.
pub struct Recurrent {
    kind: CellKind,
    config: RecurrentConfig,
    /// Indexed `layer * directions + direction`, as the state's first dim.
    weights: Vec<DirectionWeights>,
    mode: Mode,
}

impl Recurrent {
    /// Parameters drawn from `U(-1/sqrt(H), 1/sqrt(H))`, as PyTorch's `reset_parameters`.
    pub fn new(device: &Device, kind: CellKind, config: RecurrentConfig) -> Result<Recurrent> {
        let c = config;
        if c.hidden_size == 0 || c.input_size == 0 || c.num_layers == 0 {
            return invalid(kind.name(), format!("input_size, hidden_size and num_layers must be positive, got {c:?}"));
        }
        if !(0.0..1.0).contains(&c.dropout) {
            return invalid(kind.name(), format!("dropout {} outside [0, 1)", c.dropout));
        }
        let (h, g) = (c.hidden_size, kind.gates() * c.hidden_size);
        let k = 1.0 / (h as f64).sqrt();
        let draw = |shape: &[usize]| -> Result<Tensor> { Ok(Tensor::parameter(init::uniform(device, shape, -k, k)?)) };
        let mut weights = Vec::new();
        for layer in 0..c.num_layers {
            let in_size = if layer == 0 { c.input_size } else { h * c.directions() };
            for dir in 0..c.directions() {
                let (w_ih, w_hh) = (draw(&[g, in_size])?, draw(&[g, h])?);
                let biases = if c.bias { Some((draw(&[g])?, draw(&[g])?)) } else { None };
                let suffix = format!("_l{layer}{}", if dir == 1 { "_reverse" } else { "" });
                weights.push(DirectionWeights { w_ih, w_hh, biases, suffix });
            }
        }
        Ok(Recurrent { kind, config, weights, mode: Mode::new() })
    }

    pub fn config(&self) -> &RecurrentConfig {
        &self.config
    }

    pub fn kind(&self) -> CellKind {
        self.kind
    }

    /// Run the stack over `x` from `state` (zeros when `None`). Returns the last layer's
    /// outputs `[T, B, dirs * H]` (`[B, T, dirs * H]` with `batch_first`) and the final state.
    pub fn forward_with(&self, x: &Tensor, state: Option<&RecurrentState>) -> Result<(Tensor, RecurrentState)> {
        self.run(x, state, None)
    }

    /// [`forward_with`](Self::forward_with) on a padded batch whose sequence `b` has
    /// `lengths[b]` steps (PyTorch's `pack_padded_sequence` / `pad_packed_sequence`): padded
    /// steps leave the state as it was, so the final state is each sequence's own last state
    /// (the reverse direction starts at each sequence's last step), and their outputs are zero.
    pub fn forward_packed(
        &self,
        x: &Tensor,
        state: Option<&RecurrentState>,
        lengths: &[usize],
    ) -> Result<(Tensor, RecurrentState)> {
        let shape = x.shape();
        if shape.len() != 3 {
            return self.run(x, state, None); // its shape check names what is wrong
        }
        let (steps, batch) = if self.config.batch_first { (shape[1], shape[0]) } else { (shape[0], shape[1]) };
        if lengths.len() != batch || lengths.iter().any(|&l| l == 0 || l > steps) {
            return shape_err(
                self.kind.name(),
                format!("lengths {lengths:?} for input {shape:?}: need one per sequence, each in 1..={steps}"),
            );
        }
        // per step, [B, 1]: 1 where the step is inside the sequence (keep), and its complement
        let masks = (0..steps)
            .map(|t| {
                let keep: Vec<f32> = lengths.iter().map(|&l| if t < l { 1.0 } else { 0.0 }).collect();
                let carry: Vec<f32> = keep.iter().map(|k| 1.0 - k).collect();
                Ok(StepMask {
                    keep: Tensor::from_f32(&x.device(), &keep, &[batch, 1])?,
                    carry: Tensor::from_f32(&x.device(), &carry, &[batch, 1])?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        self.run(x, state, Some(&masks))
    }

    fn run(
        &self,
        x: &Tensor,
        state: Option<&RecurrentState>,
        masks: Option<&[StepMask]>,
    ) -> Result<(Tensor, RecurrentState)> {
        let (c, name) = (&self.config, self.kind.name());
        let shape = x.shape();
        if shape.len() != 3 || shape[2] != c.input_size || shape[0] == 0 || shape[1] == 0 {
            let layout = if c.batch_first { "[B, T, input_size]" } else { "[T, B, input_size]" };
            return shape_err(
                name,
                format!("input {shape:?}: expected {layout} with input_size {} and T, B > 0", c.input_size),
            );
        }
        let x = if c.batch_first { x.transpose(0, 1)? } else { x.clone() };
        let (steps, batch, h) = (x.shape()[0], x.shape()[1], c.hidden_size);
        let (h0, c0) = self.initial_state(state, &x.device(), batch)?;
        let (h0s, c0s) = (unbind_steps(&h0)?, c0.as_ref().map(unbind_steps).transpose()?);

        let dirs = c.directions();
        let (mut h_n, mut c_n) = (Vec::new(), Vec::new());
        let mut layer_in = x;
        for layer in 0..c.num_layers {
            let mut outs = Vec::with_capacity(dirs);
            for dir in 0..dirs {
                let i = layer * dirs + dir;
                let w = &self.weights[i];
                let in_size = layer_in.shape()[2];
                // every step's input projection in one matmul
                let xw = layer_in.reshape_to(&[steps * batch, in_size])?.matmul_t(&w.w_ih, false, true)?;
                let xw = unbind_steps(&xw.reshape_to(&[steps, batch, self.kind.gates() * h])?)?;
                let (out, last_h, last_c) =
                    self.run_direction(w, &xw, (&h0s[i], c0s.as_ref().map(|v| &v[i])), dir == 1, masks)?;
                outs.push(out);
                h_n.push(last_h);
                c_n.extend(last_c);
            }
            let out = if dirs == 1 { outs.swap_remove(0) } else { Tensor::cat(&[&outs[0], &outs[1]], 2)? };
            let last = layer + 1 == c.num_layers;
            layer_in = if last { out } else { dropout(&out, c.dropout, self.mode.training(), next_seed())? };
        }
        let out = if c.batch_first { layer_in.transpose(0, 1)? } else { layer_in };
        let h_n = Tensor::stack(&h_n.iter().collect::<Vec<_>>(), 0)?;
        let c_n = if c_n.is_empty() { None } else { Some(Tensor::stack(&c_n.iter().collect::<Vec<_>>(), 0)?) };
        Ok((out, RecurrentState { h: h_n, c: c_n }))
    }

    /// `(h0, c0)` from the caller's state (checked) or zeros.
    fn initial_state(
        &self,
        state: Option<&RecurrentState>,
        device: &Device,
        batch: usize,
    ) -> Result<(Tensor, Option<Tensor>)> {
        let c = &self.config;
        let want = [c.num_layers * c.directions(), batch, c.hidden_size];
        let lstm = self.kind == CellKind::Lstm;
        let Some(s) = state else {
            let c0 = if lstm { Some(Tensor::zeros(device, &want)?) } else { None };
            return Ok((Tensor::zeros(device, &want)?, c0));
        };
        let name = self.kind.name();
        for (what, t) in [("h0", Some(&s.h)), ("c0", s.c.as_ref())] {
            if let Some(t) = t {
                if t.shape() != want {
                    return shape_err(name, format!("{what} {:?}, expected {want:?}", t.shape()));
                }
            }
        }
        match (lstm, &s.c) {
            (true, None) => shape_err(name, "an LSTM state needs c0 as well as h0"),
            (false, Some(_)) => invalid(name, "c0 given to a layer without a cell state"),
            _ => Ok((s.h.clone(), s.c.clone())),
        }
    }

    /// One direction over every step: the outputs `[T, B, H]` in time order and the final
    /// `h` (and `c` for an LSTM).
    fn run_direction(
        &self,
        w: &DirectionWeights,
        xw: &[Tensor],
        (h0, c0): (&Tensor, Option<&Tensor>),
        reverse: bool,
        masks: Option<&[StepMask]>,
    ) -> Result<(Tensor, Tensor, Option<Tensor>)> {
        // a layer without biases gives the fused cells zeros (made here, on the input's device)
        let (b_ih, b_hh) = match &w.biases {
            Some((bi, bh)) => (bi.clone(), bh.clone()),
            None => {
                let g = [w.w_hh.shape()[0]];
                (Tensor::zeros(&h0.device(), &g)?, Tensor::zeros(&h0.device(), &g)?)
            }
        };
        let (mut h, mut c) = (h0.clone(), c0.cloned());
        let mut outs: Vec<Tensor> = Vec::with_capacity(xw.len());
        let order: Vec<usize> = if reverse { (0..xw.len()).rev().collect() } else { (0..xw.len()).collect() };
        for &t in &order {
            let (h_prev, c_prev) = (h.clone(), c.clone());
            let hw = h.matmul_t(&w.w_hh, false, true)?;
            h = match (self.kind, &c) {
                (CellKind::RnnTanh, _) => rnn_cell(&xw[t], &hw, &b_ih, &b_hh)?,
                (CellKind::RnnRelu, _) => xw[t].add(&b_ih)?.add(&hw)?.add(&b_hh)?.relu()?,
                (CellKind::Gru, _) => gru_cell(&xw[t], &hw, &b_ih, &b_hh, &h)?,
                (CellKind::Lstm, Some(cp)) => {
                    let (h_t, c_t) = lstm_cell(&xw[t], &hw, &b_ih, &b_hh, cp)?;
                    c = Some(c_t);
                    h_t
                }
                (CellKind::Lstm, None) => return invalid("LSTM", "missing cell state"),
            };
            let Some(m) = masks.map(|m| &m[t]) else {
                outs.push(h.clone());
                continue;
            };
            // a padded step outputs zero and carries the state through unchanged (exactly:
            // the masks are 0 and 1)
            outs.push(h.mul(&m.keep)?);
            h = m.select(&h, &h_prev)?;
            if let (Some(c_new), Some(c_old)) = (&c, &c_prev) {
                c = Some(m.select(c_new, c_old)?);
            }
        }
        if reverse {
            outs.reverse();
        }
        Ok((Tensor::stack(&outs.iter().collect::<Vec<_>>(), 0)?, h, c))
    }
}

/// Which sequences of a padded batch a step belongs to: `keep` is 1 for those, `carry` 1 - keep.
struct StepMask {
    keep: Tensor,
    carry: Tensor,
}

impl StepMask {
    /// `new` where the step is inside the sequence, else `old`.
    fn select(&self, new: &Tensor, old: &Tensor) -> Result<Tensor> {
        new.mul(&self.keep)?.add(&old.mul(&self.carry)?)
    }
}

impl Module for Recurrent {
    /// The outputs from zero initial states (use `forward_with` for states).
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(self.forward_with(x, None)?.0)
    }

    /// PyTorch's order: per layer, per direction, `weight_ih`, `weight_hh`, `bias_ih`, `bias_hh`.
    fn own_parameters(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::new();
        for w in &self.weights {
            out.push((format!("weight_ih{}", w.suffix), w.w_ih.clone()));
            out.push((format!("weight_hh{}", w.suffix), w.w_hh.clone()));
            if let Some((b_ih, b_hh)) = &w.biases {
                out.push((format!("bias_ih{}", w.suffix), b_ih.clone()));
                out.push((format!("bias_hh{}", w.suffix), b_hh.clone()));
            }
        }
        out
    }

    fn set_own_training(&self, training: bool) {
        self.mode.set(training);
    }
}

macro_rules! recurrent_layer {
    ($(#[$doc:meta])* $name:ident, $kind:expr) => {
        $(#[$doc])*
        pub struct $name(pub Recurrent);

        impl $name {
            pub fn new(device: &Device, config: RecurrentConfig) -> Result<$name> {
                Ok($name(Recurrent::new(device, $kind, config)?))
            }

            /// Outputs and final state from `state` (zeros when `None`); see [`Recurrent::forward_with`].
            pub fn forward_with(&self, x: &Tensor, state: Option<&RecurrentState>) -> Result<(Tensor, RecurrentState)> {
                self.0.forward_with(x, state)
            }

            /// A padded batch with each sequence's length; see [`Recurrent::forward_packed`].
            pub fn forward_packed(
                &self,
                x: &Tensor,
                state: Option<&RecurrentState>,
                lengths: &[usize],
            ) -> Result<(Tensor, RecurrentState)> {
                self.0.forward_packed(x, state, lengths)
            }
        }

        impl Module for $name {
            fn forward(&self, x: &Tensor) -> Result<Tensor> {
                self.0.forward(x)
            }
            fn own_parameters(&self) -> Vec<(String, Tensor)> {
                self.0.own_parameters()
            }
            fn set_own_training(&self, training: bool) {
                self.0.set_own_training(training)
            }
        }
    };
}

recurrent_layer!(
    /// `torch.nn.RNN` (tanh; [`Rnn::with_relu`] for `nonlinearity='relu'`).
    Rnn,
    CellKind::RnnTanh
);
recurrent_layer!(
    /// `torch.nn.LSTM`: the state carries `h` and `c`.
    Lstm,
    CellKind::Lstm
);
recurrent_layer!(
    /// `torch.nn.GRU`.
    Gru,
    CellKind::Gru
);

impl Rnn {
    /// `nonlinearity='relu'`.
    pub fn with_relu(device: &Device, config: RecurrentConfig) -> Result<Rnn> {
        Ok(Rnn(Recurrent::new(device, CellKind::RnnRelu, config)?))
    }
}
