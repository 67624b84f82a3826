//! The Transformer of Vaswani et al. as PyTorch's `torch.nn` has it: encoder and decoder
//! layers (post-norm, or pre-norm with `norm_first`), their stacks, and the encoder-decoder
//! `Transformer` (embeddings and the output projection are left to the model). Parameter
//! names follow PyTorch's: `self_attn.*`, `multihead_attn.*` (decoder), `linear1`, `linear2`,
//! `norm1`, `norm2`, `norm3` (decoder); stacks add `layers.<i>.` and a final `norm`.
//!
//! Masks are additive floats (see `nn::attention`); `Transformer::square_subsequent_mask`
//! gives the causal mask of a target.

use crate::error::{invalid, Result};
use crate::nn::attention::{AttentionMasks, MultiheadAttention};
use crate::nn::{init, Dropout, LayerNorm, Linear, Module};
use crate::tensor::Tensor;
use ferrograd_device::kernels::attention::causal_mask;
use ferrograd_device::Device;

/// The feed-forward nonlinearity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    Relu,
    /// Exact (erf) GELU.
    Gelu,
}

/// The arguments of `torch.nn.TransformerEncoderLayer` / `TransformerDecoderLayer`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TransformerLayerConfig {
    pub d_model: usize,
    pub nhead: usize,
    pub dim_feedforward: usize,
    pub dropout: f32,
    pub activation: Activation,
    pub layer_norm_eps: f32,
    /// Inputs `[N, L, E]` instead of `[L, N, E]`.
    pub batch_first: bool,
    /// Pre-norm (`x + f(norm(x))`) instead of post-norm (`norm(x + f(x))`).
    pub norm_first: bool,
}

impl TransformerLayerConfig {
    /// PyTorch's defaults: feed-forward 2048, dropout 0.1, ReLU, eps 1e-5, sequence-first, post-norm.
    pub fn new(d_model: usize, nhead: usize) -> TransformerLayerConfig {
        TransformerLayerConfig {
            d_model,
            nhead,
            dim_feedforward: 2048,
            dropout: 0.1,
            activation: Activation::Relu,
            layer_norm_eps: 1e-5,
            batch_first: false,
            norm_first: false,
        }
    }
    pub fn dim_feedforward(self, d: usize) -> Self {
        TransformerLayerConfig { dim_feedforward: d, ..self }
    }
    pub fn dropout(self, p: f32) -> Self {
        TransformerLayerConfig { dropout: p, ..self }
    }
    pub fn activation(self, a: Activation) -> Self {
        TransformerLayerConfig { activation: a, ..self }
    }
    pub fn batch_first(self, on: bool) -> Self {
        TransformerLayerConfig { batch_first: on, ..self }
    }
    pub fn norm_first(self, on: bool) -> Self {
        TransformerLayerConfig { norm_first: on, ..self }
    }
}

fn attention(device: &Device, c: &TransformerLayerConfig) -> Result<MultiheadAttention> {
    Ok(MultiheadAttention::new(device, c.d_model, c.nhead, true)?
        .with_dropout(c.dropout)?
        .with_batch_first(c.batch_first))
}

fn norm(device: &Device, c: &TransformerLayerConfig) -> Result<LayerNorm> {
    let mut n = LayerNorm::new(device, &[c.d_model])?;
    n.eps = c.layer_norm_eps;
    Ok(n)
}

/// `linear2(dropout(act(linear1(x))))`, shared by both layer kinds.
struct FeedForward<'a> {
    linear1: &'a Linear,
    dropout: &'a Dropout,
    linear2: &'a Linear,
    activation: Activation,
}

impl FeedForward<'_> {
    fn apply(&self, x: &Tensor) -> Result<Tensor> {
        let h = self.linear1.forward(x)?;
        let h = match self.activation {
            Activation::Relu => h.relu()?,
            Activation::Gelu => h.gelu()?,
        };
        self.linear2.forward(&self.dropout.forward(&h)?)
    }
}

