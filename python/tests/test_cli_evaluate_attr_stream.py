# `lowpass evaluate`'s attribution metrics stream (docs/cli.md): --ohe, --attr and every --attr-sets file are read
# in row chunks (the hidden --attr-chunk) and each example's metrics taken as its rows pass. Checks, on numpy-written
# inputs whose N is not a multiple of the chunk: chunks of 1, 3 and N rows and the default give the same file byte
# for byte, also from np.savez_compressed inputs; entropy / HF share / motif fraction means, the seed consistency
# (continuous Jaccard, cosine) within and across two sets, recomputed here in numpy from docs/evaluation.md's
# definitions, agree to 1e-9 over all rows and over --rows positives; every file's shape is checked before a row is
# read. The CLI: python/tests/cli_run.py.
import json

import pytest

from cli_run import run_cli as run

np = pytest.importorskip("numpy")
N, L, K = 11, 24, 3  # chunk boundaries at 3, 6, 9 with --attr-chunk 3


def evaluate(out, *args):
    r = run("evaluate", *args, "--out", out, "--quiet")
    assert r.returncode == 0, r.stderr
    return out.read_text()


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("evaluate_attr_stream")
    rng = np.random.default_rng(4)
    ohe = np.eye(4, dtype=np.float32)[rng.integers(0, 4, (N, L))].transpose(0, 2, 1).copy()
    ohe[:, :, 7] = 0  # an N column
    np.savez(d / "ohe.npz", arr_0=ohe)
    y = np.zeros((N, 1), np.float32)
    y[[0, 2, 3, 7, 10], 0] = 1
    np.savez(d / "data.npz", x=ohe.astype(np.uint8), y=y)
    hyp = {}
    for name in ("attr", "a0", "a1", "a2", "b0", "b1"):
        hyp[name] = rng.normal(size=(N, 4, L)).astype(np.float32)
    hyp["a1"][:, :, 10:14] *= 5  # some structure: the sets differ in smoothness
    hyp["b1"][4] = 0  # an all-zero track: its cosines are NaN
    for name, a in hyp.items():
        np.savez(d / f"{name}.npz", arr_0=a)
        np.savez_compressed(d / f"{name}_z.npz", arr_0=a)
    np.savez_compressed(d / "ohe_z.npz", arr_0=ohe)
    sites = np.zeros((N, L), bool)
    with open(d / "pos.tsv", "w") as f:
        f.write("split\tindex\tstart\tend\tstrand\n")
        for i in range(N):
            s = int(rng.integers(0, L - 6))
            f.write(f"test\t{i}\t{s}\t{s + 6}\t+\n")
            sites[i, s:s + 6] = True
    return {"dir": d, "ohe": ohe.astype(np.float64), "y": y, "hyp": hyp, "sites": sites}


def command(d, z="", chunk=None):
    sets_a = ",".join(str(d / f"a{i}{z}.npz") for i in range(3))
    sets_b = ",".join(str(d / f"b{i}{z}.npz") for i in range(2))
    args = ["--attr", d / f"attr{z}.npz", "--ohe", d / f"ohe{z}.npz", "--attr-sets", sets_a, "--attr-sets-b", sets_b,
            "--motif-positions", d / "pos.tsv", "--summit-center", "--freq-limit", K]
    return args + (["--attr-chunk", chunk] if chunk else [])


# docs/evaluation.md's definitions, per example, on float64 copies of the float32 files.
def magnitude(t):  # (4, L) -> (L)
    return np.abs(t).sum(axis=0)


def entropy(act):
    p = magnitude(act) + 0.001
    p = p / p.sum()
    return -(p * np.log2(p)).sum()


