//! ZFNet's visualisations (Zeiler & Fergus, 2013), as PNG: the first layer's filters, the
//! feature maps of a named layer for one image, and occlusion sensitivity (the probability
//! of a class as a gray square slides over the image).
//!
//! Images are the model's prepared input: `[C, H, W]` f32 values normalised as in training
//! (see `data::image_folder::load_like`). Put the model in eval mode first (`model.eval()`).

use crate::data::Normalization;
use crate::error::{Result, TrainError};
use crate::figure::{pixel_ticks, write_figure, ColorBar, Figure};
use crate::grid::{self, Colormap, GridOptions};
use ferrograd_device::kernels::conv::Conv2dGeometry;
use ferrograd_device::Device;
use ferrograd_graph::nn::Module;
use ferrograd_graph::{no_grad, Tensor};
use image::{Rgb, RgbImage};
use std::path::Path;

/// Occluded images per forward pass (and per readback).
pub const DEFAULT_OCCLUSION_BATCH: usize = 64;
/// Room above each tile of a grid for its label.
const LABEL_BAND: usize = 18;

/// Where a picture goes and what it is of: `title` names the model, the input and the class
/// (e.g. "lenet5 (mnist) · digit.png · predicted 7"); each writer adds a line on what it draws.
#[derive(Clone, Copy, Debug)]
pub struct Picture<'a> {
    pub path: &'a Path,
    pub title: &'a str,
}

/// Labels over the tiles of a grid: `label(i)` in the band above tile `i`.
fn tile_labels(
    n: usize,
    tile: [usize; 2],
    opts: &GridOptions,
    label: impl Fn(usize) -> String,
) -> Vec<((u32, u32), String)> {
    (0..n)
        .map(|i| {
            let (x, y) = grid::tile_origin(i, n, tile, opts);
            ((x as u32, (y + 1 - LABEL_BAND) as u32), label(i))
        })
        .collect()
}

/// The first 4-D parameter in state-dict order (the first convolution's `[O, C, KH, KW]`
/// weight), with its name.
pub fn first_conv_weight(model: &dyn Module) -> Option<(String, Tensor)> {
    model.named_parameters().into_iter().find(|(_, t)| t.ndim() == 4)
}

/// Writes the first convolution's filters as a grid, each tile enlarged to about 72 pixels and
/// labelled: one tile per filter, RGB for 3 input channels, blue-white-red with a colour bar
/// for 1; other channel counts give one row per filter, one tile per input channel.
/// Returns the weight's name and shape.
pub fn write_filters(model: &dyn Module, picture: &Picture) -> Result<(String, [usize; 4])> {
    let (name, weight) = first_conv_weight(model)
        .ok_or_else(|| TrainError::Config("the model has no 4-D (convolution) weight to draw".into()))?;
    let shape: [usize; 4] = weight.shape().try_into().unwrap_or_default();
    let [o, c, kh, kw] = shape;
    let values = weight.to_vec()?;
    let base = GridOptions { zoom: zoom_for(kh.max(kw), 72), gap: LABEL_BAND, ..GridOptions::filters() };
    let rgb = c == 3;
    let (tiles, opts, labels) = if c == 1 || rgb {
        {
            let labels = tile_labels(o, [kh, kw], &base, |i| format!("filter {i}"));
            (shape, base, labels)
        }
    } else {
        let opts = GridOptions { columns: Some(c), ..base };
        let labels = tile_labels(o * c, [kh, kw], &opts, |i| format!("f{} ch{}", i / c, i % c));
        ([o * c, 1, kh, kw], opts, labels)
    };
    let range = grid::value_range(&values, opts.scaling);
    let detail = if rgb {
        format!("{name} {shape:?}: input channels as red, green, blue; mid-gray is a zero weight")
    } else {
        format!("{name} {shape:?}: blue negative, white zero, red positive")
    };
    let figure = Figure {
        title: vec![format!("{}: first-layer filters", picture.title), detail],
        body: grid::render_image_grid(&values, tiles, &opts)?,
        tile_labels: labels,
        color_bar: (!rgb).then(|| ColorBar { colormap: opts.colormap, range, label: "weight".into() }),
        ..Default::default()
    };
    write_figure(&figure, picture.path)?;
    Ok((name, shape))
}

