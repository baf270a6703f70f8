# Peer baseline for bench/run.sh: one bpnet-lite BPNet training step (no prior), the profile case's shapes
# (batch 128 incl. RC, input 1346, output 1000, 2 strands, 2 control tracks, dilations 2..64 = n_layers 6), Adam.
# Usage: python bench/bench_bpnetlite.py [--threads 2] [--repeats 5] [--warmup 2]; prints one JSON line.
import argparse
import json
import resource
import statistics
import time

import torch
from bpnetlite.bpnet import BPNet
from bpnetlite.losses import _mixture_loss


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    g = torch.Generator().manual_seed(0)
    B, L, O = a.batch, 1346, 1000
    model = BPNet(n_filters=64, n_layers=6, n_outputs=2, n_control_tracks=2, verbose=False).train()
    assert L - 2 * model.trimming == O, model.trimming
    idx = torch.randint(0, 4, (B // 2, L), generator=g)
    x = torch.nn.functional.one_hot(idx, 4).float().transpose(1, 2)
    x = torch.cat([x, x.flip(1).flip(2)])
    ctl = torch.poisson(torch.full((B, 2, L), 0.3), generator=g)
    y = torch.poisson(torch.full((B, 2, O), 0.5), generator=g)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step():
        opt.zero_grad(set_to_none=True)
        logits, logcounts = model(x, ctl)
        _, _, loss = _mixture_loss(y, logits, logcounts, model.count_loss_weight)
        loss.backward()
        opt.step()

    times = []
    for i in range(a.warmup + a.repeats):
        t0 = time.perf_counter()
        step()
        if i >= a.warmup:
            times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    print(json.dumps({"impl": "bpnet-lite", "version": torch.__version__, "model": "profile", "mode": "noprior",
                      "batch": B, "threads": a.threads, "median_s": med, "times_s": times,
                      "examples_per_s": B / med,
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


if __name__ == "__main__":
    main()
