//! Attention: scaled dot-product attention with an additive mask, the Seq2Seq scores of
//! Bahdanau (additive) and Luong (dot / general), PyTorch's `MultiheadAttention`, and the
//! sinusoidal `PositionalEncoding`.
//!
//! Masks are ADDITIVE float tensors (0 = keep, `kernels::attention::MASKED` = -1e9 = drop),
//! as made by `kernels::attention::{causal_mask, padding_mask}`; a mask only has to broadcast
//! against the scores `[..., Lq, Lk]`.

use crate::error::{invalid, shape_err, Result};
use crate::nn::{init, Dropout, Linear, Mode, Module};
use crate::ops::dropout::dropout;
use crate::random::next_seed;
use crate::tensor::Tensor;
use ferrograd_device::kernels::attention::sinusoidal_positional_encoding;
use ferrograd_device::Device;

/// Whether `mask` broadcasts against `target` (NumPy rules, right-aligned).
fn broadcasts(mask: &[usize], target: &[usize]) -> bool {
    mask.len() <= target.len() && mask.iter().rev().zip(target.iter().rev()).all(|(&m, &t)| m == t || m == 1)
}

/// `scores + mask` after checking that the mask broadcasts (the error names `op`).
fn add_mask(op: &'static str, scores: Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
    let Some(m) = mask else { return Ok(scores) };
    if !broadcasts(&m.shape(), &scores.shape()) {
        return shape_err(op, format!("mask {:?} does not broadcast against scores {:?}", m.shape(), scores.shape()));
    }
    scores.add(m)
}

/// `softmax(q k^T / sqrt(d) + mask) v` for `q: [..., Lq, d]`, `k: [..., Lk, d]`,
/// `v: [..., Lk, dv]` (equal leading dims). With `dropout_p > 0` the weights are dropped
/// (inverted scaling) before multiplying `v`; pass 0 outside training. Returns the output
/// `[..., Lq, dv]` and the weights `[..., Lq, Lk]` (after dropout, as PyTorch returns them).
pub fn scaled_dot_product_attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    mask: Option<&Tensor>,
    dropout_p: f32,
) -> Result<(Tensor, Tensor)> {
    const OP: &str = "scaled_dot_product_attention";
    let (qs, ks, vs) = (q.shape(), k.shape(), v.shape());
    let n = qs.len();
    let ok = n >= 2
        && ks.len() == n
        && vs.len() == n
        && qs[..n - 2] == ks[..n - 2]
        && ks[..n - 2] == vs[..n - 2]
        && qs[n - 1] == ks[n - 1]
        && ks[n - 2] == vs[n - 2];
    if !ok {
        return shape_err(
            OP,
            format!("q {qs:?}, k {ks:?}, v {vs:?}: expected [..., Lq, d], [..., Lk, d], [..., Lk, dv]"),
        );
    }
    let scale = 1.0 / (qs[n - 1] as f32).sqrt();
    let scores = add_mask(OP, q.matmul_t(k, false, true)?.mul_scalar(scale)?, mask)?;
    let weights = scores.softmax(-1)?;
    let weights = dropout(&weights, dropout_p, dropout_p > 0.0, next_seed())?;
    Ok((weights.matmul(v)?, weights))
}

/// A Seq2Seq attention call's query as `[B, T, dq]` (a single step `[B, dq]` gets T = 1),
/// after checking the shapes: `query [B, dq]` or `[B, T, dq]`, `keys [B, L, dk]`,
/// `values [B, L, dv]`.
fn query_steps(
    op: &'static str,
    query: &Tensor,
    keys: &Tensor,
    values: &Tensor,
    dq: usize,
    dk: usize,
) -> Result<Tensor> {
    let (qs, ks, vs) = (query.shape(), keys.shape(), values.shape());
    let ok = (qs.len() == 2 || qs.len() == 3)
        && ks.len() == 3
        && vs.len() == 3
        && qs[qs.len() - 1] == dq
        && ks[2] == dk
        && qs[0] == ks[0]
        && ks[..2] == vs[..2];
    if !ok {
        return shape_err(
            op,
            format!(
                "query {qs:?}, keys {ks:?}, values {vs:?}: expected [B, {dq}] or [B, T, {dq}], [B, L, {dk}], [B, L, dv]"
            ),
        );
    }
    if qs.len() == 2 {
        query.unsqueeze(1)
    } else {
        Ok(query.clone())
    }
}

