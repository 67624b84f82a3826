//! Sequence models: an encoder-decoder GRU [`Seq2Seq`] (Sutskever et al. 2014; with global
//! attention as Luong et al. 2015, scored additively as Bahdanau et al. or by dot / general
//! product) and a character-level language model [`CharLm`] (embedding, RNN/LSTM/GRU, linear).
//! Tokens are u32 tensors `[B, T]` (batch first).

use ferrograd_device::kernels::attention::padding_mask;
use ferrograd_device::Device;
use ferrograd_graph::error::GraphError;
use ferrograd_graph::nn::attention::{AdditiveAttention, LuongAttention, LuongScore};
use ferrograd_graph::nn::recurrent::{CellKind, Gru, Recurrent, RecurrentConfig, RecurrentState};
use ferrograd_graph::nn::{Embedding, Linear, Module};
use ferrograd_graph::{Result, Tensor};

/// How the decoder looks at the encoder's outputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seq2SeqAttention {
    /// Plain encoder-decoder: the encoder's final state is the decoder's initial state.
    None,
    /// Additive score `v^T tanh(W_q h_t + W_k e_s)` (Bahdanau).
    Additive,
    /// `h_t . e_s` (Luong dot).
    Dot,
    /// `h_t^T W e_s` (Luong general).
    General,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Seq2SeqConfig {
    pub src_vocab: usize,
    pub tgt_vocab: usize,
    pub embed_dim: usize,
    pub hidden_size: usize,
    pub num_layers: usize,
    pub dropout: f32,
    pub attention: Seq2SeqAttention,
}

enum Scorer {
    Additive(AdditiveAttention),
    Luong(LuongAttention),
}

/// Encoder-decoder GRU. Parameters: `encoder_embedding`, `encoder` (a GRU), `decoder_embedding`,
/// `decoder` (a GRU), with attention `attention.*` and `combine` (`tanh(W_c [context; h_t])`,
/// Luong's attentional hidden state), and `out` (to the target vocabulary).
pub struct Seq2Seq {
    pub encoder_embedding: Embedding,
    pub encoder: Gru,
    pub decoder_embedding: Embedding,
    pub decoder: Gru,
    attention: Option<Scorer>,
    pub combine: Option<Linear>,
    pub out: Linear,
    pub config: Seq2SeqConfig,
}

impl Seq2Seq {
    pub fn new(device: &Device, c: Seq2SeqConfig) -> Result<Seq2Seq> {
        let rnn = RecurrentConfig::new(c.embed_dim, c.hidden_size)
            .num_layers(c.num_layers)
            .dropout(c.dropout)
            .batch_first(true);
        let h = c.hidden_size;
        let attention = match c.attention {
            Seq2SeqAttention::None => None,
            Seq2SeqAttention::Additive => Some(Scorer::Additive(AdditiveAttention::new(device, h, h, h)?)),
            Seq2SeqAttention::Dot => Some(Scorer::Luong(LuongAttention::new(device, LuongScore::Dot, h, h)?)),
            Seq2SeqAttention::General => Some(Scorer::Luong(LuongAttention::new(device, LuongScore::General, h, h)?)),
        };
        let combine = if attention.is_some() { Some(Linear::new(device, 2 * h, h, false)?) } else { None };
        Ok(Seq2Seq {
            encoder_embedding: Embedding::new(device, c.src_vocab, c.embed_dim)?,
            encoder: Gru::new(device, rnn)?,
            decoder_embedding: Embedding::new(device, c.tgt_vocab, c.embed_dim)?,
            decoder: Gru::new(device, rnn)?,
            attention,
            combine,
            out: Linear::new(device, h, c.tgt_vocab, true)?,
            config: c,
        })
    }

    /// Encoder outputs `[B, S, H]` and final state; with `src_lengths`, padding is skipped
    /// (each sequence's final state is its own last step's, padded outputs are zero).
    pub fn encode(&self, src: &Tensor, src_lengths: Option<&[usize]>) -> Result<(Tensor, RecurrentState)> {
        let embedded = self.encoder_embedding.forward(src)?;
        match src_lengths {
            Some(lengths) => self.encoder.forward_packed(&embedded, None, lengths),
            None => self.encoder.forward_with(&embedded, None),
        }
    }

    /// Decoder logits `[B, T, tgt_vocab]` for input tokens `tgt [B, T]` from `state`, and the
    /// new state; `mask [B, S]` (additive) hides padded source steps from the attention.
    pub fn decode(
        &self,
        tgt: &Tensor,
        state: &RecurrentState,
        memory: &Tensor,
        mask: Option<&Tensor>,
    ) -> Result<(Tensor, RecurrentState)> {
        let (dec, state) = self.decoder.forward_with(&self.decoder_embedding.forward(tgt)?, Some(state))?;
        let (Some(scorer), Some(combine)) = (&self.attention, &self.combine) else {
            return Ok((self.out.forward(&dec)?, state));
        };
        // no input feeding (Luong's attentional state does not enter the next step), so every
        // step attends at once
        let (context, _) = match scorer {
            Scorer::Additive(a) => a.forward_with(&dec, memory, memory, mask)?,
            Scorer::Luong(a) => a.forward_with(&dec, memory, memory, mask)?,
        };
        let attended = combine.forward(&Tensor::cat(&[&context, &dec], 2)?)?.tanh()?;
        Ok((self.out.forward(&attended)?, state))
    }

