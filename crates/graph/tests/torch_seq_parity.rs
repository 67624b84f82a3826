//! The sequence layers against PyTorch: RNN (tanh, relu), LSTM, GRU (2 layers, bidirectional;
//! LSTM and GRU also on padded batches, as PyTorch's packed sequences),
//! MultiheadAttention, TransformerEncoderLayer and TransformerDecoderLayer (each post-norm
//! ReLU and pre-norm GELU) load PyTorch's weights with
//! `load_state_dict(strict)` and must give PyTorch's outputs and the gradients of
//! `sum(main_output * seed)` for every parameter and float input.
//!
//! `tests/data/torch_seq_layers.safetensors` was written by `benches/pytorch/seq_layers.py`
//! (its docstring describes the layout); the expected values are float64 computations from
//! the stored float32 parameters and inputs. Every case in the file must be handled here.

use ferrograd_device::testing::gpu;
use ferrograd_device::{Array, DType, Device};
use ferrograd_graph::nn::attention::{AttentionMasks, MultiheadAttention};
use ferrograd_graph::nn::recurrent::{CellKind, Gru, Lstm, Recurrent, RecurrentConfig, RecurrentState, Rnn};
use ferrograd_graph::nn::transformer::{
    Activation, DecoderMasks, TransformerDecoderLayer, TransformerEncoderLayer, TransformerLayerConfig,
};
use ferrograd_graph::nn::Module;
use ferrograd_graph::Tensor;
use safetensors::tensor::{Dtype, SafeTensors};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/torch_seq_layers.safetensors");

/// Bounds on `max |got - want| / max |want|` per array.
struct Tolerance {
    outputs: f64,
    grads: f64,
}

/// CPU (f64): only float64 rounding separates the two computations.
const CPU_TOL: Tolerance = Tolerance { outputs: 1e-9, grads: 1e-9 };
/// CPU with GELU: ferrograd's erf is Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7, the
/// formula its shader uses), PyTorch's is exact, so outputs and gradients differ near 1e-7.
const CPU_GELU_TOL: Tolerance = Tolerance { outputs: 1e-6, grads: 1e-6 };
/// GPU (f32 storage and arithmetic): about 100 f32 epsilons for the outputs; gradients sum
/// over every time step and position, so they get ten times more.
const GPU_TOL: Tolerance = Tolerance { outputs: 1e-5, grads: 1e-4 };

/// The file: every array as f64 values with its shape, and each case's constructor arguments.
struct Reference {
    arrays: BTreeMap<String, (Vec<f64>, Vec<usize>)>,
    cases: BTreeMap<String, Map<String, Value>>,
}

fn load_reference() -> Reference {
    let bytes = std::fs::read(DATA).unwrap_or_else(|e| panic!("{DATA}: {e}"));
    let (_, header) = SafeTensors::read_metadata(&bytes).unwrap();
    let mut cases = BTreeMap::new();
    for (name, text) in header.metadata().clone().expect("the file has no metadata") {
        if name == "torch_version" {
            println!("reference made by torch {text}");
            continue;
        }
        match serde_json::from_str(&text) {
            Ok(Value::Object(args)) => cases.insert(name, args),
            other => panic!("case {name}: metadata {text:?} is not a JSON object ({other:?})"),
        };
    }
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let mut arrays = BTreeMap::new();
    for (name, view) in st.tensors() {
        let values: Vec<f64> = match view.dtype() {
            Dtype::F32 => {
                view.data().chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap()).into()).collect()
            }
            Dtype::F64 => view.data().chunks_exact(8).map(|b| f64::from_le_bytes(b.try_into().unwrap())).collect(),
            other => panic!("{name}: unexpected dtype {other:?}"),
        };
        arrays.insert(name, (values, view.shape().to_vec()));
    }
    Reference { arrays, cases }
}

impl Reference {
    /// The arrays named `<prefix><rest>`, as `(rest, values, shape)`.
    fn with_prefix(&self, prefix: &str) -> Vec<(&str, &[f64], &[usize])> {
        self.arrays
            .iter()
            .filter_map(|(k, (v, s))| Some((k.strip_prefix(prefix)?, v.as_slice(), s.as_slice())))
            .collect()
    }

    /// The names after `prefix`, sorted.
    fn names(&self, prefix: &str) -> Vec<&str> {
        self.with_prefix(prefix).into_iter().map(|(n, _, _)| n).collect()
    }