/// `x + f(norm(x))` (pre-norm) or `norm(x + f(x))` (post-norm).
fn residual(x: &Tensor, norm: &LayerNorm, norm_first: bool, f: impl Fn(&Tensor) -> Result<Tensor>) -> Result<Tensor> {
    if norm_first {
        x.add(&f(&norm.forward(x)?)?)
    } else {
        norm.forward(&x.add(&f(x)?)?)
    }
}

/// `torch.nn.TransformerEncoderLayer`: self-attention then feed-forward, each with a residual.
pub struct TransformerEncoderLayer {
    pub self_attn: MultiheadAttention,
    pub linear1: Linear,
    pub dropout: Dropout,
    pub linear2: Linear,
    pub norm1: LayerNorm,
    pub norm2: LayerNorm,
    pub dropout1: Dropout,
    pub dropout2: Dropout,
    pub config: TransformerLayerConfig,
}

impl TransformerEncoderLayer {
    pub fn new(device: &Device, c: TransformerLayerConfig) -> Result<TransformerEncoderLayer> {
        Ok(TransformerEncoderLayer {
            self_attn: attention(device, &c)?,
            linear1: Linear::new(device, c.d_model, c.dim_feedforward, true)?,
            dropout: Dropout::new(c.dropout),
            linear2: Linear::new(device, c.dim_feedforward, c.d_model, true)?,
            norm1: norm(device, &c)?,
            norm2: norm(device, &c)?,
            dropout1: Dropout::new(c.dropout),
            dropout2: Dropout::new(c.dropout),
            config: c,
        })
    }

    /// `src [S, N, E]` (`[N, S, E]` batch-first) with PyTorch's `src_mask` and
    /// `src_key_padding_mask` (additive).
    pub fn forward_with(&self, src: &Tensor, masks: AttentionMasks) -> Result<Tensor> {
        let ff = FeedForward {
            linear1: &self.linear1,
            dropout: &self.dropout,
            linear2: &self.linear2,
            activation: self.config.activation,
        };
        let nf = self.config.norm_first;
        let x = residual(src, &self.norm1, nf, |x| {
            self.dropout1.forward(&self.self_attn.forward_with(x, x, x, masks, false)?.0)
        })?;
        residual(&x, &self.norm2, nf, |x| self.dropout2.forward(&ff.apply(x)?))
    }
}

impl Module for TransformerEncoderLayer {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_with(x, AttentionMasks::default())
    }
    fn children(&self) -> Vec<(String, &dyn Module)> {
        crate::children![self; self_attn, linear1, dropout, linear2, norm1, norm2, dropout1, dropout2]
    }
}

/// The masks of a decoder call (PyTorch's argument names), additive floats.
#[derive(Clone, Copy, Debug, Default)]
pub struct DecoderMasks<'a> {
    pub tgt_mask: Option<&'a Tensor>,
    pub memory_mask: Option<&'a Tensor>,
    pub tgt_key_padding_mask: Option<&'a Tensor>,
    pub memory_key_padding_mask: Option<&'a Tensor>,
}

impl DecoderMasks<'_> {
    fn target(&self) -> AttentionMasks<'_> {
        AttentionMasks { attn_mask: self.tgt_mask, key_padding_mask: self.tgt_key_padding_mask }
    }
    fn memory(&self) -> AttentionMasks<'_> {
        AttentionMasks { attn_mask: self.memory_mask, key_padding_mask: self.memory_key_padding_mask }
    }
}

/// `torch.nn.TransformerDecoderLayer`: self-attention, attention over the encoder's memory,
/// feed-forward, each with a residual.
pub struct TransformerDecoderLayer {
    pub self_attn: MultiheadAttention,
    pub multihead_attn: MultiheadAttention,
    pub linear1: Linear,
    pub dropout: Dropout,
    pub linear2: Linear,
    pub norm1: LayerNorm,
    pub norm2: LayerNorm,
    pub norm3: LayerNorm,
    pub dropout1: Dropout,
    pub dropout2: Dropout,
    pub dropout3: Dropout,
    pub config: TransformerLayerConfig,
}

