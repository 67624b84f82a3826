//! RNN / LSTM / GRU layers: PyTorch names and shapes, forward shapes, gradients of every
//! parameter, input and initial state against finite differences (CPU), GPU against CPU,
//! errors, and truncated BPTT with `RecurrentState::detach`.

mod seq_common;

use ferrograd_device::testing::Rng;
use ferrograd_device::{Array, DType, Device};
use ferrograd_graph::nn::recurrent::{Gru, Lstm, RecurrentConfig, RecurrentState, Rnn};
use ferrograd_graph::nn::Module;
use ferrograd_graph::{manual_seed, Tensor};
use seq_common::{check_gpu_matches_cpu, check_module_gradients, leaf};

const CPU: Device = Device::Cpu;

fn shapes(m: &dyn Module) -> Vec<(String, Vec<usize>)> {
    m.named_parameters().into_iter().map(|(n, t)| (n, t.shape())).collect()
}

#[test]
fn lstm_parameters_match_pytorch_names_shapes_and_init() {
    let cfg = RecurrentConfig::new(3, 5).num_layers(2).bidirectional(true);
    let lstm = Lstm::new(&CPU, cfg).unwrap();
    let mut want = Vec::new();
    for (l, input) in [(0, 3), (1, 10)] {
        for suffix in ["", "_reverse"] {
            want.push((format!("weight_ih_l{l}{suffix}"), vec![20, input]));
            want.push((format!("weight_hh_l{l}{suffix}"), vec![20, 5]));
            want.push((format!("bias_ih_l{l}{suffix}"), vec![20]));
            want.push((format!("bias_hh_l{l}{suffix}"), vec![20]));
        }
    }
    assert_eq!(shapes(&lstm), want);
    let bound = 1.0 / 5f64.sqrt();
    for (name, p) in lstm.named_parameters() {
        let v = p.to_vec_f64().unwrap();
        assert!(v.iter().all(|x| x.abs() <= bound), "{name} outside U(-1/sqrt(H), 1/sqrt(H))");
        assert!(v.iter().any(|&x| x != v[0]), "{name} is constant");
    }
    let gru = Gru::new(&CPU, RecurrentConfig::new(3, 4).bias(false)).unwrap();
    assert_eq!(shapes(&gru), vec![("weight_ih_l0".into(), vec![12, 3]), ("weight_hh_l0".into(), vec![12, 4])]);
    let rnn = Rnn::new(&CPU, RecurrentConfig::new(3, 4)).unwrap();
    assert_eq!(shapes(&rnn)[1], ("weight_hh_l0".to_string(), vec![4, 4]));
}

#[test]
fn forward_shapes_sequence_and_batch_first() {
    let mut rng = Rng::new(1);
    for batch_first in [false, true] {
        let cfg = RecurrentConfig::new(4, 3).num_layers(2).bidirectional(true).batch_first(batch_first);
        let lstm = Lstm::new(&CPU, cfg).unwrap();
        let x = leaf(&CPU, &mut rng, if batch_first { &[2, 5, 4] } else { &[5, 2, 4] });
        let (out, state) = lstm.forward_with(&x, None).unwrap();
        assert_eq!(out.shape(), if batch_first { vec![2, 5, 6] } else { vec![5, 2, 6] });
        assert_eq!(state.h.shape(), [4, 2, 3]);
        assert_eq!(state.c.unwrap().shape(), [4, 2, 3]);
        let gru = Gru::new(&CPU, cfg).unwrap();
        let (_, state) = gru.forward_with(&x, None).unwrap();
        assert!(state.c.is_none());
    }
}

#[test]
fn batch_first_is_the_transpose_of_sequence_first() {
    let mut rng = Rng::new(2);
    let cfg = RecurrentConfig::new(3, 4).bidirectional(true);
    let seq = Gru::new(&CPU, cfg).unwrap();
    let bf = Gru::new(&CPU, cfg.batch_first(true)).unwrap();
    let state: Vec<(String, Array)> = seq.state_dict().into_iter().map(|(n, t)| (n, t.data())).collect();
    bf.load_state_dict(&state, true).unwrap();
    let x = leaf(&CPU, &mut rng, &[4, 2, 3]);
    let a = seq.forward(&x).unwrap().transpose(0, 1).unwrap().to_vec_f64().unwrap();
    let b = bf.forward(&x.transpose(0, 1).unwrap()).unwrap().to_vec_f64().unwrap();
    assert_eq!(a, b);
}

