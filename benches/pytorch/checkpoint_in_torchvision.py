#!/usr/bin/env python3
"""A checkpoint written by `ferrograd train` (f32 or `--precision mixed`), loaded into torchvision.

Checks that every model entry of the checkpoint is f32 (a mixed-precision run keeps f32
master weights and saves only those), loads the entries into torchvision's model with
load_state_dict(strict=True), and evaluates that model on an image-folder test split
(`DIR/test/<class>/*.jpg|png`, classes in sorted order, CIFAR-10's normalisation as
ferrograd's `cifar10` data set uses), printing test loss and accuracy in the format of
`ferrograd eval`, which can be run on the same checkpoint and folder for the comparison.
Images smaller than the model's input (`--size`, 224 for torchvision's models) get a black
border on every side, as ferrograd's loader gives CIFAR-10 images for these models:

  ferrograd eval --checkpoint RUN/checkpoint.safetensors --data-dir DIR --device cpu

usage: python3 benches/pytorch/checkpoint_in_torchvision.py CHECKPOINT --model resnet18 --data-dir DIR [--size 224]
needs: torch, torchvision, safetensors, pillow
"""
import argparse
import sys
from pathlib import Path

import numpy as np
import torch
import torchvision
from PIL import Image
from safetensors.torch import load_file

CIFAR_MEAN = [0.4914, 0.4822, 0.4465]
CIFAR_STD = [0.2470, 0.2435, 0.2616]


def test_split(root, size):
    """(images [N, 3, size, size] bordered and normalised as ferrograd does, labels [N]) of root/test."""
    classes = sorted(p.name for p in (root / "test").iterdir() if p.is_dir())
    images, labels = [], []
    for label, name in enumerate(classes):
        for path in sorted((root / "test" / name).iterdir()):
            if path.suffix.lower() in (".jpg", ".jpeg", ".png"):
                pixels = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255.0
                images.append(torch.from_numpy(pixels).permute(2, 0, 1))
                labels.append(label)
    x = torch.stack(images)
    pad = (size - x.shape[-1]) // 2
    if pad > 0:
        x = torch.nn.functional.pad(x, (pad, pad, pad, pad))  # black: 0 before normalising
    x = (x - torch.tensor(CIFAR_MEAN).view(1, 3, 1, 1)) / torch.tensor(CIFAR_STD).view(1, 3, 1, 1)
    return x, torch.tensor(labels)


@torch.no_grad()
def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("checkpoint", type=Path)
    p.add_argument("--model", required=True, help="torchvision model name (resnet18, vgg11_bn, ...)")
    p.add_argument("--data-dir", type=Path, required=True)
    p.add_argument("--size", type=int, default=224, help="the model's input side")
    args = p.parse_args()

    entries = load_file(str(args.checkpoint))
    state = {k: v for k, v in entries.items() if not k.startswith("optimizer.")}
    dtypes = sorted({str(v.dtype) for k, v in state.items() if v.is_floating_point()})
    print(f"{args.checkpoint}: {len(state)} model entries ({len(entries) - len(state)} optimizer), float dtypes {dtypes}")
    if dtypes != ["torch.float32"]:
        sys.exit(f"model entries are {dtypes}, not only f32")

    classes = next(v.shape[0] for k, v in state.items() if k.endswith(("fc.weight", "classifier.6.weight")))
    model = getattr(torchvision.models, args.model)(weights=None, num_classes=classes)
    model.load_state_dict(state, strict=True)
    model.eval()
    print(f"loaded into torchvision.models.{args.model}(num_classes={classes}) with strict=True")

    x, y = test_split(args.data_dir, args.size)
    logits = torch.cat([model(x[i : i + 256]) for i in range(0, len(x), 256)])
    loss = torch.nn.functional.cross_entropy(logits, y).item()
    accuracy = (logits.argmax(1) == y).float().mean().item()
    print(f"torchvision test: loss {loss:.4f}, accuracy {100 * accuracy:.2f}% ({len(y)} images)")


if __name__ == "__main__":
    main()
