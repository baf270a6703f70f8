# Fold ensembles in `lowpass predict`, `lowpass attribute` and `lowpass evaluate` (docs/cli.md): several --model directories give the
# mean of their outputs. Trains tiny models on simulated npz data (two seeds of each config) and checks the ensemble's
# arrays against the mean of the single-model runs: npz inputs (the profile model's control from the npz), genome
# regions with control bigWigs (each model's control rows), the convergence report, and the errors.
# The CLI: python/tests/cli_run.py.
import json
import random

import pytest

from cli_run import run_cli as run, simulated_runs

np = pytest.importorskip("numpy")


def second_seed(d, kind, cfg_dir):
    cfg = json.loads((cfg_dir / f"{kind}.json").read_text())
    cfg["train"]["seed"] = 2
    (d / f"{kind}_seed2.json").write_text(json.dumps(cfg))
    r = run("train", "--config", d / f"{kind}_seed2.json", "--out", d / f"{kind}_seed2", "--quiet")
    assert r.returncode == 0, r.stderr
    return d / f"{kind}_seed2"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    d = tmp_path_factory.mktemp("ensemble")
    out = simulated_runs(d)  # the profile model takes a shared control track (2 strands)
    for kind in ("binary", "profile"):
        out[kind + "2"] = second_seed(d, kind, d)
    return out


def arrays(path):
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def check_mean(one, two, both, tol):
    for k in both:
        assert not np.allclose(one[k], two[k]), k  # two different models, or the mean proves nothing
        np.testing.assert_allclose(both[k], (one[k] + two[k]) / 2, rtol=0, atol=tol, err_msg=k)


@pytest.mark.parametrize("kind", ["binary", "profile"])
def test_predict_and_attribute_average_the_models_on_an_npz(runs, tmp_path, kind):
    npz = runs["dir"] / f"{kind}_data" / "test.npz"
    outs = {}
    for name, models in [("one", [runs[kind]]), ("two", [runs[kind + "2"]]),
                         ("both", [runs[kind], runs[kind + "2"]])]:
        m = [a for p in models for a in ("--model", p)]
        p = run("predict", *m, "--npz", npz, "--out", tmp_path / f"p_{name}", "--quiet", "--threads", 1)
        assert p.returncode == 0, p.stderr
        a = run("attribute", *m, "--npz", npz, "--out", tmp_path / f"a_{name}", "--method", "deepshap", "--refs", 3,
                "--quiet", "--threads", 1)
        assert a.returncode == 0, a.stderr
        outs[name] = (p, a)
    assert "mean of 2 models" in outs["both"][0].stdout and "mean of 2 models" in outs["both"][1].stdout
    pred = {k: arrays(tmp_path / f"p_{k}" / "predictions.npz") for k in ("one", "two", "both")}
    check_mean(pred["one"], pred["two"], pred["both"], 2e-6)
    att = {k: arrays(tmp_path / f"a_{k}" / "attr.npz") for k in ("one", "two", "both")}
    check_mean(att["one"], att["two"], att["both"], 1e-6)
    # Convergence: the ensemble's error is the mean of the models' errors (their completeness is linear).
    conv = {k: json.loads((tmp_path / f"a_{k}" / "convergence.json").read_text()) for k in ("one", "two", "both")}
    assert conv["both"]["models"] == [str(runs[kind]), str(runs[kind + "2"])] and "models" not in conv["one"]
    for x, y, z in zip(conv["one"]["examples"], conv["two"]["examples"], conv["both"]["examples"]):
        assert z["delta"] == pytest.approx((x["delta"] + y["delta"]) / 2, abs=1e-6)
    # evaluate --model twice: the metrics of the ensemble's predictions, as evaluate --predictions of predict's npz.
    e = run("evaluate", "--npz", npz, "--model", runs[kind], "--model", runs[kind + "2"], "--out", tmp_path / "e.json")
    p = run("evaluate", "--npz", npz, "--predictions", tmp_path / "p_both" / "predictions.npz", "--out",
            tmp_path / "p.json")
    assert e.returncode == 0 and p.returncode == 0, e.stderr + p.stderr
    got, want = (json.loads((tmp_path / f).read_text()) for f in ("e.json", "p.json"))
    assert same_numbers(got, want) > 0, (got, want)


def same_numbers(a, b, path="") -> int:
    """Asserts two JSON documents equal, numbers to 1e-4; returns how many numbers were compared."""
    if isinstance(b, dict):
        assert isinstance(a, dict) and a.keys() == b.keys(), path
        return sum(same_numbers(a[k], b[k], f"{path}.{k}") for k in b)
    if isinstance(b, list):
        assert isinstance(a, list) and len(a) == len(b), path
        return sum(same_numbers(x, y, f"{path}[{i}]") for i, (x, y) in enumerate(zip(a, b)))
    if isinstance(b, float):
        assert a == pytest.approx(b, rel=1e-4, abs=1e-5), path
        return 1
    assert a == b, path
    return 0