/// One step of a forward pass cut into named pieces.
enum Step<'m> {
    Layer(&'m dyn Module),
    Relu,
    MaxPool(Conv2dGeometry),
}

/// The model's forward pass as named steps from the input, as far as it has spatial feature
/// maps: LeNet-5's `conv1, relu1, pool1, conv2, relu2, pool2`, and for networks with a
/// `features` stack (AlexNet, ZFNet, VGG) its layers `features.0`, `features.1`, ... (a
/// layer's name gives that layer's output, as a PyTorch forward hook would). `None` for other
/// models.
fn steps<'m>(model_name: &str, model: &'m dyn Module) -> Option<Vec<(String, Step<'m>)>> {
    let children = model.children();
    let child = |name: &str| children.iter().find(|(n, _)| n == name).map(|(_, m)| *m);
    if model_name == "lenet5" {
        // mirrors LeNet5::forward up to the flatten (the test `lenet_steps_match_its_forward` holds them equal)
        let pool = || Step::MaxPool(Conv2dGeometry::new(2, 2, 0));
        let named = |n: &str, s: Step<'m>| (n.to_string(), s);
        return Some(vec![
            named("conv1", Step::Layer(child("conv1")?)),
            named("relu1", Step::Relu),
            named("pool1", pool()),
            named("conv2", Step::Layer(child("conv2")?)),
            named("relu2", Step::Relu),
            named("pool2", pool()),
        ]);
    }
    let features = child("features")?;
    Some(features.children().into_iter().map(|(i, m)| (format!("features.{i}"), Step::Layer(m))).collect())
}

/// The layers whose feature maps [`feature_maps`] can return, in forward order (empty when the
/// model is not one it knows how to cut).
pub fn feature_layers(model_name: &str, model: &dyn Module) -> Vec<String> {
    steps(model_name, model).map(|s| s.into_iter().map(|(n, _)| n).collect()).unwrap_or_default()
}

/// Checks that `layer` is one of `feature_layers`; the error lists the valid names (or says
/// that the model has none).
pub fn check_layer(model_name: &str, model: &dyn Module, layer: &str) -> Result<()> {
    layer_index(model_name, &steps(model_name, model), layer).map(|_| ())
}

