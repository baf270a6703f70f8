# Summarises bench/gpu.sh's JSON lines as a Markdown table: median step time per (impl, model, mode) over rounds,
# PyTorch / lowpass ratio, FLOP/s from bench/summarize.py's layer counts against the card's measured SGEMM rate.
# The default lowpass rows use the default conv backend (`auto`: per layer geometry the route `tune` chose on an
# H200, docs/cuda.md; in runs before 2026-11-26's second H200 session the default was `direct`, and its rules changed
# in the third). Rows tagged "(cuDNN conv)" are lowpass with its
# opt-in cuDNN conv path (impl "lowpass-cudnn"); rows tagged "(im2col conv)" use im2col + cuBLAS for every layer
# (impl "lowpass-im2col"); "(direct conv)" the direct kernels and im2col + cuBLAS for every wide layer (impl
# "lowpass-direct"); "(tiled conv)" the tiled kernels for every wide layer (impl "lowpass-tiled"); each gets a
# short table against the default. Rows tagged "(CUDA graph)" replay the step captured as a CUDA graph (impl "lowpass-graph").
# "(tune)" rows time every conv shape on every route at its first use and keep the fastest (impl "lowpass-tune";
# "lowpass-tune-graph" the same as a CUDA graph); their choices are listed after the tables.
# Usage: python3 bench/summarize_gpu.py gpu_bench.jsonl
import json
import os
import statistics
import sys
from collections import defaultdict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from summarize import gflop_per_step  # noqa: E402


