# Per-shape comparison of bench_conv1d's GPU backends (bench/gpu.sh's conv1d_gpu.txt): for each shape and direction,
# the default backend's time against each other backend's, so that a session can see at once where a kernel waiting
# under `tiled` beats `auto` (docs/cuda.md). Reads the blocks "CUDA conv1d on ..., backend NAME ..." and their rows
# "shape kernel fwd-ms GF/s dgrad-ms GF/s wgrad-ms GF/s".
# Usage: python3 bench/conv_compare.py conv1d_gpu.txt [--base auto] [--other tiled]
import argparse
import re
import sys


def parse(text):
    """{backend: {shape: (fwd_ms, dgrad_ms, wgrad_ms)}} from bench_conv1d's GPU output."""
    out, backend = {}, None
    for line in text.splitlines():
        m = re.match(r"CUDA conv1d on .*, backend (\w+)", line)
        if m:
            backend = m.group(1)
            out.setdefault(backend, {})
            continue
        if backend is None:
            continue
        m = re.match(r"(.+?)\s+cuda-\w+\s+([\d.]+)\s+\d+\s+([\d.]+)\s+\d+\s+([\d.]+)\s+\d+\s*$", line)
        if m:
            out[backend][m.group(1).strip()] = tuple(float(m.group(i)) for i in (2, 3, 4))
    return out


def table(runs, base, other):
    """Markdown rows: shape, direction, base ms, other ms, base / other (> 1: other is faster)."""
    if base not in runs or other not in runs:
        return ""
    lines = [f"| shape | direction | {base} ms | {other} ms | {base} / {other} |", "|---|---|---|---|---|"]
    for shape, tb in runs[base].items():
        to = runs[other].get(shape)
        if not to:
            continue
        for name, b, o in zip(("forward", "input grad", "weight grad"), tb, to):
            mark = " **faster**" if o < 0.95 * b else ""
            lines.append(f"| {shape} | {name} | {b:.3f} | {o:.3f} | {b / o:.2f}×{mark} |")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("path")
    ap.add_argument("--base", default="auto")
    ap.add_argument("--other", default="tiled")
    a = ap.parse_args(argv)
    with open(a.path) as f:
        t = table(parse(f.read()), a.base, a.other)
    if not t:
        print(f"conv_compare: no '{a.base}' and '{a.other}' blocks in {a.path}", file=sys.stderr)
        return 1
    print(f"\nconv1d kernels alone, `{a.base}` vs `{a.other}` (ratio > 1: `{a.other}` faster; **faster**: by > 5 %):\n")
    print(t)
    return 0


if __name__ == "__main__":
    sys.exit(main())