    fn get(&self, name: &str) -> (&[f64], &[usize]) {
        let (v, s) = self.arrays.get(name).unwrap_or_else(|| panic!("{name} missing from the file"));
        (v, s)
    }
}

/// Constructor arguments, each of which must be read (an unread one is an unhandled option).
struct Args(Map<String, Value>);

impl Args {
    fn take(&mut self, key: &str) -> Value {
        self.0.remove(key).unwrap_or_else(|| panic!("argument {key} missing"))
    }
    fn usize(&mut self, key: &str) -> usize {
        self.take(key).as_u64().unwrap_or_else(|| panic!("{key} is not an integer")) as usize
    }
    fn bool(&mut self, key: &str) -> bool {
        self.take(key).as_bool().unwrap_or_else(|| panic!("{key} is not a bool"))
    }
    fn str(&mut self, key: &str) -> String {
        self.take(key).as_str().unwrap_or_else(|| panic!("{key} is not a string")).to_string()
    }
    fn f64(&mut self, key: &str) -> f64 {
        self.take(key).as_f64().unwrap_or_else(|| panic!("{key} is not a number"))
    }
    /// An optional list of integers (absent: `None`).
    fn usizes(&mut self, key: &str) -> Option<Vec<usize>> {
        let list = self.0.remove(key)?;
        let items = list.as_array().unwrap_or_else(|| panic!("{key} is not a list"));
        Some(
            items
                .iter()
                .map(|v| v.as_u64().unwrap_or_else(|| panic!("{key}: {v} is not an integer")) as usize)
                .collect(),
        )
    }
    fn finish(self) {
        assert!(self.0.is_empty(), "unhandled arguments {:?}", self.0);
    }
}

/// The case's inputs on the device; each must be used exactly once.
struct Inputs(BTreeMap<String, Tensor>);

impl Inputs {
    fn take(&mut self, name: &str) -> Tensor {
        self.0.remove(name).unwrap_or_else(|| panic!("input {name} missing"))
    }
}

enum Layer {
    /// with the sequence lengths of a padded batch (PyTorch's packed sequences), if given
    Recurrent(Recurrent, Option<Vec<usize>>),
    Attention(MultiheadAttention),
    Encoder(TransformerEncoderLayer),
    Decoder(TransformerDecoderLayer),
}

impl Layer {
    fn build(device: &Device, args: &mut Args) -> Layer {
        match args.str("layer").as_str() {
            kind @ ("RNN" | "LSTM" | "GRU") => {
                let config = RecurrentConfig::new(args.usize("input_size"), args.usize("hidden_size"))
                    .num_layers(args.usize("num_layers"))
                    .bidirectional(args.bool("bidirectional"))
                    .batch_first(args.bool("batch_first"));
                let lengths = args.usizes("lengths");
                let layer = match kind {
                    "RNN" => match args.str("nonlinearity").as_str() {
                        "tanh" => Rnn::new(device, config).unwrap().0,
                        "relu" => Rnn::with_relu(device, config).unwrap().0,
                        other => panic!("nonlinearity {other}"),
                    },
                    "LSTM" => Lstm::new(device, config).unwrap().0,
                    _ => Gru::new(device, config).unwrap().0,
                };
                Layer::Recurrent(layer, lengths)
            }
            "MultiheadAttention" => {
                let (embed_dim, heads, bias) = (args.usize("embed_dim"), args.usize("num_heads"), args.bool("bias"));
                let m = MultiheadAttention::new(device, embed_dim, heads, bias).unwrap();
                Layer::Attention(m.with_batch_first(args.bool("batch_first")))
            }
            kind @ ("TransformerEncoderLayer" | "TransformerDecoderLayer") => {
                let activation = match args.str("activation").as_str() {
                    "relu" => Activation::Relu,
                    "gelu" => Activation::Gelu,
                    other => panic!("activation {other}"),
                };
                let config = TransformerLayerConfig::new(args.usize("d_model"), args.usize("nhead"))
                    .dim_feedforward(args.usize("dim_feedforward"))
                    .dropout(args.f64("dropout") as f32)
                    .activation(activation)
                    .norm_first(args.bool("norm_first"))
                    .batch_first(args.bool("batch_first"));
                match kind {
                    "TransformerEncoderLayer" => Layer::Encoder(TransformerEncoderLayer::new(device, config).unwrap()),
                    _ => Layer::Decoder(TransformerDecoderLayer::new(device, config).unwrap()),
                }
            }
            other => panic!("layer {other} is not handled by this test"),
        }
    }