impl TransformerDecoderLayer {
    pub fn new(device: &Device, c: TransformerLayerConfig) -> Result<TransformerDecoderLayer> {
        Ok(TransformerDecoderLayer {
            self_attn: attention(device, &c)?,
            multihead_attn: attention(device, &c)?,
            linear1: Linear::new(device, c.d_model, c.dim_feedforward, true)?,
            dropout: Dropout::new(c.dropout),
            linear2: Linear::new(device, c.dim_feedforward, c.d_model, true)?,
            norm1: norm(device, &c)?,
            norm2: norm(device, &c)?,
            norm3: norm(device, &c)?,
            dropout1: Dropout::new(c.dropout),
            dropout2: Dropout::new(c.dropout),
            dropout3: Dropout::new(c.dropout),
            config: c,
        })
    }

    /// `tgt [T, N, E]` attending to itself and to `memory [S, N, E]` (batch-first: `[N, ., E]`).
    pub fn forward_with(&self, tgt: &Tensor, memory: &Tensor, masks: DecoderMasks) -> Result<Tensor> {
        let ff = FeedForward {
            linear1: &self.linear1,
            dropout: &self.dropout,
            linear2: &self.linear2,
            activation: self.config.activation,
        };
        let nf = self.config.norm_first;
        let x = residual(tgt, &self.norm1, nf, |x| {
            self.dropout1.forward(&self.self_attn.forward_with(x, x, x, masks.target(), false)?.0)
        })?;
        let x = residual(&x, &self.norm2, nf, |x| {
            self.dropout2.forward(&self.multihead_attn.forward_with(x, memory, memory, masks.memory(), false)?.0)
        })?;
        residual(&x, &self.norm3, nf, |x| self.dropout3.forward(&ff.apply(x)?))
    }
}

impl Module for TransformerDecoderLayer {
    /// A decoder layer needs the encoder's memory: use `forward_with`.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        invalid("TransformerDecoderLayer", format!("forward({:?}) needs a memory: use forward_with", x.shape()))
    }
    fn children(&self) -> Vec<(String, &dyn Module)> {
        crate::children![self; self_attn, multihead_attn, linear1, dropout, linear2, norm1, norm2, norm3, dropout1, dropout2, dropout3]
    }
}

/// A list of layers named `0`, `1`, ... (PyTorch's `ModuleList`); `forward` applies them in order.
pub struct Layers<T>(pub Vec<T>);

impl<T: Module> Module for Layers<T> {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.0.iter().try_fold(x.clone(), |y, layer| layer.forward(&y))
    }
    fn children(&self) -> Vec<(String, &dyn Module)> {
        self.0.iter().enumerate().map(|(i, l)| (i.to_string(), l as &dyn Module)).collect()
    }
}

/// `torch.nn.TransformerEncoder`: `num_layers` encoder layers and an optional final norm.
pub struct TransformerEncoder {
    pub layers: Layers<TransformerEncoderLayer>,
    pub norm: Option<LayerNorm>,
}

impl TransformerEncoder {
    /// Layers drawn independently (PyTorch deep-copies one layer, so its layers start equal).
    pub fn new(device: &Device, c: TransformerLayerConfig, num_layers: usize, final_norm: bool) -> Result<Self> {
        let layers = (0..num_layers).map(|_| TransformerEncoderLayer::new(device, c)).collect::<Result<_>>()?;
        Ok(TransformerEncoder { layers: Layers(layers), norm: if final_norm { Some(norm(device, &c)?) } else { None } })
    }

    pub fn forward_with(&self, src: &Tensor, masks: AttentionMasks) -> Result<Tensor> {
        let x = self.layers.0.iter().try_fold(src.clone(), |x, l| l.forward_with(&x, masks))?;
        match &self.norm {
            Some(n) => n.forward(&x),
            None => Ok(x),
        }
    }
}

impl Module for TransformerEncoder {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_with(x, AttentionMasks::default())
    }
    fn children(&self) -> Vec<(String, &dyn Module)> {
        let mut c = vec![("layers".to_string(), &self.layers as &dyn Module)];
        if let Some(n) = &self.norm {
            c.push(("norm".to_string(), n));
        }
        c
    }
}

/// `torch.nn.TransformerDecoder`: `num_layers` decoder layers and an optional final norm.
pub struct TransformerDecoder {
    pub layers: Layers<TransformerDecoderLayer>,
    pub norm: Option<LayerNorm>,
}

