//! Attention and Transformer layers: forward against loop references written from the
//! definitions, gradients against finite differences (CPU), GPU against CPU, PyTorch names,
//! masks, and errors.

mod common;
mod seq_common;

use ferrograd_device::kernels::attention::{causal_mask, padding_mask};
use ferrograd_device::testing::Rng;
use ferrograd_device::{Array, DType, Device};
use ferrograd_graph::nn::attention::{
    scaled_dot_product_attention, AdditiveAttention, AttentionMasks, LuongAttention, LuongScore, MultiheadAttention,
    PositionalEncoding,
};
use ferrograd_graph::nn::transformer::{
    Activation, DecoderMasks, Transformer, TransformerDecoderLayer, TransformerEncoderLayer, TransformerLayerConfig,
    TransformerMasks,
};
use ferrograd_graph::nn::Module;
use ferrograd_graph::{manual_seed, Tensor};
use seq_common::{check_gpu_matches_cpu, check_module_gradients, leaf};

const CPU: Device = Device::Cpu;

fn names(m: &dyn Module) -> Vec<(String, Vec<usize>)> {
    m.named_parameters().into_iter().map(|(n, t)| (n, t.shape())).collect()
}

fn vals(t: &Tensor) -> Vec<f64> {
    t.to_vec_f64().unwrap()
}

fn with_leaves(m: &dyn Module, extra: &[(&str, &Tensor)]) -> Vec<(String, Tensor)> {
    let mut out = m.named_parameters();
    out.extend(extra.iter().map(|(n, t)| (n.to_string(), (*t).clone())));
    out
}

fn arrays(rng: &mut Rng, shapes: &[&[usize]]) -> Vec<Array> {
    shapes
        .iter()
        .map(|s| Array::cpu(rng.vec(s.iter().product()).into_iter().map(f64::from).collect(), s, DType::F32))
        .collect()
}

/// softmax(q k^T / sqrt(d) + mask) v for one [L, d] x [S, d] x [S, dv] problem.
fn attention_reference(
    q: &[f64],
    k: &[f64],
    v: &[f64],
    mask: Option<&[f64]>,
    (l, s, d, dv): (usize, usize, usize, usize),
) -> (Vec<f64>, Vec<f64>) {
    let mut w = vec![0.0; l * s];
    for i in 0..l {
        let scores: Vec<f64> = (0..s)
            .map(|j| {
                let dot: f64 = (0..d).map(|x| q[i * d + x] * k[j * d + x]).sum();
                dot / (d as f64).sqrt() + mask.map_or(0.0, |m| m[i * s + j])
            })
            .collect();
        let max = scores.iter().cloned().fold(f64::MIN, f64::max);
        let total: f64 = scores.iter().map(|x| (x - max).exp()).sum();
        for j in 0..s {
            w[i * s + j] = (scores[j] - max).exp() / total;
        }
    }
    let out = (0..l * dv).map(|o| (0..s).map(|j| w[(o / dv) * s + j] * v[j * dv + o % dv]).sum()).collect();
    (out, w)
}

fn assert_close(what: &str, got: &[f64], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "{what}");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= tol * (1.0 + w.abs()), "{what}: element {i}: {g} vs {w}");
    }
}

