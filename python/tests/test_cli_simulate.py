# `lowpass simulate` (docs/cli.md): the files it writes, simulation.json holding every parameter of the run, and a
# motif that does not fit the length refused with both numbers. The CLI: python/tests/cli_run.py.
import json

import pytest

from cli_run import run_cli as run

np = pytest.importorskip("numpy")


@pytest.mark.parametrize("kind", ["binary", "profile"])
def test_simulation_json_holds_the_parameters(tmp_path, kind):
    args = ["--length", "300"] if kind == "binary" else ["--type", "profile", "--output-length", "40"]
    r = run("simulate", "--out", tmp_path, "--n", "20", "--positive-fraction", "0.4", "--gc", "0.6", "--seed", "5",
            "--motif-bound", "50", *args)
    assert r.returncode == 0, r.stderr
    for f in ("train.npz", "valid.npz", "test.npz", "motif_positions.tsv", "train_config.json"):
        assert (tmp_path / f).exists(), f
    info = json.loads((tmp_path / "simulation.json").read_text())
    want = {"type": kind, "n_train": 20, "n_valid": 4, "n_test": 4, "gc_train": 0.6, "positive_fraction": 0.4,
            "motif_bound": 50, "seed": 5, "motif_width": 17}
    assert {k: info[k] for k in want} == want
    x = np.load(tmp_path / "train.npz")["x"]
    assert info["length"] == x.shape[2]
    if kind == "profile":
        assert info["output_length"] == 40 == np.load(tmp_path / "train.npz")["y"].shape[3]
        assert info["length"] == 40 + 346
    else:
        assert "output_length" not in info


def test_a_motif_that_does_not_fit_names_both_numbers(tmp_path):
    r = run("simulate", "--out", tmp_path / "s", "--length", "216")
    assert r.returncode == 1
    assert "motif width 17 + 2·motif_bound 100 does not fit in length 216" in r.stderr, r.stderr
    assert run("simulate", "--out", tmp_path / "t", "--length", "217", "--n", "4").returncode == 0