/// Masked softmax of `scores [B, T, L]` and the context it weighs from `values [B, L, dv]`,
/// shaped like the query: `(context [B, T, dv], weights [B, T, L])`, or without T for a
/// single-step query. A mask `[B, L]` applies to every step.
fn attend(
    op: &'static str,
    scores: Tensor,
    values: &Tensor,
    mask: Option<&Tensor>,
    single_step: bool,
) -> Result<(Tensor, Tensor)> {
    let mask = mask.map(|m| if m.shape().len() == 2 { m.unsqueeze(1) } else { Ok(m.clone()) }).transpose()?;
    let weights = add_mask(op, scores, mask.as_ref())?.softmax(-1)?;
    let context = weights.matmul(values)?;
    if single_step {
        Ok((context.squeeze(1)?, weights.squeeze(1)?))
    } else {
        Ok((context, weights))
    }
}

/// Bahdanau et al. (2015): `score(q, k_j) = v^T tanh(W_q q + W_k k_j + b)`.
/// Parameters: `query_proj.weight [A, dq]`, `key_proj.weight [A, dk]`, `key_proj.bias [A]`,
/// `v.weight [1, A]`.
pub struct AdditiveAttention {
    pub query_proj: Linear,
    pub key_proj: Linear,
    pub v: Linear,
}

impl AdditiveAttention {
    pub fn new(device: &Device, query_size: usize, key_size: usize, attn_size: usize) -> Result<AdditiveAttention> {
        Ok(AdditiveAttention {
            query_proj: Linear::new(device, query_size, attn_size, false)?,
            key_proj: Linear::new(device, key_size, attn_size, true)?,
            v: Linear::new(device, attn_size, 1, false)?,
        })
    }

    /// `query [B, dq]` (the decoder state), `keys [B, L, dk]`, `values [B, L, dv]`, optional
    /// additive `mask [B, L]` -> `(context [B, dv], weights [B, L])`. A query `[B, T, dq]`
    /// (every decoder step at once, when no step feeds its context into the next) gives
    /// `(context [B, T, dv], weights [B, T, L])`.
    pub fn forward_with(
        &self,
        query: &Tensor,
        keys: &Tensor,
        values: &Tensor,
        mask: Option<&Tensor>,
    ) -> Result<(Tensor, Tensor)> {
        const OP: &str = "AdditiveAttention";
        let (dq, dk) = (self.query_proj.weight.shape()[1], self.key_proj.weight.shape()[1]);
        let steps = query_steps(OP, query, keys, values, dq, dk)?;
        // [B, 1, L, A] + [B, T, 1, A]
        let keys = self.key_proj.forward(keys)?.unsqueeze(1)?;
        let e = keys.add(&self.query_proj.forward(&steps)?.unsqueeze(2)?)?.tanh()?;
        attend(OP, self.v.forward(&e)?.squeeze(3)?, values, mask, query.shape().len() == 2)
    }
}

impl Module for AdditiveAttention {
    /// Attention takes a query, keys and values: use `forward_with`.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        invalid("AdditiveAttention", format!("forward({:?}) needs query, keys and values: use forward_with", x.shape()))
    }
    fn children(&self) -> Vec<(String, &dyn Module)> {
        crate::children![self; query_proj, key_proj, v]
    }
}

/// Luong et al. (2015) scores.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LuongScore {
    /// `q . k_j` (needs dq = dk).
    Dot,
    /// `q^T W k_j` with `attn.weight [dq, dk]`.
    General,
}

/// Luong (multiplicative) attention: dot or general score, softmax over the source steps.
pub struct LuongAttention {
    pub score: LuongScore,
    /// `Linear(dk -> dq, bias=False)` for `General`; `None` for `Dot`.
    pub attn: Option<Linear>,
    query_size: usize,
    key_size: usize,
}

impl LuongAttention {
    pub fn new(device: &Device, score: LuongScore, query_size: usize, key_size: usize) -> Result<LuongAttention> {
        let attn = match score {
            LuongScore::General => Some(Linear::new(device, key_size, query_size, false)?),
            LuongScore::Dot if query_size != key_size => {
                return invalid(
                    "LuongAttention",
                    format!("dot score needs query size {query_size} = key size {key_size}"),
                )
            }
            LuongScore::Dot => None,
        };
        Ok(LuongAttention { score, attn, query_size, key_size })
    }

    /// As [`AdditiveAttention::forward_with`].
    pub fn forward_with(
        &self,
        query: &Tensor,
        keys: &Tensor,
        values: &Tensor,
        mask: Option<&Tensor>,
    ) -> Result<(Tensor, Tensor)> {
        const OP: &str = "LuongAttention";
        let steps = query_steps(OP, query, keys, values, self.query_size, self.key_size)?;
        let keys = match &self.attn {
            Some(w) => w.forward(keys)?,
            None => keys.clone(),
        };
        attend(OP, steps.matmul_t(&keys, false, true)?, values, mask, query.shape().len() == 2)
    }
}