    fn module(&self) -> &dyn Module {
        match self {
            Layer::Recurrent(m, _) => m,
            Layer::Attention(m) => m,
            Layer::Encoder(m) => m,
            Layer::Decoder(m) => m,
        }
    }

    /// The outputs, named as the file names them.
    fn forward(&self, inputs: &mut Inputs) -> Vec<(String, Tensor)> {
        match self {
            Layer::Recurrent(m, lengths) => {
                let x = inputs.take("x");
                let h = inputs.take("h0");
                let c = (m.kind() == CellKind::Lstm).then(|| inputs.take("c0"));
                let state = RecurrentState { h, c };
                let (out, last) = match lengths {
                    Some(lengths) => m.forward_packed(&x, Some(&state), lengths).unwrap(),
                    None => m.forward_with(&x, Some(&state)).unwrap(),
                };
                let mut outputs = vec![("out".to_string(), out), ("h_n".to_string(), last.h)];
                outputs.extend(last.c.map(|c| ("c_n".to_string(), c)));
                outputs
            }
            Layer::Attention(m) => {
                let (q, k, v) = (inputs.take("query"), inputs.take("key"), inputs.take("value"));
                let (attn_mask, padding) = (inputs.take("attn_mask"), inputs.take("key_padding_mask"));
                let masks = AttentionMasks { attn_mask: Some(&attn_mask), key_padding_mask: Some(&padding) };
                let (out, weights) = m.forward_with(&q, &k, &v, masks, true).unwrap();
                vec![("attn_output".to_string(), out), ("attn_weights".to_string(), weights.unwrap())]
            }
            Layer::Encoder(m) => {
                let (src, mask) = (inputs.take("src"), inputs.take("src_mask"));
                let masks = AttentionMasks { attn_mask: Some(&mask), key_padding_mask: None };
                vec![("out".to_string(), m.forward_with(&src, masks).unwrap())]
            }
            Layer::Decoder(m) => {
                let (tgt, memory) = (inputs.take("tgt"), inputs.take("memory"));
                let (tgt_mask, padding) = (inputs.take("tgt_mask"), inputs.take("memory_key_padding_mask"));
                let masks = DecoderMasks {
                    tgt_mask: Some(&tgt_mask),
                    memory_key_padding_mask: Some(&padding),
                    ..Default::default()
                };
                vec![("out".to_string(), m.forward_with(&tgt, &memory, masks).unwrap())]
            }
        }
    }
}

/// `max |got - want| / max |want|`.
fn relative_error(what: &str, got: &Tensor, want: (&[f64], &[usize])) -> f64 {
    assert_eq!(got.shape(), want.1, "{what}: shape");
    let got = got.to_vec_f64().unwrap();
    let scale = want.0.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    assert!(scale > 0.0, "{what}: the reference is all zeros, a relative error means nothing");
    got.iter().zip(want.0).fold(0.0f64, |m, (g, w)| m.max((g - w).abs())) / scale
}

/// Largest relative errors of one case's outputs and gradients.
struct CaseErrors {
    outputs: (String, f64),
    grads: (String, f64),
}

fn worst(errors: impl Iterator<Item = (String, f64)>) -> (String, f64) {
    errors.fold((String::new(), 0.0), |a, b| if b.1 > a.1 { b } else { a })
}