#[test]
fn scaled_dot_product_attention_matches_the_definition_and_gradchecks() {
    let mut rng = Rng::new(1);
    let x = arrays(&mut rng, &[&[2, 3, 4], &[2, 5, 4], &[2, 5, 3], &[3, 5]]);
    let t: Vec<Tensor> = x.iter().map(|a| Tensor::new(a.clone())).collect();
    let (out, w) = scaled_dot_product_attention(&t[0], &t[1], &t[2], Some(&t[3]), 0.0).unwrap();
    let (o, wt, v, m) = (
        vals(&out),
        vals(&w),
        x.iter().map(|a| a.to_f64_vec().unwrap()).collect::<Vec<_>>(),
        x[3].to_f64_vec().unwrap(),
    );
    for b in 0..2 {
        let (ro, rw) = attention_reference(&v[0][b * 12..], &v[1][b * 20..], &v[2][b * 15..], Some(&m), (3, 5, 4, 3));
        assert_close("sdpa output", &o[b * 9..(b + 1) * 9], &ro, 1e-12);
        assert_close("sdpa weights", &wt[b * 15..(b + 1) * 15], &rw, 1e-12);
    }
    common::check("sdpa", |t| Ok(scaled_dot_product_attention(&t[0], &t[1], &t[2], Some(&t[3]), 0.0)?.0), &x);
    common::check("sdpa weights", |t| Ok(scaled_dot_product_attention(&t[0], &t[1], &t[2], None, 0.0)?.1), &x[..3]);
}

#[test]
fn causal_and_padding_masks_remove_keys() {
    let mut rng = Rng::new(2);
    let q = leaf(&CPU, &mut rng, &[2, 1, 4, 3]);
    let causal = Tensor::new(causal_mask(&CPU, 4, 4).unwrap());
    let pad = Tensor::new(padding_mask(&CPU, &[4, 2], 4).unwrap());
    let (_, w) = scaled_dot_product_attention(&q, &q, &q, Some(&causal.add(&pad).unwrap()), 0.0).unwrap();
    let w = vals(&w);
    for b in 0..2 {
        for i in 0..4 {
            let row = &w[(b * 4 + i) * 4..(b * 4 + i + 1) * 4];
            assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-12);
            for (j, &x) in row.iter().enumerate() {
                let allowed = j <= i && (b == 0 || j < 2);
                assert!(allowed || x == 0.0, "batch {b} query {i} key {j}: weight {x}");
            }
        }
    }
}