impl Module for LuongAttention {
    /// Attention takes a query, keys and values: use `forward_with`.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        invalid("LuongAttention", format!("forward({:?}) needs query, keys and values: use forward_with", x.shape()))
    }
    fn children(&self) -> Vec<(String, &dyn Module)> {
        match &self.attn {
            Some(a) => vec![("attn".to_string(), a as &dyn Module)],
            None => Vec::new(),
        }
    }
}

/// The optional masks of a [`MultiheadAttention`] call, additive floats.
#[derive(Clone, Copy, Debug, Default)]
pub struct AttentionMasks<'a> {
    /// `[L, S]` or `[N * heads, L, S]` (PyTorch's `attn_mask`), e.g. a causal mask.
    pub attn_mask: Option<&'a Tensor>,
    /// `[N, S]` or `[N, 1, 1, S]` (as `kernels::attention::padding_mask` makes), added to every
    /// head and query of sequence n.
    pub key_padding_mask: Option<&'a Tensor>,
}

/// `torch.nn.MultiheadAttention` (kdim = vdim = embed_dim): parameters `in_proj_weight
/// [3E, E]`, `in_proj_bias [3E]`, `out_proj.weight [E, E]`, `out_proj.bias [E]`; inputs
/// `[L, N, E]`, or `[N, L, E]` with `batch_first`.
pub struct MultiheadAttention {
    pub in_proj_weight: Tensor,
    pub in_proj_bias: Option<Tensor>,
    pub out_proj: Linear,
    pub embed_dim: usize,
    pub num_heads: usize,
    /// Dropout on the attention weights (training mode only).
    pub dropout: f32,
    pub batch_first: bool,
    mode: Mode,
}

impl MultiheadAttention {
    /// PyTorch's init: xavier-uniform `in_proj_weight`, zero biases, default Linear `out_proj.weight`.
    pub fn new(device: &Device, embed_dim: usize, num_heads: usize, bias: bool) -> Result<MultiheadAttention> {
        if num_heads == 0 || embed_dim == 0 || !embed_dim.is_multiple_of(num_heads) {
            return invalid(
                "MultiheadAttention",
                format!("embed_dim {embed_dim} must be a positive multiple of num_heads {num_heads}"),
            );
        }
        let in_proj_weight = Tensor::parameter(init::xavier_uniform(device, &[3 * embed_dim, embed_dim], 1.0)?);
        let in_proj_bias =
            if bias { Some(Tensor::parameter(init::constant(device, &[3 * embed_dim], 0.0)?)) } else { None };
        let out_proj = Linear::new(device, embed_dim, embed_dim, bias)?;
        if let Some(b) = &out_proj.bias {
            init::zeros_(b)?;
        }
        Ok(MultiheadAttention {
            in_proj_weight,
            in_proj_bias,
            out_proj,
            embed_dim,
            num_heads,
            dropout: 0.0,
            batch_first: false,
            mode: Mode::new(),
        })
    }

    pub fn with_dropout(self, p: f32) -> Result<MultiheadAttention> {
        if !(0.0..1.0).contains(&p) {
            return invalid("MultiheadAttention", format!("dropout {p} outside [0, 1)"));
        }
        Ok(MultiheadAttention { dropout: p, ..self })
    }

    pub fn with_batch_first(self, on: bool) -> MultiheadAttention {
        MultiheadAttention { batch_first: on, ..self }
    }

    /// `x [N, L, E]` projected by rows `part*E..(part+1)*E` of the packed input projection,
    /// split into heads: `[N, heads, L, E/heads]`.
    fn project(&self, x: &Tensor, part: usize) -> Result<Tensor> {
        let e = self.embed_dim;
        let w = self.in_proj_weight.narrow(0, part * e, e)?;
        let b = self.in_proj_bias.as_ref().map(|b| b.narrow(0, part * e, e)).transpose()?;
        let (n, l) = (x.shape()[0], x.shape()[1]);
        x.linear(&w, b.as_ref())?.reshape_to(&[n, l, self.num_heads, e / self.num_heads])?.permute(&[0, 2, 1, 3])
    }

