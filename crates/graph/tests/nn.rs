//! The Module trait and layers: state-dict naming and loading, train/eval behaviour,
//! default initialisation bounds; and the Tensor's autodiff contract (accumulation,
//! no_grad, detach, errors).

use ferrograd_device::testing::gpu;
use ferrograd_device::{Array, DType, Device};
use ferrograd_graph::nn::{
    BatchNorm2d, Conv2d, Dropout, Embedding, LayerNorm, Linear, MaxPool2d, Module, Relu, Sequential,
};
use ferrograd_graph::{children, manual_seed, no_grad, GraphError, Result, Tensor};

struct Block {
    conv1: Conv2d,
    bn1: BatchNorm2d,
}

impl Module for Block {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.bn1.forward(&self.conv1.forward(x)?)?.relu()
    }
    fn children(&self) -> Vec<(String, &dyn Module)> {
        children![self; conv1, bn1]
    }
}

struct Net {
    features: Sequential,
    fc: Linear,
}

impl Module for Net {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.fc.forward(&self.features.forward(x)?.flatten(1, -1)?)
    }
    fn children(&self) -> Vec<(String, &dyn Module)> {
        children![self; features, fc]
    }
}

fn net(d: &Device) -> Net {
    let block = Block { conv1: Conv2d::new(d, 1, 2, 3, 1, 1).unwrap(), bn1: BatchNorm2d::new_2d(d, 2).unwrap() };
    Net {
        features: Sequential::new().add(block).add(MaxPool2d::new(2, 2, 0)).add(Relu),
        fc: Linear::new(d, 2 * 2 * 2, 3, true).unwrap(),
    }
}

#[test]
fn state_dict_uses_pytorch_names_and_order() {
    let m = net(&Device::Cpu);
    let names: Vec<String> = m.state_dict().into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        [
            "features.0.conv1.weight",
            "features.0.conv1.bias",
            "features.0.bn1.weight",
            "features.0.bn1.bias",
            "features.0.bn1.running_mean",
            "features.0.bn1.running_var",
            "features.0.bn1.num_batches_tracked",
            "fc.weight",
            "fc.bias"
        ]
    );
    assert_eq!(m.named_parameters().len(), 6);
    assert_eq!(m.num_parameters(), 2 * 9 + 2 + 2 + 2 + 3 * 8 + 3);
}

#[test]
fn load_state_dict_copies_values_and_reports_problems() {
    let (a, b) = (net(&Device::Cpu), net(&Device::Cpu));
    let state: Vec<(String, Array)> = a.state_dict().into_iter().map(|(n, t)| (n, t.data())).collect();
    b.load_state_dict(&state, true).unwrap();
    for ((_, x), (_, y)) in a.state_dict().iter().zip(b.state_dict().iter()) {
        assert_eq!(x.to_vec_f64().unwrap(), y.to_vec_f64().unwrap());
    }
    // missing and unexpected names (strict), wrong shape (always); nothing is changed
    let mut bad = state[1..].to_vec();
    bad.push(("fc.extra".into(), Array::zeros(&Device::Cpu, &[1]).unwrap()));
    let err = b.load_state_dict(&bad, true).unwrap_err().to_string();
    assert!(err.contains("missing key features.0.conv1.weight") && err.contains("unexpected key fc.extra"), "{err}");
    b.load_state_dict(&bad, false).unwrap();
    let mut wrong = state.clone();
    wrong[7].1 = Array::zeros(&Device::Cpu, &[3, 7]).unwrap();
    let err = b.load_state_dict(&wrong, false).unwrap_err().to_string();
    assert!(err.contains("fc.weight") && err.contains("[3, 7]") && err.contains("[3, 8]"), "{err}");
}

