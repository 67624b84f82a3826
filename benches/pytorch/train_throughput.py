#!/usr/bin/env python3
"""PyTorch training throughput (images/s at steady state) for the models ferrograd trains, to
set beside `ferrograd bench train --model M`.

Workloads (names as in ferrograd's model registry, crates/models/src/registry.rs):
  lenet5          LeNet-5 on 1x32x32 (MNIST padded), max pooling + ReLU, batch 256
  resnet20        CIFAR ResNet-20 (He et al. 2015, section 4.2, option A shortcuts), batch 256
  resnet18_cifar  ResNet-18 with a 3x3 stem and no max pool, 3x32x32, batch 256
  vgg16_bn_cifar  VGG-16-BN features + Linear(512, 10), 3x32x32, batch 128
Each in two modes:
  f32   float32 eager, TF32 off (torch.backends.{cuda.matmul,cudnn}.allow_tf32 = False)
  amp   torch.autocast(float16) with a GradScaler, f32 master weights
A step is forward, cross-entropy, backward and SGD (momentum 0.9) on random inputs and labels
already on the device (no data loading). After --warmup steps, --steps steps are timed with
CUDA synchronisation around them; the median of --reps such runs is reported.

Output: one line per workload, `workload images_per_s`, e.g. `resnet20.b256.f32 12345.6`.

`resnet18` and `vgg16_bn` name the 32x32 variants, as `ferrograd bench train` does. --batch
overrides every workload's batch. --compare FILE reads `ferrograd bench train` output and
prints ferrograd / torch images/s for the rows both have.

usage: python3 benches/pytorch/train_throughput.py [--models lenet5,resnet20,...]
                                                   [--modes f32,amp] [--steps N] [--reps N]
                                                   [--warmup N] [--device cuda|cpu]
                                                   [--batch B] [--compare FILE]
"""
import argparse
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class LeNet5(nn.Module):
    def __init__(self, classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, classes)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = torch.flatten(x, 1)
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


class BasicBlock(nn.Module):
    """3x3-3x3 residual block. Option A (CIFAR ResNets): the shortcut subsamples and pads the
    channels with zeros; option B (ResNet-18): a 1x1 convolution and BatchNorm."""

    def __init__(self, cin, cout, stride, option_a):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Identity()
        if stride != 1 or cin != cout:
            if option_a:
                pad = (cout - cin) // 2
                self.shortcut = LambdaLayer(lambda x: F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, pad, pad)))
            else:
                self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + self.shortcut(x))


class LambdaLayer(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


class ResNet(nn.Module):
    def __init__(self, widths, blocks, option_a, classes=10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, widths[0], 3, 1, 1, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU())
        layers, cin = [], widths[0]
        for i, (w, n) in enumerate(zip(widths, blocks)):
            for j in range(n):
                stride = 2 if i > 0 and j == 0 else 1
                layers.append(BasicBlock(cin, w, stride, option_a))
                cin = w
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(cin, classes)

    def forward(self, x):
        x = self.layers(self.stem(x))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def resnet20():
    return ResNet([16, 32, 64], [3, 3, 3], option_a=True)


def resnet18_cifar():
    return ResNet([64, 128, 256, 512], [2, 2, 2, 2], option_a=False)


def vgg16_bn_cifar(classes=10):
    cfg = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]
    layers, cin = [], 3
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(2))
        else:
            layers += [nn.Conv2d(cin, v, 3, padding=1), nn.BatchNorm2d(v), nn.ReLU(inplace=True)]
            cin = v
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(512, classes))


# name -> (constructor, input shape, batch)
WORKLOADS = {
    "lenet5": (LeNet5, (1, 32, 32), 256),
    "resnet20": (resnet20, (3, 32, 32), 256),
    "resnet18_cifar": (resnet18_cifar, (3, 32, 32), 256),
    "vgg16_bn_cifar": (vgg16_bn_cifar, (3, 32, 32), 128),
}
ALIASES = {"resnet18": "resnet18_cifar", "vgg16_bn": "vgg16_bn_cifar"}


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def images_per_s(name, mode, device, steps, reps, warmup, batch=None):
    make, shape, default_batch = WORKLOADS[ALIASES.get(name, name)]
    batch = batch or default_batch
    model = make().to(device).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    amp = mode == "amp"
    scaler = torch.amp.GradScaler(device.type, enabled=amp)
    x = torch.randn(batch, *shape, device=device)
    y = torch.randint(0, 10, (batch,), device=device)

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.float16, enabled=amp):
            loss = F.cross_entropy(model(x), y)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()

    for _ in range(warmup):
        step()
    rates = []
    for _ in range(reps):
        sync(device)
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        sync(device)
        rates.append(steps * batch / (time.perf_counter() - t0))
    return f"{name}.b{batch}.{mode}", statistics.median(rates)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default=",".join(WORKLOADS))
    ap.add_argument("--modes", default="f32,amp")
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--batch", type=int, default=None)
    ap.add_argument("--compare", default=None, help="ferrograd bench train output to set beside")
    args = ap.parse_args()
    ours = {}
    if args.compare:
        for line in open(args.compare):
            parts = line.split()
            if len(parts) == 3 and parts[1] == "images_per_s":
                ours[parts[0]] = float(parts[2])
    device = torch.device(args.device)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.benchmark = True  # steady state: let cuDNN pick its kernels once
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"# torch {torch.__version__} on {name}; eager, TF32 off; images/s, median of {args.reps} x {args.steps} steps")
    for model in args.models.split(","):
        if ALIASES.get(model, model) not in WORKLOADS:
            raise SystemExit(f"unknown model {model!r}; known: {', '.join(WORKLOADS)}")
        for mode in args.modes.split(","):
            if mode not in ("f32", "amp"):
                raise SystemExit(f"unknown mode {mode!r}; known: f32, amp")
            if mode == "amp" and device.type != "cuda":
                continue  # fp16 autocast is a GPU mode
            workload, rate = images_per_s(model, mode, device, args.steps, args.reps, args.warmup, args.batch)
            line = f"{workload} images_per_s {rate:.1f} ms_per_step {1e3 * int(workload.split('.b')[1].split('.')[0]) / rate:.2f}"
            if workload in ours:
                line += f" ferrograd {ours[workload]:.1f} ratio {ours[workload] / rate:.3f}"
            print(line, flush=True)


if __name__ == "__main__":
    main()