    /// Attention of `query [L, N, E]` over `key, value [S, N, E]` (batch-first: `[N, L, E]`,
    /// `[N, S, E]`). Returns the output shaped like `query` and, with `need_weights`, the
    /// weights averaged over heads `[N, L, S]`.
    pub fn forward_with(
        &self,
        query: &Tensor,
        key: &Tensor,
        value: &Tensor,
        masks: AttentionMasks,
        need_weights: bool,
    ) -> Result<(Tensor, Option<Tensor>)> {
        const OP: &str = "MultiheadAttention";
        let (qs, ks, vs) = (query.shape(), key.shape(), value.shape());
        let e = self.embed_dim;
        let (nb, seq) = if self.batch_first { (0, 1) } else { (1, 0) };
        let ok = [&qs, &ks, &vs].iter().all(|s| s.len() == 3 && s[2] == e) && qs[nb] == ks[nb] && ks == vs;
        if !ok {
            let layout =
                if self.batch_first { "[N, L, E], [N, S, E], [N, S, E]" } else { "[L, N, E], [S, N, E], [S, N, E]" };
            return shape_err(OP, format!("query {qs:?}, key {ks:?}, value {vs:?}: expected {layout} with E = {e}"));
        }
        let (n, l, s, h) = (qs[nb], qs[seq], ks[seq], self.num_heads);
        let batch_major = |t: &Tensor| if self.batch_first { Ok(t.clone()) } else { t.transpose(0, 1) };
        let q = self.project(&batch_major(query)?, 0)?;
        let k = self.project(&batch_major(key)?, 1)?;
        let v = self.project(&batch_major(value)?, 2)?;

        let mut mask: Option<Tensor> = None;
        if let Some(m) = masks.attn_mask {
            let m = match m.shape().as_slice() {
                [ml, ms] if *ml == l && *ms == s => m.clone(),
                [nh, ml, ms] if *nh == n * h && *ml == l && *ms == s => m.reshape_to(&[n, h, l, s])?,
                other => {
                    return shape_err(OP, format!("attn_mask {other:?}: expected [{l}, {s}] or [{}, {l}, {s}]", n * h))
                }
            };
            mask = Some(m);
        }
        if let Some(m) = masks.key_padding_mask {
            let m = match m.shape().as_slice() {
                [mn, ms] | [mn, 1, 1, ms] if *mn == n && *ms == s => m.reshape_to(&[n, 1, 1, s])?,
                other => {
                    return shape_err(
                        OP,
                        format!("key_padding_mask {other:?}: expected [{n}, {s}] or [{n}, 1, 1, {s}]"),
                    )
                }
            };
            mask = Some(match mask {
                Some(a) => a.add(&m)?,
                None => m,
            });
        }
        let p = if self.mode.training() { self.dropout } else { 0.0 };
        let (out, weights) = scaled_dot_product_attention(&q, &k, &v, mask.as_ref(), p)?;
        let out = self.out_proj.forward(&out.permute(&[0, 2, 1, 3])?.reshape_to(&[n, l, e])?)?;
        let out = if self.batch_first { out } else { out.transpose(0, 1)? };
        let weights = if need_weights { Some(weights.mean(&[1], false)?) } else { None };
        Ok((out, weights))
    }
}

impl Module for MultiheadAttention {
    /// Self-attention of `x` without masks.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(self.forward_with(x, x, x, AttentionMasks::default(), false)?.0)
    }

    fn own_parameters(&self) -> Vec<(String, Tensor)> {
        let mut p = vec![("in_proj_weight".to_string(), self.in_proj_weight.clone())];
        if let Some(b) = &self.in_proj_bias {
            p.push(("in_proj_bias".to_string(), b.clone()));
        }
        p
    }

    fn children(&self) -> Vec<(String, &dyn Module)> {
        crate::children![self; out_proj]
    }

    fn set_own_training(&self, training: bool) {
        self.mode.set(training)
    }
}

/// Adds the sinusoidal encoding of Vaswani et al. to `x [T, B, E]` (`[B, T, E]` with
/// `batch_first`), then dropout. The table is the buffer `pe [max_len, d_model]`.
pub struct PositionalEncoding {
    pub pe: Tensor,
    pub dropout: Dropout,
    pub batch_first: bool,
}

impl PositionalEncoding {
    pub fn new(device: &Device, d_model: usize, max_len: usize, dropout: f32, batch_first: bool) -> Result<Self> {
        let pe = Tensor::new(sinusoidal_positional_encoding(device, max_len, d_model)?);
        Ok(PositionalEncoding { pe, dropout: Dropout::new(dropout), batch_first })
    }
}

impl Module for PositionalEncoding {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (xs, ps) = (x.shape(), self.pe.shape());
        let t = if self.batch_first { xs.get(1) } else { xs.first() };
        let t = match t {
            Some(&t) if xs.len() == 3 && xs[2] == ps[1] && t <= ps[0] => t,
            _ => {
                let layout = if self.batch_first { "[B, T, d_model]" } else { "[T, B, d_model]" };
                return shape_err(
                    "PositionalEncoding",
                    format!("input {xs:?}: expected {layout} with d_model {} and T <= max_len {}", ps[1], ps[0]),
                );
            }
        };
        let table = self.pe.narrow(0, 0, t)?;
        let table = if self.batch_first { table.unsqueeze(0)? } else { table.unsqueeze(1)? };
        self.dropout.forward(&x.add(&table)?)
    }

    fn own_buffers(&self) -> Vec<(String, Tensor)> {
        vec![("pe".to_string(), self.pe.clone())]
    }

    fn children(&self) -> Vec<(String, &dyn Module)> {
        crate::children![self; dropout]
    }
}