#[test]
fn final_state_is_the_last_output_of_each_direction() {
    let mut rng = Rng::new(3);
    let lstm = Lstm::new(&CPU, RecurrentConfig::new(2, 3).bidirectional(true)).unwrap();
    let x = leaf(&CPU, &mut rng, &[4, 1, 2]);
    let (out, state) = lstm.forward_with(&x, None).unwrap();
    let out = out.to_vec_f64().unwrap(); // [T=4, B=1, 2*3]
    let h = state.h.to_vec_f64().unwrap(); // [2, 1, 3]
    assert_eq!(&h[..3], &out[3 * 6..3 * 6 + 3], "forward direction ends at the last step");
    assert_eq!(&h[3..], &out[3..6], "reverse direction ends at the first step");
}

fn lstm_state(rng: &mut Rng, dirs_layers: usize, b: usize, h: usize) -> RecurrentState {
    RecurrentState { h: leaf(&CPU, rng, &[dirs_layers, b, h]), c: Some(leaf(&CPU, rng, &[dirs_layers, b, h])) }
}

fn leaves(m: &dyn Module, extra: &[(&str, &Tensor)]) -> Vec<(String, Tensor)> {
    let mut out = m.named_parameters();
    out.extend(extra.iter().map(|(n, t)| (n.to_string(), (*t).clone())));
    out
}

#[test]
fn two_layer_bidirectional_lstm_gradients() {
    manual_seed(4);
    let mut rng = Rng::new(4);
    let lstm = Lstm::new(&CPU, RecurrentConfig::new(3, 2).num_layers(2).bidirectional(true)).unwrap();
    let x = leaf(&CPU, &mut rng, &[3, 2, 3]);
    let s = lstm_state(&mut rng, 4, 2, 2);
    let all = leaves(&lstm, &[("x", &x), ("h0", &s.h), ("c0", s.c.as_ref().unwrap())]);
    check_module_gradients("lstm 2x2", &all, || {
        let (out, last) = lstm.forward_with(&x, Some(&s))?;
        // every output reaches the loss: the sequence, h_n and c_n
        let flat = [out.flatten(0, -1)?, last.h.flatten(0, -1)?, last.c.unwrap().flatten(0, -1)?];
        Tensor::cat(&flat.iter().collect::<Vec<_>>(), 0)
    });
}

#[test]
fn two_layer_bidirectional_gru_gradients() {
    manual_seed(5);
    let mut rng = Rng::new(5);
    let gru = Gru::new(&CPU, RecurrentConfig::new(3, 2).num_layers(2).bidirectional(true).batch_first(true)).unwrap();
    let x = leaf(&CPU, &mut rng, &[2, 3, 3]);
    let h0 = leaf(&CPU, &mut rng, &[4, 2, 2]);
    let state = RecurrentState { h: h0.clone(), c: None };
    check_module_gradients("gru 2x2", &leaves(&gru, &[("x", &x), ("h0", &h0)]), || {
        let (out, last) = gru.forward_with(&x, Some(&state))?;
        Tensor::cat(&[&out.flatten(0, -1)?, &last.h.flatten(0, -1)?], 0)
    });
}

#[test]
fn rnn_tanh_and_relu_gradients() {
    manual_seed(6);
    let mut rng = Rng::new(6);
    let cfg = RecurrentConfig::new(2, 3).num_layers(2);
    for rnn in [Rnn::new(&CPU, cfg).unwrap(), Rnn::with_relu(&CPU, cfg).unwrap()] {
        let x = leaf(&CPU, &mut rng, &[3, 2, 2]);
        check_module_gradients("rnn", &leaves(&rnn, &[("x", &x)]), || rnn.forward(&x));
    }
}

