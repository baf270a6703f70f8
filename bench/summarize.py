# Summarises bench/run.sh's JSON lines: median step time per (impl, model, mode) over rounds, FLOPs per step
# from the layer shapes × mode multipliers, fraction of the SGEMM rate measured in the same run, peak RSS.
# Usage: python bench/summarize.py RESULTS.jsonl [--sgemm GFLOPS] [--append bench/RESULTS.md --machine TEXT]
import argparse
import json
import statistics
import sys
from collections import defaultdict

# Layers of the two default architectures (REFERENCE §2.1, §3.1; models/arch/*_net.h defaults) as
# (name, multiply-adds per example, is_first_layer). A conv: C_in·C_out·K·L_out; dense: in·out.
BINARY_L, PROFILE_L, PROFILE_O = 1000, 1346, 1000


def binary_layers(L=BINARY_L, T=1):
    out, c_in, n = [], 4, L
    for i, (k, c) in enumerate(zip((15, 15, 13), (64, 64, 64))):
        n = n - k + 1
        out.append((f"conv{i + 1}", c_in * c * k * n, i == 0))
        c_in = c
    pooled = (n - 40) // 40 + 1
    f_in = c_in * pooled
    for j, f in enumerate((50, 15)):
        out.append((f"fc{j + 1}", f_in * f, False))
        f_in = f
    out.append(("out", f_in * T, False))
    return out


def profile_layers(L=PROFILE_L, O=PROFILE_O, T=1, S=2):
    out = [("dil_conv1", 4 * 64 * 21 * L, True)]
    out += [(f"dil_conv{i + 2}", 64 * 64 * 3 * L, False) for i in range(6)]  # 'same' padding: L outputs
    out.append(("prof_conv", 64 * T * S * 75 * O, False))  # valid over the centre crop -> O
    out.append(("prof_1x1", 2 * T * S * O, False))  # grouped 1×1 over [profile, control]
    out += [("count_dense", 64 * T * S, False), ("count_1x1", 2 * T * S, False)]
    return out


# Matrix-multiply passes per layer (each pass = 2·MACs FLOPs), by mode. dgrad = input (data) gradient,
# wgrad = weight gradient. The first layer's dgrad is only needed when the input gradient is (attr, prior).
#   infer:   forward                                                        = 1
#   attr:    forward + dgrad                                                = 2
#   noprior: forward + dgrad (not first layer) + wgrad                      = 3 (first layer 2)
#   prior:   forward + first backward (dgrad, create_graph)                 = 2
#            + backward of that backward: d(grad_out) = W·d(grad_in) and dW   + 2
#            + ordinary backward of the forward: dgrad (not first) + wgrad    + 2 (first layer 1)  = 6 (5)
MULT = {"infer": (1, 1), "attr": (2, 2), "noprior": (3, 2), "prior": (6, 5)}


