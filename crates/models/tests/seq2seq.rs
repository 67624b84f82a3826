//! Seq2Seq (with and without attention) and the char-level LM: parameter names, shapes,
//! gradients reaching every parameter, source masking, greedy decoding, GPU against CPU; the
//! Transformer seq2seq's embedding initialisation.

use ferrograd_device::testing::{gpu, Rng};
use ferrograd_device::Device;
use ferrograd_graph::nn::recurrent::CellKind;
use ferrograd_graph::nn::Module;
use ferrograd_graph::{manual_seed, Tensor};
use ferrograd_models::seq2seq::{CharLm, Seq2Seq, Seq2SeqAttention, Seq2SeqConfig};
use ferrograd_models::transformer_seq2seq::{TransformerSeq2Seq, TransformerSeq2SeqConfig};

const CPU: Device = Device::Cpu;

fn tokens(device: &Device, rng: &mut Rng, shape: &[usize], vocab: usize) -> Tensor {
    let v: Vec<u32> = (0..shape.iter().product()).map(|_| rng.below(vocab) as u32).collect();
    Tensor::from_u32(device, &v, shape).unwrap()
}

fn config(attention: Seq2SeqAttention) -> Seq2SeqConfig {
    Seq2SeqConfig { src_vocab: 7, tgt_vocab: 9, embed_dim: 4, hidden_size: 5, num_layers: 2, dropout: 0.0, attention }
}

#[test]
fn every_variant_trains_every_parameter() {
    let mut rng = Rng::new(1);
    for attention in
        [Seq2SeqAttention::None, Seq2SeqAttention::Additive, Seq2SeqAttention::Dot, Seq2SeqAttention::General]
    {
        manual_seed(1);
        let m = Seq2Seq::new(&CPU, config(attention)).unwrap();
        let (src, tgt) = (tokens(&CPU, &mut rng, &[3, 6], 7), tokens(&CPU, &mut rng, &[3, 4], 9));
        let logits = m.forward_with(&src, &tgt, Some(&[6, 4, 2])).unwrap();
        assert_eq!(logits.shape(), [3, 4, 9]);
        logits.square().unwrap().sum_all().unwrap().backward().unwrap();
        for (name, p) in m.named_parameters() {
            let g = p.grad().unwrap_or_else(|| panic!("{attention:?}: no gradient for {name}"));
            assert!(g.to_f64_vec().unwrap().iter().any(|&x| x != 0.0), "{attention:?}: zero gradient for {name}");
        }
        let names: Vec<String> = m.named_parameters().into_iter().map(|(n, _)| n).collect();
        assert!(names.contains(&"encoder.weight_hh_l1".to_string()) && names.contains(&"out.weight".to_string()));
        assert_eq!(names.iter().any(|n| n.starts_with("combine")), attention != Seq2SeqAttention::None);
    }
}

#[test]
fn source_lengths_mask_the_attention() {
    manual_seed(2);
    let mut rng = Rng::new(2);
    let m = Seq2Seq::new(&CPU, config(Seq2SeqAttention::General)).unwrap();
    let tgt = tokens(&CPU, &mut rng, &[1, 3], 9);
    // 3 real tokens then 2 pads: with lengths [3] the attention ignores the pads
    let padded = Tensor::from_u32(&CPU, &[3, 1, 4, 0, 0], &[1, 5]).unwrap();
    let a = m.forward_with(&padded, &tgt, Some(&[3])).unwrap().to_vec_f64().unwrap();
    let b = m.forward_with(&padded, &tgt, None).unwrap().to_vec_f64().unwrap();
    assert_ne!(a, b, "the mask changes the attention");
    let e = m.forward_with(&padded, &tgt, Some(&[3, 3])).unwrap_err().to_string();
    assert!(e.contains("Seq2Seq") && e.contains("[1, 5]"), "{e}");
}

#[test]
fn greedy_decode_gives_token_ids() {
    manual_seed(3);
    let mut rng = Rng::new(3);
    let m = Seq2Seq::new(&CPU, config(Seq2SeqAttention::Additive)).unwrap();
    let out = m.greedy_decode(&tokens(&CPU, &mut rng, &[2, 5], 7), 0, 4, None).unwrap();
    assert_eq!(out.shape(), [2, 4]);
    assert!(out.to_vec_u32().unwrap().iter().all(|&t| t < 9));
    // the first decoded token is the argmax of the teacher-forced logits after `bos`
    let src = tokens(&CPU, &mut rng, &[2, 5], 7);
    let first = m.greedy_decode(&src, 1, 1, None).unwrap().to_vec_u32().unwrap();
    let bos = Tensor::from_u32(&CPU, &[1, 1], &[2, 1]).unwrap();
    let logits = m.forward_with(&src, &bos, None).unwrap().argmax(-1, false).unwrap().to_vec_u32().unwrap();
    assert_eq!(first, logits);
}

#[test]
fn char_lm_shapes_names_and_gpu_matches_cpu() {
    let mut rng = Rng::new(4);
    for cell in [CellKind::RnnTanh, CellKind::Lstm, CellKind::Gru] {
        manual_seed(4);
        let lm = CharLm::new(&CPU, 11, 4, 6, 2, cell, 0.0).unwrap();
        let x = tokens(&CPU, &mut rng, &[2, 5], 11);
        let (logits, state) = lm.forward_with(&x, None).unwrap();
        assert_eq!(logits.shape(), [2, 5, 11]);
        assert_eq!(state.h.shape(), [2, 2, 6]);
        let names: Vec<String> = lm.named_parameters().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names[..2], ["embedding.weight".to_string(), "rnn.weight_ih_l0".to_string()]);
        assert_eq!(names.last().unwrap(), "fc.bias");

        let gpu_lm = CharLm::new(&gpu(), 11, 4, 6, 2, cell, 0.0).unwrap();
        let state_dict: Vec<_> = lm.state_dict().into_iter().map(|(n, t)| (n, t.data())).collect();
        gpu_lm.load_state_dict(&state_dict, true).unwrap();
        let got = gpu_lm.forward(&x.to(&gpu()).unwrap()).unwrap().to_vec_f64().unwrap();
        let want = logits.to_vec_f64().unwrap();
        let scale = want.iter().fold(1e-3f64, |m, v| m.max(v.abs()));
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() <= 1e-5 * scale, "{cell:?}: gpu {g} cpu {w}");
        }
    }
}

#[test]
fn transformer_embeddings_start_at_the_size_of_the_positions() {
    manual_seed(3);
    let d_model = 64;
    let m = TransformerSeq2Seq::new(
        &CPU,
        TransformerSeq2SeqConfig {
            src_vocab: 14,
            tgt_vocab: 14,
            d_model,
            nhead: 4,
            num_encoder_layers: 1,
            num_decoder_layers: 1,
            dim_feedforward: 32,
            dropout: 0.0,
            max_len: 32,
        },
    )
    .unwrap();
    // N(0, 1/d_model), so that the sqrt(d_model) scale gives unit-size embeddings
    for table in [&m.src_embedding.weight, &m.tgt_embedding.weight] {
        let w = table.to_vec_f64().unwrap();
        let std = (w.iter().map(|x| x * x).sum::<f64>() / w.len() as f64).sqrt();
        let expected = (d_model as f64).powf(-0.5);
        assert!((std / expected - 1.0).abs() < 0.1, "embedding std {std}, expected {expected}");
    }
}
