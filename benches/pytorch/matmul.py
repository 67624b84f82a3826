#!/usr/bin/env python3
"""PyTorch (cuBLAS) numbers for the workloads of `ferrograd bench matmul`, in the same table.

Problems: square C = A @ B at the given sizes (default 512 1024 2048 4096), then the same
convolution-shaped im2col GEMMs as src/cli/bench.rs (M = output channels, K = input channels x
kernel area, N = output pixels x batch). Columns:
  f32_ms, f32_GFLOPs     fp32 in/out with TF32 disabled (torch.backends.cuda.matmul.allow_tf32 = False)
  mixed_ms, mixed_GFLOPs fp16 in/out (cuBLAS accumulates in fp32); inputs already fp16
Timing: CUDA events around a batch of back-to-back matmuls (about 20 ms), median of --reps
batches after a warm-up. Then one device-to-device copy bandwidth line (tensor.copy_,
bytes read + written).

With --compare FILE (the saved output of `ferrograd bench matmul`), also prints the ratio
ferrograd / torch of GFLOP/s per problem and of the copy bandwidth.

usage: python3 benches/pytorch/matmul.py [--sizes 512,1024,...] [--reps N] [--batch N]
                                         [--copy-mib N] [--compare ferrograd.txt]
"""
import argparse
import statistics

import torch

COLUMNS = ["problem", "M", "N", "K", "f32_ms", "f32_GFLOPs", "mixed_ms", "mixed_GFLOPs"]


def conv_gemms(batch: int):
    """Keep in step with conv_gemms in src/cli/bench.rs: (label, M, N, K)."""
    def conv(label, cout, cin, kernel, out_hw):
        return (f"{label}.b{batch}", cout, out_hw * out_hw * batch, cin * kernel * kernel)

    return [
        conv("resnet18.conv1", 64, 3, 7, 112),
        conv("resnet18.layer1", 64, 64, 3, 56),
        conv("resnet18.layer4", 512, 512, 3, 7),
        conv("vgg16.conv4_2", 512, 512, 3, 28),
    ]


def median_ms(fn, reps: int) -> float:
    """Median milliseconds per call, from CUDA events around batches of calls."""
    fn()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    fn()
    end.record()
    end.synchronize()
    calls = max(1, min(100, int(20.0 / max(start.elapsed_time(end), 1e-3))))
    times = []
    for _ in range(reps):
        start.record()
        for _ in range(calls):
            fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / calls)
    return statistics.median(times)


def rand_nonzero(rows: int, cols: int, gen: torch.Generator) -> torch.Tensor:
    mag = torch.rand(rows, cols, device="cuda", generator=gen) * 0.9 + 0.1
    sign = torch.randint(0, 2, (rows, cols), device="cuda", generator=gen) * 2 - 1
    return (mag * sign).float()


def row(cells) -> str:
    return "{:<24} {:>6} {:>8} {:>6} {:>10} {:>11} {:>10} {:>11}  {}".format(*cells)


def parse_table(text: str):
    """problem -> (f32 GFLOP/s, mixed GFLOP/s), and the copy GB/s, from either tool's output."""
    rates, copy = {}, None
    for line in text.splitlines():
        parts = line.split()
        if line.startswith("copy ") and "GB/s" in line:
            copy = float(parts[parts.index("GB/s") - 1])
        elif len(parts) >= 8 and parts[0] != "problem" and parts[1].isdigit():
            num = lambda s: float(s) if s != "-" else None
            rates[parts[0]] = (num(parts[5]), num(parts[7]))
    return rates, copy


def compare(ours_path: str, torch_text: str) -> None:
    with open(ours_path) as f:
        ours, our_copy = parse_table(f.read())
    theirs, their_copy = parse_table(torch_text)
    ratio = lambda a, b: f"{a / b:.2f}" if a and b else "-"
    print(f"\nratio ferrograd / torch (GFLOP/s), from {ours_path}")
    print(f"{'problem':<24} {'f32':>6} {'mixed':>6}")
    for name, (tf, tm) in theirs.items():
        if name in ours:
            of, om = ours[name]
            print(f"{name:<24} {ratio(of, tf):>6} {ratio(om, tm):>6}")
    print(f"{'copy GB/s':<24} {ratio(our_copy, their_copy):>6}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="512,1024,2048,4096")
    p.add_argument("--reps", type=int, default=10)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--copy-mib", type=int, default=256)
    p.add_argument("--compare", metavar="FILE")
    args = p.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("CUDA is not available")
    torch.backends.cuda.matmul.allow_tf32 = False
    props = torch.cuda.get_device_properties(0)
    lines = [
        f"adapter: {props.name} (torch {torch.__version__}, CUDA {torch.version.cuda})",
        "timing: CUDA events around each batch of calls; median of "
        f"{args.reps} runs after a warm-up; f32 with TF32 off, mixed = fp16 inputs",
        "",
        row(COLUMNS + ["kernels"]),
    ]
    print("\n".join(lines))
    sizes = [int(s) for s in args.sizes.split(",") if s]
    problems = [(f"square{s}", s, s, s) for s in sizes] + conv_gemms(args.batch)
    gen = torch.Generator(device="cuda")
    gen.manual_seed(1234)
    for label, m, n, k in problems:
        a, b = rand_nonzero(m, k, gen), rand_nonzero(k, n, gen)
        cells = [label, m, n, k]
        for dtype in (torch.float32, torch.float16):
            a_, b_ = a.to(dtype), b.to(dtype)
            out = torch.empty(m, n, device="cuda", dtype=dtype)
            ms = median_ms(lambda: torch.matmul(a_, b_, out=out), args.reps)
            cells += [f"{ms:.3f}", f"{2.0 * m * n * k / (ms * 1e-3) / 1e9:.1f}"]
        line = row(cells + ["cublas"])
        lines.append(line)
        print(line)
        del a, b
        torch.cuda.empty_cache()
    nbytes = args.copy_mib << 20
    src = torch.rand(nbytes // 4, device="cuda")
    dst = torch.empty_like(src)
    ms = median_ms(lambda: dst.copy_(src), args.reps)
    line = (f"\ncopy {args.copy_mib} MiB (tensor.copy_): median {ms:.3f} ms -> "
            f"{2 * nbytes / (ms * 1e-3) / 1e9:.1f} GB/s (read + write)")
    lines.append(line)
    print(line)
    if args.compare:
        compare(args.compare, "\n".join(lines))


if __name__ == "__main__":
    main()
