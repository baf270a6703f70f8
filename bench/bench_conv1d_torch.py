#!/usr/bin/env python3
"""PyTorch's CPU conv1d at bench_conv1d's shapes: forward, input grad, weight grad (median ms, GFLOP/s).

FLOPs = 2·B·Cout·Cin·K·Lout per op, as in bench/bench_conv1d.cpp. Run (2 threads, as the C++ bench):
  /work/torchenv/bin/python bench/bench_conv1d_torch.py [--reps 5] [--threads 2]
"""
import argparse
import statistics
import time

import torch


def median_s(fn, reps):
    fn()  # warm-up
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--only", default="")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    shapes = [("binary B128 C64 L1000 K15", 128, 64, 64, 1000, 15, 1, False)]
    shapes += [(f"bpnet B64 C64 L1346 K3 d{d}", 64, 64, 64, 1346, 3, d, False) for d in (1, 2, 4, 8, 16, 32, 64)]
    shapes += [("onehot B64 C4->64 L1346 K21", 64, 4, 64, 1346, 21, 1, True)]
    print(f"torch {torch.__version__} conv1d, padding='same', float32, {a.threads} threads, median of {a.reps}")
    print(f"{'shape':30s} {'fwd ms':>9s} {'GF/s':>6s} {'dgrad ms':>9s} {'GF/s':>6s} {'wgrad ms':>9s} {'GF/s':>6s}")
    for name, B, C, O, L, K, d, onehot in shapes:
        if a.only and not name.startswith(a.only):
            continue
        if onehot:
            x = torch.nn.functional.one_hot(torch.randint(0, C, (B, L)), C).permute(0, 2, 1).float().contiguous()
        else:
            x = torch.rand(B, C, L) * 2 - 1
        w = (torch.rand(O, C, K) * 2 - 1) * 0.1
        b = torch.zeros(O)
        dy = torch.rand(B, O, L) * 2 - 1
        pad = d * (K - 1) // 2
        flop = 2.0 * B * O * C * K * L
        f = lambda: torch.nn.functional.conv1d(x, w, b, padding=pad, dilation=d)
        dg = lambda: torch.nn.grad.conv1d_input(x.shape, w, dy, padding=pad, dilation=d)
        wg = lambda: torch.nn.grad.conv1d_weight(x, w.shape, dy, padding=pad, dilation=d)
        with torch.no_grad():
            tf, td, tw = median_s(f, a.reps), median_s(dg, a.reps), median_s(wg, a.reps)
        print(f"{name:30s} {tf*1e3:9.2f} {flop/tf*1e-9:6.1f} {td*1e3:9.2f} {flop/td*1e-9:6.1f} "
              f"{tw*1e3:9.2f} {flop/tw*1e-9:6.1f}", flush=True)


if __name__ == "__main__":
    main()