#[test]
fn seq2seq_attentions_gradcheck_and_mask() {
    manual_seed(3);
    let mut rng = Rng::new(3);
    let (query, keys, values) =
        (leaf(&CPU, &mut rng, &[2, 3]), leaf(&CPU, &mut rng, &[2, 4, 5]), leaf(&CPU, &mut rng, &[2, 4, 2]));
    let mask = Tensor::new(padding_mask(&CPU, &[4, 3], 4).unwrap().reshape(&[2, 4]).unwrap());
    let add = AdditiveAttention::new(&CPU, 3, 5, 6).unwrap();
    assert_eq!(
        names(&add),
        vec![
            ("query_proj.weight".into(), vec![6, 3]),
            ("key_proj.weight".into(), vec![6, 5]),
            ("key_proj.bias".into(), vec![6]),
            ("v.weight".into(), vec![1, 6])
        ]
    );
    let general = LuongAttention::new(&CPU, LuongScore::General, 3, 5).unwrap();
    assert_eq!(names(&general), vec![("attn.weight".to_string(), vec![3, 5])]);
    let leaves = [("query", &query), ("keys", &keys), ("values", &values)];
    check_module_gradients("additive", &with_leaves(&add, &leaves), || {
        let (c, w) = add.forward_with(&query, &keys, &values, Some(&mask))?;
        Tensor::cat(&[&c.flatten(0, -1)?, &w.flatten(0, -1)?], 0)
    });
    check_module_gradients("luong general", &with_leaves(&general, &leaves), || {
        Ok(general.forward_with(&query, &keys, &values, Some(&mask))?.0)
    });
    let (_, w) = add.forward_with(&query, &keys, &values, Some(&mask)).unwrap();
    assert_eq!(vals(&w)[7], 0.0, "the padded key of sequence 1 gets no weight");

    // a query of T steps at once equals T single-step calls, stacked (and has gradients)
    let steps = leaf(&CPU, &mut rng, &[2, 3, 3]);
    type Attend<'a> = Box<dyn Fn(&Tensor) -> ferrograd_graph::Result<(Tensor, Tensor)> + 'a>;
    let runs: [(&str, Attend); 2] = [
        ("additive", Box::new(|q: &Tensor| add.forward_with(q, &keys, &values, Some(&mask)))),
        ("luong general", Box::new(|q: &Tensor| general.forward_with(q, &keys, &values, Some(&mask)))),
    ];
    for (name, run) in runs {
        let (c, w) = run(&steps).unwrap();
        assert_eq!((c.shape(), w.shape()), (vec![2, 3, 2], vec![2, 3, 4]), "{name}");
        for t in 0..3 {
            let (ct, wt) = run(&steps.select(1, t).unwrap()).unwrap();
            assert_eq!(vals(&c.select(1, t).unwrap()), vals(&ct), "{name} context, step {t}");
            assert_eq!(vals(&w.select(1, t).unwrap()), vals(&wt), "{name} weights, step {t}");
        }
    }
    check_module_gradients("additive, all steps", &with_leaves(&add, &[("query", &steps), ("keys", &keys)]), || {
        Ok(add.forward_with(&steps, &keys, &values, Some(&mask))?.0)
    });

    // Luong dot against the definition: context = softmax(K q) V
    let dot = LuongAttention::new(&CPU, LuongScore::Dot, 5, 5).unwrap();
    let q5 = leaf(&CPU, &mut rng, &[2, 5]);
    let (c, _) = dot.forward_with(&q5, &keys, &values, None).unwrap();
    let (qv, kv, vv) = (vals(&q5), vals(&keys), vals(&values));
    for b in 0..2 {
        let scores: Vec<f64> = (0..4).map(|j| (0..5).map(|x| qv[b * 5 + x] * kv[b * 20 + j * 5 + x]).sum()).collect();
        let z: f64 = scores.iter().map(|s| s.exp()).sum();
        for o in 0..2 {
            let want: f64 = (0..4).map(|j| scores[j].exp() / z * vv[b * 8 + j * 2 + o]).sum();
            assert!((vals(&c)[b * 2 + o] - want).abs() < 1e-12);
        }
    }
    let e = dot.forward_with(&query, &keys, &values, None).unwrap_err().to_string();
    assert!(e.contains("LuongAttention") && e.contains("[2, 3]") && e.contains("[2, 4, 5]"), "{e}");
    assert!(LuongAttention::new(&CPU, LuongScore::Dot, 3, 5).is_err());
}

/// PyTorch's multi-head attention written out with loops, sequence-first, one additive mask [L, S].
#[allow(clippy::too_many_arguments)]
fn mha_reference(
    query: &[f64],
    key: &[f64],
    value: &[f64],
    p: &[Vec<f64>],
    heads: usize,
    n: usize,
    l: usize,
    s: usize,
    e: usize,
    mask: &[f64],
) -> Vec<f64> {
    let (w_in, b_in, w_out, b_out) = (&p[0], &p[1], &p[2], &p[3]);
    let d = e / heads;
    // rows part*e.. of the packed projection applied to x [len, n, e]
    let proj = |x: &[f64], len: usize, part: usize| -> Vec<f64> {
        let mut y = vec![0.0; len * n * e];
        for r in 0..len * n {
            for o in 0..e {
                y[r * e + o] =
                    b_in[part * e + o] + (0..e).map(|i| w_in[(part * e + o) * e + i] * x[r * e + i]).sum::<f64>();
            }
        }
        y
    };
    let (q, k, v) = (proj(query, l, 0), proj(key, s, 1), proj(value, s, 2));
    let mut concat = vec![0.0; l * n * e];
    for b in 0..n {
        for h in 0..heads {
            let pick = |x: &[f64], len: usize| -> Vec<f64> {
                (0..len * d).map(|idx| x[((idx / d) * n + b) * e + h * d + idx % d]).collect()
            };
            let (o, _) = attention_reference(&pick(&q, l), &pick(&k, s), &pick(&v, s), Some(mask), (l, s, d, d));
            for i in 0..l {
                for x in 0..d {
                    concat[(i * n + b) * e + h * d + x] = o[i * d + x];
                }
            }
        }
    }
    (0..l * n * e)
        .map(|idx| b_out[idx % e] + (0..e).map(|i| w_out[(idx % e) * e + i] * concat[(idx / e) * e + i]).sum::<f64>())
        .collect()
}

