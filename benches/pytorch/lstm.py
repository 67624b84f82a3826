#!/usr/bin/env python3
"""Forward and forward+backward time of torch.nn.LSTM (cuDNN on CUDA), the workload of
`ferrograd bench lstm`: batch-first input [batch, steps, hidden] drawn from N(0, 1), input size =
hidden size, loss = sum of the outputs, median wall time of --reps runs after a warm-up, the
device drained before and after each run. f32 with TF32 off, as ferrograd computes.

usage: python3 benches/pytorch/lstm.py [--layers 2] [--hidden 512] [--seq-len 64] [--batch 64]
           [--reps 20] [--device cuda|cpu] [--compare ferrograd_lstm.txt]
On a CPU adapter ferrograd's default is --hidden 128 --seq-len 32: pass the same sizes here.
--compare reads ferrograd's output and prints ferrograd's speed over PyTorch's per column.
needs: torch
"""
import argparse
import statistics
import time

import torch


def median_ms(fn, reps, sync):
    fn()
    times = []
    for _ in range(reps):
        sync()
        t0 = time.perf_counter()
        fn()
        sync()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def read_ferrograd(path, workload):
    for line in open(path):
        cells = line.split()
        if cells and cells[0] == workload:
            return float(cells[1]), float(cells[2])
    raise SystemExit(f"{path}: no line for {workload} (run ferrograd with the same sizes)")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--hidden", type=int, default=512)
    p.add_argument("--seq-len", type=int, default=64)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--reps", type=int, default=20)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--compare", help="ferrograd's `bench lstm` output")
    args = p.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.manual_seed(0)
    dev = torch.device(args.device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    lstm = torch.nn.LSTM(args.hidden, args.hidden, args.layers, batch_first=True).to(dev)
    x = torch.randn(args.batch, args.seq_len, args.hidden, device=dev)

    def forward():
        with torch.no_grad():
            lstm(x)[0].sum()

    def forward_backward():
        lstm.zero_grad(set_to_none=True)
        lstm(x)[0].sum().backward()

    fwd, fwd_bwd = median_ms(forward, args.reps, sync), median_ms(forward_backward, args.reps, sync)
    h, b, t, n = args.hidden, args.batch, args.seq_len, args.layers
    gflop = 2.0 * 2.0 * 4 * h * h * b * t * n / 1e9
    workload = f"lstm.l{n}.h{h}.t{t}.b{b}"
    backend = "cudnn" if dev.type == "cuda" else "cpu"
    print(f"{'workload':<26} {'forward_ms':>12} {'forward_backward_ms':>20} {'forward_GFLOPs':>14}  torch {backend}")
    print(f"{workload:<26} {fwd:>12.3f} {fwd_bwd:>20.3f} {gflop / (fwd * 1e-3):>14.1f}")
    if args.compare:
        f_fwd, f_fwd_bwd = read_ferrograd(args.compare, workload)
        print(f"ferrograd / torch speed: forward {fwd / f_fwd:.3f}, forward+backward {fwd_bwd / f_fwd_bwd:.3f}")


if __name__ == "__main__":
    main()