/// Runs one case on `device`: load, forward, backward of `sum(main * seed)`, compare.
/// Returns the errors and the names of the arrays over `tol`.
fn run_case(reference: &Reference, case: &str, device: &Device, tol: &Tolerance) -> (CaseErrors, Vec<String>) {
    let mut args = Args(reference.cases[case].clone());
    let main_output = args.str("main_output");
    let layer = Layer::build(device, &mut args);
    args.finish();
    let module = layer.module();
    module.eval();

    let prefix = format!("{case}.param.");
    let state: Vec<(String, Array)> = reference
        .with_prefix(&prefix)
        .into_iter()
        .map(|(name, v, s)| (name.to_string(), Array::cpu(v.to_vec(), s, DType::F32)))
        .collect();
    module.load_state_dict(&state, true).unwrap_or_else(|e| panic!("{case}: load_state_dict: {e}"));

    let prefix = format!("{case}.input.");
    let inputs: BTreeMap<String, Tensor> = reference
        .with_prefix(&prefix)
        .into_iter()
        .map(|(name, v, s)| {
            let data = Array::from_f64(device, v, s).unwrap();
            // masks are constants; every other input is a leaf whose gradient is checked
            let t = if name.ends_with("mask") { Tensor::new(data) } else { Tensor::parameter(data) };
            (name.to_string(), t)
        })
        .collect();
    let mut remaining = Inputs(inputs.clone());
    let outputs = layer.forward(&mut remaining);
    assert!(remaining.0.is_empty(), "{case}: inputs not used: {:?}", remaining.0.keys());

    let main = &outputs.iter().find(|(n, _)| *n == main_output).unwrap_or_else(|| panic!("{case}: {main_output}")).1;
    let (seed, shape) = reference.get(&format!("{case}.seed"));
    main.mul(&Tensor::from_f64(device, seed, shape).unwrap()).unwrap().sum_all().unwrap().backward().unwrap();

    let mut failures = Vec::new();
    let mut check = |what: String, got: &Tensor, bound: f64| {
        let err = relative_error(&what, got, reference.get(&what));
        if err > bound {
            failures.push(format!("{what}: relative error {err:.3e} > {bound:.0e}"));
        }
        (what, err)
    };
    let mut produced: Vec<&str> = outputs.iter().map(|(n, _)| n.as_str()).collect();
    produced.sort_unstable();
    assert_eq!(produced, reference.names(&format!("{case}.output.")), "{case}: output names");
    let output_errors: Vec<_> =
        outputs.iter().map(|(name, t)| check(format!("{case}.output.{name}"), t, tol.outputs)).collect();

    // every parameter and float input has a gradient in the file, and nothing else does
    let mut leaves: Vec<(String, Tensor)> = module.named_parameters();
    leaves.extend(inputs.into_iter().filter(|(_, t)| t.requires_grad()).map(|(n, t)| (format!("input.{n}"), t)));
    let mut have: Vec<&str> = leaves.iter().map(|(n, _)| n.as_str()).collect();
    have.sort_unstable();
    assert_eq!(have, reference.names(&format!("{case}.grad.")), "{case}: gradient names");
    let grad_errors: Vec<_> = leaves
        .iter()
        .map(|(name, t)| {
            let grad = Tensor::new(t.grad().unwrap_or_else(|| panic!("{case}: no gradient for {name}")));
            check(format!("{case}.grad.{name}"), &grad, tol.grads)
        })
        .collect();
    let errors = CaseErrors { outputs: worst(output_errors.into_iter()), grads: worst(grad_errors.into_iter()) };
    (errors, failures)
}

/// Every case of the file on `device`, with the tolerance `tol(case args)`; prints each
/// case's worst errors and fails listing every array over its bound.
fn check_all(device: &Device, label: &str, tol: impl Fn(&Map<String, Value>) -> &'static Tolerance) {
    let reference = load_reference();
    assert_eq!(reference.cases.len(), 11, "expected the 11 cases of seq_layers.py");
    // every array belongs to a case
    for name in reference.arrays.keys() {
        let case = name.split('.').next().unwrap();
        assert!(reference.cases.contains_key(case), "{name} belongs to no case in the metadata");
    }
    let mut failures = Vec::new();
    for (case, args) in &reference.cases {
        let (e, f) = run_case(&reference, case, device, tol(args));
        println!(
            "{label} {case:<18} outputs {:.2e} ({}), grads {:.2e} ({})",
            e.outputs.1, e.outputs.0, e.grads.1, e.grads.0
        );
        failures.extend(f);
    }
    assert!(failures.is_empty(), "{label}: {} arrays differ from PyTorch:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn cpu_f64_matches_pytorch() {
    check_all(&Device::Cpu, "cpu", |args| {
        if args.get("activation").and_then(Value::as_str) == Some("gelu") {
            &CPU_GELU_TOL
        } else {
            &CPU_TOL
        }
    });
}

#[test]
fn gpu_f32_matches_pytorch() {
    check_all(&gpu(), "gpu", |_| &GPU_TOL);
}