fn layer_index(model_name: &str, steps: &Option<Vec<(String, Step<'_>)>>, layer: &str) -> Result<usize> {
    let steps = steps.as_ref().ok_or_else(|| {
        TrainError::Config(format!(
            "feature maps of {model_name:?} are not available: they are for lenet5 and the models with a \
             `features` stack (alexnet, alexnet_lrn, zfnet, vgg*)"
        ))
    })?;
    steps.iter().position(|(n, _)| n == layer).ok_or_else(|| {
        let names: Vec<&str> = steps.iter().map(|(n, _)| n.as_str()).collect();
        TrainError::Config(format!(
            "{model_name} has no layer {layer:?}; layers with feature maps: {}",
            names.join(", ")
        ))
    })
}

/// The output `[N, K, H', W']` of `layer` for the input `x [N, C, H, W]`, running the model
/// only that far. An unknown layer is an error listing the valid names.
pub fn feature_maps(model_name: &str, model: &dyn Module, x: &Tensor, layer: &str) -> Result<Tensor> {
    let steps = steps(model_name, model);
    let last = layer_index(model_name, &steps, layer)?;
    let steps = steps.unwrap_or_default();
    let _no_grad = no_grad();
    let mut y = x.clone();
    for (_, step) in &steps[..=last] {
        y = match step {
            Step::Layer(m) => m.forward(&y)?,
            Step::Relu => y.relu()?,
            Step::MaxPool(g) => y.max_pool2d(g)?,
        };
    }
    if y.ndim() != 4 {
        return Err(TrainError::Config(format!("layer {layer:?} gives shape {:?}, not [N, C, H, W] maps", y.shape())));
    }
    Ok(y)
}

/// Writes the feature maps of `layer` for one image (`image [C, H, W]`) as a grid, one tile
/// per channel (labelled) on one shared heat scale (so weak channels look dark), with its
/// colour bar. Returns the maps' `[K, H', W']`.
pub fn write_feature_maps(
    model_name: &str,
    model: &dyn Module,
    device: &Device,
    image: &[f32],
    shape: [usize; 3],
    layer: &str,
    picture: &Picture,
) -> Result<[usize; 3]> {
    let x = image_tensor(device, image, shape)?;
    let maps = feature_maps(model_name, model, &x, layer)?;
    let [_, k, h, w]: [usize; 4] = maps.shape().try_into().unwrap_or_default();
    let opts = GridOptions { zoom: zoom_for(h.max(w), 96), gap: LABEL_BAND, ..GridOptions::heatmap() };
    let values = maps.to_vec()?;
    let figure = Figure {
        title: vec![
            format!("{}: feature maps of {layer}", picture.title),
            format!("{k} channels of {h}x{w}, one heat scale for all (a dark channel responds weakly)"),
        ],
        body: grid::render_image_grid(&values, [k, 1, h, w], &opts)?,
        tile_labels: tile_labels(k, [h, w], &opts, |i| format!("ch {i}")),
        color_bar: Some(ColorBar {
            colormap: opts.colormap,
            range: grid::value_range(&values, opts.scaling),
            label: format!("{layer} activation"),
        }),
        ..Default::default()
    };
    write_figure(&figure, picture.path)?;
    Ok([k, h, w])
}

/// The zoom that brings a side of `side` pixels to at least `target` (at most 16x).
fn zoom_for(side: usize, target: usize) -> usize {
    target.div_ceil(side.max(1)).clamp(1, 16)
}

fn image_tensor(device: &Device, image: &[f32], [c, h, w]: [usize; 3]) -> Result<Tensor> {
    if image.len() != c * h * w {
        return Err(TrainError::Config(format!(
            "{} image values do not fill [C, H, W] = {:?}",
            image.len(),
            [c, h, w]
        )));
    }
    Ok(Tensor::from_f32(device, image, &[1, c, h, w])?)
}

#[derive(Clone, Debug)]
pub struct OcclusionOptions {
    /// side of the square patch, in input pixels
    pub patch: usize,
    /// step between patch positions
    pub stride: usize,
    /// the class whose probability is recorded; `None` takes the predicted class
    pub class: Option<usize>,
    /// occluded images per forward pass
    pub batch: usize,
}

impl Default for OcclusionOptions {
    fn default() -> OcclusionOptions {
        OcclusionOptions { patch: 8, stride: 4, class: None, batch: DEFAULT_OCCLUSION_BATCH }
    }
}

/// The result of [`occlusion`].
#[derive(Clone, Debug)]
pub struct OcclusionMap {
    pub class: usize,
    /// the class's probability on the unoccluded image
    pub base_probability: f32,
    /// patch positions down and across
    pub rows: usize,
    pub cols: usize,
    /// the class's probability with the patch at each position, `[rows, cols]` row-major
    pub window_probabilities: Vec<f32>,
    /// input height and width
    pub height: usize,
    pub width: usize,
    /// per input pixel: the mean probability over the patch positions that cover it, `[H, W]`
    pub pixel_probabilities: Vec<f32>,
}

/// Patch starts along a side of `size`: 0, stride, 2 stride, ... until a patch reaches the
/// far edge, so every pixel is covered (the last patch may be cut by the edge).
fn starts(size: usize, patch: usize, stride: usize) -> Vec<usize> {
    let n = if patch >= size { 1 } else { (size - patch).div_ceil(stride) + 1 };
    (0..n).map(|i| i * stride).collect()
}

/// Occlusion sensitivity: slides a `patch` x `patch` square of zeros (the data set's mean
/// colour, as inputs are normalised) over `image [C, H, W]` with `stride`, and records the
/// probability of the class (given, or else predicted on the clean image). The occluded images
/// go through the model `opts.batch` at a time, with one readback per batch.
pub fn occlusion(
    model: &dyn Module,
    device: &Device,
    image: &[f32],
    shape: [usize; 3],
    opts: &OcclusionOptions,
) -> Result<OcclusionMap> {
    let [c, h, w] = shape;
    if opts.patch == 0 || opts.stride == 0 || opts.batch == 0 {
        return Err(TrainError::Config(format!(
            "occlusion needs patch, stride and batch >= 1 (got {}, {}, {})",
            opts.patch, opts.stride, opts.batch
        )));
    }
    let _no_grad = no_grad();
    let logits = model.forward(&image_tensor(device, image, shape)?)?;
    if logits.ndim() != 2 {
        return Err(TrainError::Config(format!(
            "occlusion needs [N, classes] logits, the model gives {:?}",
            logits.shape()
        )));
    }
    let clean = logits.softmax(-1)?.to_vec()?;
    let class = match opts.class {
        Some(k) if k >= clean.len() => {
            return Err(TrainError::Config(format!("class {k} is out of range: the model has {} classes", clean.len())))
        }
        Some(k) => k,
        None => clean.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map_or(0, |(k, _)| k),
    };
    let (ys, xs) = (starts(h, opts.patch, opts.stride), starts(w, opts.patch, opts.stride));
    let positions: Vec<(usize, usize)> = ys.iter().flat_map(|&y| xs.iter().map(move |&x| (y, x))).collect();
    let plane = c * h * w;
    let mut window_probabilities = Vec::with_capacity(positions.len());
    for chunk in positions.chunks(opts.batch) {
        let mut batch = Vec::with_capacity(chunk.len() * plane);
        for &(y0, x0) in chunk {
            let start = batch.len();
            batch.extend_from_slice(image);
            for ch in 0..c {
                for y in y0..(y0 + opts.patch).min(h) {
                    let row = start + ch * h * w + y * w;
                    batch[row + x0..row + (x0 + opts.patch).min(w)].fill(0.0);
                }
            }
        }
        let x = Tensor::from_f32(device, &batch, &[chunk.len(), c, h, w])?;
        let probs = model.forward(&x)?.softmax(-1)?.select(1, class)?;
        window_probabilities.extend(probs.to_vec()?);
    }
    let pixel_probabilities = per_pixel_mean(&window_probabilities, &ys, &xs, (h, w), opts.patch);
    Ok(OcclusionMap {
        class,
        base_probability: clean[class],
        rows: ys.len(),
        cols: xs.len(),
        window_probabilities,
        height: h,
        width: w,
        pixel_probabilities,
    })
}

/// Each pixel's mean of the window values whose patch covers it.
fn per_pixel_mean(windows: &[f32], ys: &[usize], xs: &[usize], (h, w): (usize, usize), patch: usize) -> Vec<f32> {
    let mut sum = vec![0.0f32; h * w];
    let mut count = vec![0u32; h * w];
    for (i, &y0) in ys.iter().enumerate() {
        for (j, &x0) in xs.iter().enumerate() {
            for y in y0..(y0 + patch).min(h) {
                for x in x0..(x0 + patch).min(w) {
                    sum[y * w + x] += windows[i * xs.len() + j];
                    count[y * w + x] += 1;
                }
            }
        }
    }
    sum.iter().zip(&count).map(|(s, &n)| s / n.max(1) as f32).collect()
}

impl OcclusionMap {
    /// The zoom used by both pictures: about 256 pixels on the long side.
    fn zoom(&self) -> usize {
        zoom_for(self.height.max(self.width), 256)
    }

    /// The probability range of the map, as drawn black to white.
    fn range(&self) -> (f32, f32) {
        grid::value_range(&self.pixel_probabilities, grid::Scaling::Global)
    }

    /// Title, pixel axes and colour bar around `body` (the map at [`Self::zoom`], offset by
    /// `offset` pixels).
    fn figure(&self, picture: &Picture, what: &str, body: RgbImage, offset: u32) -> Figure {
        let (zoom, step) = (self.zoom(), (self.height.max(self.width) / 4).max(1));
        let shift = |ticks: Vec<(u32, String)>| ticks.into_iter().map(|(p, t)| (p + offset, t)).collect();
        Figure {
            title: vec![
                format!("{}: {what}", picture.title),
                format!(
                    "P(class {}) is {:.3} unoccluded; dark: covering that spot lowers it the most",
                    self.class, self.base_probability
                ),
            ],
            body,
            x_ticks: shift(pixel_ticks(self.width, zoom, step)),
            x_label: Some("x (input pixels)".into()),
            y_ticks: shift(pixel_ticks(self.height, zoom, step)),
            y_label: Some("y (input pixels)".into()),
            color_bar: Some(ColorBar {
                colormap: Colormap::Heat,
                range: self.range(),
                label: format!("P(class {}) with the gray square over the pixel", self.class),
            }),
            ..Default::default()
        }
    }

    /// Writes the per-pixel probability map as a heat map (dark: occluding there lowers the
    /// class's probability the most), on its own min-max scale, with its colour bar.
    pub fn write_heatmap(&self, picture: &Picture) -> Result<()> {
        let opts = GridOptions { zoom: self.zoom(), ..GridOptions::heatmap() };
        let body = grid::render_image_grid(&self.pixel_probabilities, [1, 1, self.height, self.width], &opts)?;
        let figure = self.figure(picture, "occlusion sensitivity", body, opts.gap as u32);
        write_figure(&figure, picture.path)
    }

    /// Writes the input image (`[C, H, W]`, un-normalised with `normalization`) blended half
    /// and half with the heat map's colours, framed as the heat map is.
    pub fn write_overlay(
        &self,
        image: &[f32],
        channels: usize,
        normalization: &Normalization,
        picture: &Picture,
    ) -> Result<()> {
        let path = picture.path;
        let plot_err = |detail: String| TrainError::Plot { path: path.to_path_buf(), detail };
        let (h, w) = (self.height, self.width);
        if image.len() != channels * h * w || normalization.mean.len() < channels || normalization.std.len() < channels
        {
            return Err(plot_err(format!(
                "{} values, {channels} channels and {} normalisation channels do not fit a {h}x{w} map",
                image.len(),
                normalization.mean.len()
            )));
        }
        let (lo, hi) = self.range();
        let byte = |ch: usize, i: usize| normalization.invert(ch, image[ch * h * w + i]).clamp(0.0, 255.0);
        let zoom = self.zoom();
        let img = RgbImage::from_fn((w * zoom) as u32, (h * zoom) as u32, |x, y| {
            let i = (y as usize / zoom) * w + x as usize / zoom;
            let t = if hi > lo { (self.pixel_probabilities[i] - lo) / (hi - lo) } else { 0.5 };
            let heat = grid::color(Colormap::Heat, t);
            let input = |k: usize| {
                if channels == 3 {
                    byte(k, i)
                } else {
                    (0..channels).map(|ch| byte(ch, i)).sum::<f32>() / channels as f32
                }
            };
            Rgb([0, 1, 2].map(|k| (0.5 * input(k) + 0.5 * heat[k] as f32).round() as u8))
        });
        write_figure(&self.figure(picture, "occlusion sensitivity over the input", img, 0), path)
    }
}
