# Extraction benchmark (issue 3): windows/s of 10k summit-centred windows, one-hot (4, 1346) + bigWig (S, 1000),
# lowpass (bench_windows) vs pyfaidx + pyBigWig on the same files and window list; medians over 5 repeats, checksums compared.
# Run: /work/torchenv/bin/python bench/bench_windows.py [--build build-win] [--append bench/RESULTS.md]
import argparse, datetime, json, os, platform, shutil, statistics, subprocess, sys, tempfile, time

import numpy as np
import pyBigWig
import pyfaidx

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "data", "yeast_atac")


def make_bed(peaks, sizes, n, jitter, I, O, path, seed=0):
    """Summits of the narrowPeak (start + col 10; -1 = centre), cycled and jittered to n windows that fit."""
    summits = []
    with open(peaks) as f:
        for line in f:
            if line.startswith(("track", "#", "browser")) or not line.strip():
                continue
            c = line.split("\t")
            s, e, off = int(c[1]), int(c[2]), int(c[9])
            summits.append((c[0], s + off if off >= 0 else (s + e) // 2))
    rng = np.random.default_rng(seed)
    half = max(I, O) // 2 + 1
    out, k = [], 0
    while len(out) < n:
        chrom, p = summits[k % len(summits)]
        k += 1
        c = p + (int(rng.integers(-jitter, jitter + 1)) if k > len(summits) else 0)
        if c - half >= 0 and c + half <= sizes[chrom]:
            out.append((chrom, c))
    with open(path, "w") as f:
        for chrom, c in out:
            f.write(f"{chrom}\t{c}\t{c + 1}\n")
    return out, len(summits)


LUT = np.zeros((256, 4), np.float32)
for i, b in enumerate("ACGT"):
    LUT[ord(b), i] = LUT[ord(b.lower()), i] = 1


def run_python(fa_path, bw_path, windows, I, O, S, reps):
    t0 = time.perf_counter()
    fa = pyfaidx.Fasta(fa_path, as_raw=True, sequence_always_upper=False)
    bws = [pyBigWig.open(bw_path) for _ in range(S)]  # a stranded pair: the one track opened twice
    setup = time.perf_counter() - t0
    def one(chrom, c):
        cs, ps = c - I // 2, c - O // 2
        seq = fa[chrom][cs:cs + I]
        x = np.ascontiguousarray(LUT[np.frombuffer(seq.encode(), np.uint8)].T)  # (4, I)
        y = np.empty((S, O), np.float32)
        for s in range(S):
            y[s] = bws[s].values(chrom, ps, ps + O, numpy=True)
        np.nan_to_num(y, copy=False)
        return x, y

    times = []
    for r in range(reps):
        a = time.perf_counter()
        for chrom, c in windows:
            one(chrom, c)
        times.append(time.perf_counter() - a)
    base, sig, wsum = np.zeros(4), 0.0, 0.0  # an untimed pass for the checksums
    weight = np.arange(1, O + 1) * np.arange(1, S + 1)[:, None]
    for chrom, c in windows:
        x, y = one(chrom, c)
        base += x.sum(axis=1)
        sig += float(y.sum(dtype=np.float64))
        wsum += float((y.astype(np.float64) * weight).sum())
    check = dict(zip("ACGT", base.tolist()), signal=sig, weighted=wsum)
    for b in bws:
        b.close()
    med = statistics.median(times)
    return dict(mode="pyfaidx+pyBigWig", strands=S, setup_s=setup, median_s=med, windows_per_s=len(windows) / med,
                times=times, check=check)


def same(a, b):
    return all(abs(a[k] - b[k]) <= 1e-6 * max(1.0, abs(a[k])) for k in ("A", "C", "G", "T", "signal", "weighted"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build-win")
    ap.add_argument("--data", default=DATA)
    ap.add_argument("--windows", type=int, default=10000)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--jitter", type=int, default=128)
    ap.add_argument("--append", default="", help="append a section to this markdown file")
    args = ap.parse_args()
    I, O = 1346, 1000
    fa_src = os.path.join(args.data, "sacCer3.fa")
    bw = os.path.join(args.data, "yeast_atac_tn5cuts_shifted.bw")
    peaks = os.path.join(args.data, "hmmratac_yeast500k_accessible_regions.narrowPeak")
    tmp = tempfile.mkdtemp(prefix="lowpass_win_")
    # pyfaidx writes its .fai next to the FASTA and the data folder is read-only: it reads a copy in tmp.
    fa_copy = os.path.join(tmp, "sacCer3.fa")
    shutil.copyfile(fa_src, fa_copy)
    sizes = dict(l.split()[:2] for l in open(os.path.join(args.data, "sacCer3.chrom.sizes")))
    sizes = {k: int(v) for k, v in sizes.items()}
    bed = os.path.join(tmp, "windows.bed")
    windows, n_summits = make_bed(peaks, sizes, args.windows, args.jitter, I, O, bed)

    # lowpass reads the read-only original; its .fai goes to a fresh cache dir (built on the first open).
    exe = os.path.join(args.build, "bench", "bench_windows")
    out = subprocess.run([exe, fa_src, bw, bed, "--reps", str(args.reps), "--cache", os.path.join(tmp, "cache")],
                         check=True, capture_output=True, text=True).stdout
    lp = json.loads(out)
    rows = list(lp["modes"])
    for S in (1, 2):
        rows.append(run_python(fa_copy, bw, windows, I, O, S, args.reps))
    ok = True
    for S in (1, 2):
        ref = next(r for r in rows if r["mode"] == "pyfaidx+pyBigWig" and r["strands"] == S)
        for r in rows:
            if r["strands"] == S and r is not ref:
                r["matches_python"] = same(r["check"], ref["check"])
                ok &= r["matches_python"]
    load = os.getloadavg()
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    print(json.dumps(dict(when=when, load=load, windows=len(windows), summits=n_summits, rows=rows), indent=1))
    shutil.rmtree(tmp)

    cpu = "unknown"
    try:
        cpu = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    lines = [f"\n## Window-extraction benchmark (bench/bench_windows.py)\n",
             f"{when}; CPU: {cpu}, {os.cpu_count()} cores, 1 thread per tool; load average at the end: "
             f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; yeast sacCer3 + Tn5 bigWig (shared/data/yeast_atac); "
             f"{len(windows)} windows ({n_summits} narrowPeak summits, repeated with ±{args.jitter} bp jitter), "
             f"one-hot (4, {I}) + profile (S, {O}); medians over {args.reps} repeats; S = 2 opens the unstranded "
             f"track twice as a stranded pair; pyfaidx {pyfaidx.__version__} reads a copy of the FASTA in /tmp "
             f"(it writes its .fai beside the FASTA), lowpass the read-only original (index in its cache; opening "
             f"the FASTA and building that .fai took {lp['open_fasta_s']:.3f} s, not in the table). Setup = opening "
             f"the files (pyfaidx: its .fai build on the first row), for 'preloaded' reading the whole genome and "
             f"track into memory; lru_cache_16MB = GenomeWindows under a 16 MB budget, 64 kb chunks. Times "
             f"exclude setup; 'same data' compares checksums (base counts, signal sum, position-weighted sum) "
             f"with the pyfaidx+pyBigWig row.\n",
             "| reader | strands | setup s | median s | windows/s | × pyfaidx+pyBigWig | same data |",
             "|---|---|---|---|---|---|---|"]
    for S in (1, 2):
        ref = next(r for r in rows if r["mode"] == "pyfaidx+pyBigWig" and r["strands"] == S)
        for r in sorted((r for r in rows if r["strands"] == S), key=lambda r: r["windows_per_s"]):
            name = r["mode"] if r is ref else f"lowpass {r['mode']}"
            m = "reference" if r is ref else ("yes" if r["matches_python"] else "NO")
            lines.append(f"| {name} | {S} | {r['setup_s']:.3f} | {r['median_s']:.3f} | {r['windows_per_s']:.0f} | "
                         f"{r['windows_per_s'] / ref['windows_per_s']:.2f}× | {m} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.append:
        with open(args.append, "a") as f:
            f.write(text)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
