//! ZFNet's visualisations on a LeNet-5 restored from a checkpoint: filters, feature maps and
//! occlusion maps as PNG, plus a hand-made model whose occlusion map is known exactly.

use ferrograd_device::testing::{self, assert_close, Rng};
use ferrograd_device::Device;
use ferrograd_graph::nn::{AdaptiveAvgPool2d, Conv2d, Linear, Module, Relu, Sequential};
use ferrograd_graph::{no_grad, Tensor};
use ferrograd_models::features_classifier::FeaturesClassifier;
use ferrograd_models::registry;
use ferrograd_train::checkpoint::{self, CheckpointMeta};
use ferrograd_train::data::image_folder::load_like;
use ferrograd_train::data::{ImageDataset, LoadOptions, Normalization};
use ferrograd_train::visualize::{self, OcclusionOptions, Picture};
use std::path::Path;

const LENET_INPUT: [usize; 3] = [1, 32, 32];

/// A LeNet-5 with random weights, saved as `train` saves it and restored into a model built
/// with another seed, in eval mode.
/// `registry::build`, one at a time: the seed stream is per process and these tests run in
/// parallel, so two builds at once would interleave their draws.
fn build(name: &str, device: &Device, seed: u64) -> Box<dyn Module> {
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    registry::build(name, 10, 1, device, seed).unwrap()
}

fn restored_lenet(device: &Device, dir: &Path) -> Box<dyn Module> {
    let trained = build("lenet5", device, 7);
    let arrays: Vec<_> = trained.state_dict().into_iter().map(|(n, t)| (n, t.data())).collect();
    let meta = CheckpointMeta { model: "lenet5".into(), dataset: "mnist".into(), epoch: 1, ..Default::default() };
    let path = dir.join("lenet.safetensors");
    checkpoint::save(&path, &arrays, &meta).unwrap();
    let ck = checkpoint::load(&path, device).unwrap();
    let model = build("lenet5", device, 99);
    model.load_state_dict(&ck.arrays, true).unwrap();
    model.eval();
    model
}

/// A 28x28 digit-like PNG (a bright bar and a ring on black) prepared as MNIST for LeNet-5:
/// grayscale, padded by 2 to 32x32, normalised.
fn synthetic_digit(dir: &Path) -> Vec<f32> {
    let path = dir.join("digit.png");
    let img = image::GrayImage::from_fn(28, 28, |x, y| {
        let r2 = (x as i32 - 14).pow(2) + (y as i32 - 10).pow(2);
        let ring = (16..=36).contains(&r2);
        let bar = (12..=15).contains(&x) && y >= 12;
        image::Luma([if ring || bar { 255 } else { 0 }])
    });
    img.save(&path).unwrap();
    load_like(&path, &mnist_like(), 2).unwrap()
}

fn mnist_like() -> ImageDataset {
    let classes = (0..10).map(|d| d.to_string()).collect();
    let pad = LoadOptions { pad: 2, limit: None };
    ImageDataset::from_u8("like".into(), &[], vec![], [1, 28, 28], classes, Normalization::mnist(), &pad)
}

fn picture(path: &Path) -> Picture<'_> {
    Picture { path, title: "lenet5 (mnist) · digit.png" }
}

/// The figure holds a body of at least `body` pixels, with room for a title and labels.
fn assert_framed(path: &Path, body: (u32, u32)) {
    let (w, h) = png_size(path);
    assert!(w >= body.0 && h >= body.1 + 40, "{}: {w}x{h} for a {body:?} body", path.display());
}