impl TransformerDecoder {
    pub fn new(device: &Device, c: TransformerLayerConfig, num_layers: usize, final_norm: bool) -> Result<Self> {
        let layers = (0..num_layers).map(|_| TransformerDecoderLayer::new(device, c)).collect::<Result<_>>()?;
        Ok(TransformerDecoder { layers: Layers(layers), norm: if final_norm { Some(norm(device, &c)?) } else { None } })
    }

    pub fn forward_with(&self, tgt: &Tensor, memory: &Tensor, masks: DecoderMasks) -> Result<Tensor> {
        let x = self.layers.0.iter().try_fold(tgt.clone(), |x, l| l.forward_with(&x, memory, masks))?;
        match &self.norm {
            Some(n) => n.forward(&x),
            None => Ok(x),
        }
    }
}

impl Module for TransformerDecoder {
    /// A decoder needs the encoder's memory: use `forward_with`.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        invalid("TransformerDecoder", format!("forward({:?}) needs a memory: use forward_with", x.shape()))
    }
    fn children(&self) -> Vec<(String, &dyn Module)> {
        let mut c = vec![("layers".to_string(), &self.layers as &dyn Module)];
        if let Some(n) = &self.norm {
            c.push(("norm".to_string(), n));
        }
        c
    }
}

/// Every mask of a [`Transformer`] call (PyTorch's argument names), additive floats.
#[derive(Clone, Copy, Debug, Default)]
pub struct TransformerMasks<'a> {
    pub src_mask: Option<&'a Tensor>,
    pub tgt_mask: Option<&'a Tensor>,
    pub memory_mask: Option<&'a Tensor>,
    pub src_key_padding_mask: Option<&'a Tensor>,
    pub tgt_key_padding_mask: Option<&'a Tensor>,
    pub memory_key_padding_mask: Option<&'a Tensor>,
}

/// `torch.nn.Transformer`: encoder and decoder stacks, each with a final norm
/// (`encoder.norm`, `decoder.norm`); every weight matrix xavier-uniform, as PyTorch resets them.
pub struct Transformer {
    pub encoder: TransformerEncoder,
    pub decoder: TransformerDecoder,
}

impl Transformer {
    pub fn new(
        device: &Device,
        c: TransformerLayerConfig,
        num_encoder_layers: usize,
        num_decoder_layers: usize,
    ) -> Result<Transformer> {
        let t = Transformer {
            encoder: TransformerEncoder::new(device, c, num_encoder_layers, true)?,
            decoder: TransformerDecoder::new(device, c, num_decoder_layers, true)?,
        };
        for p in t.parameters() {
            if p.ndim() > 1 {
                init::xavier_uniform_(&p, 1.0)?;
            }
        }
        Ok(t)
    }

    /// `[sz, sz]` additive causal mask for a target of `sz` steps.
    pub fn square_subsequent_mask(device: &Device, sz: usize) -> Result<Tensor> {
        Ok(Tensor::new(causal_mask(device, sz, sz)?))
    }

    /// `src [S, N, E]`, `tgt [T, N, E]` (batch-first: `[N, ., E]`) -> `[T, N, E]`.
    pub fn forward_with(&self, src: &Tensor, tgt: &Tensor, m: TransformerMasks) -> Result<Tensor> {
        let memory = self
            .encoder
            .forward_with(src, AttentionMasks { attn_mask: m.src_mask, key_padding_mask: m.src_key_padding_mask })?;
        let masks = DecoderMasks {
            tgt_mask: m.tgt_mask,
            memory_mask: m.memory_mask,
            tgt_key_padding_mask: m.tgt_key_padding_mask,
            memory_key_padding_mask: m.memory_key_padding_mask,
        };
        self.decoder.forward_with(tgt, &memory, masks)
    }
}

impl Module for Transformer {
    /// The Transformer needs a source and a target: use `forward_with`.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        invalid("Transformer", format!("forward({:?}) needs src and tgt: use forward_with", x.shape()))
    }
    fn children(&self) -> Vec<(String, &dyn Module)> {
        crate::children![self; encoder, decoder]
    }
}
