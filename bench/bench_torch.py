# PyTorch baseline for bench/run.sh: times one case (model × mode) of the PyTorch twin
# (tests/fixtures/torch_twin.py, imported, not copied) and prints one JSON line.
# Usage: python bench/bench_torch.py --model binary|profile --mode noprior|prior|infer|attr [--threads 2]
import argparse
import json
import os
import resource
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures"))
import torch_twin as tw  # noqa: E402


def make_case(model_kind, batch, device):
    g = torch.Generator().manual_seed(0)
    if model_kind == "binary":
        L, T = 1000, 1
        model = tw.BinaryNet(input_length=L, num_tasks=T)
        idx = torch.randint(0, 4, (batch // 2, L), generator=g)
        x = torch.nn.functional.one_hot(idx, 4).float().transpose(1, 2)
        x = torch.cat([x, x.flip(1).flip(2)])  # reverse complements: flip bases and positions
        y = torch.cat([torch.ones(batch // 4, T), torch.zeros(batch // 4, T)]).repeat(2, 1)
        status = (y[:, 0] == 1).long()
        return model, x.to(device), y.to(device), status, None, dict(weight=1.0, freq_limit=150)
    L, O, T, S = 1346, 1000, 1, 2
    model = tw.ProfileNet(input_length=L, output_length=O, num_tasks=T, num_strands=S, controls="matched")
    idx = torch.randint(0, 4, (batch // 2, L), generator=g)
    x = torch.nn.functional.one_hot(idx, 4).float().transpose(1, 2)
    x = torch.cat([x, x.flip(1).flip(2)])
    y = torch.poisson(torch.full((batch, T, S, O), 0.5), generator=g)
    ctrl = torch.poisson(torch.full((batch, T, S, O), 0.3), generator=g)
    status = torch.cat([torch.ones(batch // 4), torch.zeros(batch // 4)]).repeat(2).long()
    return model, x.to(device), y.to(device), status, ctrl.to(device), dict(weight=50.0, freq_limit=200)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", choices=["binary", "profile"], required=True)
    ap.add_argument("--mode", choices=["noprior", "prior", "infer", "attr"], required=True)
    ap.add_argument("--batch", type=int, default=0, help="default: 256 binary, 128 profile (incl. RC)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--tf32", type=int, default=0,
                    help="1: let cuBLAS/cuDNN use TF32 (PyTorch's cuDNN default); 0: plain float32 (the reference)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.backends.cuda.matmul.allow_tf32 = bool(a.tf32)
    torch.backends.cudnn.allow_tf32 = bool(a.tf32)
    torch.backends.cudnn.benchmark = a.device.startswith("cuda")
    batch = a.batch or (256 if a.model == "binary" else 128)
    model, x, y, status, ctrl, pk = make_case(a.model, batch, a.device)
    model = model.to(a.device).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    sync = (lambda: torch.cuda.synchronize()) if a.device.startswith("cuda") else (lambda: None)

    def step():
        if a.mode == "noprior":  # plain step: forward, task loss, backward, Adam
            opt.zero_grad(set_to_none=True)
            if a.model == "binary":
                loss = tw.binary_task_loss(model(x), y)
            else:
                prof, counts = model(x, ctrl)
                loss = tw.profile_task_loss(prof, counts, y)
            loss.backward()
            opt.step()
        elif a.mode == "prior":  # the reference's step: grad×input with create_graph, prior, backward
            opt.zero_grad(set_to_none=True)
            out = tw.losses(model, x.clone(), y, status, control=ctrl, prior="fourier", **pk)
            out["total"].backward()
            opt.step()
        elif a.mode == "infer":
            with torch.no_grad():
                model(x) if a.model == "binary" else model(x, ctrl)
        else:
            model.eval()
            xx = x.clone().requires_grad_(True)
            attr, _ = tw.input_attributions(model, xx, ctrl, create_graph=False)
            model.train()

    times = []
    for i in range(a.warmup + a.repeats):
        sync()
        t0 = time.perf_counter()
        step()
        sync()
        if i >= a.warmup:
            times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    print(json.dumps({"impl": "pytorch", "version": torch.__version__, "model": a.model, "mode": a.mode,
                      "batch": batch, "threads": a.threads, "median_s": med, "tf32": a.tf32,
                      "device": torch.cuda.get_device_name() if a.device.startswith("cuda") else "cpu", "times_s": times,
                      "examples_per_s": batch / med,
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "gpu_reserved_mb": (torch.cuda.max_memory_reserved() / 2**20
                                          if a.device.startswith("cuda") else None)}))


if __name__ == "__main__":
    main()
