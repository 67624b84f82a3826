#!/usr/bin/env python3
"""LeNet-5 as `ferrograd train` builds it, trained by PyTorch with the same recipe, to tell a
recipe's accuracy apart from the framework's.

The model is ferrograd's `lenet5` (conv5 6, ReLU, max-pool 2, conv5 16, ReLU, max-pool 2,
fc 400-120-84-10, PyTorch's default init) on MNIST-format IDX files, normalised with
the data set's mean and std and padded from 28x28 to 32x32 as ferrograd's loader does.
Adam with a one-cycle (PyTorch's defaults), cosine or constant schedule; one line per seed:
test accuracy and seconds.

usage: python3 benches/pytorch/lenet_recipe.py [--data-dir data/mnist] [--epochs 1]
           [--lr 5e-3] [--schedule onecycle|cosine|constant] [--batch-size 64] [--seeds 0,1,2]
Fashion-MNIST: --data-dir /usr/share/datasets/fashion-mnist (normalisation 0.2860, 0.3530).
needs: torch, numpy
"""
import argparse
import gzip
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

# mean and std per data set, as crates/train/src/data (Normalization::mnist / fashion_mnist)
NORMALISATION = {"mnist": (0.1307, 0.3081), "fashion-mnist": (0.2860, 0.3530)}


def read_idx(path):
    raw = path.read_bytes()
    raw = gzip.decompress(raw) if path.suffix == ".gz" else raw
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load(data_dir, split, mean, std):
    def find(stem):
        return next(p for p in (data_dir / f"{stem}.gz", data_dir / stem) if p.exists())

    x = read_idx(find(f"{split}-images-idx3-ubyte")).astype(np.float32) / 255.0
    y = read_idx(find(f"{split}-labels-idx1-ubyte")).astype(np.int64)
    x = np.pad((x - mean) / std, ((0, 0), (2, 2), (2, 2)), constant_values=-mean / std)
    return torch.tensor(x)[:, None], torch.tensor(y)


class LeNet5(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(1, 6, 5), nn.Conv2d(6, 16, 5)
        self.fc1, self.fc2, self.fc3 = nn.Linear(400, 120), nn.Linear(120, 84), nn.Linear(84, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x.flatten(1))))))


def train(args, seed, train_set, test_set):
    torch.manual_seed(seed)
    model = LeNet5()
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    n = len(train_set[1])
    steps = args.epochs * math.ceil(n / args.batch_size)
    schedule = {
        "onecycle": lambda: torch.optim.lr_scheduler.OneCycleLR(opt, args.lr, total_steps=steps),
        "cosine": lambda: torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps),
        "constant": lambda: torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0),
    }[args.schedule]()
    order = torch.Generator().manual_seed(seed)
    for _ in range(args.epochs):
        perm = torch.randperm(n, generator=order)
        for i in range(0, n, args.batch_size):
            batch = perm[i : i + args.batch_size]
            loss = F.cross_entropy(model(train_set[0][batch]), train_set[1][batch])
            opt.zero_grad()
            loss.backward()
            opt.step()
            schedule.step()
    with torch.no_grad():
        return (model(test_set[0]).argmax(1) == test_set[1]).float().mean().item()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data-dir", type=Path, default=Path("data/mnist"))
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--lr", type=float, default=5e-3)
    p.add_argument("--schedule", choices=["onecycle", "cosine", "constant"], default="onecycle")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--seeds", default="0,1,2")
    args = p.parse_args()
    mean, std = NORMALISATION["fashion-mnist" if "fashion" in str(args.data_dir) else "mnist"]
    train_set, test_set = (load(args.data_dir, s, mean, std) for s in ("train", "t10k"))
    print(f"# torch {torch.__version__}, {args.data_dir}, {args.epochs} epochs, {args.schedule} {args.lr}")
    for seed in map(int, args.seeds.split(",")):
        start = time.time()
        accuracy = train(args, seed, train_set, test_set)
        print(f"seed {seed}: test accuracy {accuracy * 100:.2f}%  {time.time() - start:.0f} s")


if __name__ == "__main__":
    main()