#[test]
fn multihead_attention_matches_pytorch_definition() {
    manual_seed(4);
    let mut rng = Rng::new(4);
    let (e, heads, n, l, s) = (6, 2, 2, 3, 4);
    let mha = MultiheadAttention::new(&CPU, e, heads, true).unwrap();
    assert_eq!(
        names(&mha),
        vec![
            ("in_proj_weight".into(), vec![18, 6]),
            ("in_proj_bias".into(), vec![18]),
            ("out_proj.weight".into(), vec![6, 6]),
            ("out_proj.bias".into(), vec![6])
        ]
    );
    // nonzero biases so the reference exercises them
    for (_, p) in mha.named_parameters() {
        p.set_data(Array::cpu(rng.vec(p.numel()).into_iter().map(f64::from).collect(), &p.shape(), DType::F32));
    }
    let (q, k, v) =
        (leaf(&CPU, &mut rng, &[l, n, e]), leaf(&CPU, &mut rng, &[s, n, e]), leaf(&CPU, &mut rng, &[s, n, e]));
    let mask = leaf(&CPU, &mut rng, &[l, s]);
    let masks = AttentionMasks { attn_mask: Some(&mask), key_padding_mask: None };
    let (out, w) = mha.forward_with(&q, &k, &v, masks, true).unwrap();
    assert_eq!(out.shape(), [l, n, e]);
    assert_eq!(w.unwrap().shape(), [n, l, s]);
    let p: Vec<Vec<f64>> = mha.parameters().iter().map(vals).collect();
    let want = mha_reference(&vals(&q), &vals(&k), &vals(&v), &p, heads, n, l, s, e, &vals(&mask));
    // 1/sqrt(3) enters as an f32 scalar, so agreement is ~1e-9, not 1e-15
    assert_close("mha", &vals(&out), &want, 1e-7);

    // batch_first gives the same numbers transposed
    let bf = MultiheadAttention::new(&CPU, e, heads, true).unwrap().with_batch_first(true);
    bf.load_state_dict(&mha.state_dict().into_iter().map(|(n, t)| (n, t.data())).collect::<Vec<_>>(), true).unwrap();
    let tr = |t: &Tensor| t.transpose(0, 1).unwrap();
    let (out_bf, _) = bf.forward_with(&tr(&q), &tr(&k), &tr(&v), masks, false).unwrap();
    assert_close("batch_first", &vals(&tr(&out_bf)), &vals(&out), 1e-12);
}

#[test]
fn multihead_attention_gradients_cpu_and_gpu() {
    manual_seed(5);
    let mut rng = Rng::new(5);
    let mha = MultiheadAttention::new(&CPU, 4, 2, true).unwrap();
    let (q, kv) = (leaf(&CPU, &mut rng, &[3, 2, 4]), leaf(&CPU, &mut rng, &[2, 2, 4]));
    let causal = Tensor::new(causal_mask(&CPU, 3, 2).unwrap());
    let pad = Tensor::new(padding_mask(&CPU, &[2, 1], 2).unwrap());
    let masks = AttentionMasks { attn_mask: Some(&causal), key_padding_mask: Some(&pad) };
    check_module_gradients("mha", &with_leaves(&mha, &[("q", &q), ("kv", &kv)]), || {
        let (o, w) = mha.forward_with(&q, &kv, &kv, masks, true)?;
        Tensor::cat(&[&o.flatten(0, -1)?, &w.unwrap().flatten(0, -1)?], 0)
    });
    let inputs = arrays(&mut rng, &[&[2, 5, 6], &[2, 7, 6]]);
    check_gpu_matches_cpu(
        "mha gpu",
        |d| Ok(MultiheadAttention::new(d, 6, 3, true)?.with_batch_first(true)),
        &inputs,
        |m, t| {
            let pad = Tensor::new(padding_mask(&t[0].device(), &[7, 4], 7)?);
            let masks = AttentionMasks { attn_mask: None, key_padding_mask: Some(&pad) };
            Ok(m.forward_with(&t[0], &t[1], &t[1], masks, false)?.0)
        },
    );
}