    /// Teacher-forced logits `[B, T, tgt_vocab]` for `src [B, S]` and decoder inputs
    /// `tgt_in [B, T]`; `src_lengths` (one per sequence) masks source padding.
    pub fn forward_with(&self, src: &Tensor, tgt_in: &Tensor, src_lengths: Option<&[usize]>) -> Result<Tensor> {
        let mask = self.source_mask(src, src_lengths)?;
        let (memory, state) = self.encode(src, src_lengths)?;
        Ok(self.decode(tgt_in, &state, &memory, mask.as_ref())?.0)
    }

    fn source_mask(&self, src: &Tensor, lengths: Option<&[usize]>) -> Result<Option<Tensor>> {
        let Some(lengths) = lengths else { return Ok(None) };
        let shape = src.shape();
        if shape.len() != 2 || lengths.len() != shape[0] {
            return Err(GraphError::Shape {
                op: "Seq2Seq",
                detail: format!("{} source lengths for source tokens {shape:?}", lengths.len()),
            });
        }
        let m = padding_mask(&src.device(), lengths, shape[1])?;
        Ok(Some(Tensor::new(m.reshape(&[shape[0], shape[1]])?)))
    }

    /// Greedy decoding from `bos` for `max_len` steps: token ids `[B, max_len]` (u32). Runs
    /// without a tape and reads nothing back until the caller does.
    pub fn greedy_decode(
        &self,
        src: &Tensor,
        bos: u32,
        max_len: usize,
        src_lengths: Option<&[usize]>,
    ) -> Result<Tensor> {
        let _g = ferrograd_graph::no_grad();
        let mask = self.source_mask(src, src_lengths)?;
        let (memory, mut state) = self.encode(src, src_lengths)?;
        let batch = src.shape()[0];
        let mut token = Tensor::from_u32(&src.device(), &vec![bos; batch], &[batch, 1])?;
        let mut out = Vec::with_capacity(max_len);
        for _ in 0..max_len {
            let (logits, next_state) = self.decode(&token, &state, &memory, mask.as_ref())?;
            token = logits.argmax(-1, false)?;
            out.push(token.clone());
            state = next_state;
        }
        Tensor::cat(&out.iter().collect::<Vec<_>>(), 1)
    }
}

impl Module for Seq2Seq {
    /// Seq2Seq needs source and target tokens: use `forward_with`.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Err(GraphError::Invalid {
            op: "Seq2Seq",
            detail: format!("forward({:?}) needs source and target tokens: use forward_with", x.shape()),
        })
    }

    fn children(&self) -> Vec<(String, &dyn Module)> {
        let mut c: Vec<(String, &dyn Module)> = vec![
            ("encoder_embedding".into(), &self.encoder_embedding),
            ("encoder".into(), &self.encoder),
            ("decoder_embedding".into(), &self.decoder_embedding),
            ("decoder".into(), &self.decoder),
        ];
        match &self.attention {
            Some(Scorer::Additive(a)) => c.push(("attention".into(), a)),
            Some(Scorer::Luong(a)) => c.push(("attention".into(), a)),
            None => {}
        }
        if let Some(l) = &self.combine {
            c.push(("combine".into(), l));
        }
        c.push(("out".into(), &self.out));
        c
    }
}

/// Character-level language model: `embedding [V, E]`, a recurrent stack `rnn`
/// (batch-first), and `fc` to the vocabulary.
pub struct CharLm {
    pub embedding: Embedding,
    pub rnn: Recurrent,
    pub fc: Linear,
}

impl CharLm {
    /// `cell`: `CellKind::RnnTanh`, `RnnRelu`, `Lstm` or `Gru`.
    pub fn new(
        device: &Device,
        vocab: usize,
        embed_dim: usize,
        hidden_size: usize,
        num_layers: usize,
        cell: CellKind,
        dropout: f32,
    ) -> Result<CharLm> {
        let config =
            RecurrentConfig::new(embed_dim, hidden_size).num_layers(num_layers).dropout(dropout).batch_first(true);
        Ok(CharLm {
            embedding: Embedding::new(device, vocab, embed_dim)?,
            rnn: Recurrent::new(device, cell, config)?,
            fc: Linear::new(device, hidden_size, vocab, true)?,
        })
    }

    /// Logits `[B, T, V]` for tokens `[B, T]` from `state` (zeros when `None`), and the final
    /// state (detach it to carry it into the next chunk: truncated BPTT).
    pub fn forward_with(&self, tokens: &Tensor, state: Option<&RecurrentState>) -> Result<(Tensor, RecurrentState)> {
        let (h, state) = self.rnn.forward_with(&self.embedding.forward(tokens)?, state)?;
        Ok((self.fc.forward(&h)?, state))
    }
}

impl Module for CharLm {
    fn forward(&self, tokens: &Tensor) -> Result<Tensor> {
        Ok(self.forward_with(tokens, None)?.0)
    }

    fn children(&self) -> Vec<(String, &dyn Module)> {
        vec![("embedding".into(), &self.embedding), ("rnn".into(), &self.rnn), ("fc".into(), &self.fc)]
    }
}
