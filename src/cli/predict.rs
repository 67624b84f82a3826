//! `ferrograd predict --checkpoint PATH IMAGE`: the five most likely classes of one image.

use super::setup::{open_device, restore};
use clap::Args;
use ferrograd_graph::{no_grad, Tensor};
use ferrograd_train::data::image_folder::load_like;
use std::path::PathBuf;

#[derive(Args, Clone, Debug)]
pub struct PredictArgs {
    /// A checkpoint written by `ferrograd train`
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// A PNG or JPEG image; resized to the data set's image size (MNIST-style digits are
    /// white on black)
    pub image: PathBuf,
    /// Where the checkpoint's data set lives, when it is not in the default place (class names,
    /// normalisation and, for eval, the test split come from it)
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// gpu (best adapter), gpu:NAME, or cpu (the f64 reference device: slow)
    #[arg(long, default_value = "gpu")]
    pub device: String,
    /// How many classes to print
    #[arg(long, default_value_t = 5)]
    pub top: usize,
}

pub fn run(args: PredictArgs) -> anyhow::Result<()> {
    let device = open_device(&args.device)?;
    let restored = restore(&args.checkpoint, &device, args.data_dir.as_deref())?;
    let like = &restored.like;
    let pixels = load_like(&args.image, like, restored.pad)?;
    let _no_grad = no_grad();
    let x = Tensor::from_f32(&device, &pixels, &[1, like.channels, like.height, like.width])?;
    let probs = restored.model.forward(&x)?.softmax(-1)?.to_vec()?;
    let mut ranked: Vec<(usize, f32)> = probs.into_iter().enumerate().collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
    println!("{} ({}):", args.image.display(), restored.checkpoint.meta.model);
    for (class, p) in ranked.into_iter().take(args.top) {
        let name = like.classes.get(class).map_or("?", String::as_str);
        println!("  {:>6.2}%  {name}", p * 100.0);
    }
    Ok(())
}
