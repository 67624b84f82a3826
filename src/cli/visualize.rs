//! `ferrograd visualize --checkpoint PATH [--image IMG] [--layer NAME]`: ZFNet's pictures of a
//! trained network: its first-layer filters, and for one image the feature maps of a layer and
//! an occlusion-sensitivity map. For a seq2seq task's checkpoint, `--source DIGITS` decodes
//! the digits and draws the attention of each output token over them (`attention.png`).

use super::setup::{open_device, restore};
use anyhow::Context;
use clap::Args;
use ferrograd_train::data::image_folder::load_like;
use ferrograd_train::seq::seq2seq_tasks::attention_map_for_checkpoint;
use ferrograd_train::visualize::{self, OcclusionOptions, Picture, DEFAULT_OCCLUSION_BATCH};
use std::path::PathBuf;

#[derive(Args, Clone, Debug)]
pub struct VisualizeArgs {
    /// A checkpoint written by `ferrograd train`
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// A PNG or JPEG image for the feature maps and the occlusion map; prepared like the
    /// checkpoint's data set (MNIST: grayscale, padded; CIFAR-10: RGB, normalised)
    #[arg(long)]
    pub image: Option<PathBuf>,
    /// The layer whose feature maps to draw (`conv1`, `pool1`, `features.3`, ...); the first
    /// one when left out
    #[arg(long)]
    pub layer: Option<String>,
    /// Side of the gray occluding square, in input pixels
    #[arg(long, default_value_t = 8)]
    pub patch: usize,
    /// Step between positions of the occluding square
    #[arg(long, default_value_t = 4)]
    pub stride: usize,
    /// The class whose probability the occlusion map shows (default: the predicted one)
    #[arg(long)]
    pub class: Option<usize>,
    /// Occluded images per forward pass
    #[arg(long, default_value_t = DEFAULT_OCCLUSION_BATCH)]
    pub batch: usize,
    /// For a checkpoint of `--dataset reverse|sort|addition|copy` (seq2seq-attn, transformer):
    /// the source to decode (digits, `+` for addition); draws its attention map
    #[arg(long)]
    pub source: Option<String>,
    /// Directory for the PNGs
    #[arg(long, default_value = "visualize")]
    pub out: PathBuf,
    /// Where the checkpoint's data set lives, when it is not in the default place (its class
    /// names and normalisation are read from it)
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// `gpu` (the best adapter), `gpu:NAME` (an adapter whose name contains NAME) or `cpu`
    #[arg(long, default_value = "gpu")]
    pub device: String,
}

pub fn run(args: VisualizeArgs) -> anyhow::Result<()> {
    let device = open_device(&args.device)?;
    if let Some(source) = &args.source {
        std::fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
        let path = args.out.join("attention.png");
        let decoded = attention_map_for_checkpoint(&args.checkpoint, source, &path, &device)?;
        println!("{}: attention while decoding {source:?} -> {decoded:?}", path.display());
        return Ok(());
    }
    let restored = restore(&args.checkpoint, &device, args.data_dir.as_deref())?;
    let (model, model_name) = (restored.model.as_ref(), restored.checkpoint.meta.model.as_str());
    // check the layer and read the image before writing anything
    if let Some(layer) = &args.layer {
        visualize::check_layer(model_name, model, layer)?;
    }
    let like = &restored.like;
    let image = args.image.as_ref().map(|path| load_like(path, like, restored.pad)).transpose()?;
    std::fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;

    let trained = format!("{model_name} ({})", restored.checkpoint.meta.dataset);
    let filters = args.out.join("filters.png");
    let (weight, shape) = visualize::write_filters(model, &Picture { path: &filters, title: &trained })?;
    println!("{}: {weight} {shape:?}", filters.display());

    let Some(image) = image else {
        if args.layer.is_some() {
            println!("--layer needs --image: feature maps are drawn for an input image");
        }
        return Ok(());
    };
    let input = [like.channels, like.height, like.width];
    let image_name = args.image.as_ref().and_then(|p| p.file_name()).map_or("image".into(), |n| n.to_string_lossy());
    let on_image = format!("{trained} · {image_name}");
    let layer = args.layer.clone().or_else(|| visualize::feature_layers(model_name, model).into_iter().next());
    match layer {
        Some(layer) => {
            let path = args.out.join(format!("feature_maps_{layer}.png"));
            let picture = Picture { path: &path, title: &on_image };
            let maps = visualize::write_feature_maps(model_name, model, &device, &image, input, &layer, &picture)?;
            println!("{}: {layer} {maps:?}", path.display());
        }
        None => println!("no feature maps: {model_name} is not one the visualizer can cut into layers"),
    }

    let opts = OcclusionOptions { patch: args.patch, stride: args.stride, class: args.class, batch: args.batch };
    let map = visualize::occlusion(model, &device, &image, input, &opts)?;
    let class_name = like.classes.get(map.class).map_or("?", String::as_str);
    let chosen = if args.class.is_some() { "class" } else { "predicted" };
    let title = format!("{on_image} · {chosen} {} ({class_name})", map.class);
    let heat = args.out.join("occlusion.png");
    map.write_heatmap(&Picture { path: &heat, title: &title })?;
    let overlay = args.out.join("occlusion_overlay.png");
    map.write_overlay(&image, like.channels, &like.normalization, &Picture { path: &overlay, title: &title })?;
    let lowest = map.window_probabilities.iter().copied().fold(f32::INFINITY, f32::min);
    println!(
        "{} and {}: class {} ({class_name}), probability {:.3} unoccluded, {:.3} at the most sensitive of {}x{} \
         positions (dark = the class depends on it)",
        heat.display(),
        overlay.display(),
        map.class,
        map.base_probability,
        lowest,
        map.rows,
        map.cols
    );
    Ok(())
}
