//! A small encoder-decoder Transformer for token-to-token tasks (Vaswani et al. 2017):
//! source and target embeddings drawn from N(0, 1/d_model) and scaled by `sqrt(d_model)`
//! (fairseq's convention: unit-size embeddings that leave the positional signal audible),
//! sinusoidal positions,
//! `nn::transformer::Transformer` (batch-first, post-norm), and a projection to the target
//! vocabulary. Tokens are u32 tensors `[B, T]`; decoding is greedy.

use ferrograd_device::kernels::attention::padding_mask;
use ferrograd_device::Device;
use ferrograd_graph::error::GraphError;
use ferrograd_graph::nn::attention::{AttentionMasks, PositionalEncoding};
use ferrograd_graph::nn::transformer::{DecoderMasks, Transformer, TransformerLayerConfig};
use ferrograd_graph::nn::{init, Embedding, Module};
use ferrograd_graph::{Result, Tensor};

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TransformerSeq2SeqConfig {
    pub src_vocab: usize,
    pub tgt_vocab: usize,
    pub d_model: usize,
    pub nhead: usize,
    pub num_encoder_layers: usize,
    pub num_decoder_layers: usize,
    pub dim_feedforward: usize,
    pub dropout: f32,
    /// longest source or target sequence (the positional table's length)
    pub max_len: usize,
}

/// Parameters: `src_embedding`, `tgt_embedding`, `transformer.*` (PyTorch's names), `out`;
/// buffer `positions.pe`.
pub struct TransformerSeq2Seq {
    pub src_embedding: Embedding,
    pub tgt_embedding: Embedding,
    pub positions: PositionalEncoding,
    pub transformer: Transformer,
    pub out: ferrograd_graph::nn::Linear,
    pub config: TransformerSeq2SeqConfig,
}

impl TransformerSeq2Seq {
    pub fn new(device: &Device, c: TransformerSeq2SeqConfig) -> Result<TransformerSeq2Seq> {
        let layer = TransformerLayerConfig::new(c.d_model, c.nhead)
            .dim_feedforward(c.dim_feedforward)
            .dropout(c.dropout)
            .batch_first(true);
        // With PyTorch's N(0, 1) embedding init the sqrt(d_model) scale makes tokens 8x louder
        // than the sinusoids at d_model 64, and a position-driven task (reversal) barely
        // trains: 1.5% exact match after 1500 steps against 100% after 500 with this init.
        let embedding = |vocab| -> Result<Embedding> {
            let e = Embedding::new(device, vocab, c.d_model)?;
            init::normal_(&e.weight, 0.0, (c.d_model as f64).powf(-0.5))?;
            Ok(e)
        };
        Ok(TransformerSeq2Seq {
            src_embedding: embedding(c.src_vocab)?,
            tgt_embedding: embedding(c.tgt_vocab)?,
            positions: PositionalEncoding::new(device, c.d_model, c.max_len, c.dropout, true)?,
            transformer: Transformer::new(device, layer, c.num_encoder_layers, c.num_decoder_layers)?,
            out: ferrograd_graph::nn::Linear::new(device, c.d_model, c.tgt_vocab, true)?,
            config: c,
        })
    }

    /// Embedded tokens scaled by `sqrt(d_model)` plus positions: `[B, T, d_model]`.
    fn embed(&self, embedding: &Embedding, tokens: &Tensor) -> Result<Tensor> {
        let x = embedding.forward(tokens)?.mul_scalar((self.config.d_model as f32).sqrt())?;
        self.positions.forward(&x)
    }

    /// Additive key-padding mask `[B, S]` from the unpadded source lengths.
    fn source_mask(&self, src: &Tensor, lengths: Option<&[usize]>) -> Result<Option<Tensor>> {
        let Some(lengths) = lengths else { return Ok(None) };
        let shape = src.shape();
        if shape.len() != 2 || lengths.len() != shape[0] {
            return Err(GraphError::Shape {
                op: "TransformerSeq2Seq",
                detail: format!("{} source lengths for source tokens {shape:?}", lengths.len()),
            });
        }
        let m = padding_mask(&src.device(), lengths, shape[1])?;
        Ok(Some(Tensor::new(m.reshape(&[shape[0], shape[1]])?)))
    }

    /// The encoder's memory `[B, S, d_model]` and the source padding mask.
    pub fn encode(&self, src: &Tensor, src_lengths: Option<&[usize]>) -> Result<(Tensor, Option<Tensor>)> {
        let mask = self.source_mask(src, src_lengths)?;
        let masks = AttentionMasks { attn_mask: None, key_padding_mask: mask.as_ref() };
        Ok((self.transformer.encoder.forward_with(&self.embed(&self.src_embedding, src)?, masks)?, mask))
    }

