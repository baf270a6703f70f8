# `lowpass marginalize` (docs/cli.md): a motif written into background sequences, predictions with vs without. Checks
# the table and the footprints against `lowpass predict` of the same rows with the sequence inserted by numpy (no
# shuffle), for a binary and a profile model (with controls from the npz), and the errors. CLI: cli_run.py.
import json
import struct

import pytest

from cli_run import run_cli as run, simulated_runs

np = pytest.importorskip("numpy")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return simulated_runs(tmp_path_factory.mktemp("marginalize"))


def onehot(seq):
    x = np.zeros((4, len(seq)), dtype=np.float32)
    for j, c in enumerate(seq):
        if c in "ACGT":
            x["ACGT".index(c), j] = 1
    return x


def predict(runs, kind, arrays, d):
    np.savez(d / "in.npz", **arrays)
    p = run("predict", "--model", runs[kind], "--npz", d / "in.npz", "--out", d / "p", "--quiet", "--threads", 1)
    assert p.returncode == 0, p.stderr
    with np.load(d / "p" / "predictions.npz") as z:
        return {k: z[k].astype(np.float64) for k in z.files}


def expected_counts(pl, lc):
    p = np.exp(pl - pl.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    return p * np.maximum(np.exp(lc) - 1, 0)[..., None]


@pytest.mark.parametrize("kind", ["binary", "profile"])
def test_effects_equal_predict_on_the_rows_with_the_sequence_written_in(runs, tmp_path, kind):
    with np.load(runs["dir"] / f"{kind}_data" / "test.npz") as z:
        data = {k: z[k] for k in z.files}
    n, L = 6, data["x"].shape[2]
    seq, pos = "GGAANTTCC", 11
    m = run("marginalize", "--model", runs[kind], "--npz", runs["dir"] / f"{kind}_data" / "test.npz", "--sequence",
            seq, "--position", pos, "--backgrounds", n, "--no-shuffle", "--no-revcomp", "--out", tmp_path / "m",
            "--quiet", "--threads", 1)
    assert m.returncode == 0, m.stderr
    rows = (tmp_path / "m" / "marginal_effects.tsv").read_text().splitlines()
    head, vals = rows[0].split("\t"), dict(zip(rows[0].split("\t"), rows[1].split("\t")))
    assert len(rows) == 2 and vals["sequence"] == seq and vals["position"] == str(pos) and vals["backgrounds"] == str(n)
    x = data["x"][:n].astype(np.float32)
    xi = x.copy()
    xi[:, :, pos:pos + len(seq)] = onehot(seq)
    extra = {"control": data["control"][:n]} if "control" in data else {}
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    without, with_ = predict(runs, kind, {"x": x, **extra}, tmp_path / "a"), predict(runs, kind, {"x": xi, **extra},
                                                                                      tmp_path / "b")
    if kind == "binary":
        assert float(vals["logit_without"]) == pytest.approx(without["logits"][:, 0].mean(), abs=2e-6)
        assert float(vals["logit_with"]) == pytest.approx(with_["logits"][:, 0].mean(), abs=2e-6)
        assert with_["logits"][:, 0].mean() != pytest.approx(without["logits"][:, 0].mean(), abs=1e-7)
        assert not (tmp_path / "m" / "footprints.npz").exists()
        # The default: each prediction averaged with the reverse complement's.
        r = run("marginalize", "--model", runs[kind], "--npz", runs["dir"] / f"{kind}_data" / "test.npz",
                "--sequence", seq, "--position", pos, "--backgrounds", n, "--no-shuffle", "--out", tmp_path / "r",
                "--quiet", "--threads", 1)
        assert r.returncode == 0, r.stderr
        got = dict(zip(*(line.split("\t") for line in (tmp_path / "r" / "marginal_effects.tsv").read_text().split(
            "\n")[:2])))
        (tmp_path / "c").mkdir()
        rc = predict(runs, kind, {"x": xi[:, ::-1, ::-1].copy(), **extra}, tmp_path / "c")
        want = (with_["logits"][:, 0] + rc["logits"][:, 0]).mean() / 2
        assert float(got["logit_with"]) == pytest.approx(want, abs=2e-6)
    else:
        assert "jsd_t0_s1" in head
        for s in range(2):
            assert float(vals[f"log_counts_with_t0_s{s}"]) == pytest.approx(with_["log_counts"][:, 0, s].mean(),
                                                                            abs=2e-5)
        with np.load(tmp_path / "m" / "footprints.npz") as z:
            fw, fo, start = z["with"], z["without"], int(z["output_start"])
        assert start == (L - fw.shape[-1]) // 2
        assert fw.shape == (1, 1, 2, with_["profile_logits"].shape[-1]) and fo.shape == fw.shape
        np.testing.assert_allclose(fw[0], expected_counts(with_["profile_logits"], with_["log_counts"]).mean(0),
                                   rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(fo[0], expected_counts(without["profile_logits"], without["log_counts"]).mean(0),
                                   rtol=1e-4, atol=1e-5)
        assert "<svg" in (tmp_path / "m" / "footprints.html").read_text()


def read_safetensors(path):
    b = path.read_bytes()
    n = struct.unpack("<Q", b[:8])[0]
    head = json.loads(b[8:8 + n])
    return {k: np.frombuffer(b[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]], np.float32).reshape(
        v["shape"]).copy() for k, v in head.items() if k != "__metadata__"}


def write_safetensors(path, tensors):
    head, off = {}, 0
    for k, v in tensors.items():
        head[k] = {"dtype": "F32", "shape": list(v.shape), "data_offsets": [off, off + v.nbytes]}
        off += v.nbytes
    h = json.dumps(head).encode()
    path.write_bytes(struct.pack("<Q", len(h)) + h + b"".join(v.astype("<f4").tobytes() for v in tensors.values()))


def test_jsd_is_of_the_count_profiles_or_of_the_shape_where_no_read_is_predicted(runs, tmp_path):
    # Strand 0's counts head pushed to log(1 + n) ~ -60: every expected count 0 there, so its jsd is that of the mean
    # probabilities (it was 0: two uniform profiles); strand 1 keeps the count-weighted profiles.
    sd = read_safetensors(runs["profile"] / "best.safetensors")
    sd["count_one_conv.bias"][0] = -60.0
    w = tmp_path / "w.safetensors"
    write_safetensors(w, sd)
    npz = runs["dir"] / "profile_data" / "test.npz"
    with np.load(npz) as z:
        data = {k: z[k][:6] for k in z.files}
    seq, pos = "GGAATTCC", 11
    m = run("marginalize", "--model", runs["profile"], "--weights", w, "--npz", npz, "--sequence", seq, "--position",
            pos, "--backgrounds", 6, "--no-shuffle", "--no-revcomp", "--out", tmp_path / "m", "--quiet")
    assert m.returncode == 0, m.stderr
    rows = (tmp_path / "m" / "marginal_effects.tsv").read_text().splitlines()
    vals = dict(zip(rows[0].split("\t"), rows[1].split("\t")))
    x = data["x"].astype(np.float32)
    xi = x.copy()
    xi[:, :, pos:pos + len(seq)] = onehot(seq)
    extra = {"control": data["control"]} if "control" in data else {}
    preds = []
    for name, rows_x in (("a", x), ("b", xi)):
        np.savez(tmp_path / f"{name}.npz", x=rows_x, **extra)
        p = run("predict", "--model", runs["profile"], "--weights", w, "--npz", tmp_path / f"{name}.npz", "--out",
                tmp_path / name, "--quiet")
        assert p.returncode == 0, p.stderr
        with np.load(tmp_path / name / "predictions.npz") as z:
            preds.append({k: z[k].astype(np.float64) for k in z.files})

    def shape(pred, s):
        c = expected_counts(pred["profile_logits"], pred["log_counts"])[:, 0, s].sum(0)
        if c.sum() > 0:
            return c / c.sum(), True
        p = np.exp(pred["profile_logits"][:, 0, s] - pred["profile_logits"][:, 0, s].max(-1, keepdims=True))
        p = (p / p.sum(-1, keepdims=True)).sum(0)
        return p / p.sum(), False

    for s, reads in ((0, False), (1, True)):
        (p, rp), (q, rq) = shape(preds[0], s), shape(preds[1], s)
        assert rp == rq == reads, (s, rp, rq)
        mid = (p + q) / 2
        jsd = 0.5 * (p * np.log(p / mid)).sum() + 0.5 * (q * np.log(q / mid)).sum()
        # Relative: the shapes of a barely trained model differ little (jsd may be ~1e-11), float32 outputs.
        assert jsd > 0 and float(vals[f"jsd_t0_s{s}"]) == pytest.approx(jsd, rel=0.05, abs=0), (s, jsd, vals)


def test_motifs_insert_their_consensus_and_shuffles_are_seeded(runs, tmp_path):
    meme = tmp_path / "m.meme"
    meme.write_text("MEME version 4\n\nALPHABET= ACGT\n\nMOTIF M1 one\nletter-probability matrix: alength= 4 w= 3\n"
                    "0.7 0.1 0.1 0.1\n0.1 0.1 0.1 0.7\n0.2 0.5 0.2 0.1\n")
    common = ["--model", runs["binary"], "--npz", runs["dir"] / "binary_data" / "test.npz", "--motifs", meme,
              "--backgrounds", 5, "--quiet", "--threads", 1]
    a, b = (run("marginalize", *common, "--out", tmp_path / k) for k in ("a", "b"))
    assert a.returncode == 0 and b.returncode == 0, a.stderr + b.stderr
    ta, tb = ((tmp_path / k / "marginal_effects.tsv").read_text() for k in ("a", "b"))
    assert ta == tb  # the same seed: the same shuffles
    line = ta.splitlines()[1].split("\t")
    assert line[:3] == ["M1 one", "ATC", str((200 - 3) // 2)]
    c = run("marginalize", *common, "--seed", 7, "--out", tmp_path / "c")
    assert c.returncode == 0 and (tmp_path / "c" / "marginal_effects.tsv").read_text() != ta


def test_errors_name_what_is_wrong(runs, tmp_path):
    npz = runs["dir"] / "binary_data" / "test.npz"
    r = run("marginalize", "--model", runs["binary"], "--npz", npz, "--sequence", "ACXT", "--out", tmp_path / "e")
    assert r.returncode == 2 and "'X' at position 3 of the sequence is not A, C, G, T or N" in r.stderr, r.stderr
    r = run("marginalize", "--model", runs["binary"], "--npz", npz, "--sequence", "ACGT", "--position", 198,
            "--out", tmp_path / "e")
    assert r.returncode == 1 and "do not fit the model's 200-base input" in r.stderr, r.stderr
    # A long sequence is quoted by its first bases and its length, not whole.
    r = run("marginalize", "--model", runs["binary"], "--npz", npz, "--sequence", "ACGT" * 300, "--out", tmp_path / "e")
    assert r.returncode == 1 and "ACGTACGTACGTACGTACGTACGT... (1200 characters): 1200 bases do not fit" in r.stderr
    assert len(r.stderr) < 300, r.stderr
    r = run("marginalize", "--model", runs["binary"], "--npz", npz, "--out", tmp_path / "e")
    assert r.returncode == 2 and "give --motifs M.meme or --sequence" in r.stderr, r.stderr
    r = run("marginalize", "--model", runs["binary"], "--npz", npz, "--sequence", "", "--out", tmp_path / "e2")
    assert r.returncode == 2 and "--sequence: empty" in r.stderr and not (tmp_path / "e2").exists(), r.stderr
    r = run("marginalize", "--model", runs["binary"], "--sequence", "ACGT", "--out", tmp_path / "e3")
    assert r.returncode == 2 and "give --npz, --fasta or --regions" in r.stderr, r.stderr


def test_the_page_draws_the_largest_effects_only_and_plot_0_draws_none(runs, tmp_path):
    base = ["marginalize", "--model", runs["profile"], "--npz", runs["dir"] / "profile_data" / "test.npz",
            "--backgrounds", 4, "--quiet", "--threads", 1]
    seqs = ["ACGTACGTAC", "GGGGGGGGGG", "TTTTATTTTA"]
    m = run(*base, *[a for s in seqs for a in ("--sequence", s)], "--plot", 1, "--out", tmp_path / "one")
    assert m.returncode == 0, m.stderr
    rows = [r.split("\t") for r in (tmp_path / "one" / "marginal_effects.tsv").read_text().splitlines()]
    head, body = rows[0], rows[1:]
    fc = [i for i, h in enumerate(head) if h.startswith("logfc")]
    biggest = max(body, key=lambda r: max(abs(float(r[i])) for i in fc))[1]
    page = (tmp_path / "one" / "footprints.html").read_text()
    assert "The 1 of 3 insertions" in page
    assert sum(f"({s})" in page for s in seqs) == 1 and f"({biggest})" in page
    with np.load(tmp_path / "one" / "footprints.npz") as z:
        assert z["with"].shape[0] == 3
    m = run(*base, "--sequence", seqs[0], "--plot", 0, "--out", tmp_path / "none")
    assert m.returncode == 0, m.stderr
    assert not (tmp_path / "none" / "footprints.html").exists() and (tmp_path / "none" / "footprints.npz").exists()


def test_fasta_backgrounds_write_no_sequence_table(runs, tmp_path):
    # predict and attribute --fasta write sequences.tsv; marginalize does not, and its --help does not say it does
    h = run("marginalize", "--help")
    assert h.returncode == 0 and "sequences.tsv" not in h.stdout, h.stdout
    assert "sequences.tsv" in run("predict", "--help").stdout
    (tmp_path / "s.fa").write_text(">a\n" + "ACGT" * 50 + "\n>b\n" + "TTGCA" * 30 + "\n")
    r = run("marginalize", "--model", runs["binary"], "--fasta", tmp_path / "s.fa", "--sequence", "ACGTAC",
            "--out", tmp_path / "m", "--quiet", "--threads", 1)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["marginal_effects.tsv"]