def hf_share(act):
    f = np.abs(np.fft.rfft(magnitude(act)))[1:L // 2]  # k = 1 … L/2 − 1
    return f[K:].sum() / f.sum() if f.sum() > 0 else 0.0  # k ≥ K + 1; a zero track has share 0


def jaccard(u, v):
    nu, nv = np.abs(u).sum(axis=0), np.abs(v).sum(axis=0)
    u, v = u / np.where(nu > 0, nu, 1), v / np.where(nv > 0, nv, 1)
    num = (np.minimum(np.abs(u), np.abs(v)) * np.sign(u) * np.sign(v)).sum(axis=0)
    den = np.maximum(np.abs(u), np.abs(v)).sum(axis=0)
    return (num[den > 0] / den[den > 0]).sum()


def cosine(u, v):
    uu, vv = (u * u).sum(), (v * v).sum()
    return np.nan if uu == 0 or vv == 0 else (u * v).sum() / np.sqrt(uu * vv)


def mean_sem(x):
    x = np.asarray(x, np.float64)
    x = x[np.isfinite(x)]
    return x.mean(), x.std(ddof=1) / np.sqrt(len(x)), len(x)


def close(got, x):
    m, s, n = mean_sem(x)
    assert got["n"] == n
    assert got["mean"] == pytest.approx(m, rel=1e-9, abs=1e-12)
    assert got["sem"] == pytest.approx(s, rel=1e-9, abs=1e-12)


def test_any_chunk_gives_the_same_file_byte_for_byte(files, tmp_path):
    d = files["dir"]
    whole = evaluate(tmp_path / "n.json", *command(d, chunk=N))
    for c in (1, 3, None):  # None: the default chunk
        assert evaluate(tmp_path / f"c{c}.json", *command(d, chunk=c)) == whole, c
    positives = ["--rows", "positives", "--npz", d / "data.npz"]
    assert evaluate(tmp_path / "p1.json", *command(d, chunk=1), *positives) == \
        evaluate(tmp_path / "pn.json", *command(d, chunk=N), *positives)
    # np.savez_compressed inputs (deflate members, inflated whole by the row reader) give the same file.
    assert evaluate(tmp_path / "z.json", *command(d, "_z", chunk=3)) == whole
    # Sets alone (no --ohe): the length and rows come from the first file.
    sets = command(d)[4:8]
    assert sets[0] == "--attr-sets" and sets[2] == "--attr-sets-b"
    assert evaluate(tmp_path / "s1.json", *sets, "--attr-chunk", 1) == evaluate(tmp_path / "sn.json", *sets)


@pytest.mark.parametrize("rows", ["all", "positives"])
def test_the_streamed_metrics_equal_a_numpy_computation(files, tmp_path, rows):
    d, ohe, hyp, sites = files["dir"], files["ohe"], files["hyp"], files["sites"]
    extra = ["--rows", "positives", "--npz", d / "data.npz"] if rows == "positives" else []
    m = json.loads(evaluate(tmp_path / "m.json", *command(d, chunk=3), *extra))
    sel = np.flatnonzero(files["y"][:, 0] == 1) if rows == "positives" else np.arange(N)
    assert 0 < len(sel) and (rows == "all") == (len(sel) == N)
    h = {k: v.astype(np.float64) for k, v in hyp.items()}
    act = {k: v * ohe for k, v in h.items()}
    it = m["interpretability"]
    assert it["rows"] == rows and it["n"] == len(sel) and it["freq_limit"] == K
    close(it["entropy"], [entropy(act["attr"][i]) for i in sel])
    close(it["hf_share"], [hf_share(act["attr"][i]) for i in sel])
    close(it["motif_fraction"],
          [magnitude(act["attr"][i])[sites[i]].sum() / magnitude(act["attr"][i]).sum() for i in sel])
    st = m["stability"]
    A, B = [h[f"a{k}"] for k in range(3)], [h[f"b{k}"] for k in range(2)]
    pairs_a = [(A[a], A[b]) for a in range(3) for b in range(a)]
    pairs_ab = [(a, b) for a in A for b in B]
    for key, pairs in [("a", pairs_a), ("b", [(B[1], B[0])]), ("ab", pairs_ab)]:
        close(st[f"jaccard_{key}"], [np.mean([jaccard(u[i], v[i]) for u, v in pairs]) for i in sel])
        close(st[f"cosine_{key}"], [np.mean([cosine(u[i], v[i]) for u, v in pairs]) for i in sel])
    assert st["cosine_b"]["n"] == len(sel) - (4 in sel)  # the zero track's NaN is left out
    for key, S in [("attr_a", A), ("attr_b", B)]:
        close(st[key]["entropy"], [np.mean([entropy(t[i] * ohe[i]) for t in S]) for i in sel])
        close(st[key]["hf_share"], [np.mean([hf_share(t[i] * ohe[i]) for t in S]) for i in sel])
    assert st["models_a"] == 3 and st["models_b"] == 2 and st["n"] == len(sel)


def test_every_shape_is_checked_before_a_row_is_read(files, tmp_path):
    d = files["dir"]
    np.savez(tmp_path / "short.npz", arr_0=np.zeros((N - 1, 4, L), np.float32))
    np.savez(tmp_path / "three.npz", arr_0=np.zeros((N, 3, L), np.float32))
    bad = tmp_path / "bad_row.npz"  # a one-hot row with two bases set: an error only once the scan reads it
    o = np.load(d / "ohe.npz")["arr_0"].copy()
    o[N - 1, :, 0] = 1
    np.savez(bad, arr_0=o)
    meme = tmp_path / "m.meme"
    meme.write_text("MEME version 4\n\nALPHABET= ACGT\n\nMOTIF M1\nletter-probability matrix: alength= 4 w= 2\n"
                    "1 0 0 0\n0 1 0 0\n")
    sets = f"{d / 'a0.npz'},{d / 'a1.npz'}"
    cases = [
        (["--attr", tmp_path / "short.npz", "--ohe", bad, "--motifs", meme],
         f"is ({N - 1}, 4, {L}) but --ohe {bad} is ({N}, 4, {L}): they must come from the same `lowpass attribute` run"),
        (["--attr", d / "attr.npz", "--ohe", bad, "--motifs", meme, "--attr-sets", f"{sets},{tmp_path / 'short.npz'}"],
         f"--attr-sets: {tmp_path / 'short.npz'} holds {N - 1} x 4 x {L}, expected {N} x 4 x {L}"),
        (["--attr-sets", sets, "--attr-sets-b", f"{d / 'b0.npz'},{tmp_path / 'three.npz'}", "--ohe", bad, "--motifs",
          meme], f"{tmp_path / 'three.npz'}: expected (N, 4, L), got ({N}, 3, {L})"),
        (["--attr-sets", sets, "--attr-sets-b", str(d / "b0.npz")], "--attr-sets-b: need at least two attribution files"),
        (["--attr", d / "attr.npz", "--ohe", bad, "--motifs", meme, "--attr-chunk", 2],
         f"bad_row.npz row {N - 1}: position 0 has more than one base set"),
    ]
    for args, want in cases:
        r = run("evaluate", *args, "--out", tmp_path / "m.json")
        assert r.returncode == 1 and want in r.stderr, (args, r.stderr)
        assert not (tmp_path / "m.json").exists()


def test_the_default_cut_off_is_the_papers_for_the_model_type(tmp_path):
    # REFERENCE §4.5a: K = 150 at 1000 bp (binary), 200 at 1346 bp (profile). round(0.15 · 1346) would be 202, so
    # the default follows the model type: profile when --npz holds profile counts y (N, T, S, O).
    rng = np.random.default_rng(7)
    for length, y, want in [(1346, np.zeros((2, 1, 2, 1000), np.float32), 200),
                            (1346, np.zeros((2, 1), np.float32), 202), (1000, None, 150)]:
        ohe = np.eye(4, dtype=np.float32)[rng.integers(0, 4, (2, length))].transpose(0, 2, 1).copy()
        hyp = rng.normal(size=(2, 4, length)).astype(np.float32)
        np.savez(tmp_path / "ohe.npz", arr_0=ohe)
        np.savez(tmp_path / "attr.npz", arr_0=hyp)
        extra = []
        if y is not None:
            np.savez(tmp_path / "data.npz", x=ohe.astype(np.uint8), y=y)
            extra = ["--npz", tmp_path / "data.npz"]
        it = json.loads(evaluate(tmp_path / "m.json", "--attr", tmp_path / "attr.npz", "--ohe", tmp_path / "ohe.npz",
                                 *extra))["interpretability"]
        assert it["freq_limit"] == want, (length, y is None or y.ndim)
        act = hyp.astype(np.float64) * ohe
        shares = []
        for i in range(2):  # k = 1 … L/2 − 1, share of k ≥ K + 1
            f = np.abs(np.fft.rfft(np.abs(act[i]).sum(axis=0)))[1:length // 2]
            shares.append(f[want:].sum() / f.sum())
        close(it["hf_share"], shares)
