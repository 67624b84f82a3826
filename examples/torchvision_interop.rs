//! Weights both ways between ferrograd and torchvision, checked by running both models on one
//! input. Driven by `benches/pytorch/torchvision_roundtrip.py`, which runs torchvision's side.
//!
//! ```text
//! torchvision_interop export MODEL DIR [SIZE]
//!     builds MODEL (1000 classes, seed 0) and writes DIR/checkpoint.safetensors (the format
//!     `ferrograd train` writes) and DIR/probe.safetensors: `input` [2, 3, SIZE, SIZE] and
//!     `logits`, the model's eval-mode output on it.
//! torchvision_interop import MODEL DIR
//!     loads DIR/torch_state.safetensors (a torchvision state_dict) with strict names and
//!     shapes, runs it in eval mode on `input` of DIR/torch_probe.safetensors, writes
//!     DIR/torch_logits.safetensors (`logits`) and saves the loaded model again as
//!     DIR/resaved.safetensors (the checkpoint format), for torchvision to load back.
//! ```
//! Runs on the best adapter (FERROGRAD_ADAPTER picks another), or on the f64 CPU reference
//! device when FERROGRAD_INTEROP_DEVICE=cpu (AlexNet's and VGG's classifier weights exceed
//! lavapipe's 128 MiB buffer limit).

use ferrograd::models::registry;
use ferrograd::prelude::*;
use ferrograd::train::checkpoint::{self, CheckpointMeta};
use std::path::Path;

const CLASSES: usize = 1000;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["export", model, dir, rest @ ..] => {
            let size = rest.first().map(|s| s.parse()).transpose()?.unwrap_or(224);
            export(model, Path::new(dir), size, &device()?)
        }
        ["import", model, dir] => import(model, Path::new(dir), &device()?),
        _ => anyhow::bail!("usage: torchvision_interop export MODEL DIR [SIZE] | import MODEL DIR"),
    }
}

fn device() -> anyhow::Result<Device> {
    match std::env::var("FERROGRAD_INTEROP_DEVICE").as_deref() {
        Ok("cpu") => Ok(Device::Cpu),
        _ => Ok(Device::gpu()?),
    }
}

fn export(name: &str, dir: &Path, size: usize, device: &Device) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let model = registry::build(name, CLASSES, 3, device, 0)?;
    save_state(model.as_ref(), name, &dir.join("checkpoint.safetensors"))?;

    let input = Tensor::randn(device, &[2, 3, size, size], 0.0, 1.0)?;
    let logits = eval_forward(model.as_ref(), &input)?;
    let probe = [("input".to_string(), input.data()), ("logits".to_string(), logits)];
    checkpoint::save(&dir.join("probe.safetensors"), &probe, &CheckpointMeta::default())?;
    println!("{name}: {} state entries, logits {:?}", model.state_dict().len(), probe[1].1.shape());
    Ok(())
}

fn import(name: &str, dir: &Path, device: &Device) -> anyhow::Result<()> {
    let model = registry::build(name, CLASSES, 3, device, 0)?;
    let state = checkpoint::load(&dir.join("torch_state.safetensors"), device)?;
    model.load_state_dict(&state.arrays, true)?;
    let probe = checkpoint::load(&dir.join("torch_probe.safetensors"), device)?;
    let input = probe.get("input").ok_or_else(|| anyhow::anyhow!("torch_probe.safetensors has no `input`"))?;
    let logits = eval_forward(model.as_ref(), &Tensor::new(input.clone()))?;
    println!("{name}: loaded {} torchvision entries, logits {:?}", state.arrays.len(), logits.shape());
    checkpoint::save(&dir.join("torch_logits.safetensors"), &[("logits".into(), logits)], &CheckpointMeta::default())?;
    save_state(model.as_ref(), name, &dir.join("resaved.safetensors"))
}

/// The model's state as a checkpoint like the ones `ferrograd train` writes.
fn save_state(model: &dyn Module, name: &str, path: &Path) -> anyhow::Result<()> {
    let state: Vec<(String, Array)> = model.state_dict().into_iter().map(|(n, t)| (n, t.data())).collect();
    let meta = CheckpointMeta { model: name.into(), dataset: "none".into(), ..Default::default() };
    Ok(checkpoint::save(path, &state, &meta)?)
}

fn eval_forward(model: &dyn Module, input: &Tensor) -> anyhow::Result<Array> {
    model.eval();
    let _no_tape = no_grad();
    Ok(model.forward(input)?.data())
}
