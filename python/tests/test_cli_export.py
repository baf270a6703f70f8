# `lowpass export` (docs/cli.md): a training config's split as an npz, so that evaluate/predict run on the data a
# FASTA-sequence (or genome) config trains and tests on. Trains a tiny binary model on FASTA positives/negatives and
# checks that evaluating the exported test split reproduces the trainer's test auROC. The CLI: python/tests/cli_run.py.
import json
import random

import pytest

from cli_run import run_cli as run


def write_fasta(path, seqs):
    path.write_text("".join(f">s{i}\n{s}\n" for i, s in enumerate(seqs)))


def train_tiny(tmp_path, test_pos, test_neg, epochs):
    """A tiny binary model trained from p.fa/n.fa in tmp_path, with test FASTA files; returns the config path."""
    cfg = {"model": {"type": "binary", "input_length": 60, "conv_depths": [6, 6, 6], "conv_filter_sizes": [7, 5, 5],
                     "max_pool_size": 8, "fc_sizes": [8, 5]},
           "data": {"sequences": {"train": {"positives": "p.fa", "negatives": "n.fa"},
                                  "test": {"positives": test_pos, "negatives": test_neg}}},
           "train": {"batch_size": 16, "epochs": epochs, "seed": 1, "progress": False}}
    (tmp_path / "c.json").write_text(json.dumps(cfg))
    r = run("train", "--config", tmp_path / "c.json", "--out", tmp_path / "run", "--quiet", "--threads", 1)
    assert r.returncode == 0, r.stderr
    return tmp_path / "c.json"


def test_export_a_fasta_test_split_and_evaluate_it(tmp_path):
    rng = random.Random(3)
    bg = lambda n: "".join(rng.choice("ACGT") for _ in range(n))
    motif = "TGCTGAGTCA"
    pos = [bg(20) + motif + bg(30) for _ in range(60)]
    neg = [bg(60) for _ in range(60)]
    for name, seqs in [("p", pos[:40]), ("n", neg[:40]), ("tp", pos[40:]), ("tn", neg[40:])]:
        write_fasta(tmp_path / f"{name}.fa", seqs)
    train_tiny(tmp_path, "tp.fa", "tn.fa", epochs=2)
    trained = json.loads((tmp_path / "run" / "test_metrics.json").read_text())
    r = run("export", "--config", tmp_path / "c.json", "--split", "test", "--revcomp", "--out", tmp_path / "t.npz")
    assert r.returncode == 0, r.stderr
    assert "export [" in r.stderr and "80 rows" in r.stderr, r.stderr  # the progress bar's final line
    assert "80 rows of length 60 (40 with status 1): 40 test examples and their reverse complements" in r.stdout, \
        r.stdout
    r = run("evaluate", "--npz", tmp_path / "t.npz", "--model", tmp_path / "run", "--out", tmp_path / "m.json")
    assert r.returncode == 0, r.stderr
    auroc = json.loads((tmp_path / "m.json").read_text())["binary"]["per_task"][0]["auroc"]
    assert auroc == pytest.approx(trained["test_auroc"], abs=1e-6)
    # --quiet: no progress bar, the same file
    r = run("export", "--config", tmp_path / "c.json", "--split", "test", "--revcomp", "--quiet",
            "--out", tmp_path / "q.npz")
    assert r.returncode == 0 and r.stderr == "", r.stderr
    assert (tmp_path / "q.npz").read_bytes() == (tmp_path / "t.npz").read_bytes()
    # evaluate takes --threads as predict and attribute do: the metrics do not depend on it
    for threads in (1, 2):
        r = run("evaluate", "--npz", tmp_path / "t.npz", "--model", tmp_path / "run", "--threads", threads,
                "--out", tmp_path / f"m{threads}.json")
        assert r.returncode == 0, r.stderr
        assert "evaluate [" in r.stderr and "seq" in r.stderr, r.stderr  # the model pass's progress bar
        per_task = json.loads((tmp_path / f"m{threads}.json").read_text())["binary"]["per_task"][0]
        assert per_task["auroc"] == pytest.approx(auroc, abs=1e-12)
    # a split the config does not have names the key; a bad split name is a usage mistake
    r = run("export", "--config", tmp_path / "c.json", "--split", "valid", "--out", tmp_path / "v.npz")
    assert r.returncode == 1 and "data.sequences.valid is not set" in r.stderr, r.stderr
    r = run("export", "--config", tmp_path / "c.json", "--split", "validation", "--out", tmp_path / "v.npz")
    assert r.returncode == 2 and "--split" in r.stderr, r.stderr


def test_predict_and_attribute_take_a_fasta(tmp_path):
    np = pytest.importorskip("numpy")
    rng = random.Random(5)
    bg = lambda n: "".join(rng.choice("ACGT") for _ in range(n))
    pos = [bg(20) + "TGCTGAGTCA" + bg(30) for _ in range(30)]
    neg = [bg(60) for _ in range(30)]
    write_fasta(tmp_path / "p.fa", pos)
    write_fasta(tmp_path / "n.fa", neg)
    # records of other lengths: one longer (centre cropped), one shorter (N-padded), one with an IUPAC letter
    (tmp_path / "q.fa").write_text(f">long\n{bg(70)}\n>short\n{bg(41)}\n>iupac\n{bg(29)}R{bg(30)}\n"
                                   f">{pos[0][:5]}\n{pos[0]}\n")
    train_tiny(tmp_path, "q.fa", "n.fa", epochs=1)
    r = run("predict", "--model", tmp_path / "run", "--fasta", tmp_path / "q.fa", "--out", tmp_path / "pf", "--quiet")
    assert r.returncode == 0, r.stderr
    rows = [l.split("\t") for l in (tmp_path / "pf" / "sequences.tsv").read_text().splitlines()]
    assert rows[0] == ["row", "name", "length", "input"]
    assert [r[3] for r in rows[1:]] == ["centre cropped", "centred, N-padded", "as is", "as is"]
    assert rows[1][1] == "long" and rows[1][2] == "70"
    # the same rows as the exported test split (positives first, in file order): same logits
    assert run("export", "--config", tmp_path / "c.json", "--out", tmp_path / "t.npz").returncode == 0
    assert run("predict", "--model", tmp_path / "run", "--npz", tmp_path / "t.npz", "--out", tmp_path / "pn",
               "--quiet").returncode == 0
    a = np.load(tmp_path / "pf" / "predictions.npz")["logits"]
    b = np.load(tmp_path / "pn" / "predictions.npz")["logits"][:4]
    assert np.allclose(a, b, rtol=1e-5, atol=1e-5)
    r = run("attribute", "--model", tmp_path / "run", "--fasta", tmp_path / "q.fa", "--method", "gradxinput",
            "--out", tmp_path / "af", "--quiet")
    assert r.returncode == 0, r.stderr
    assert np.load(tmp_path / "af" / "attr.npz")["arr_0"].shape == (4, 4, 60)
    assert (tmp_path / "af" / "sequences.tsv").exists()
    # --fasta with --npz is a usage mistake
    r = run("predict", "--model", tmp_path / "run", "--fasta", tmp_path / "q.fa", "--npz", tmp_path / "t.npz",
            "--out", tmp_path / "x")
    assert r.returncode == 2 and "--fasta" in r.stderr, r.stderr
