//! `ferrograd eval --checkpoint PATH`: test-set loss and accuracy of a saved model.

use super::setup::{load_split, open_device, restore};
use clap::Args;
use ferrograd_train::classifier::evaluate;
use ferrograd_train::data::Split;
use ferrograd_train::loader::{DataLoader, LoaderConfig};
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Args, Clone, Debug)]
pub struct EvalArgs {
    /// A checkpoint written by `ferrograd train`
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// Where the checkpoint's data set lives, when it is not in the default place (class names,
    /// normalisation and, for eval, the test split come from it)
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// gpu (best adapter), gpu:NAME, or cpu (the f64 reference device: slow)
    #[arg(long, default_value = "gpu")]
    pub device: String,
    /// Test images per forward pass
    #[arg(long, default_value_t = 256)]
    pub batch_size: usize,
}

pub fn run(args: EvalArgs) -> anyhow::Result<()> {
    let device = open_device(&args.device)?;
    let restored = restore(&args.checkpoint, &device, args.data_dir.as_deref())?;
    let meta = &restored.checkpoint.meta;
    let test = load_split(&meta.model, restored.kind, Split::Test, args.data_dir.as_deref(), None)?;
    let n = test.len();
    let loader = DataLoader::new(Arc::new(test), LoaderConfig::eval(args.batch_size))?;
    let (loss, accuracy) = evaluate(restored.model.as_ref(), &loader, &device)?;
    println!(
        "{} on {} test set ({n} images), after epoch {}: loss {loss:.4}, accuracy {:.2}%",
        meta.model,
        restored.kind.name(),
        meta.epoch,
        accuracy * 100.0
    );
    Ok(())
}
