#!/usr/bin/env python3
# Sums Nsight Compute's per-launch kernel durations by kernel name: where a training step's GPU time goes.
# Input: the CSV that `ncu --csv --metrics gpu__time_duration.sum --print-units base` prints (one row per launch).
# Prints a Markdown table: kernel, launches, total ms, share of the profiled time, mean µs; top N rows. When the CSV
# also holds dram__bytes_read.sum and dram__bytes_write.sum (ncu --metrics gpu__time_duration.sum,dram__bytes_read.sum,
# dram__bytes_write.sum), the table adds each kernel's DRAM traffic and its achieved GB/s.
# Usage: python3 scripts/ncu_summary.py NCU.csv [--top N] [--skip-launches K] [--steps S]
#   --skip-launches K drops the first K launches before summing; --steps S divides the totals by the number of
#   training steps the profiled run made (ms per step).
import argparse
import csv
import io
import sys
from collections import defaultdict


def short(name):
    """Kernel name without template arguments and parameter lists (enough to tell kernels apart)."""
    name = name.strip().replace("(anonymous namespace)::", "")
    depth, out = 0, []
    for ch in name:
        if ch in "<(":
            depth += 1
        elif ch in ">)":
            depth -= 1
        elif depth == 0:
            out.append(ch)
    s = "".join(out).strip()
    return s.split()[-1] if s else name[:80]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("csv")
    ap.add_argument("--top", type=int, default=30)
    ap.add_argument("--skip-launches", type=int, default=0)
    ap.add_argument("--steps", type=int, default=1)
    a = ap.parse_args()
    text = open(a.csv, errors="replace").read()
    start = text.find('"ID"')  # ncu prints its own log lines before the CSV header
    if start < 0:
        sys.exit(f"{a.csv}: no ncu CSV header (\"ID\",...) found")
    rows = list(csv.DictReader(io.StringIO(text[start:])))
    scale = {"nsecond": 1, "usecond": 1e3, "msecond": 1e6, "second": 1e9,  # to ns
             "byte": 1, "Kbyte": 1e3, "Mbyte": 1e6, "Gbyte": 1e9}  # to bytes
    launches, dram = [], defaultdict(float)  # dram: bytes per launch ID
    for r in rows:
        metric = r.get("Metric Name")
        if metric not in ("gpu__time_duration.sum", "dram__bytes_read.sum", "dram__bytes_write.sum"):
            continue
        v = float(r["Metric Value"].replace(",", "")) * scale.get(r.get("Metric Unit", ""), 1)
        if metric == "gpu__time_duration.sum":
            launches.append((int(r["ID"]), short(r["Kernel Name"]), v))
        else:
            dram[int(r["ID"])] += v
    launches.sort()
    launches = launches[a.skip_launches:]
    if not launches:
        sys.exit(f"{a.csv}: no gpu__time_duration.sum rows left")
    tot, cnt, byt = defaultdict(float), defaultdict(int), defaultdict(float)
    for i, k, ns in launches:
        tot[k] += ns
        cnt[k] += 1
        byt[k] += dram.get(i, 0.0)
    has_bytes = bool(dram)
    total = sum(tot.values())
    st = a.steps
    print(f"{len(launches)} launches, {total / 1e6:.3f} ms of kernel time, {total / 1e6 / st:.3f} ms per step "
          f"({st} steps)\n")
    extra = " DRAM MB per step | GB/s |" if has_bytes else ""
    print("| kernel | launches per step | ms per step | share | mean µs |" + extra)
    print("|---|---|---|---|---|" + ("---|---|" if has_bytes else ""))
    for k in sorted(tot, key=tot.get, reverse=True)[: a.top]:
        b = f" {byt[k] / 1e6 / st:.1f} | {byt[k] / tot[k]:.0f} |" if has_bytes else ""
        print(f"| {k} | {cnt[k] / st:g} | {tot[k] / 1e6 / st:.3f} | {100 * tot[k] / total:.1f} % "
              f"| {tot[k] / cnt[k] / 1e3:.1f} |" + b)
    if has_bytes:
        tb = sum(byt.values())
        print(f"\nAll kernels: {tb / 1e6 / st:.1f} MB of DRAM traffic per step, {tb / total:.0f} GB/s over their time")


if __name__ == "__main__":
    main()
