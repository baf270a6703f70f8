#!/usr/bin/env python3
# Sums Nsight Compute's per-launch kernel durations by kernel name: where a training step's GPU time goes.
# Input: the CSV that `ncu --csv --metrics gpu__time_duration.sum --print-units base` prints (one row per launch).
# Prints a Markdown table: kernel, launches, total ms, share of the profiled time, mean µs; top N rows.
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
    launches = []
    for r in rows:
        if r.get("Metric Name") != "gpu__time_duration.sum":
            continue
        v = float(r["Metric Value"].replace(",", ""))
        unit = r.get("Metric Unit", "nsecond")
        ns = v * {"nsecond": 1, "usecond": 1e3, "msecond": 1e6, "second": 1e9}.get(unit, 1)
        launches.append((int(r["ID"]), short(r["Kernel Name"]), ns))
    launches.sort()
    launches = launches[a.skip_launches:]
    if not launches:
        sys.exit(f"{a.csv}: no gpu__time_duration.sum rows left")
    tot, cnt = defaultdict(float), defaultdict(int)
    for _, k, ns in launches:
        tot[k] += ns
        cnt[k] += 1
    total = sum(tot.values())
    st = a.steps
    print(f"{len(launches)} launches, {total / 1e6:.3f} ms of kernel time, {total / 1e6 / st:.3f} ms per step "
          f"({st} steps)\n")
    print("| kernel | launches per step | ms per step | share | mean µs |")
    print("|---|---|---|---|---|")
    for k in sorted(tot, key=tot.get, reverse=True)[: a.top]:
        print(f"| {k} | {cnt[k] / st:g} | {tot[k] / 1e6 / st:.3f} | {100 * tot[k] / total:.1f} % "
              f"| {tot[k] / cnt[k] / 1e3:.1f} |")


if __name__ == "__main__":
    main()