#[test]
fn load_state_dict_refuses_other_dtypes_and_non_finite_values() {
    let (a, b) = (net(&Device::Cpu), net(&Device::Cpu));
    let state: Vec<(String, Array)> = a.state_dict().into_iter().map(|(n, t)| (n, t.data())).collect();
    let values = |m: &Net| -> Vec<Vec<f64>> { m.state_dict().iter().map(|(_, t)| t.to_vec_f64().unwrap()).collect() };
    let before = values(&b);
    let (name, shape) = (state[7].0.clone(), state[7].1.shape().to_vec());
    assert_eq!(name, "fc.weight");
    let n: usize = shape.iter().product();

    let mut as_u32 = state.clone();
    as_u32[7].1 = Array::from_u32(&Device::Cpu, &vec![3; n], &shape).unwrap();
    let err = b.load_state_dict(&as_u32, true).unwrap_err().to_string();
    assert!(err.contains("fc.weight: dtype U32 in the state, F32 in the module"), "{err}");
    let mut with_nan = state.clone();
    let mut data = vec![0.5f32; n];
    data[2] = f32::NAN;
    data[5] = f32::INFINITY;
    with_nan[7].1 = Array::from_f32(&Device::Cpu, &data, &shape).unwrap();
    let err = b.load_state_dict(&with_nan, true).unwrap_err().to_string();
    assert!(err.contains(&format!("fc.weight: 2 of its {n} values are NaN or infinite")), "{err}");
    let err = b.load_state_dict_converting(&with_nan, true).unwrap_err().to_string();
    assert!(err.contains("NaN"), "{err}");
    assert_eq!(values(&b), before, "a refused load changed the module");

    // asked for, a conversion that keeps every value loads; one that would round does not
    b.load_state_dict_converting(&as_u32, true).unwrap();
    assert_eq!(b.state_dict()[7].1.to_vec_f64().unwrap(), vec![3.0; n]);
    assert_eq!(b.state_dict()[7].1.dtype(), DType::F32);
    let mut big = state.clone();
    big[7].1 = Array::from_u32(&Device::Cpu, &vec![16_777_217; n], &shape).unwrap();
    let err = b.load_state_dict_converting(&big, true).unwrap_err().to_string();
    assert!(err.contains("fc.weight: 16777217 (U32) does not convert exactly to F32"), "{err}");
}

#[test]
fn default_init_stays_within_pytorch_bounds() {
    manual_seed(3);
    let lin = Linear::new(&Device::Cpu, 50, 20, true).unwrap();
    let bound = 1.0 / 50f64.sqrt();
    for t in [&lin.weight, lin.bias.as_ref().unwrap()] {
        let v = t.to_vec_f64().unwrap();
        assert!(v.iter().all(|x| x.abs() <= bound), "values beyond {bound}");
        assert!(v.iter().any(|x| x.abs() > 0.8 * bound), "values should spread up to the bound");
    }
    let conv = Conv2d::new(&Device::Cpu, 4, 2, 3, 1, 0).unwrap();
    let bound = 1.0 / 36f64.sqrt();
    assert!(conv.weight.to_vec_f64().unwrap().iter().all(|x| x.abs() <= bound));
}

#[test]
fn batch_norm_tracks_running_statistics_and_uses_them_in_eval() {
    let d = Device::Cpu;
    let bn = BatchNorm2d::new_2d(&d, 2).unwrap();
    let vals: Vec<f64> = (0..16).map(|i| ((i * 7) % 11) as f64 * 0.3 - 1.0).collect();
    let x = Tensor::from_f64(&d, &vals, &[2, 2, 2, 2]).unwrap();
    let y = bn.forward(&x).unwrap().to_vec_f64().unwrap();
    // channel c holds elements n*8 + c*4 + (0..4)
    for c in 0..2 {
        let xs: Vec<f64> = (0..2).flat_map(|n| (0..4).map(move |k| n * 8 + c * 4 + k)).map(|i| vals[i]).collect();
        let mean = xs.iter().sum::<f64>() / 8.0;
        let var = xs.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 8.0;
        let rm = bn.running_mean.to_vec_f64().unwrap()[c];
        let rv = bn.running_var.to_vec_f64().unwrap()[c];
        // momentum and the unbiasing factor travel as f32 scalars, hence the 1e-7 bound
        assert!((rm - 0.1 * mean).abs() < 1e-7);
        assert!((rv - (0.9 + 0.1 * var * 8.0 / 7.0)).abs() < 1e-7, "unbiased running variance");
        let i = c * 4;
        assert!((y[i] - (vals[i] - mean) / (var + 1e-5).sqrt()).abs() < 1e-9);
    }
    assert_eq!(bn.num_batches_tracked.item().unwrap(), 1.0);
    bn.eval();
    let y = bn.forward(&x).unwrap().to_vec_f64().unwrap();
    let (rm, rv) = (bn.running_mean.to_vec_f64().unwrap(), bn.running_var.to_vec_f64().unwrap());
    assert!((y[5] - (vals[5] - rm[1]) / (rv[1] + 1e-5).sqrt()).abs() < 1e-9);
    assert_eq!(bn.num_batches_tracked.item().unwrap(), 1.0);
}

