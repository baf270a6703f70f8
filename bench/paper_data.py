#!/usr/bin/env python3
# Data preparation and table assembly for bench/paper_experiment.sh, in plain Python (no numpy): FASTA -> npz
# (x (N,4,L) uint8 one-hot, centred: longer cropped, shorter N-padded; y (N,1) float32), positive subsampling of
# a training npz (keep all negatives, a seeded fraction of positives), the positives of a test set, and the
# results table from the JSON files.
# Run: python3 bench/paper_data.py {fasta2npz|subsample|motif|table} ... (see bench/paper_experiment.sh)
import ast
import io
import json
import math
import random
import struct
import sys
import zipfile


# ---- .npy / .npz without numpy ------------------------------------------------------------------
def read_npy(raw):
    assert raw[:6] == b"\x93NUMPY", "not an .npy"
    major = raw[6]
    if major == 1:
        hl, = struct.unpack("<H", raw[8:10]); off = 10
    else:
        hl, = struct.unpack("<I", raw[8:12]); off = 12
    hdr = ast.literal_eval(raw[off:off + hl].decode("latin1"))
    assert not hdr["fortran_order"], "Fortran-order arrays are not supported"
    return hdr["descr"], tuple(hdr["shape"]), raw[off + hl:]


def write_npy(descr, shape, data):
    shp = "(" + "".join(f"{s}, " for s in shape).rstrip(" ") + ")" if len(shape) != 1 else f"({shape[0]},)"
    h = "{'descr': '%s', 'fortran_order': False, 'shape': %s, }" % (descr, shp)
    pad = 64 - (10 + len(h) + 1) % 64
    h = h + " " * (pad % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h.encode("latin1") + data


def read_npz(path):
    out = {}
    with zipfile.ZipFile(path) as z:
        for n in z.namelist():
            out[n[:-4] if n.endswith(".npy") else n] = read_npy(z.read(n))
    return out


def write_npz(path, arrays):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        for k, (descr, shape, data) in arrays.items():
            z.writestr(k + ".npy", write_npy(descr, shape, data))


def itemsize(descr):
    return int(descr[2:])


# ---- commands -------------------------------------------------------------------------------------
def read_fasta(path):
    seqs, cur = [], None
    for line in open(path):
        line = line.strip()
        if line.startswith(">"):
            if cur is not None:
                seqs.append("".join(cur))
            cur = []
        elif line:
            cur.append(line)
    if cur is not None:
        seqs.append("".join(cur))
    return seqs


def fasta2npz(pos, neg, out, L):
    L = int(L)
    seqs = [(s, 1.0) for s in read_fasta(pos)] + [(s, 0.0) for s in read_fasta(neg)]
    x = bytearray(len(seqs) * 4 * L)
    code = {"A": 0, "C": 1, "G": 2, "T": 3}
    for i, (s, _) in enumerate(seqs):
        s = s.upper()
        if len(s) >= L:
            s, left = s[(len(s) - L) // 2:(len(s) - L) // 2 + L], 0
        else:
            left = (L - len(s)) // 2
        for j, ch in enumerate(s):
            b = code.get(ch)
            if b is not None:
                x[(i * 4 + b) * L + left + j] = 1
    y = struct.pack("<%df" % len(seqs), *[v for _, v in seqs])
    st = struct.pack("<%di" % len(seqs), *[int(v) for _, v in seqs])
    write_npz(out, {"x": ("|u1", (len(seqs), 4, L), bytes(x)), "y": ("<f4", (len(seqs), 1), y),
                    "status": ("<i4", (len(seqs),), st)})
    print(f"{out}: {len(seqs)} sequences ({sum(v for _, v in seqs):.0f} positives) of {L} bp")


def subsample(inp, out, frac, seed):
    a = read_npz(inp)
    descr, shape, data = a["y"]
    assert descr == "<f4" and len(shape) == 2, "y must be float32 (N, T)"
    n, t = shape
    y = struct.unpack("<%df" % (n * t), data)
    pos = [i for i in range(n) if any(y[i * t + k] == 1.0 for k in range(t))]
    rng = random.Random(int(seed))
    keep_pos = set(rng.sample(pos, max(1, round(float(frac) * len(pos)))))
    keep = [i for i in range(n) if i in keep_pos or i not in set(pos)]
    res = {}
    for k, (d, s, raw) in a.items():
        if len(s) >= 1 and s[0] == n:
            row = itemsize(d)
            for v in s[1:]:
                row *= v
            res[k] = (d, (len(keep),) + tuple(s[1:]), b"".join(raw[i * row:(i + 1) * row] for i in keep))
        else:
            res[k] = (d, s, raw)
    write_npz(out, res)
    print(f"{out}: kept {len(keep_pos)} of {len(pos)} positives and all {n - len(pos)} negatives")


def positives(inp, out, positions=None, split=None, positions_out=None):
    """Keep the positive rows of an npz; optionally remap a motif_positions.tsv split to the new row indices."""
    a = read_npz(inp)
    descr, (n, t), data = a["y"]
    y = struct.unpack("<%df" % (n * t), data)
    keep = [i for i in range(n) if any(y[i * t + k] == 1.0 for k in range(t))]
    res = {}
    for k, (d, s, raw) in a.items():
        row = itemsize(d)
        for v in s[1:]:
            row *= v
        res[k] = (d, (len(keep),) + tuple(s[1:]), b"".join(raw[i * row:(i + 1) * row] for i in keep)) \
            if len(s) >= 1 and s[0] == n else (d, s, raw)
    write_npz(out, res)
    if positions:
        new = {old: j for j, old in enumerate(keep)}
        with open(positions_out, "w") as f:
            f.write("split\tindex\tstart\tend\tstrand\n")
            for line in open(positions):
                c = line.rstrip("\n").split("\t")
                if c[0] == split and int(c[1]) in new:
                    f.write("\t".join([c[0], str(new[int(c[1])])] + c[2:]) + "\n")
    print(f"{out}: {len(keep)} positives of {n}")


def motif(meme, out, *ids):
    """Copy the header and the named motifs of a MEME file."""
    text = open(meme).read()
    head, *blocks = text.split("\nMOTIF ")
    keep = [b for b in blocks if b.split()[0] in ids]
    assert len(keep) == len(ids), f"{meme}: found {len(keep)} of {ids}"
    open(out, "w").write(head + "".join("\nMOTIF " + b for b in keep) + "\n")


# ---- statistics for the table ---------------------------------------------------------------------
def wilcoxon_greater_exact(x, y):
    """One-sided paired Wilcoxon signed-rank p (H1: x - y > 0), exact over all sign flips, zeros dropped
    (scipy zero_method='wilcox'); average ranks for ties."""
    d = [a - b for a, b in zip(x, y) if a is not None and b is not None and a - b != 0]
    if not d:
        return 1.0
    order = sorted(range(len(d)), key=lambda i: abs(d[i]))
    ranks = [0.0] * len(d)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and abs(d[order[j + 1]]) == abs(d[order[i]]):
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    w = sum(r for r, v in zip(ranks, d) if v > 0)
    n, ge = len(d), 0
    for m in range(1 << n):
        s = sum(ranks[k] for k in range(n) if m >> k & 1)
        ge += s >= w - 1e-12
    return ge / (1 << n)


def fmt(v, p=3):
    return "—" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{p}f}"


def table(results_json):
    """results_json: {dataset: {amount: {"runs": {cond: [eval json per seed]}, "sets": stability json}}}"""
    R = json.load(open(results_json))
    rows = []
    hdr = ("dataset", "data", "prior", "auROC", "auPRC", "HF share", "entropy", "motif frac", "motif auPRC",
           "Jaccard", "cosine")
    cross = R.pop("_cross", {})
    for ds, amounts in R.items():
        for amt, r in amounts.items():
            per = {}
            for cond in ("prior", "noprior"):
                runs = r["runs"][cond]
                b = [e["binary"]["per_task"][0] for e in runs]
                it = [e.get("interpretability", {}) for e in runs]
                per[cond] = {
                    "auroc": [m["auroc"] for m in b], "auprc": [m["average_precision"] for m in b],
                    "hf": [i["hf_share"]["mean"] for i in it], "ent": [i["entropy"]["mean"] for i in it],
                    "mf": [i["motif_fraction"]["mean"] if "motif_fraction" in i else None for i in it],
                    "mauprc": [i.get("motif_overlap_auprc") for i in it]}
            st = r["sets"]
            side = {"prior": "a", "noprior": "b"}
            for cond in ("prior", "noprior"):
                m = per[cond]
                mean = lambda v: (sum(u for u in v if u is not None) / max(1, sum(u is not None for u in v))
                                  if any(u is not None for u in v) else None)
                def sd(v):
                    v = [u for u in v if u is not None]
                    if len(v) < 2: return None
                    mu = sum(v) / len(v)
                    return math.sqrt(sum((u - mu) ** 2 for u in v) / (len(v) - 1))
                ms = lambda v, p=3: fmt(mean(v), p) + ("" if sd(v) is None else "±" + fmt(sd(v), p))
                rows.append((ds, amt, "with" if cond == "prior" else "without", ms(m["auroc"]), ms(m["auprc"]),
                             ms(m["hf"]), ms(m["ent"], 2), ms(m["mf"]), ms(m["mauprc"]),
                             fmt(st["jaccard_" + side[cond]]["mean"], 1), fmt(st["cosine_" + side[cond]]["mean"])))
            P, N = per["prior"], per["noprior"]
            pv = lambda k, better: wilcoxon_greater_exact(P[k], N[k]) if better > 0 else wilcoxon_greater_exact(N[k], P[k])
            rows.append((ds, amt, "p (seeds)", fmt(pv("auroc", 1), 3), fmt(pv("auprc", 1), 3), fmt(pv("hf", -1), 3),
                         fmt(pv("ent", -1), 3), fmt(pv("mf", 1), 3) if P["mf"][0] is not None else "—",
                         fmt(pv("mauprc", 1), 3) if P["mauprc"][0] is not None else "—", "", ""))
            g = lambda k: "—" if st.get(k) is None else (f"{st[k]:.1e}" if st[k] < 1e-3 else fmt(st[k], 3))
            rows.append((ds, amt, "p (examples)", "", "", g("wilcoxon_hf_share_a_less_p"),
                         g("wilcoxon_entropy_a_less_p"), g("wilcoxon_motif_fraction_a_greater_p"), "",
                         g("wilcoxon_a_greater_p"), g("wilcoxon_cosine_a_greater_p")))
    w = [max(len(str(r[i])) for r in rows + [hdr]) for i in range(len(hdr))]
    line = lambda r: "| " + " | ".join(str(c).ljust(w[i]) for i, c in enumerate(r)) + " |"
    print(line(hdr))
    print("|" + "|".join("-" * (x + 2) for x in w) + "|")
    for r in rows:
        print(line(r))
    if cross:
        print("\nAcross data amounts (§4.4): per test positive, the mean over every (all-data model, small-data model)"
              " pair of the same condition; mean ± sem over test positives.\n")
        print("| dataset | prior | Jaccard | cosine |")
        print("|---|---|---|---|")
        for ds, c in cross.items():
            for cond in ("prior", "noprior"):
                if cond in c:
                    j, k = c[cond]["jaccard_ab"], c[cond]["cosine_ab"]
                    print(f"| {ds} | {'with' if cond == 'prior' else 'without'} | {fmt(j['mean'], 2)} ± {fmt(j['sem'], 2)}"
                          f" | {fmt(k['mean'])} ± {fmt(k['sem'])} |")


if __name__ == "__main__":
    cmd, *args = sys.argv[1:]
    {"fasta2npz": fasta2npz, "subsample": subsample, "positives": positives, "motif": motif, "table": table}[cmd](*args)
