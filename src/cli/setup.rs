//! What `train`, `eval` and `predict` share: opening the device, fitting a data set to a
//! model's input, and rebuilding a model from a checkpoint.

use anyhow::{bail, Context};
use ferrograd_device::Device;
use ferrograd_graph::nn::Module;
use ferrograd_models::registry;
use ferrograd_train::checkpoint::{self, Checkpoint};
use ferrograd_train::data::select::ImageDatasetKind;
use ferrograd_train::data::{ImageDataset, LoadOptions, Split};
use ferrograd_train::trainer::{OPTIMIZER_PREFIX, TASK_PREFIX};
use std::path::Path;

/// `gpu` (best adapter), `gpu:NAME`, or `cpu` (the f64 reference: slow, for checking).
pub fn open_device(spec: &str) -> anyhow::Result<Device> {
    Device::parse(spec).with_context(|| format!("opening device {spec:?}"))
}

/// The border that brings a data set's images to the model's input size (LeNet-5 takes
/// MNIST's 28x28 digits padded by 2 to 32x32, as in the 1998 paper).
pub fn padding_for(model: &str, kind: ImageDatasetKind, data_dir: Option<&Path>) -> anyhow::Result<usize> {
    let info =
        registry::info(model).with_context(|| format!("unknown model {model:?}; `ferrograd models` lists them"))?;
    let probe = kind.load(Split::Test, data_dir, &LoadOptions { pad: 0, limit: Some(1) })?;
    let (want, have) = (info.input_shape[1], probe.height);
    if want < have || (want - have) % 2 != 0 || info.input_shape[0] != probe.channels {
        // Models with adaptive pooling accept other sizes; let the forward pass judge.
        return Ok(0);
    }
    Ok((want - have) / 2)
}

/// A split of `kind`, fitted to `model`'s input.
pub fn load_split(
    model: &str,
    kind: ImageDatasetKind,
    split: Split,
    data_dir: Option<&Path>,
    limit: Option<usize>,
) -> anyhow::Result<ImageDataset> {
    let pad = padding_for(model, kind, data_dir)?;
    Ok(kind.load(split, data_dir, &LoadOptions { pad, limit })?)
}

/// A model rebuilt from a checkpoint: its architecture from the checkpoint's metadata, its
/// class count and channels from the data set it was trained on, its weights loaded strictly.
pub struct Restored {
    pub model: Box<dyn Module>,
    pub checkpoint: Checkpoint,
    pub kind: ImageDatasetKind,
    /// one test image's worth of the data set, for class names, normalisation and shape
    pub like: ImageDataset,
    pub pad: usize,
}

pub fn restore(path: &Path, device: &Device, data_dir: Option<&Path>) -> anyhow::Result<Restored> {
    let mut checkpoint = checkpoint::load(path, device)?;
    let name = checkpoint.meta.model.clone();
    if name.is_empty() {
        bail!("{}: not a ferrograd checkpoint (its metadata names no model)", path.display());
    }
    if let Some(task) = checkpoint.meta.extra.get("task") {
        bail!(
            "{}: a checkpoint of {name} on the {task} task, not of an image model; \
             `ferrograd visualize --checkpoint {0} --source 12345` draws its attention",
            path.display()
        );
    }
    if checkpoint.meta.extra.contains_key("vocab") {
        bail!(
            "{}: a checkpoint of the character language model {name}, not of an image model; \
             `ferrograd sample --checkpoint {0}` generates text from it",
            path.display()
        );
    }
    let kind = ImageDatasetKind::parse(&checkpoint.meta.dataset)
        .with_context(|| format!("{}: the data set it was trained on", path.display()))?;
    let pad = padding_for(&name, kind, data_dir)?;
    let like = kind.load(Split::Test, data_dir, &LoadOptions { pad, limit: Some(1) })?;
    let model = registry::build(&name, like.num_classes(), like.channels, device, 0)?;
    drop(checkpoint.take_prefixed(OPTIMIZER_PREFIX));
    drop(checkpoint.take_prefixed(TASK_PREFIX));
    if checkpoint.arrays.is_empty() {
        bail!("{}: the checkpoint holds no model weights", path.display());
    }
    checkpoint::load_model(&checkpoint, &name, model.as_ref())?;
    model.eval();
    Ok(Restored { model, checkpoint, kind, like, pad })
}