fn png_size(path: &Path) -> (u32, u32) {
    image::image_dimensions(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Width or height of a grid of `n` tiles of `side` pixels with `gap` between and around.
fn grid_side(n: u32, side: u32, gap: u32) -> u32 {
    n * side + (n + 1) * gap
}

#[test]
fn filters_are_the_restored_first_convolution() {
    let gpu = testing::gpu();
    let dir = tempfile::tempdir().unwrap();
    let model = restored_lenet(&gpu, dir.path());
    let (name, weight) = visualize::first_conv_weight(model.as_ref()).unwrap();
    assert_eq!((name.as_str(), weight.shape()), ("conv1.weight", vec![6, 1, 5, 5]));
    let original = build("lenet5", &gpu, 7);
    assert_eq!(weight.to_vec().unwrap(), original.named_parameters()[0].1.to_vec().unwrap());
    let path = dir.path().join("filters.png");
    assert_eq!(visualize::write_filters(model.as_ref(), &picture(&path)).unwrap(), (name, [6, 1, 5, 5]));
    // 6 tiles in 3 columns x 2 rows, 5 pixels zoomed 15x (to reach 72), 18-pixel label bands
    assert_framed(&path, (grid_side(3, 75, 18), grid_side(2, 75, 18)));
}

#[test]
fn feature_maps_of_named_layers() {
    let gpu = testing::gpu();
    let dir = tempfile::tempdir().unwrap();
    let model = restored_lenet(&gpu, dir.path());
    let image = synthetic_digit(dir.path());
    assert_eq!(image.len(), 32 * 32);
    let layers = visualize::feature_layers("lenet5", model.as_ref());
    assert_eq!(layers, ["conv1", "relu1", "pool1", "conv2", "relu2", "pool2"]);

    let conv1 = dir.path().join("feature_maps_conv1.png");
    let shape =
        visualize::write_feature_maps("lenet5", model.as_ref(), &gpu, &image, LENET_INPUT, "conv1", &picture(&conv1));
    assert_eq!(shape.unwrap(), [6, 28, 28]);
    // 6 tiles of 28 pixels zoomed 4x (to reach 96), 3 x 2, label bands of 18
    assert_framed(&conv1, (grid_side(3, 112, 18), grid_side(2, 112, 18)));
    let pool2 = dir.path().join("feature_maps_pool2.png");
    let shape =
        visualize::write_feature_maps("lenet5", model.as_ref(), &gpu, &image, LENET_INPUT, "pool2", &picture(&pool2));
    assert_eq!(shape.unwrap(), [16, 5, 5]);
    assert_framed(&pool2, (grid_side(4, 80, 18), grid_side(4, 80, 18)));

    // relu1 is conv1 rectified, and pool1 its 2x2 maximum
    let x = Tensor::from_f32(&gpu, &image, &[1, 1, 32, 32]).unwrap();
    let map = |layer: &str| visualize::feature_maps("lenet5", model.as_ref(), &x, layer).unwrap().to_vec_f64().unwrap();
    let (c1, r1, p1) = (map("conv1"), map("relu1"), map("pool1"));
    assert_eq!(r1, c1.iter().map(|v| v.max(0.0)).collect::<Vec<_>>());
    let at = |k: usize, y: usize, x: usize| r1[(k * 28 + y) * 28 + x];
    let want: Vec<f64> = (0..6 * 14 * 14)
        .map(|i| {
            let (k, y, x) = (i / 196, i / 14 % 14, i % 14);
            at(k, 2 * y, 2 * x).max(at(k, 2 * y, 2 * x + 1)).max(at(k, 2 * y + 1, 2 * x)).max(at(
                k,
                2 * y + 1,
                2 * x + 1,
            ))
        })
        .collect();
    assert_eq!(p1, want);
    assert!(c1.iter().any(|&v| v < 0.0), "conv1 should have negative responses for the test to mean anything");
}

#[test]
fn lenet_steps_match_its_forward() {
    let gpu = testing::gpu();
    let dir = tempfile::tempdir().unwrap();
    let model = restored_lenet(&gpu, dir.path());
    let x = Tensor::from_f32(&gpu, &Rng::new(3).vec(2 * 32 * 32), &[2, 1, 32, 32]).unwrap();
    let _no_grad = no_grad();
    let children = model.children();
    let fc = |i: usize, y: &Tensor| children[1 + i].1.forward(y).unwrap();
    let pool2 = visualize::feature_maps("lenet5", model.as_ref(), &x, "pool2").unwrap();
    let y = fc(1, &pool2.flatten(1, -1).unwrap()).relu().unwrap();
    let y = fc(3, &fc(2, &y).relu().unwrap());
    assert_eq!(children.iter().map(|c| c.0.as_str()).collect::<Vec<_>>(), ["conv1", "conv2", "fc1", "fc2", "fc3"]);
    let want = model.forward(&x).unwrap().to_vec_f64().unwrap();
    assert_close("lenet5 steps", &y.to_vec_f64().unwrap(), &want, testing::F32_TOL);
}

#[test]
fn unknown_layers_and_unsupported_models_are_clear_errors() {
    let gpu = testing::gpu();
    let dir = tempfile::tempdir().unwrap();
    let model = restored_lenet(&gpu, dir.path());
    let x = Tensor::zeros(&gpu, &[1, 1, 32, 32]).unwrap();
    let err = visualize::feature_maps("lenet5", model.as_ref(), &x, "conv9").unwrap_err().to_string();
    assert!(err.contains("\"conv9\"") && err.contains("conv1, relu1, pool1, conv2, relu2, pool2"), "{err}");
    let mlp = build("mlp", &gpu, 0);
    assert!(visualize::feature_layers("mlp", mlp.as_ref()).is_empty());
    let err = visualize::feature_maps("mlp", mlp.as_ref(), &x, "layers.0").unwrap_err().to_string();
    assert!(err.contains("\"mlp\"") && err.contains("not available"), "{err}");
    assert!(visualize::write_filters(mlp.as_ref(), &picture(&dir.path().join("f.png"))).is_err());
    // image that is not an image, and values that do not fill the shape
    let bad = dir.path().join("notes.png");
    std::fs::write(&bad, "not a png").unwrap();
    let err = load_like(&bad, &mnist_like(), 2).unwrap_err().to_string();
    assert!(err.contains("notes.png") && err.contains("decode"), "{err}");
    let out = dir.path().join("maps.png");
    let err =
        visualize::write_feature_maps("lenet5", model.as_ref(), &gpu, &[0.0; 10], LENET_INPUT, "conv1", &picture(&out));
    assert!(err.unwrap_err().to_string().contains("do not fill"));
    // a checkpoint of another model does not load into LeNet-5, naming what differs
    let ck_path = dir.path().join("mlp.safetensors");
    let arrays: Vec<_> = mlp.state_dict().into_iter().map(|(n, t)| (n, t.data())).collect();
    checkpoint::save(&ck_path, &arrays, &CheckpointMeta { model: "mlp".into(), ..Default::default() }).unwrap();
    let ck = checkpoint::load(&ck_path, &gpu).unwrap();
    let err = model.load_state_dict(&ck.arrays, true).unwrap_err().to_string();
    assert!(err.contains("conv1.weight"), "{err}");
}

/// logits = [0.1 * sum of the top-left 8x8 of every channel, 0]: only that corner matters.
struct TopLeftCorner;

impl Module for TopLeftCorner {
    fn forward(&self, x: &Tensor) -> ferrograd_graph::Result<Tensor> {
        let s = x.narrow(2, 0, 8)?.narrow(3, 0, 8)?.sum(&[1, 2, 3], false)?.unsqueeze(1)?.mul_scalar(0.1)?;
        Tensor::cat(&[&s, &s.mul_scalar(0.0)?], 1)
    }
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

#[test]
fn occlusion_lowers_the_probability_only_where_the_model_looks() {
    let gpu = testing::gpu();
    let image = vec![1.0f32; 16 * 16];
    let opts = OcclusionOptions { patch: 8, stride: 4, class: None, batch: 4 };
    let map = visualize::occlusion(&TopLeftCorner, &gpu, &image, [1, 16, 16], &opts).unwrap();
    assert_eq!((map.class, map.rows, map.cols, map.height, map.width), (0, 3, 3, 16, 16));
    let base = sigmoid(6.4);
    assert_close("base", &[map.base_probability as f64], &[base], testing::F32_TOL);
    // patch starts 0, 4, 8 each way: at (0, 0) it hides the whole corner, at (0, 4) and (4, 0)
    // half of it, at (4, 4) a quarter; starting at row or column 8 it misses the corner
    let half = sigmoid(3.2);
    let want = [0.5, half, base, half, sigmoid(4.8), base, base, base, base];
    let got: Vec<f64> = map.window_probabilities.iter().map(|&p| p as f64).collect();
    assert_close("windows", &got, &want, testing::F32_TOL);
    // pixel (0, 0) lies under the (0, 0) patch only; (15, 15) under (8, 8) only; (5, 5) under four
    let pixel = |y: usize, x: usize| map.pixel_probabilities[y * 16 + x] as f64;
    let under_four = (0.5 + half + half + sigmoid(4.8)) / 4.0;
    assert_close("pixels", &[pixel(0, 0), pixel(15, 15), pixel(5, 5)], &[0.5, base, under_four], testing::F32_TOL);

    let other = OcclusionOptions { class: Some(1), ..opts.clone() };
    let map1 = visualize::occlusion(&TopLeftCorner, &gpu, &image, [1, 16, 16], &other).unwrap();
    assert_close("class 1", &[map1.window_probabilities[0] as f64], &[0.5], testing::F32_TOL);
    let err = visualize::occlusion(
        &TopLeftCorner,
        &gpu,
        &image,
        [1, 16, 16],
        &OcclusionOptions { class: Some(2), ..opts.clone() },
    );
    assert!(err.unwrap_err().to_string().contains("class 2 is out of range"));
    let err = visualize::occlusion(&TopLeftCorner, &gpu, &image, [1, 16, 16], &OcclusionOptions { stride: 0, ..opts });
    assert!(err.unwrap_err().to_string().contains("stride"));
}

#[test]
fn lenet_occlusion_maps_do_not_depend_on_the_batch_and_are_written() {
    let gpu = testing::gpu();
    let dir = tempfile::tempdir().unwrap();
    let model = restored_lenet(&gpu, dir.path());
    let image = synthetic_digit(dir.path());
    let opts = OcclusionOptions::default();
    let map = visualize::occlusion(model.as_ref(), &gpu, &image, LENET_INPUT, &opts).unwrap();
    // 32 pixels, patch 8, stride 4: starts 0, 4, ..., 24
    assert_eq!((map.rows, map.cols), (7, 7));
    let x = Tensor::from_f32(&gpu, &image, &[1, 1, 32, 32]).unwrap();
    let logits = model.forward(&x).unwrap().to_vec().unwrap();
    let predicted = (0..10).max_by(|&a, &b| logits[a].total_cmp(&logits[b])).unwrap();
    assert_eq!(map.class, predicted);
    let spread = map.window_probabilities.iter().fold(0.0f32, |m, &p| m.max((p - map.base_probability).abs()));
    assert!(spread > 1e-4, "occluding the digit should move the probability (moved at most {spread})");

    let small_batches = OcclusionOptions { batch: 5, ..opts };
    let again = visualize::occlusion(model.as_ref(), &gpu, &image, LENET_INPUT, &small_batches).unwrap();
    let f64s = |v: &[f32]| v.iter().map(|&p| p as f64).collect::<Vec<_>>();
    assert_close(
        "batch 5 vs 64",
        &f64s(&again.window_probabilities),
        &f64s(&map.window_probabilities),
        testing::F32_TOL,
    );

    let heat = dir.path().join("occlusion.png");
    map.write_heatmap(&picture(&heat)).unwrap();
    // 32 pixels zoomed 8x (to reach 256), one tile with 2-pixel gaps
    assert_framed(&heat, (grid_side(1, 256, 2), grid_side(1, 256, 2)));
    let overlay = dir.path().join("occlusion_overlay.png");
    map.write_overlay(&image, 1, &Normalization::mnist(), &picture(&overlay)).unwrap();
    assert_framed(&overlay, (256, 256));
    // the black border of the input shows through the overlay at half brightness at most: a
    // solid block of such pixels (no heat colour reaches 255 in every channel there)
    let img = image::open(&overlay).unwrap().to_rgb8();
    let dim = img.pixels().filter(|p| p.0.iter().all(|&v| v <= 128) && p.0.iter().any(|&v| v > 0)).count();
    assert!(dim > 16 * 256, "only {dim} half-dark pixels");
}

/// A small features + classifier network, the shape of AlexNet, ZFNet and VGG.
fn features_net(device: &Device, in_channels: usize) -> FeaturesClassifier {
    let features = Sequential::new()
        .add(Conv2d::new(device, in_channels, 4, 3, 1, 1).unwrap())
        .add(Relu)
        .add(Conv2d::new(device, 4, 5, 3, 2, 0).unwrap());
    FeaturesClassifier {
        features,
        avgpool: Some(AdaptiveAvgPool2d([1, 1])),
        classifier: Box::new(Linear::new(device, 5, 3, true).unwrap()),
    }
}

#[test]
fn models_with_a_features_stack_show_each_layer_and_rgb_filters() {
    let gpu = testing::gpu();
    let dir = tempfile::tempdir().unwrap();
    let net = features_net(&gpu, 3);
    assert_eq!(visualize::feature_layers("zfnet", &net), ["features.0", "features.1", "features.2"]);
    let x = Tensor::from_f32(&gpu, &Rng::new(5).vec(3 * 12 * 12), &[1, 3, 12, 12]).unwrap();
    let map = |layer: &str| visualize::feature_maps("zfnet", &net, &x, layer).unwrap();
    let (conv, relu, last) = (map("features.0"), map("features.1"), map("features.2"));
    assert_eq!((conv.shape(), last.shape()), (vec![1, 4, 12, 12], vec![1, 5, 5, 5]));
    let rectified: Vec<f32> = conv.to_vec().unwrap().iter().map(|v| v.max(0.0)).collect();
    assert_eq!(relu.to_vec().unwrap(), rectified);
    let err = visualize::check_layer("zfnet", &net, "features.3").unwrap_err().to_string();
    assert!(err.contains("features.0, features.1, features.2"), "{err}");

    // 4 RGB filters of 3x3: 2 x 2 tiles of 24 pixels
    let rgb = dir.path().join("rgb.png");
    let expected = ("features.0.weight".to_string(), [4, 3, 3, 3]);
    assert_eq!(visualize::write_filters(&net, &picture(&rgb)).unwrap(), expected);
    // 3 pixels zoomed 16x (the most, short of 72)
    assert_framed(&rgb, (grid_side(2, 48, 18), grid_side(2, 48, 18)));
    // 2 input channels: one row per filter, one tile per channel
    let two = dir.path().join("two.png");
    visualize::write_filters(&features_net(&gpu, 2), &picture(&two)).unwrap();
    assert_framed(&two, (grid_side(2, 48, 18), grid_side(4, 48, 18)));
}