fn gpu_inputs(rng: &mut Rng, shapes: &[&[usize]]) -> Vec<Array> {
    shapes
        .iter()
        .map(|s| Array::cpu(rng.vec(s.iter().product()).into_iter().map(f64::from).collect(), s, DType::F32))
        .collect()
}

#[test]
fn gpu_matches_cpu_for_every_layer() {
    let mut rng = Rng::new(7);
    // sizes that are not multiples of anything: T=5, B=3, I=7, H=6
    let cfg = RecurrentConfig::new(7, 6).num_layers(2).bidirectional(true);
    let inputs = gpu_inputs(&mut rng, &[&[5, 3, 7], &[4, 3, 6], &[4, 3, 6]]);
    check_gpu_matches_cpu(
        "LSTM",
        |d| Lstm::new(d, cfg),
        &inputs,
        |m, t| {
            let s = RecurrentState { h: t[1].clone(), c: Some(t[2].clone()) };
            let (out, last) = m.forward_with(&t[0], Some(&s))?;
            Tensor::cat(&[&out.flatten(0, -1)?, &last.c.unwrap().flatten(0, -1)?], 0)
        },
    );
    check_gpu_matches_cpu(
        "GRU",
        |d| Gru::new(d, cfg),
        &inputs,
        |m, t| Ok(m.forward_with(&t[0], Some(&RecurrentState { h: t[1].clone(), c: None }))?.0),
    );
    check_gpu_matches_cpu("RNN", |d| Rnn::new(d, cfg.batch_first(true)), &inputs[..1], |m, t| m.forward(&t[0]));
    check_gpu_matches_cpu("GRU no bias", |d| Gru::new(d, cfg.bias(false)), &inputs[..1], |m, t| m.forward(&t[0]));
}

#[test]
fn a_layer_without_biases_moves_to_the_gpu() {
    let lstm = Lstm::new(&CPU, RecurrentConfig::new(3, 4).bias(false)).unwrap();
    let x = Tensor::new(gpu_inputs(&mut Rng::new(10), &[&[2, 2, 3]]).remove(0));
    let want = lstm.forward(&x).unwrap().to_vec_f64().unwrap();
    let gpu = ferrograd_device::testing::gpu();
    lstm.to_device(&gpu).unwrap();
    let got = lstm.forward(&x.to(&gpu).unwrap()).unwrap().to_vec_f64().unwrap();
    assert!(got.iter().zip(&want).all(|(g, w)| (g - w).abs() < 1e-5), "{got:?} vs {want:?}");
}

#[test]
fn dropout_between_layers_only_in_training() {
    manual_seed(8);
    let mut rng = Rng::new(8);
    let lstm = Lstm::new(&CPU, RecurrentConfig::new(3, 4).num_layers(2).dropout(0.5)).unwrap();
    let x = leaf(&CPU, &mut rng, &[3, 2, 3]);
    lstm.eval();
    let a = lstm.forward(&x).unwrap().to_vec_f64().unwrap();
    let b = lstm.forward(&x).unwrap().to_vec_f64().unwrap();
    assert_eq!(a, b, "eval mode is deterministic");
    lstm.train();
    let c = lstm.forward(&x).unwrap().to_vec_f64().unwrap();
    assert_ne!(a, c, "training mode drops between the layers");
}

