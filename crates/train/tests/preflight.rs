//! Batches too large for the device are found before a run does any work: a training batch
//! is refused with the size that fits, an evaluation batch falls back to batches that fit.
//! The model makes one array of a quarter of the adapter's binding limit per example, so the
//! sizes follow from the adapter, whichever it is.

use ferrograd_device::{Array, Device};
use ferrograd_graph::nn::Module;
use ferrograd_graph::{Result, Tensor};
use ferrograd_train::classifier::evaluate;
use ferrograd_train::data::{ImageDataset, Normalization};
use ferrograd_train::loader::{DataLoader, LoaderConfig};
use ferrograd_train::preflight::{check_train_batch, fit_eval_batches};
use std::sync::Arc;

/// logits `[N, 2]` from an `[N, per]` array: each example takes `per` f32 values.
struct Wide {
    row: Tensor,
}

impl Module for Wide {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let n = x.shape()[0];
        let wide = Tensor::zeros(&x.device(), &[n, self.row.shape()[1]])?.add(&self.row)?;
        let s = wide.sum(&[1], true)?;
        Tensor::cat(&[&s, &s.neg()?], 1)
    }

    fn own_parameters(&self) -> Vec<(String, Tensor)> {
        vec![("row".into(), self.row.clone())]
    }
}

fn dataset(n: usize) -> Arc<ImageDataset> {
    Arc::new(ImageDataset {
        name: "points".into(),
        images: vec![0.5; n],
        labels: (0..n as u32).map(|i| i % 2).collect(),
        channels: 1,
        height: 1,
        width: 1,
        classes: vec!["a".into(), "b".into()],
        normalization: Normalization::new(&[0.0], &[1.0]),
    })
}

#[test]
fn batches_too_large_are_found_up_front_with_a_size_that_fits() {
    let gpu = ferrograd_device::testing::gpu();
    let limit = gpu.gpu_context().unwrap().binding_limit();
    let per = (limit / 16) as usize; // a quarter of the limit per example
    let row = Tensor::parameter(Array::full(&gpu, &[1, per], 1e-3).unwrap());
    let model = Wide { row: row.clone() };

    // 8 examples need twice the limit; 8 * 8/9 / 2 rounds down to 3, which fits
    let train = DataLoader::new(dataset(8), LoaderConfig::train(8, 0)).unwrap();
    let err = check_train_batch(&model, &train, &gpu, 0.0).unwrap_err().to_string();
    for part in [
        "a training batch of 8 does not fit the device:".to_string(),
        format!("needs {} bytes for the array [8, {per}]", 8 * per * 4),
        format!("over the adapter's limit of {limit} bytes"),
        "a batch size of 3 fits".to_string(),
    ] {
        assert!(err.contains(&part), "{err}\nlacks {part:?}");
    }
    check_train_batch(&model, &train.with_batch_size(3).unwrap(), &gpu, 0.0).unwrap();
    assert!(row.grad().is_none_or(|g| g.to_f64_vec().unwrap().iter().all(|&v| v == 0.0)), "the probe left gradients");
    assert!(row.data().to_f64_vec().unwrap().iter().all(|&v| (v - 1e-3).abs() < 1e-9), "the probe changed weights");

    let test = DataLoader::new(dataset(8), LoaderConfig::eval(8)).unwrap();
    let (fitted, note) = fit_eval_batches(&model, &test, &gpu).unwrap();
    assert_eq!(fitted.config().batch_size, 3);
    assert_eq!(note.as_deref(), Some("evaluating in batches of 3: a batch of 8 does not fit the device"));
    let (_, accuracy) = evaluate(&model, &fitted, &gpu).unwrap();
    assert_eq!(accuracy, 0.5, "every example is evaluated once: label 0 is right for half of them");
    let (same, note) = fit_eval_batches(&model, &test.with_batch_size(2).unwrap(), &gpu).unwrap();
    assert_eq!((same.config().batch_size, note), (2, None));
}

#[test]
fn the_cpu_device_has_no_limits_to_check() {
    let model = Wide { row: Tensor::parameter(Array::full(&Device::Cpu, &[1, 4], 0.1).unwrap()) };
    let test = DataLoader::new(dataset(8), LoaderConfig::eval(8)).unwrap();
    let (same, note) = fit_eval_batches(&model, &test, &Device::Cpu).unwrap();
    assert_eq!((same.config().batch_size, note), (8, None));
}
