#!/usr/bin/env python3
"""Weights both ways between ferrograd and torchvision, for every model both have.

For each model:
  ferrograd -> torchvision: `torchvision_interop export` writes a ferrograd checkpoint and a
      probe (an input and ferrograd's eval-mode logits on it); the checkpoint's model entries
      (everything but `optimizer.*`) load into torchvision's model with
      load_state_dict(strict=True), and torchvision's logits on the same input must equal
      ferrograd's.
  torchvision -> ferrograd -> torchvision: torchvision's model, re-initialised so that
      activations keep their scale through every layer (He-normal weights, random biases and
      BatchNorm affine parameters and running statistics; torchvision's own init for GoogLeNet
      shrinks the signal so far that its logits are the last bias alone), is saved with
      safetensors; `torchvision_interop import` loads it with strict names and shapes, writes
      its logits on torchvision's input, which must equal torchvision's, and saves the model
      again as a ferrograd checkpoint, which loads strictly into a fresh torchvision model
      whose logits must equal ferrograd's.
Logits are compared relative to the largest |logit|, within 1e-4 (f32 through dozens of
layers on both sides).

usage: python3 benches/pytorch/torchvision_roundtrip.py [--bin PATH] [--models a,b] [--size N]
           [--cpu-models a,b]
  --bin   the example binary (default target/release/examples/torchvision_interop; build it
          with `cargo build --release --example torchvision_interop`)
needs: torch, torchvision, safetensors
"""
import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
import torchvision
from safetensors.torch import load_file, save_file

MODELS = ["alexnet", "vgg11", "vgg11_bn", "googlenet", "resnet18", "resnet50"]


def torchvision_model(name):
    if name == "googlenet":
        # aux heads off (ferrograd's `googlenet`); no input transform, as with weights=None
        return torchvision.models.googlenet(weights=None, aux_logits=False, init_weights=True)
    return getattr(torchvision.models, name)(weights=None)


def reinitialise(model, generator):
    def normal(t, std):
        t.copy_(torch.randn(t.shape, generator=generator) * std)

    for m in model.modules():
        if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
            normal(m.weight, (2.0 / m.weight[0].numel()) ** 0.5)
            if m.bias is not None:
                normal(m.bias, 0.1)
        elif isinstance(m, torch.nn.BatchNorm2d):
            m.weight.copy_(torch.rand(m.weight.shape, generator=generator) + 0.5)
            normal(m.bias, 0.1)
            normal(m.running_mean, 0.1)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=generator) + 0.5)
            m.num_batches_tracked.fill_(7)


def relative_error(a, b):
    a, b = a.double(), b.double()
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-30)).item()


def run(cmd, device):
    env = {**os.environ, "FERROGRAD_INTEROP_DEVICE": device}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout.strip()


@torch.no_grad()
def check(name, args, work):
    """Relative logit errors: ferrograd's init in torchvision, torchvision's weights in
    ferrograd, and ferrograd's re-saved checkpoint back in torchvision."""
    # ferrograd -> torchvision
    device = "cpu" if name in args.cpu_models.split(",") else "gpu"
    run([args.bin, "export", name, str(work), str(args.size)], device)
    state = {k: v for k, v in load_file(work / "checkpoint.safetensors").items() if not k.startswith("optimizer.")}
    probe = load_file(work / "probe.safetensors")
    model = torchvision_model(name).eval()
    model.load_state_dict(state, strict=True)
    forward = relative_error(model(probe["input"]), probe["logits"])

    # torchvision -> ferrograd -> torchvision
    generator = torch.Generator().manual_seed(0)
    model = torchvision_model(name).eval()
    reinitialise(model, generator)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(work / "torch_state.safetensors"))
    x = torch.randn(2, 3, args.size, args.size, generator=generator)
    save_file({"input": x}, str(work / "torch_probe.safetensors"))
    run([args.bin, "import", name, str(work)], device)
    ours = load_file(work / "torch_logits.safetensors")["logits"]
    backward = relative_error(ours, model(x))
    model = torchvision_model(name).eval()
    model.load_state_dict(load_file(work / "resaved.safetensors"), strict=True)
    round_trip = relative_error(model(x), ours)
    return len(state), forward, backward, round_trip


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--bin", default="target/release/examples/torchvision_interop")
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--size", type=int, default=224)
    p.add_argument(
        "--cpu-models",
        default="alexnet,vgg11,vgg11_bn",
        help="run these on ferrograd's CPU device (their classifier weights exceed lavapipe's 128 MiB buffers)",
    )
    args = p.parse_args()
    tolerance = 1e-4
    print(f"torch {torch.__version__}, torchvision {torchvision.__version__}; input [2, 3, {args.size}, {args.size}]")
    print(f"{'model':<10} {'entries':>7} {'ferrograd->tv':>14} {'tv->ferrograd':>14} {'->tv again':>11}"
          "  (max |diff| / max |logit|)")
    failed = []
    for name in args.models.split(","):
        with tempfile.TemporaryDirectory() as work:
            entries, *errors = check(name, args, Path(work))
        ok = max(errors) <= tolerance
        failed += [] if ok else [name]
        cells = " ".join(f"{e:>{w}.2e}" for e, w in zip(errors, [14, 14, 11]))
        print(f"{name:<10} {entries:>7} {cells}  {'ok' if ok else 'MISMATCH'}")
    if failed:
        sys.exit(f"logits differ beyond {tolerance:g} for: {', '.join(failed)}")
    print(f"all {len(args.models.split(','))} models load strictly both ways, logits within {tolerance:g}")


if __name__ == "__main__":
    main()