#[test]
fn dropout_drops_and_rescales_in_training_only() {
    for d in [Device::Cpu, gpu()] {
        let drop = Dropout::new(0.25);
        let x = Tensor::ones(&d, &[4000]).unwrap();
        let y = drop.forward(&x).unwrap().to_vec_f64().unwrap();
        let kept = y.iter().filter(|&&v| v != 0.0).count() as f64 / 4000.0;
        assert!((kept - 0.75).abs() < 0.04, "kept {kept}");
        assert!(y.iter().all(|&v| v == 0.0 || (v - 1.0 / 0.75).abs() < 1e-6));
        drop.eval();
        assert!(drop.forward(&x).unwrap().to_vec_f64().unwrap().iter().all(|&v| v == 1.0));
    }
}

#[test]
fn embedding_and_layer_norm_shapes() {
    let d = Device::Cpu;
    let emb = Embedding::new(&d, 10, 4).unwrap();
    let idx = Tensor::from_u32(&d, &[1, 9, 1, 0, 3, 3], &[2, 3]).unwrap();
    assert_eq!(emb.forward(&idx).unwrap().shape(), [2, 3, 4]);
    let ln = LayerNorm::new(&d, &[4]).unwrap();
    let y = ln.forward(&emb.forward(&idx).unwrap()).unwrap();
    let row = &y.to_vec_f64().unwrap()[..4];
    assert!(row.iter().sum::<f64>().abs() < 1e-9);
}

#[test]
fn gradients_accumulate_across_backward_calls() {
    for d in [Device::Cpu, gpu()] {
        let w = Tensor::parameter(Array::from_f64(&d, &[1.0, 2.0], &[2]).unwrap());
        for _ in 0..3 {
            w.mul(&w).unwrap().sum_all().unwrap().backward().unwrap();
        }
        assert_eq!(w.grad().unwrap().to_f64_vec().unwrap(), [6.0, 12.0]);
        w.zero_grad();
        assert!(w.grad().is_none());
    }
}

#[test]
fn no_grad_and_detach_record_nothing() {
    let d = Device::Cpu;
    let w = Tensor::parameter(Array::from_f64(&d, &[1.0], &[1]).unwrap());
    {
        let _guard = no_grad();
        let y = w.mul_scalar(2.0).unwrap();
        assert!(!y.requires_grad() && y.grad_fn().is_none());
    }
    let y = w.mul_scalar(2.0).unwrap();
    assert_eq!(y.grad_fn(), Some("mul"));
    assert!(!y.detach().requires_grad());
    let err = w.detach().sum_all().unwrap().backward().unwrap_err();
    assert!(matches!(err, GraphError::Backward(_)), "{err}");
}

#[test]
fn user_errors_name_the_op_and_shapes() {
    let d = Device::Cpu;
    let a = Tensor::parameter(Array::zeros(&d, &[2, 3]).unwrap());
    let err = a.backward().unwrap_err().to_string();
    assert!(err.contains("backward") && err.contains("[2, 3]"), "{err}");
    let b = Tensor::zeros(&d, &[4, 5]).unwrap();
    let err = a.matmul(&b).unwrap_err().to_string();
    assert!(err.contains("matmul") && err.contains("[2, 3]") && err.contains("[4, 5]"), "{err}");
    let err = a.add(&b).unwrap_err().to_string();
    assert!(err.contains("add") && err.contains("[2, 3]"), "{err}");
    let g = Tensor::zeros(&gpu(), &[2, 3]).unwrap();
    let err = a.add(&g).unwrap_err().to_string();
    assert!(err.contains("add") && err.contains("different devices"), "{err}");
    let err = Linear::new(&d, 4, 2, true).unwrap().forward(&a).unwrap_err().to_string();
    assert!(err.contains("[2, 3]"), "{err}");
}

#[test]
fn tensors_move_between_devices_with_gradients() {
    let w = Tensor::parameter(Array::from_f64(&Device::Cpu, &[1.0, -2.0], &[2]).unwrap());
    let on_gpu = w.to(&gpu()).unwrap();
    assert_eq!(on_gpu.to_vec().unwrap(), [1.0, -2.0]);
    on_gpu.square().unwrap().sum_all().unwrap().backward().unwrap();
    assert_eq!(w.grad().unwrap().to_f64_vec().unwrap(), [2.0, -4.0]);
    assert_eq!(w.dtype(), DType::F32);
}