def gflop_per_step(model, mode, batch):
    layers = binary_layers() if model == "binary" else profile_layers()
    m_rest, m_first = MULT[mode]
    return sum(2.0 * mac * (m_first if first else m_rest) for _, mac, first in layers) * batch * 1e-9


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("jsonl")
    ap.add_argument("--sgemm", type=float, default=0.0, help="OpenBLAS SGEMM GFLOP/s measured in the same run")
    ap.add_argument("--sgemm-cpu", type=float, default=0.0,
                    help="the same SGEMM's cpu-time rate: FLOPs / (process CPU s / threads)")
    ap.add_argument("--append", default="")
    ap.add_argument("--machine", default="")
    ap.add_argument("--notes", default="")
    a = ap.parse_args()
    runs = defaultdict(list)
    with open(a.jsonl) as f:
        for line in f:
            line = line.strip()
            if not line.startswith("{"):
                continue
            r = json.loads(line)
            runs[(r["impl"], r["model"], r["mode"])].append(r)
    if not runs:
        sys.exit("summarize: no results in " + a.jsonl)
    rows = []
    head = ("| model | mode | impl | batch | rounds | median s/step | ex/s | GFLOP/step | GFLOP/s | % SGEMM | "
            "peak RSS MB | PyTorch / impl | CPU s/step | GFLOP/s (cpu-time) | % SGEMM (cpu-time) | PyTorch / impl (CPU) |")
    rows.append(head)
    rows.append("|" + "---|" * (head.count("|") - 1))
    med, cpu = {}, {}
    for key, rs in runs.items():
        med[key] = statistics.median(r["median_s"] for r in rs)
        c = [r["cpu_s_per_step"] for r in rs if "cpu_s_per_step" in r]
        cpu[key] = statistics.median(c) if c else None
    order = {"lowpass": 0, "pytorch": 1, "bpnet-lite": 2}
    modes = {"noprior": 0, "prior": 1, "infer": 2, "attr": 3}
    for key in sorted(runs, key=lambda k: (k[1], modes.get(k[2], 9), order.get(k[0], 9))):
        impl, model, mode = key
        rs = runs[key]
        batch = rs[0]["batch"]
        s = med[key]
        gf = gflop_per_step(model, mode, batch)
        rate = gf / s
        frac = f"{100 * rate / a.sgemm:.0f} %" if a.sgemm > 0 else "n/a"
        rss = max(r.get("peak_rss_mb", 0) for r in rs)
        ref = med.get(("pytorch", model, mode))
        ratio = f"{ref / s:.2f}×" if ref and impl != "pytorch" else ("1.00×" if impl == "pytorch" else "")
        c, threads = cpu[key], rs[0].get("threads", 1)
        cref = cpu.get(("pytorch", model, mode))
        if c:
            crate = gf / (c / threads)
            cfrac = f"{100 * crate / a.sgemm_cpu:.0f} %" if a.sgemm_cpu > 0 else "n/a"
            cratio = f"{cref / c:.2f}×" if cref else ""
            ctext = f"{c:.2f} | {crate:.1f} | {cfrac} | {cratio}"
        else:
            ctext = " |  |  | "
        rows.append(f"| {model} | {mode} | {impl} | {batch} | {len(rs)} | {s:.3f} | {batch / s:.1f} | {gf:.1f} | "
                    f"{rate:.1f} | {frac} | {rss:.0f} | {ratio} | {ctext} |")
    extra = []
    lp, pt_no = med.get(("lowpass", "profile", "prior")), med.get(("pytorch", "profile", "noprior"))
    if lp and pt_no:
        extra.append(f"profile: lowpass WITH prior vs PyTorch WITHOUT prior: {pt_no / lp:.2f}× "
                     f"({lp:.3f} s vs {pt_no:.3f} s)")
    for model, need, need_frac in (("binary", 1.4, 0.75), ("profile", 3.0, None)):
        lp, pt = med.get(("lowpass", model, "prior")), med.get(("pytorch", model, "prior"))
        if lp and pt:
            line = f"target {model} with prior: ≥ {need}× PyTorch -> {pt / lp:.2f}× ({'met' if pt / lp >= need else 'MISSED'})"
            if need_frac and a.sgemm > 0:
                f = gflop_per_step(model, "prior", runs[("lowpass", model, "prior")][0]["batch"]) / lp / a.sgemm
                line += f"; ≥ {100 * need_frac:.0f} % of SGEMM -> {100 * f:.0f} % ({'met' if f >= need_frac else 'MISSED'})"
            extra.append(line)
            lc, pc = cpu.get(("lowpass", model, "prior")), cpu.get(("pytorch", model, "prior"))
            if lc and pc:
                line = f"  on CPU time: {pc / lc:.2f}× ({'met' if pc / lc >= need else 'MISSED'})"
                if need_frac and a.sgemm_cpu > 0:
                    rl = runs[("lowpass", model, "prior")][0]
                    f = gflop_per_step(model, "prior", rl["batch"]) / (lc / rl["threads"]) / a.sgemm_cpu
                    line += f"; {100 * f:.0f} % of SGEMM's cpu-time rate ({'met' if f >= need_frac else 'MISSED'})"
                extra.append(line)
    text = "\n".join(rows)
    if a.sgemm > 0:
        text += f"\n\nSGEMM (OpenBLAS, square 2048, same run, same threads): {a.sgemm:.1f} GFLOP/s wall"
        if a.sgemm_cpu > 0:
            text += f", {a.sgemm_cpu:.1f} GFLOP/s on CPU time"
    if extra:
        text += "\n\n" + "\n".join("- " + e for e in extra)
    if a.notes:
        text += "\n\n" + a.notes
    print(text)
    if a.append:
        with open(a.append, "a") as f:
            f.write("\n\n## Training-step benchmark (bench/run.sh)\n\n" + a.machine + "\n\n" + text + "\n")


if __name__ == "__main__":
    main()
