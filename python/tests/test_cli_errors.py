# The CLI's error contract (docs/cli.md): a usage mistake on the command line prints one line
# `lowpass: error: ...` and exits 2; an error in a file, config or run prints one line and exits 1;
# --help and --version exit 0. The CLI: python/tests/cli_run.py.
import json
import os
import signal
import subprocess
import time

import pytest

from cli_run import CLI, run_cli as run


@pytest.mark.parametrize("args, needle", [
    (["--bogus"], "--bogus"),
    (["simulate"], "--out is required"),
    (["simulate", "--out", "x", "--n", "many"], "--n"),
    (["simulate", "--out", "x", "--type", "both"], "--type"),
    (["train", "--config", "c.json", "--threads", "abc"], "--threads"),
])
def test_usage_mistakes_exit_2_with_one_line(args, needle):
    r = run(*args)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lowpass: error: ") and needle in lines[0], r.stderr


def test_a_missing_config_file_exits_1_naming_it(tmp_path):
    missing = tmp_path / "no_such_config.json"
    r = run("train", "--config", missing, "--out", tmp_path / "run")
    assert r.returncode == 1, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lowpass: error: ") and "no_such_config.json" in lines[0], r.stderr


def test_help_and_version_exit_0():
    assert run("--version").returncode == 0
    r = run("train", "--help")
    assert r.returncode == 0 and "--config" in r.stdout


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A binary and a profile run directory, one epoch each on a few simulated sequences."""
    d = tmp_path_factory.mktemp("runs")
    out = {}
    for kind, sim in [("binary", ["--length", "200", "--motif-bound", "40"]),
                      ("profile", ["--type", "profile", "--output-length", "40"])]:
        r = run("simulate", "--out", d / f"{kind}_data", "--n", "40", "--seed", "3", *sim)
        assert r.returncode == 0, r.stderr
        cfg = json.loads((d / f"{kind}_data" / "train_config.json").read_text())
        cfg["train"] = {"epochs": 1, "threads": 1, "batch_size": 16, "progress": False}
        for k in ("train", "valid", "test"):
            cfg["data"][k] = str(d / f"{kind}_data" / f"{k}.npz")
        (d / f"{kind}.json").write_text(json.dumps(cfg))
        r = run("train", "--config", d / f"{kind}.json", "--out", d / kind, "--quiet")
        assert r.returncode == 0, r.stderr
        out[kind] = d / kind
    out["dir"] = d
    return out


def test_weights_of_the_wrong_model_name_the_file(runs):
    wrong = runs["binary"] / "model.safetensors"
    npz = runs["dir"] / "profile_data" / "test.npz"
    r = run("predict", "--model", runs["profile"], "--weights", wrong, "--npz", npz, "--out", runs["dir"] / "x")
    assert r.returncode == 1, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and str(wrong) in lines[0] and "conv_layers" in lines[0], r.stderr


def test_weights_accept_a_training_checkpoint(runs):
    np = pytest.importorskip("numpy")
    npz = runs["dir"] / "binary_data" / "test.npz"
    ck = runs["binary"] / "checkpoints" / "epoch_1.safetensors"
    r = run("predict", "--model", runs["binary"], "--weights", ck, "--npz", npz, "--out", runs["dir"] / "p_ck",
            "--quiet")
    assert r.returncode == 0, r.stderr
    r = run("predict", "--model", runs["binary"], "--weights", "last", "--npz", npz, "--out", runs["dir"] / "p_last",
            "--quiet")
    assert r.returncode == 0, r.stderr
    np.testing.assert_array_equal(np.load(runs["dir"] / "p_ck" / "predictions.npz")["logits"],
                                  np.load(runs["dir"] / "p_last" / "predictions.npz")["logits"])