def test_integrated_gradients_report_the_most_steps_any_model_used(runs, tmp_path):
    npz = runs["dir"] / "binary_data" / "test.npz"
    steps, conv = {}, {}
    for name, models in [("one", [runs["binary"]]), ("two", [runs["binary2"]]),
                         ("both", [runs["binary"], runs["binary2"]])]:
        m = [a for p in models for a in ("--model", p)]
        a = run("attribute", *m, "--npz", npz, "--out", tmp_path / name, "--method", "ig", "--ig-steps", 4,
                "--ig-tolerance", 0.05, "--ig-max-steps", 36, "--quiet", "--threads", 1)
        assert a.returncode == 0, a.stderr
        conv[name] = json.loads((tmp_path / name / "convergence.json").read_text())
        steps[name] = [e["steps"] for e in conv[name]["examples"]]
    assert steps["both"] == [max(x, y) for x, y in zip(steps["one"], steps["two"])]
    # The worst model's error per example, and the tolerance count from it (the mean's error can hide it).
    worst = [max(x["relative"], y["relative"]) for x, y in zip(conv["one"]["examples"], conv["two"]["examples"])]
    assert [e["model_relative"] for e in conv["both"]["examples"]] == pytest.approx(worst, rel=1e-6)
    assert conv["both"]["max_model_relative_delta"] == pytest.approx(max(worst), rel=1e-6)
    assert conv["both"]["above_tolerance"] == sum(w > 0.05 for w in worst)
    assert any(x != y for x, y in zip(steps["one"], steps["two"])), steps  # else max() is not tested


def test_genome_regions_give_each_model_its_control_rows(runs, tmp_path):
    d = tmp_path / "free"
    d.mkdir()
    free = simulated_runs(d, controls=False)["profile"]
    rng = random.Random(11)
    seq = "".join(rng.choice("ACGT") for _ in range(2000))
    (tmp_path / "g.fa").write_text(f">chrA\n{seq}\n")
    (tmp_path / "r.bed").write_text("".join(f"chrA\t{c - 1}\t{c}\n" for c in (400, 700, 1000, 1300, 1600)))
    common = ["--regions", tmp_path / "r.bed", "--genome", tmp_path / "g.fa", "--quiet", "--threads", 1]
    t = run("predict", "--model", free, "--out", tmp_path / "tracks", *common)  # control bigWigs need a writer
    assert t.returncode == 0, t.stderr
    bw = f"{tmp_path / 'tracks' / 'pred_t0_s0.bw'},{tmp_path / 'tracks' / 'pred_t0_s1.bw'}"
    pred, att = {}, {}
    for name, models in [("one", [runs["profile"]]), ("two", [runs["profile2"]]),
                         ("both", [runs["profile"], runs["profile2"]])]:
        m = [a for p in models for a in ("--model", p)]
        p = run("predict", *m, "--controls", bw, "--out", tmp_path / f"p_{name}", *common)
        a = run("attribute", *m, "--controls", bw, "--out", tmp_path / f"a_{name}", "--method", "gradxinput",
                *common)
        assert p.returncode == 0 and a.returncode == 0, p.stderr + a.stderr
        pred[name] = arrays(tmp_path / f"p_{name}" / "predictions.npz")
        att[name] = arrays(tmp_path / f"a_{name}" / "attr.npz")
        assert (tmp_path / f"p_{name}" / "pred_t0_s0.bw").stat().st_size > 0
    check_mean(pred["one"], pred["two"], pred["both"], 2e-6)
    check_mean(att["one"], att["two"], att["both"], 1e-6)
    # An npz run into a regions run's folder: the tracks and regions.bed described the earlier rows, and go.
    p = run("predict", "--model", runs["profile"], "--npz", runs["dir"] / "profile_data" / "test.npz", "--out",
            tmp_path / "p_one", "--quiet", "--threads", 1)
    assert p.returncode == 0, p.stderr
    assert sorted(f.name for f in (tmp_path / "p_one").iterdir()) == ["predictions.npz"]
    # Without --controls each model needs its training run's bigWigs; these ran from arrays and name none.
    e = run("predict", "--model", runs["profile"], "--model", runs["profile2"], "--out", tmp_path / "e", *common)
    assert e.returncode == 1 and "give them with --controls" in e.stderr, e.stderr


def test_models_that_cannot_be_averaged_are_refused(runs, tmp_path):
    npz = runs["dir"] / "binary_data" / "test.npz"
    r = run("predict", "--model", runs["binary"], "--model", runs["profile"], "--npz", npz, "--out", tmp_path / "a")
    assert r.returncode == 1 and "cannot be averaged" in r.stderr, r.stderr
    r = run("predict", "--model", runs["binary"], "--model", str(runs["binary"]) + "/", "--npz", npz, "--out",
            tmp_path / "c")
    assert r.returncode == 1 and "given twice" in r.stderr, r.stderr
    w = runs["binary"] / "model.safetensors"
    r = run("attribute", "--model", runs["binary"], "--model", runs["binary2"], "--weights", w, "--npz", npz,
            "--out", tmp_path / "b")
    assert r.returncode == 2 and "one weights file cannot serve 2" in r.stderr, r.stderr  # the command line alone
    r = run("variants", "--model", runs["binary"], "--model", runs["binary2"], "--weights", w, "--vcf", npz,
            "--genome", npz, "--out", tmp_path / "v")
    assert r.returncode == 2 and "one weights file cannot serve 2" in r.stderr, r.stderr