#[test]
fn multihead_attention_errors_name_the_layer_and_shapes() {
    let mha = MultiheadAttention::new(&CPU, 4, 2, true).unwrap();
    let x = Tensor::zeros(&CPU, &[3, 2, 4]).unwrap();
    let e = mha.forward(&Tensor::zeros(&CPU, &[3, 2, 5]).unwrap()).unwrap_err().to_string();
    assert!(e.contains("MultiheadAttention") && e.contains("[3, 2, 5]") && e.contains("E = 4"), "{e}");
    let bad = Tensor::zeros(&CPU, &[3, 4]).unwrap();
    let e = mha
        .forward_with(&x, &x, &x, AttentionMasks { attn_mask: Some(&bad), key_padding_mask: None }, false)
        .unwrap_err()
        .to_string();
    assert!(e.contains("attn_mask [3, 4]") && e.contains("[3, 3]"), "{e}");
    assert!(MultiheadAttention::new(&CPU, 5, 2, true).err().unwrap().to_string().contains("num_heads 2"));
    let e = scaled_dot_product_attention(&x, &bad, &x, None, 0.0).unwrap_err().to_string();
    assert!(e.contains("scaled_dot_product_attention") && e.contains("k [3, 4]"), "{e}");
}

#[test]
fn positional_encoding_adds_the_sinusoid() {
    let mut rng = Rng::new(6);
    let pe = PositionalEncoding::new(&CPU, 6, 10, 0.1, false).unwrap();
    pe.eval();
    assert_eq!(pe.state_dict()[0].0, "pe");
    let x = leaf(&CPU, &mut rng, &[4, 2, 6]);
    let y = vals(&pe.forward(&x).unwrap());
    let xv = vals(&x);
    for t in 0..4 {
        for b in 0..2 {
            for i in 0..6 {
                let angle = t as f64 / 10000f64.powf((i / 2 * 2) as f64 / 6.0);
                let want = xv[(t * 2 + b) * 6 + i] + if i % 2 == 0 { angle.sin() } else { angle.cos() };
                assert!((y[(t * 2 + b) * 6 + i] - want).abs() < 1e-6, "t {t} i {i}");
            }
        }
    }
    let e = pe.forward(&Tensor::zeros(&CPU, &[11, 1, 6]).unwrap()).unwrap_err().to_string();
    assert!(e.contains("PositionalEncoding") && e.contains("max_len 10"), "{e}");
}

fn tiny(norm_first: bool, act: Activation) -> TransformerLayerConfig {
    TransformerLayerConfig::new(4, 2).dim_feedforward(6).dropout(0.0).norm_first(norm_first).activation(act)
}

