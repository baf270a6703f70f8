# The CLI's error contract (docs/cli.md): a usage mistake on the command line prints one line
# `lowpass: error: ...` and exits 2; an error in a file, config or run prints one line and exits 1;
# --help and --version exit 0. The CLI: python/tests/cli_run.py.
import os
import signal
import subprocess
import time

import pytest

from cli_run import CLI, run_cli as run, simulated_runs


@pytest.mark.parametrize("args, needle", [
    (["--bogus"], "--bogus"),
    (["simulate"], "--out is required"),
    (["simulate", "--out", "x", "--n", "many"], "--n"),
    (["simulate", "--out", "x", "--type", "both"], "--type"),
    (["simulate", "--out", "x", "--n", "0"], "--n: must be >= 1, got 0"),
    (["demo", "--lr", "0"], "--lr: must be > 0, got 0"),
    (["variants", "--chunk", "0"], "error: --chunk: must be >= 1, got 0"),  # hidden options are named too
    (["evaluate", "--attr-chunk", "x"], "error: --attr-chunk: 'x' is not an integer"),
    (["report", "--out", "r", "--npz", "y.npz"], "--npz requires --predictions"),
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


# Option values and combinations that are wrong whatever the files say are usage mistakes too (exit 2, the hint).
# None of these files exists: the command line alone decides.
@pytest.mark.parametrize("args, needle", [
    (["train", "--config", "c.json", "--out", "o", "--threads", "-7"], "--threads"),
    (["train", "--config", "c.json", "--out", "o", "--tf32", "--bf16"], "--bf16"),
    (["train", "--config", "c.json", "--out", "o", "--cuda-conv", "fft"], "unknown CUDA convolution backend 'fft'"),
    (["train", "--config", "c.json", "--out", "o", "--device", "gpu"], "--device"),
    (["predict", "--model", "m", "--npz", "x.npz", "--regions", "r.bed", "--genome", "g.fa", "--out", "o"],
     "--regions"),
    (["predict", "--model", "m", "--regions", "r.bed", "--out", "o"], "--genome"),
    (["predict", "--model", "m", "--npz", "x.npz", "--controls", "c.bw", "--out", "o"], "--controls"),
    (["predict", "--model", "m", "--out", "o"], "--npz"),
    (["predict", "--model", "m", "--npz", "x.npz", "--out", "o", "--batch", "0"], "--batch"),
    (["predict", "--model", "m", "--npz", "x.npz", "--out", "o", "--weights", "lsat"], "--weights"),
    (["predict", "--model", "m", "--npz", "x.npz", "--out", "o", "--threads", "-2"], "--threads"),
    (["attribute", "--model", "m", "--npz", "x.npz", "--out", "o", "--ig-steps", "0"], "--ig-steps"),
    (["attribute", "--model", "m", "--npz", "x.npz", "--out", "o", "--refs", "0"], "--refs"),
    (["attribute", "--model", "m", "--npz", "x.npz", "--out", "o", "--max-batch", "0"], "--max-batch"),
    (["attribute", "--model", "m", "--npz", "x.npz", "--out", "o", "--target", "logit"], "--target"),
    (["evaluate", "--out", "m.json"], "nothing to do"),
    (["evaluate", "--attr", "a.npz", "--out", "m.json"], "--ohe"),
    (["evaluate", "--attr", "a.npz", "--ohe", "o.npz", "--rows", "positives", "--out", "m.json"], "--npz"),
    (["evaluate", "--npz", "x.npz", "--model", "m", "--predictions", "p.npz", "--out", "m.json"], "--predictions"),
    (["evaluate", "--npz", "x.npz", "--model", "m", "--batch", "0", "--out", "m.json"], "--batch"),
    (["evaluate", "--npz", "x.npz", "--model", "m", "--neg-upsample", "0", "--out", "m.json"], "--neg-upsample"),
    (["evaluate", "--npz", "x.npz", "--model", "m", "--threads", "-2", "--out", "m.json"], "--threads"),
    (["export", "--config", "c.json", "--quiet", "--split", "tests", "--out", "x.npz"], "--split"),
    (["report", "--out", "r", "--attr", "a.npz", "--ohe", "o.npz", "--examples", "1,x"], "--examples"),
    (["report", "--out", "r", "--attr", "a.npz"], "--ohe"),
    (["simulate", "--out", "x", "--n-valid", "-3"], "--n-valid"),
])
def test_bad_option_values_and_combinations_exit_2_with_the_hint(args, needle, tmp_path):
    r = run(*args)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lowpass: error: ") and needle in lines[0], r.stderr
    assert lines[0].endswith(f"(lowpass {args[0]} --help lists the options)"), r.stderr
    assert r.stdout == ""


def test_a_missing_weights_file_stays_a_file_error(tmp_path):
    r = run("predict", "--model", tmp_path, "--npz", "x.npz", "--out", tmp_path / "o",
            "--weights", tmp_path / "no.safetensors")
    assert r.returncode == 1, r.stderr


def test_help_shows_defaults_and_predict_inputs():
    r = run("attribute", "--help")
    assert r.returncode == 0
    lines = {ln.split()[0]: ln for ln in r.stdout.splitlines() if ln.strip().startswith("--")}
    assert "=50" in lines["--ig-steps"] and "=16" in lines["--batch"] and "=64" in lines["--max-batch"], r.stdout
    assert "=deepshap" in lines["--method"] and "=best" in lines["--weights"], r.stdout
    r = run("predict", "--help")
    assert "on an npz" not in r.stdout and "--regions" in r.stdout.splitlines()[0], r.stdout
    assert "=64" in [ln for ln in r.stdout.splitlines() if ln.strip().startswith("--batch")][0], r.stdout
    for cmd, opt, default in [("evaluate", "--batch", "=64"), ("report", "--spectrum-examples", "=200"),
                              ("simulate", "--n", "=4000"), ("demo", "--epochs", "=5")]:
        r = run(cmd, "--help")
        line = [ln for ln in r.stdout.splitlines() if ln.strip().startswith(opt + " ")][0]
        assert default in line, (cmd, r.stdout)
    # sentinel values (-1 = "not given") are not shown as defaults
    assert "=-1" not in run("train", "--help").stdout + run("attribute", "--help").stdout


# ---- tests with small arrays and trained model directories (numpy and a few seconds of training) ----

def _attr_files(d, n, L=50):
    np = pytest.importorskip("numpy")
    rng = np.random.default_rng(0)
    ohe = np.eye(4, dtype=np.float32)[rng.integers(0, 4, (n, L))].transpose(0, 2, 1).copy()
    for i, name in enumerate(["a", "b"]):
        np.savez(d / f"{name}.npz", arr_0=rng.normal(size=(n, 4, L)).astype(np.float32))
    np.savez(d / "ohe.npz", arr_0=ohe)
    return d / "a.npz", d / "b.npz", d / "ohe.npz"


def test_a_failed_report_prints_nothing_on_stdout_and_leaves_no_folder(tmp_path):
    a, _, ohe = _attr_files(tmp_path, 5)
    out = tmp_path / "rep"
    r = run("report", "--out", out, "--attr", a, "--ohe", ohe, "--examples", "500")
    assert r.returncode == 1, r.stderr
    assert r.stdout == "" and "--examples" in r.stderr, (r.stdout, r.stderr)
    assert not out.exists()
    r = run("report", "--out", out, "--attr", a, "--ohe", ohe, "--examples", "1")
    assert r.returncode == 0 and r.stdout == f"wrote {out / 'index.html'}\n", (r.stdout, r.stderr)


def test_evaluate_creates_the_folder_of_out(tmp_path):
    a, b, ohe = _attr_files(tmp_path, 5)
    out = tmp_path / "eval" / "sub" / "m.json"
    r = run("evaluate", "--attr-sets", f"{a},{b}", "--ohe", ohe, "--out", out)
    assert r.returncode == 0, r.stderr
    assert out.exists()


def test_evaluate_names_both_files_when_attr_and_ohe_differ(tmp_path):
    a, _, _ = _attr_files(tmp_path, 5)
    (tmp_path / "other").mkdir()
    _, _, ohe = _attr_files(tmp_path / "other", 4)
    r = run("evaluate", "--attr", a, "--ohe", ohe, "--out", tmp_path / "m.json")
    assert r.returncode == 1, r.stderr
    assert f"--attr {a} is (5, 4, 50) but --ohe {ohe} is (4, 4, 50)" in r.stderr, r.stderr


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A binary and a profile run directory, one epoch each on a few simulated sequences."""
    return simulated_runs(tmp_path_factory.mktemp("runs"))


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


def test_an_interrupted_attribute_leaves_no_temporary_file(runs, tmp_path):
    np = pytest.importorskip("numpy")
    rng = np.random.default_rng(1)
    n = 4000
    x = np.eye(4, dtype=np.uint8)[rng.integers(0, 4, (n, 200))].transpose(0, 2, 1).copy()
    np.savez(tmp_path / "many.npz", x=x)
    out = tmp_path / "attr"
    if not os.access(CLI, os.X_OK):
        pytest.skip("no CLI")
    p = subprocess.Popen([CLI, "attribute", "--model", runs["binary"], "--npz", tmp_path / "many.npz",
                          "--method", "ism", "--threads", "1", "--quiet", "--out", out],
                         stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while time.time() < deadline and not list(out.glob("attr.npz.tmp.*")) and p.poll() is None:
        time.sleep(0.02)
    assert p.poll() is None, "attribute finished before it could be interrupted"
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 128 + signal.SIGINT, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lowpass: error: interrupted"), err
    assert [f.name for f in out.iterdir() if ".tmp." in f.name] == []
    assert not (out / "attr.npz").exists()


@pytest.mark.parametrize("cmd", ["predict", "attribute", "evaluate"])
def test_a_nan_in_the_inputs_is_named_with_its_index(runs, tmp_path, cmd):
    np = pytest.importorskip("numpy")
    d = dict(np.load(runs["dir"] / "profile_data" / "test.npz"))
    d["x"] = d["x"].astype(np.float32)
    d["x"][2, 1, 7] = np.nan
    np.savez(tmp_path / "nan.npz", **d)
    out = ["--out", tmp_path / "m.json"] if cmd == "evaluate" else ["--out", tmp_path / "o", "--quiet"]
    # Batches of 2: the rows are read from the file batch by batch, and the message gives the file's row (2), not
    # the batch's (0).
    r = run(cmd, "--model", runs["profile"], "--npz", tmp_path / "nan.npz", "--batch", 2, *out)
    assert r.returncode == 1, r.stderr
    assert "nan.npz:x: NaN at [2, 1, 7] (row 2); model inputs must be finite" in r.stderr, r.stderr