#[test]
fn errors_name_the_layer_and_shapes() {
    let lstm = Lstm::new(&CPU, RecurrentConfig::new(3, 4).num_layers(2)).unwrap();
    let x = Tensor::zeros(&CPU, &[5, 2, 7]).unwrap();
    let e = lstm.forward(&x).unwrap_err().to_string();
    assert!(e.contains("LSTM") && e.contains("[5, 2, 7]") && e.contains("input_size 3"), "{e}");
    let x = Tensor::zeros(&CPU, &[5, 2, 3]).unwrap();
    let bad = RecurrentState {
        h: Tensor::zeros(&CPU, &[1, 2, 4]).unwrap(),
        c: Some(Tensor::zeros(&CPU, &[2, 2, 4]).unwrap()),
    };
    let e = lstm.forward_with(&x, Some(&bad)).unwrap_err().to_string();
    assert!(e.contains("LSTM") && e.contains("h0 [1, 2, 4]") && e.contains("[2, 2, 4]"), "{e}");
    let no_c = RecurrentState { h: Tensor::zeros(&CPU, &[2, 2, 4]).unwrap(), c: None };
    assert!(lstm.forward_with(&x, Some(&no_c)).unwrap_err().to_string().contains("c0"));
    let e = Gru::new(&CPU, RecurrentConfig::new(3, 0)).err().unwrap().to_string();
    assert!(e.contains("GRU"), "{e}");
    let e = Rnn::new(&CPU, RecurrentConfig::new(3, 2).dropout(1.5)).err().unwrap().to_string();
    assert!(e.contains("RNN") && e.contains("dropout"), "{e}");
}

#[test]
fn truncated_bptt_stops_at_the_detached_state() {
    manual_seed(9);
    let mut rng = Rng::new(9);
    let lstm = Lstm::new(&CPU, RecurrentConfig::new(2, 3)).unwrap();
    let (x1, x2) = (leaf(&CPU, &mut rng, &[3, 2, 2]), leaf(&CPU, &mut rng, &[3, 2, 2]));
    let (_, s1) = lstm.forward_with(&x1, None).unwrap();
    let carried = s1.detach();
    assert!(carried.h.is_leaf() && !carried.h.requires_grad());
    let (out2, _) = lstm.forward_with(&x2, Some(&carried)).unwrap();
    out2.sum_all().unwrap().backward().unwrap();
    assert!(x1.grad().is_none(), "the first chunk is not reached");
    assert!(x2.grad().is_some());
    // the same as starting the second chunk from constant states of those values
    let w_grad = lstm.named_parameters()[1].1.grad().unwrap().to_f64_vec().unwrap();
    lstm.zero_grad();
    let consts = RecurrentState { h: Tensor::new(s1.h.data()), c: Some(Tensor::new(s1.c.unwrap().data())) };
    lstm.forward_with(&x2, Some(&consts)).unwrap().0.sum_all().unwrap().backward().unwrap();
    assert_eq!(lstm.named_parameters()[1].1.grad().unwrap().to_f64_vec().unwrap(), w_grad);
}

#[test]
fn packed_sequences_stop_at_their_length_and_bad_lengths_are_errors() {
    manual_seed(5);
    let mut rng = Rng::new(5);
    let gru = Gru::new(&CPU, RecurrentConfig::new(3, 4).batch_first(true)).unwrap();
    let x = leaf(&CPU, &mut rng, &[2, 5, 3]);
    let (out, last) = gru.forward_packed(&x, None, &[5, 2]).unwrap();
    // sequence 1 alone, cut to its 2 steps, ends in the same state and outputs
    let (alone, alone_last) = gru.forward_with(&x.narrow(0, 1, 1).unwrap().narrow(1, 0, 2).unwrap(), None).unwrap();
    let got = out.narrow(0, 1, 1).unwrap().to_vec_f64().unwrap();
    assert_eq!(&got[..8], &alone.to_vec_f64().unwrap()[..], "outputs inside the sequence");
    assert!(got[8..].iter().all(|&v| v == 0.0), "padded outputs are zero: {got:?}");
    assert_eq!(last.h.narrow(1, 1, 1).unwrap().to_vec_f64().unwrap(), alone_last.h.to_vec_f64().unwrap());
    let err = gru.forward_packed(&leaf(&CPU, &mut rng, &[2, 3]), None, &[1, 1]).unwrap_err().to_string();
    assert!(err.contains("expected [B, T, input_size]"), "{err}");
    for bad in [&[5][..], &[5, 0], &[6, 2]] {
        let err = gru.forward_packed(&x, None, bad).unwrap_err().to_string();
        assert!(err.contains("lengths") && err.contains("GRU"), "{err}");
    }
}