#[test]
fn encoder_layer_names_and_gradients() {
    manual_seed(7);
    let layer = TransformerEncoderLayer::new(&CPU, tiny(false, Activation::Relu)).unwrap();
    let want: Vec<String> = [
        "self_attn.in_proj_weight",
        "self_attn.in_proj_bias",
        "self_attn.out_proj.weight",
        "self_attn.out_proj.bias",
        "linear1.weight",
        "linear1.bias",
        "linear2.weight",
        "linear2.bias",
        "norm1.weight",
        "norm1.bias",
        "norm2.weight",
        "norm2.bias",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(layer.named_parameters().into_iter().map(|(n, _)| n).collect::<Vec<_>>(), want);
    let mut rng = Rng::new(7);
    for (nf, act) in [(false, Activation::Relu), (true, Activation::Gelu)] {
        let layer = TransformerEncoderLayer::new(&CPU, tiny(nf, act).batch_first(true)).unwrap();
        let x = leaf(&CPU, &mut rng, &[2, 3, 4]);
        let pad = Tensor::new(padding_mask(&CPU, &[3, 2], 3).unwrap());
        let masks = AttentionMasks { attn_mask: None, key_padding_mask: Some(&pad) };
        check_module_gradients(&format!("encoder norm_first={nf}"), &with_leaves(&layer, &[("x", &x)]), || {
            layer.forward_with(&x, masks)
        });
    }
}

#[test]
fn decoder_layer_names_gradients_and_causality() {
    manual_seed(8);
    let mut rng = Rng::new(8);
    for nf in [false, true] {
        let layer = TransformerDecoderLayer::new(&CPU, tiny(nf, Activation::Gelu)).unwrap();
        let names: Vec<String> = layer.named_parameters().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names.len(), 18);
        assert!(
            names.contains(&"multihead_attn.out_proj.bias".to_string()) && names.contains(&"norm3.weight".to_string())
        );
        let (tgt, mem) = (leaf(&CPU, &mut rng, &[3, 2, 4]), leaf(&CPU, &mut rng, &[2, 2, 4]));
        let causal = Transformer::square_subsequent_mask(&CPU, 3).unwrap();
        let masks = DecoderMasks { tgt_mask: Some(&causal), ..Default::default() };
        check_module_gradients(
            &format!("decoder norm_first={nf}"),
            &with_leaves(&layer, &[("tgt", &tgt), ("mem", &mem)]),
            || layer.forward_with(&tgt, &mem, masks),
        );
        // with the causal mask, the last target step does not change earlier outputs
        let a = vals(&layer.forward_with(&tgt, &mem, masks).unwrap());
        let mut changed = vals(&tgt);
        changed[2 * 8..].iter_mut().for_each(|x| *x += 0.5);
        let tgt2 = Tensor::new(Array::cpu(changed, &[3, 2, 4], DType::F32));
        let b = vals(&layer.forward_with(&tgt2, &mem, masks).unwrap());
        assert_eq!(a[..16], b[..16]);
        assert_ne!(a[16..], b[16..]);
    }
}

#[test]
fn transformer_names_shapes_and_gpu_matches_cpu() {
    manual_seed(9);
    let c = tiny(false, Activation::Relu);
    let t = Transformer::new(&CPU, c, 2, 1).unwrap();
    let names: Vec<String> = t.named_parameters().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names[0], "encoder.layers.0.self_attn.in_proj_weight");
    assert!(names.contains(&"encoder.layers.1.norm2.bias".to_string()));
    assert!(names.contains(&"encoder.norm.weight".to_string()) && names.contains(&"decoder.norm.bias".to_string()));
    assert!(names.contains(&"decoder.layers.0.multihead_attn.in_proj_weight".to_string()));
    assert_eq!(names.len(), 2 * 12 + 2 + 18 + 2);
    let mut rng = Rng::new(9);
    let inputs = arrays(&mut rng, &[&[5, 2, 4], &[3, 2, 4]]);
    let (src, tgt) = (Tensor::new(inputs[0].clone()), Tensor::new(inputs[1].clone()));
    assert_eq!(t.forward_with(&src, &tgt, TransformerMasks::default()).unwrap().shape(), [3, 2, 4]);
    let e = t.forward(&src).unwrap_err().to_string();
    assert!(e.contains("Transformer") && e.contains("forward_with"), "{e}");
    check_gpu_matches_cpu(
        "transformer",
        |d| Transformer::new(d, c.norm_first(true), 1, 1),
        &inputs,
        |m, x| {
            let causal = Transformer::square_subsequent_mask(&x[0].device(), 3)?;
            m.forward_with(&x[0], &x[1], TransformerMasks { tgt_mask: Some(&causal), ..Default::default() })
        },
    );
    check_gpu_matches_cpu(
        "encoder layer",
        |d| TransformerEncoderLayer::new(d, c),
        &inputs[..1],
        |m, x| m.forward(&x[0]),
    );
}