def main():
    runs, ceil = defaultdict(list), None
    for line in open(sys.argv[1]):
        line = line.strip()
        if not line.startswith("{"):
            continue
        r = json.loads(line)
        if r["impl"] == "ceilings":
            ceil = r
            continue
        runs[(r["impl"], r["model"], r["mode"])].append(r)
    if ceil:
        print(f"Card: {ceil['device']}; measured copy {ceil['copy_GBps']:.0f} GB/s (read + write), "
              f"SGEMM fp32 {ceil['sgemm_fp32_TFLOPs']:.1f} TFLOP/s, TF32 {ceil['sgemm_tf32_TFLOPs']:.1f} TFLOP/s "
              f"(PyTorch {ceil['torch']}, 8192³).\n")
    print("| model | mode | batch | lowpass ms | PyTorch ms | PyTorch / lowpass | lowpass TFLOP/s | % of SGEMM fp32 "
          "| device mallocs in timed steps | GPU MB lowpass / PyTorch |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    keys = sorted({(m, mo) for (_, m, mo) in runs if not mo.startswith("chain")})
    for impl_lp, impl_pt in (("lowpass", "pytorch"), ("lowpass-tf32", "pytorch-tf32"), ("lowpass-cudnn", "pytorch"),
                             ("lowpass-im2col", "pytorch"), ("lowpass-tiled", "pytorch"), ("lowpass-direct", "pytorch"),
                             ("lowpass-graph", "pytorch"), ("lowpass-tune", "pytorch"),
                             ("lowpass-tune-graph", "pytorch"), ("lowpass-allrows", "pytorch"),
                             ("lowpass-bf16", "pytorch-tf32")):
        for m, mo in keys:
            lp, pt = runs.get((impl_lp, m, mo)), runs.get((impl_pt, m, mo))
            if not lp or not pt:
                continue
            tl = statistics.median(r["median_s"] for r in lp)
            tp = statistics.median(r["median_s"] for r in pt)
            batch = lp[0]["batch"]
            gf = gflop_per_step(m, mo, batch)
            tfl = gf / tl / 1e3
            pct = f"{100 * tfl / ceil['sgemm_fp32_TFLOPs']:.0f} %" if ceil else "–"
            mallocs = max(r.get("cuda_mallocs_timed", 0) for r in lp)
            mem = f"{lp[0].get('gpu_reserved_mb', 0):.0f} / {pt[0].get('gpu_reserved_mb') or 0:.0f}"
            tag = {"lowpass-tf32": " (TF32)", "lowpass-bf16": " (lowpass bf16 vs PyTorch TF32)",
                   "lowpass-cudnn": " (cuDNN conv)", "lowpass-direct": " (direct conv)", "lowpass-im2col": " (im2col conv)",
                   "lowpass-tiled": " (tiled conv)",
                   "lowpass-graph": " (CUDA graph)", "lowpass-tune": " (tune)",
                   "lowpass-tune-graph": " (tune, CUDA graph)",
                   "lowpass-allrows": " (every row's attributions)"}.get(impl_lp, "")
            print(f"| {m} | {mo}{tag} | {batch} | {1e3 * tl:.2f} | {1e3 * tp:.2f} | {tp / tl:.2f}× | {tfl:.2f} | {pct} "
                  f"| {mallocs} | {mem} |")

    def tf32_ms(m, mo):
        t = runs.get(("lowpass-tf32", m, mo))
        return f"{1e3 * statistics.median(r['median_s'] for r in t):.2f}" if t else "–"

    def default_conv():
        """The conv backend the default rows report ("conv" in their JSON; runs before it was recorded: direct)."""
        convs = {r.get("conv") for (i, _, _), rs in runs.items() if i == "lowpass" for r in rs}
        convs.discard(None)
        return ", ".join(sorted(convs)) or "direct"

    def versus(impl, intro, base, name, extra_head, extra):
        """The default lowpass step vs the variant `impl`, same run: one row per (model, mode) timed with both."""
        pairs = [(m, mo) for m, mo in keys if runs.get(("lowpass", m, mo)) and runs.get((impl, m, mo))]
        if not pairs:
            return
        print(intro(runs[(impl,) + pairs[0]][0]))
        print(f"| model | mode | {base} ms | {name} ms | {base} / {name} | {extra_head} |")
        print("|---|---|---|---|---|---|")
        for m, mo in pairs:
            tb = statistics.median(r["median_s"] for r in runs[("lowpass", m, mo)])
            v = runs[(impl, m, mo)]
            tv = statistics.median(r["median_s"] for r in v)
            print(f"| {m} | {mo} | {1e3 * tb:.2f} | {1e3 * tv:.2f} | {tb / tv:.2f}× | {extra(v[0])} |")

    versus("lowpass-cudnn",
           lambda r: f"\nlowpass conv backends, same run: the default ({default_conv()}) vs cuDNN "
                     f"{r.get('cudnn', '?')} (deterministic algorithms, FMA math):\n",
           "default", "cuDNN", "cuDNN calls in the run (warm-up included), declined",
           lambda r: f"{r.get('cudnn_calls', '–')}, {r.get('cudnn_declined', '–')}")
    versus("lowpass-im2col",
           lambda r: "\nThe default conv backend vs im2col + cuBLAS for every layer, same run:\n",
           "default", "im2col", "conv backend of the variant", lambda r: r.get("conv", "–"))
    versus("lowpass-tiled",
           lambda r: "\nThe default conv backend vs `tiled` (the tiled implicit-GEMM kernel for every wide layer), "
                     "same run:\n",
           "default", "tiled", "conv backend of the variant", lambda r: r.get("conv", "–"))
    versus("lowpass-direct",
           lambda r: "\nThe default conv backend vs `direct` (the direct kernels, im2col + cuBLAS for every wide "
                     "layer), same run:\n",
           "default", "direct", "conv backend of the variant", lambda r: r.get("conv", "–"))
    versus("lowpass-bf16",
           lambda r: "\nfloat32 GEMMs on bfloat16 tensor cores (--bf16: inputs rounded to bfloat16, float32 sums; "
                     "the direct kernels stay float32) vs the float32 default, same run:\n",
           "float32", "bf16", "TF32 ms, same run",
           lambda r: tf32_ms(r["model"], r["mode"]))
    versus("lowpass-graph",
           lambda r: "\nThe training step eager vs captured once as a CUDA graph and replayed (same run; the graph "
                     "step also copies the batch in and reads the losses back):\n",
           "eager", "graph", "graph nodes", lambda r: r.get("graph_nodes", "–"))
    versus("lowpass-allrows",
           lambda r: "\nThe prior step with the scored rows' attributions apart (the default) vs every row's (the "
                     "arithmetic before; binary's reference \"train\" mode keeps every row either way), same run:\n",
           "scored rows", "every row", "prior rows of the variant", lambda r: r.get("prior_rows", "–"))

    versus("lowpass-tune",
           lambda r: "\nThe default conv backend vs `tune` (every conv shape timed on every route at its first use, "
                     "the fastest kept), same run:\n",
           "default", "tune", "shapes tuned", lambda r: len(r.get("conv_tune", [])))
    tuned = {}
    for (impl, m, mo), rs in sorted(runs.items()):
        if impl == "lowpass-tune":
            for line in rs[0].get("conv_tune", []):
                tuned.setdefault(line.split(":")[0], line)
    if tuned:
        print("\n`tune`'s choices (shape: chosen route (each route's median ms)):\n\n```")
        for k in sorted(tuned):
            print(tuned[k])
        print("```")

    chains = sorted({(r["batch"], r.get("chain_rows", "status")) for (impl, m, mo), rs in runs.items()
                     if mo.startswith("chain") for r in rs})
    if chains:
        print("\nFourier-prior chain alone (forward + backward, binary geometry L = 1000; rows: status = the batch's "
              "positives, half of them, or all; per step: synchronised before and after each chain; queued: chains "
              "back to back, one synchronisation per round):\n")
        print("| batch | rows | fused µs per step | fused µs queued | composed µs | composed / fused | bytes floor "
              "| fused GB/s (queued) | % of measured copy (queued) |")
        print("|---|---|---|---|---|---|---|---|---|")
        for b, rows in chains:
            def pick(mode):
                return [r for r in runs.get(("lowpass", "binary", mode), [])
                        if r["batch"] == b and r.get("chain_rows", "status") == rows]
            f, c = pick("chain"), pick("chain_composed")
            if not f:
                continue
            tf = statistics.median(r["median_s"] for r in f)
            tq = statistics.median(r["chain_queued_s"] for r in f) if all("chain_queued_s" in r for r in f) else None
            tc = statistics.median(r["median_s"] for r in c) if c else float("nan")
            floor = f[0]["chain_floor_bytes"]
            gbs, gbq = floor / tf / 1e9, (floor / tq / 1e9 if tq else None)
            def pct(g):
                return f"{100 * g / ceil['copy_GBps']:.0f} %" if ceil and g else "–"
            q = f"{1e6 * tq:.0f}" if tq else "–"
            gq = f" ({gbq:.0f})" if gbq else ""
            print(f"| {b} | {rows} | {1e6 * tf:.0f} | {q} | {1e6 * tc:.0f} | {tc / tf:.1f}× | {floor / 1e6:.1f} MB "
                  f"| {gbs:.0f}{gq} | {pct(gbs)} ({pct(gbq)}) |")


if __name__ == "__main__":
    main()
