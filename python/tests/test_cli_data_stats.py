# `lowpass data-stats` (docs/cli.md): per split the positives, the negatives per epoch and the batches per epoch, for
# npz and FASTA data as for genome files: a training split draws about positives x negative_ratio negatives, an
# evaluation split of npz or FASTA data scores each of its rows once. The CLI: python/tests/cli_run.py.
import json

import pytest

from cli_run import run_cli as run

np = pytest.importorskip("numpy")


def stats(cfg_path):
    r = run("data-stats", "--config", cfg_path, "--json")
    assert r.returncode == 0, r.stderr
    text = run("data-stats", "--config", cfg_path)
    assert text.returncode == 0, text.stderr
    return json.loads(r.stdout), text.stdout


def test_npz_splits_count_their_positives_and_negatives(tmp_path):
    r = run("simulate", "--out", tmp_path, "--n", "40", "--n-valid", "10", "--n-test", "12", "--length", "200",
            "--motif-bound", "40", "--positive-fraction", "0.25", "--seed", "3")
    assert r.returncode == 0, r.stderr
    cfg = json.loads((tmp_path / "train_config.json").read_text())
    cfg["train"] = {"batch_size": 8, "negative_ratio": 0.5}
    (tmp_path / "c.json").write_text(json.dumps(cfg))
    st, text = stats(tmp_path / "c.json")
    for split in ("train", "valid", "test"):
        y = np.load(tmp_path / f"{split}.npz")["y"][:, 0]
        pos, neg = int((y == 1).sum()), int((y == 0).sum())
        assert (st[split]["positives"], st[split]["negatives"]) == (pos, neg)
        per_epoch = round(pos * 0.5) if split == "train" else neg
        assert st[split]["negatives_per_epoch"] == per_epoch
        assert f"  positives {pos}, negatives/epoch {per_epoch}, batches/epoch " in text, text
        path = str(tmp_path / f"{split}.npz")
        assert f"\n{split}: {path}, " in text and f"{path}: " not in text and "train: train:" not in text, text
    # no negatives in the training data: none are drawn
    x = dict(np.load(tmp_path / "train.npz"))
    keep = x["y"][:, 0] == 1
    np.savez(tmp_path / "pos.npz", **{k: v[keep] for k, v in x.items()})
    cfg["data"]["train"] = "pos.npz"
    (tmp_path / "c.json").write_text(json.dumps(cfg))
    st, _ = stats(tmp_path / "c.json")
    assert st["train"]["negatives"] == 0 and st["train"]["negatives_per_epoch"] == 0


def test_fasta_training_split_draws_negatives_by_the_ratio(tmp_path):
    rng = np.random.default_rng(0)
    for name, n in (("p", 30), ("n", 50), ("tp", 4), ("tn", 6)):
        with open(tmp_path / f"{name}.fa", "w") as f:
            for i in range(n):
                f.write(f">{name}{i}\n{''.join(rng.choice(list('ACGT'), 100))}\n")
    cfg = {"model": {"type": "binary", "input_length": 100, "max_pool_size": 10},
           "data": {"sequences": {"train": {"positives": "p.fa", "negatives": "n.fa"},
                                  "test": {"positives": "tp.fa", "negatives": "tn.fa"}}},
           "train": {"batch_size": 9, "negative_ratio": 0.5}}
    (tmp_path / "c.json").write_text(json.dumps(cfg))
    st, text = stats(tmp_path / "c.json")
    assert (st["train"]["positives"], st["train"]["negatives"], st["train"]["negatives_per_epoch"]) == (30, 50, 15)
    assert (st["test"]["positives"], st["test"]["negatives"], st["test"]["negatives_per_epoch"]) == (4, 6, 6)
    assert st["valid"] is None and "valid: none" in text


def test_profile_npz_data_suggests_a_counts_weight(tmp_path):
    r = run("simulate", "--type", "profile", "--out", tmp_path, "--n", "30", "--output-length", "40", "--seed", "2")
    assert r.returncode == 0, r.stderr
    st, text = stats(tmp_path / "train_config.json")
    with np.load(tmp_path / "train.npz") as z:
        totals = np.sort(z["y"][z["status"] == 1].sum(axis=(1, 2, 3)))
    want = totals[len(totals) // 2] / 10  # the median of the positives' total counts / 10, as for genome windows
    assert st["suggested_counts_loss_weight"] == pytest.approx(want, rel=1e-6)
    assert "suggested train.counts_loss_weight: " in text
    cfg = json.loads((tmp_path / "train_config.json").read_text())
    cfg.setdefault("train", {})["counts_loss_weight"] = 100
    (tmp_path / "w.json").write_text(json.dumps(cfg))
    _, text = stats(tmp_path / "w.json")
    assert "(median positive total count / 10; config has 100.0)" in text, text  # not 100.000000
    assert st["test"]["negatives_per_epoch"] == st["test"]["negatives"]  # npz test rows: every row, once