    /// Decoder logits `[B, T, tgt_vocab]` for decoder inputs `tgt_in [B, T]` (causally masked).
    pub fn decode(&self, tgt_in: &Tensor, memory: &Tensor, src_mask: Option<&Tensor>) -> Result<Tensor> {
        let t = tgt_in.shape().get(1).copied().unwrap_or(0);
        let causal = Transformer::square_subsequent_mask(&tgt_in.device(), t)?;
        let masks = DecoderMasks { tgt_mask: Some(&causal), memory_key_padding_mask: src_mask, ..Default::default() };
        let h = self.transformer.decoder.forward_with(&self.embed(&self.tgt_embedding, tgt_in)?, memory, masks)?;
        self.out.forward(&h)
    }

    /// Teacher-forced logits `[B, T, tgt_vocab]` for `src [B, S]` and `tgt_in [B, T]`;
    /// `src_lengths` masks source padding.
    pub fn forward_with(&self, src: &Tensor, tgt_in: &Tensor, src_lengths: Option<&[usize]>) -> Result<Tensor> {
        let (memory, mask) = self.encode(src, src_lengths)?;
        self.decode(tgt_in, &memory, mask.as_ref())
    }

    /// Greedy decoding from `bos` for `max_len` steps: token ids `[B, max_len]` (u32). Each step
    /// reruns the decoder over the prefix (no cache: the sequences here are short).
    pub fn greedy_decode(
        &self,
        src: &Tensor,
        bos: u32,
        max_len: usize,
        src_lengths: Option<&[usize]>,
    ) -> Result<Tensor> {
        let _g = ferrograd_graph::no_grad();
        let (memory, mask) = self.encode(src, src_lengths)?;
        let batch = src.shape()[0];
        let mut tokens = Tensor::from_u32(&src.device(), &vec![bos; batch], &[batch, 1])?;
        for t in 0..max_len {
            let logits = self.decode(&tokens, &memory, mask.as_ref())?;
            let next = logits.select(1, t)?.argmax(-1, true)?;
            tokens = Tensor::cat(&[&tokens, &next], 1)?;
        }
        tokens.narrow(1, 1, max_len)
    }

    /// Cross-attention weights of the last decoder layer, averaged over heads: `[B, T, S]` for
    /// decoder inputs `tgt_in [B, T]`. Call in eval mode (dropout would perturb them).
    pub fn cross_attention_weights(
        &self,
        src: &Tensor,
        tgt_in: &Tensor,
        src_lengths: Option<&[usize]>,
    ) -> Result<Tensor> {
        let _g = ferrograd_graph::no_grad();
        let (memory, mask) = self.encode(src, src_lengths)?;
        let t = tgt_in.shape().get(1).copied().unwrap_or(0);
        let causal = Transformer::square_subsequent_mask(&tgt_in.device(), t)?;
        let masks =
            DecoderMasks { tgt_mask: Some(&causal), memory_key_padding_mask: mask.as_ref(), ..Default::default() };
        let layers = &self.transformer.decoder.layers.0;
        let Some((last, earlier)) = layers.split_last() else {
            return Err(GraphError::Invalid { op: "TransformerSeq2Seq", detail: "the decoder has no layers".into() });
        };
        let mut x = self.embed(&self.tgt_embedding, tgt_in)?;
        for layer in earlier {
            x = layer.forward_with(&x, &memory, masks)?;
        }
        // the last layer up to its cross-attention: the self-attention sublayer, then the query
        let self_masks = AttentionMasks { attn_mask: Some(&causal), key_padding_mask: None };
        let memory_masks = AttentionMasks { attn_mask: None, key_padding_mask: mask.as_ref() };
        let query = if last.config.norm_first {
            let n = last.norm1.forward(&x)?;
            let x = x.add(&last.self_attn.forward_with(&n, &n, &n, self_masks, false)?.0)?;
            last.norm2.forward(&x)?
        } else {
            last.norm1.forward(&x.add(&last.self_attn.forward_with(&x, &x, &x, self_masks, false)?.0)?)?
        };
        let (_, weights) = last.multihead_attn.forward_with(&query, &memory, &memory, memory_masks, true)?;
        weights.ok_or_else(|| GraphError::Invalid { op: "TransformerSeq2Seq", detail: "no attention weights".into() })
    }
}

impl Module for TransformerSeq2Seq {
    /// The model needs source and target tokens: use `forward_with`.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Err(GraphError::Invalid {
            op: "TransformerSeq2Seq",
            detail: format!("forward({:?}) needs source and target tokens: use forward_with", x.shape()),
        })
    }

    fn children(&self) -> Vec<(String, &dyn Module)> {
        vec![
            ("src_embedding".into(), &self.src_embedding),
            ("tgt_embedding".into(), &self.tgt_embedding),
            ("positions".into(), &self.positions),
            ("transformer".into(), &self.transformer),
            ("out".into(), &self.out),
        ]
    }
}
