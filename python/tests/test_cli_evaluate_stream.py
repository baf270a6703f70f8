# `lowpass evaluate --npz` streams (docs/cli.md): x, y, control and --predictions are read --batch rows at a time and
# the metrics accumulated per example. Checks, for a binary and a profile model and a test set whose N is not a
# multiple of the batch: the streamed metrics (--model, and --predictions of predict's npz) equal the whole-array
# computation (one batch of all rows: profile_metrics over the full arrays, as evaluate computed them before) byte for
# byte, also from np.savez_compressed files; NLL, count Pearson and auROC recomputed here in numpy from the full arrays
# agree to 1e-9; errors name the file and field (rows of y or control against x, a NaN in a later batch); the progress
# bar.
# The CLI: python/tests/cli_run.py.
import json
import math

import pytest

from cli_run import run_cli as run, simulated_runs

np = pytest.importorskip("numpy")
B = 3  # rows per batch; the simulated test sets have 8


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return simulated_runs(tmp_path_factory.mktemp("evaluate_stream"))


def evaluate(out, *args):
    r = run("evaluate", *args, "--out", out, "--quiet")
    assert r.returncode == 0, r.stderr
    assert r.stderr == "", r.stderr  # --quiet: no bar
    return out.read_text()


def arrays(path):
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def auroc(y, score):
    """Rank formula with ties averaged (sklearn's roc_auc_score)."""
    order = np.argsort(score, kind="mergesort")
    ranks = np.empty(len(score))
    s = score[order]
    i = 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and s[j + 1] == s[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    pos = y == 1
    n_pos, n_neg = pos.sum(), (y == 0).sum()
    return (ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


@pytest.mark.parametrize("kind", ["binary", "profile"])
def test_streamed_metrics_equal_the_whole_array_computation(runs, tmp_path, kind):
    npz = runs["dir"] / f"{kind}_data" / "test.npz"
    data = arrays(npz)
    N = data["y"].shape[0]
    assert N % B != 0 and N > B
    p = run("predict", "--model", runs[kind], "--npz", npz, "--out", tmp_path / "p", "--batch", B, "--quiet")
    assert p.returncode == 0, p.stderr
    pred = tmp_path / "p" / "predictions.npz"
    streamed = evaluate(tmp_path / "model.json", "--npz", npz, "--model", runs[kind], "--batch", B)
    from_file = evaluate(tmp_path / "file.json", "--npz", npz, "--predictions", pred, "--batch", B)
    whole = evaluate(tmp_path / "whole.json", "--npz", npz, "--predictions", pred, "--batch", N)
    assert streamed == whole and from_file == whole
    # np.savez_compressed inputs (deflate members, inflated whole by the row reader) give the same file.
    np.savez_compressed(tmp_path / "data_z.npz", **data)
    np.savez_compressed(tmp_path / "pred_z.npz", **arrays(pred))
    assert evaluate(tmp_path / "z.json", "--npz", tmp_path / "data_z.npz", "--predictions", tmp_path / "pred_z.npz",
                    "--batch", B) == whole
    assert evaluate(tmp_path / "zm.json", "--npz", tmp_path / "data_z.npz", "--model", runs[kind], "--batch",
                    B) == whole
    # Independent numbers from the full arrays.
    m, P = json.loads(whole), arrays(pred)
    y = data["y"].astype(np.float64)
    if kind == "binary":
        got = m["binary"]["per_task"][0]["auroc"]
        assert got == pytest.approx(auroc(y[:, 0], P["logits"][:, 0].astype(np.float64)), rel=1e-9)
        return
    logits = P["profile_logits"].astype(np.float64)
    mx = logits.max(axis=3, keepdims=True)
    logp = logits - mx - np.log(np.exp(logits - mx).sum(axis=3, keepdims=True))
    lg = np.vectorize(math.lgamma)
    total = y.sum(axis=3)
    nll = lg(y + 1).sum(axis=3) - lg(total + 1) - (y * logp).sum(axis=3)  # (N, T, S)
    assert m["profile"]["nll"][0] == pytest.approx(nll[:, 0, :].mean(), rel=1e-9)
    r = np.corrcoef(np.log1p(total[:, 0, :]).ravel(), P["log_counts"][:, 0, :].astype(np.float64).ravel())[0, 1]
    assert m["profile"]["count_pearson"][0] == pytest.approx(r, rel=1e-9)


def test_rows_that_do_not_match_and_a_nan_in_a_later_batch_are_named(runs, tmp_path):
    npz = runs["dir"] / "binary_data" / "test.npz"
    data = arrays(npz)
    N = data["y"].shape[0]
    short = dict(data, y=data["y"][:-1])
    np.savez(tmp_path / "short.npz", **short)
    r = run("evaluate", "--npz", tmp_path / "short.npz", "--model", runs["binary"], "--out", tmp_path / "m.json")
    assert r.returncode == 1, r.stderr
    assert f"short.npz: y ({N - 1}, 1) has {N - 1} rows but x ({N}, 4, 200) has {N}" in r.stderr, r.stderr
    p = run("predict", "--model", runs["binary"], "--npz", npz, "--out", tmp_path / "p", "--quiet")
    assert p.returncode == 0, p.stderr
    r = run("evaluate", "--npz", tmp_path / "short.npz", "--predictions", tmp_path / "p" / "predictions.npz", "--out",
            tmp_path / "m.json")
    assert r.returncode == 1 and f"predictions.npz: logits ({N}, 1) do not match y ({N - 1}, 1) of" in r.stderr, r.stderr
    nan = dict(data, x=data["x"].astype(np.float32))
    nan["x"][N - 1, 2, 9] = np.nan  # in the last batch of B rows
    np.savez(tmp_path / "nan.npz", **nan)
    r = run("evaluate", "--npz", tmp_path / "nan.npz", "--model", runs["binary"], "--batch", B, "--out",
            tmp_path / "m.json")
    assert r.returncode == 1, r.stderr
    assert f"nan.npz:x: NaN at [{N - 1}, 2, 9] (row {N - 1}); model inputs must be finite" in r.stderr, r.stderr
    assert not (tmp_path / "m.json").exists()
    np.savez(tmp_path / "noy.npz", x=data["x"])
    r = run("evaluate", "--npz", tmp_path / "noy.npz", "--model", runs["binary"], "--out", tmp_path / "m.json")
    assert r.returncode == 1 and "noy.npz: no array 'y'" in r.stderr, r.stderr


def test_a_control_with_other_rows_than_x_is_named_before_any_row_is_read(runs, tmp_path):
    npz = runs["dir"] / "profile_data" / "test.npz"
    data = arrays(npz)
    N, c = data["x"].shape[0], data["control"]
    np.savez(tmp_path / "cshort.npz", **dict(data, control=c[:-1]))
    want = f"cshort.npz: control ({N - 1}, {c.shape[1]}, {c.shape[2]}, {c.shape[3]}) has {N - 1} rows but x ({N}, 4,"
    for cmd in ("evaluate", "predict"):  # one check (attr::open_inputs) for both
        r = run(cmd, "--npz", tmp_path / "cshort.npz", "--model", runs["profile"], "--out", tmp_path / cmd, "--quiet")
        assert r.returncode == 1 and want in r.stderr, (cmd, r.stderr)
        assert not (tmp_path / cmd).exists() or not any((tmp_path / cmd).iterdir()), cmd


def test_a_write_cut_short_keeps_the_earlier_metrics(runs, tmp_path):
    # metrics.json is written to a temporary and renamed: a full disk (here RLIMIT_FSIZE, SIGXFSZ ignored so that the
    # write fails with EFBIG) fails the run and leaves the earlier file whole.
    import resource
    import signal
    import subprocess

    from cli_run import CLI
    npz = runs["dir"] / "binary_data" / "test.npz"
    p = run("predict", "--model", runs["binary"], "--npz", npz, "--out", tmp_path / "p", "--quiet")
    assert p.returncode == 0, p.stderr
    args = ["evaluate", "--npz", npz, "--predictions", tmp_path / "p" / "predictions.npz", "--out", tmp_path / "m.json",
            "--quiet"]
    earlier = evaluate(tmp_path / "m.json", *args[1:-3])
    assert len(earlier) > 200

    def small_files():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (100, 100))
    r = subprocess.run([CLI, *map(str, args)], capture_output=True, text=True, preexec_fn=small_files)
    assert r.returncode == 1 and "m.json" in r.stderr, r.stderr
    assert (tmp_path / "m.json").read_text() == earlier
    assert sorted(f.name for f in tmp_path.iterdir() if f.name.startswith("m.json")) == ["m.json"]


def test_the_bar_covers_the_predictions_pass_too(runs, tmp_path):
    npz = runs["dir"] / "profile_data" / "test.npz"
    p = run("predict", "--model", runs["profile"], "--npz", npz, "--out", tmp_path / "p", "--quiet")
    assert p.returncode == 0, p.stderr
    r = run("evaluate", "--npz", npz, "--predictions", tmp_path / "p" / "predictions.npz", "--out", tmp_path / "m.json")
    assert r.returncode == 0 and "evaluate [" in r.stderr and "seq" in r.stderr, r.stderr
