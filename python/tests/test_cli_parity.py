# Python results equal the CLI's for the same model directory and inputs: `lowpass predict` and
# `lowpass attribute` (every method) against Model.predict / Model.attribute, binary and profile models.
# The CLI is $LOWPASS_CLI (scripts/test_python.sh points it at build/tools/lowpass). Run: scripts/test_python.sh
import numpy as np
import pytest

import lowpass

from cli_run import run_cli
from test_api import BINARY, PROFILE, onehot


def cli(*args):
    r = run_cli(*args)
    assert r.returncode == 0, f"lowpass {' '.join(map(str, args))}: {r.stderr}"
    return r


@pytest.fixture(scope="module", params=["binary", "profile"])
def setup(request, tmp_path_factory):
    d = tmp_path_factory.mktemp(request.param)
    cfg = BINARY if request.param == "binary" else PROFILE
    m = lowpass.create(cfg, seed=11, threads=1)
    m.save(d / "model")
    n = 70  # more than one CLI batch of 64 sequences
    x = onehot(n, m.input_length, 9)
    arrays = {"x": x}
    if m.uses_control:
        arrays["control"] = (np.arange(n * 2 * 2 * 19).reshape(n, 2, 2, 19) % 5).astype(np.float32)
    np.savez(d / "in.npz", **arrays)
    return lowpass.load(d / "model"), d, arrays


def test_predict_equals_cli(setup):
    m, d, arrays = setup
    cli("predict", "--model", d / "model", "--npz", d / "in.npz", "--out", d / "pred", "--quiet", "--threads", 1)
    ref = np.load(d / "pred" / "predictions.npz")
    got = m.predict(arrays["x"], control=arrays.get("control"))
    if m.type == "binary":
        np.testing.assert_array_equal(got, ref["logits"])
    else:
        np.testing.assert_array_equal(got[0], ref["profile_logits"])
        np.testing.assert_array_equal(got[1], ref["log_counts"])


@pytest.mark.parametrize("method", ["grad", "gradxinput", "deepshap_ref", "deepshap", "ism", "ig"])
def test_attribute_equals_cli(setup, method):
    m, d, arrays = setup
    x = arrays["x"][:20]
    np.savez(d / "small.npz", **{k: v[:20] for k, v in arrays.items()})
    out = d / f"attr_{method}"
    cli("attribute", "--model", d / "model", "--npz", d / "small.npz", "--out", out, "--method", method,
        "--refs", 3, "--ig-steps", 6, "--quiet", "--threads", 1)
    ref = np.load(out / "attr.npz")["arr_0"]
    got = m.attribute(x, method=method, refs=3, ig_steps=6, control=None if "control" not in arrays else arrays["control"][:20])
    assert got.shape == ref.shape
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(np.load(out / "ohe.npz")["arr_0"], x)


def test_resume_a_lowpass_train_checkpoint_and_one_of_our_own(tmp_path):
    from cli_run import simulated_runs
    run = simulated_runs(tmp_path)["binary"]
    last = run / "checkpoints" / "last.safetensors"
    m = lowpass.load(run)
    m.resume(last)
    x = np.load(tmp_path / "binary_data" / "test.npz")["x"].astype(np.float32)
    np.testing.assert_array_equal(m.predict(x), lowpass.load(run, weights="last").predict(x))
    y = np.zeros((len(x), 1), np.float32)
    y[::2] = 1
    steps = json_steps(run)
    # The run's Adam goes on: its moments shape the first update, so the second step's losses differ from those of
    # the same weights under a fresh Adam.
    fresh = lowpass.load(run, weights="last")
    assert m.train_step(x, y, lr=1e-3, freq_limit=30)["step"] == steps + 1
    assert fresh.train_step(x, y, lr=1e-3, freq_limit=30)["step"] == 1
    m.save_checkpoint(tmp_path / "ours.safetensors")
    second = m.train_step(x, y, lr=1e-3, freq_limit=30)["total"]
    assert second != fresh.train_step(x, y, lr=1e-3, freq_limit=30)["total"]
    # Our own checkpoint: two more steps from it equal two more steps of the model that wrote it.
    again = lowpass.load(run)
    again.resume(tmp_path / "ours.safetensors")
    again.train_step(x, y, lr=1e-3, freq_limit=30)
    b = again.train_step(x, y, lr=1e-3, freq_limit=30)
    a = m.train_step(x, y, lr=1e-3, freq_limit=30)
    assert a == b


def json_steps(run):
    """Optimiser steps of a lowpass train run: the last line of its metrics.jsonl."""
    import json
    return json.loads((run / "metrics.jsonl").read_text().strip().splitlines()[-1])["steps"]
