//! `ferrograd sample`: text from a character-level language model checkpoint (written by the
//! char-LM training task), continuing a prompt at a temperature, reproducible by seed.

use super::setup::open_device;
use clap::Args;
use ferrograd_train::seq::char_lm::sample;
use std::path::PathBuf;

#[derive(Args)]
pub struct SampleArgs {
    /// checkpoint.safetensors of a character LM run
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// Text to continue (every character must be in the model's vocabulary)
    #[arg(long, default_value = "")]
    pub prompt: String,
    /// Characters to generate
    #[arg(long, default_value_t = 500)]
    pub length: usize,
    /// Softmax temperature: lower is more conservative, 0 always takes the likeliest character
    #[arg(long, default_value_t = 0.8)]
    pub temperature: f64,
    /// Seed of the sampling (the same seed gives the same text)
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// gpu (best adapter), gpu:NAME, or cpu (the f64 reference device: slow)
    #[arg(long, default_value = "gpu")]
    pub device: String,
}

pub fn run(args: SampleArgs) -> anyhow::Result<()> {
    let device = open_device(&args.device)?;
    let text = sample(&args.checkpoint, &args.prompt, args.length, args.temperature, args.seed, &device)?;
    println!("{text}");
    Ok(())
}
