# What `lowpass train` does with its run folder and what predict/attribute do with theirs (docs/reliability.md): a
# folder holding a run (final weights, test metrics or a checkpoint) is not overwritten, a second train into a folder in use is refused, a
# resume names the epoch checkpoint it could start from and refuses changed training data, temporaries of killed
# writers are removed, a corrupt weights file is named, and an attribute run clears the earlier run's outputs.
# The CLI: python/tests/cli_run.py.
import fcntl
import json
import os
import shutil
import subprocess
import time

import pytest

from cli_run import CLI, run_cli as run, simulated_runs

np = pytest.importorskip("numpy")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    d = tmp_path_factory.mktemp("runs")
    out = simulated_runs(d)
    out["config"] = d / "binary.json"
    return out


def copy_run(runs, tmp_path, name="run"):
    dst = tmp_path / name
    shutil.copytree(runs["binary"], dst)
    return dst


def test_a_finished_run_without_checkpoints_is_not_overwritten(runs, tmp_path):
    r = copy_run(runs, tmp_path)
    shutil.rmtree(r / "checkpoints")  # a clean-up that keeps the model
    before = (r / "model.safetensors").read_bytes()
    t = run("train", "--config", runs["config"], "--out", r, "--quiet")
    assert t.returncode == 1 and "already holds a training run (model.safetensors)" in t.stderr, t.stderr
    assert (r / "model.safetensors").read_bytes() == before
    # A folder a run killed in its first epoch left (config.json, best weights, a metrics line) is started afresh.
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    for n in ("config.json", "best.safetensors", "metrics.jsonl"):
        shutil.copy(runs["binary"] / n, fresh / n)
    t = run("train", "--config", runs["config"], "--out", fresh, "--quiet")
    assert t.returncode == 0, t.stderr
    # --out that is a file: the message names --out.
    (tmp_path / "afile").write_text("x")
    t = run("train", "--config", runs["config"], "--out", tmp_path / "afile", "--quiet")
    assert t.returncode == 1 and "cannot create the run folder (--out)" in t.stderr, t.stderr


def test_resume_without_last_names_the_epoch_checkpoint(runs, tmp_path):
    r = copy_run(runs, tmp_path)
    (r / "checkpoints" / "last.safetensors").unlink()
    t = run("train", "--config", runs["config"], "--out", r, "--quiet", "--resume")
    assert t.returncode == 1 and "to resume from the end of epoch 1, copy" in t.stderr, t.stderr
    t = run("train", "--config", runs["config"], "--out", tmp_path / "never", "--quiet", "--resume")
    assert t.returncode == 1 and "run it again without --resume" in t.stderr, t.stderr


def test_a_folder_in_use_is_refused_and_stale_temporaries_are_removed(runs, tmp_path):
    r = copy_run(runs, tmp_path)
    cfg = json.loads(runs["config"].read_text())
    cfg["train"]["epochs"] = 2  # resume a finished run for one more epoch
    (tmp_path / "two.json").write_text(json.dumps(cfg))
    with open(r / ".lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        f.write("node7 pid 12345")
        f.flush()
        t = run("train", "--config", tmp_path / "two.json", "--out", r, "--quiet", "--resume")
    assert t.returncode == 1 and "in use by another lowpass train (node7 pid 12345)" in t.stderr, t.stderr
    dead = r / "checkpoints" / "last.safetensors.tmp.2147483000.0"  # no such pid can run (pid_max <= 2^22)
    dead.write_bytes(b"partial")
    os.utime(dead, (time.time() - 7200, time.time() - 7200))  # unwritten for over an hour
    t = run("train", "--config", tmp_path / "two.json", "--out", r, "--resume")
    assert t.returncode == 0, t.stderr
    assert not dead.exists() and "removed " + str(dead) in t.stderr, t.stderr
    assert len((r / "metrics.jsonl").read_text().splitlines()) == 2


def test_resume_refuses_changed_training_data(runs, tmp_path):
    r = copy_run(runs, tmp_path)
    cfg = json.loads(runs["config"].read_text())
    cfg["train"]["epochs"] = 2
    (tmp_path / "two.json").write_text(json.dumps(cfg))
    train_npz = cfg["data"]["train"]  # edited in place (its path is part of the compared config), then restored
    shutil.copy(train_npz, tmp_path / "saved.npz")
    try:
        with np.load(train_npz) as z:
            a = {k: z[k][: len(z[k]) // 2] for k in z.files}  # half the rows: fewer batches per epoch
        np.savez(train_npz, **a)
        t = run("train", "--config", tmp_path / "two.json", "--out", r, "--quiet", "--resume")
    finally:
        shutil.copy(tmp_path / "saved.npz", train_npz)
    assert t.returncode == 1 and "the training data changed since the run started" in t.stderr, t.stderr
    t = run("train", "--config", tmp_path / "two.json", "--out", r, "--quiet", "--resume")
    assert t.returncode == 0, t.stderr  # the data restored: the resume goes on


def test_a_corrupt_model_file_is_named(runs, tmp_path):
    r = copy_run(runs, tmp_path)
    b = bytearray((r / "best.safetensors").read_bytes())
    b[-5] ^= 0x40
    (r / "best.safetensors").write_bytes(bytes(b))
    p = run("predict", "--model", r, "--npz", runs["dir"] / "binary_data" / "test.npz", "--out", tmp_path / "p")
    assert p.returncode == 1 and "best.safetensors: checksum mismatch" in p.stderr, p.stderr
    assert "rewritten by another tool" in p.stderr  # an edit that kept lowpass's metadata reads the same
    # A resume reads the best weights from the best epoch's checkpoint instead (they are the same weights).
    cfg = json.loads(runs["config"].read_text())
    cfg["train"]["epochs"] = 2
    (tmp_path / "two.json").write_text(json.dumps(cfg))
    t = run("train", "--config", tmp_path / "two.json", "--out", r, "--resume")
    assert t.returncode == 0 and "epoch_1.safetensors (the best epoch's checkpoint) instead" in t.stderr, t.stderr


def test_attribute_replaces_its_outputs_as_a_pair_and_a_failed_rerun_keeps_them(runs, tmp_path):
    out = tmp_path / "a"
    npz = runs["dir"] / "binary_data" / "test.npz"
    a = run("attribute", "--model", runs["binary"], "--npz", npz, "--out", out, "--method", "deepshap", "--refs", 2,
            "--quiet")
    assert a.returncode == 0, a.stderr
    first = {n: (out / n).read_bytes() for n in ("ohe.npz", "attr.npz", "attribute.json", "convergence.json")}
    with np.load(npz) as d, np.load(out / "ohe.npz") as o:  # x as float32, appended a batch (16 rows) at a time
        np.testing.assert_array_equal(o["arr_0"], d["x"].astype(np.float32))
    # A rerun that fails at its first batch (a target the model lacks) leaves the earlier set as it was.
    a = run("attribute", "--model", runs["binary"], "--npz", npz, "--out", out, "--target", "counts", "--quiet")
    assert a.returncode == 1, a.stderr
    assert {n: (out / n).read_bytes() for n in first} == first
    # After a successful run: an earlier run's side files it did not write go (grad writes no convergence report;
    # an npz run no regions.bed or attr.bw), except regions.bed while predict's predictions.npz may need it; the
    # user's files stay; a killed writer's old temporary goes; a recent one (perhaps a live writer elsewhere) stays.
    for n in ("regions.bed", "attr.bw", "predictions.npz", "notes.txt"):
        (out / n).write_text("earlier")
    old_tmp, new_tmp = out / "attr.npz.tmp.2147483000.1", out / "ohe.npz.tmp.2147483001.1"
    for t in (old_tmp, new_tmp):
        t.write_text("partial")
    os.utime(old_tmp, (time.time() - 7200, time.time() - 7200))
    a = run("attribute", "--model", runs["binary"], "--npz", npz, "--out", out, "--method", "grad", "--quiet")
    assert a.returncode == 0, a.stderr
    assert sorted(p.name for p in out.iterdir()) == ["attr.npz", "attribute.json", "notes.txt", "ohe.npz",
                                                     new_tmp.name, "predictions.npz", "regions.bed"]
    assert (out / "attr.npz").read_bytes() != first["attr.npz"]
    (out / "predictions.npz").unlink()  # now regions.bed can only describe an earlier attribute run's rows
    a = run("attribute", "--model", runs["binary"], "--npz", npz, "--out", out, "--method", "grad", "--quiet")
    assert a.returncode == 0 and not (out / "regions.bed").exists(), a.stderr


def test_attribute_json_gives_evaluate_the_model_types_cut_off(runs, tmp_path):
    # attribute.json records what made the scores; evaluate takes the model type's cut-off from it (REFERENCE §4.5a:
    # round(200 L / 1346) for profile models, round(0.15 L) for binary), with no --npz to tell the type.
    want = {"binary": lambda n: max(1, (150 * n + 500) // 1000), "profile": lambda n: max(1, (200 * n + 673) // 1346)}
    for kind in ("binary", "profile"):
        out = tmp_path / kind
        npz = runs["dir"] / f"{kind}_data" / "test.npz"
        a = run("attribute", "--model", runs[kind], "--npz", npz, "--out", out, "--method", "deepshap", "--refs", 2,
                "--seed", 5, "--quiet")
        assert a.returncode == 0, a.stderr
        info = json.loads((out / "attribute.json").read_text())
        with np.load(npz) as d:
            n, length = d["x"].shape[0], d["x"].shape[2]
        assert info["format"] == "lowpass-attribution" and info["model_type"] == kind, info
        assert (info["rows"], info["input_length"], info["method"], info["refs"], info["seed"]) == \
            (n, length, "deepshap", 2, 5), info
        assert info["models"] == [str(runs[kind])] and info["input"] == {"npz": str(npz)}, info
        m = tmp_path / f"{kind}.json"
        e = run("evaluate", "--attr", out / "attr.npz", "--ohe", out / "ohe.npz", "--out", m)
        assert e.returncode == 0, e.stderr
        it = json.loads(m.read_text())["interpretability"]
        if kind == "profile":  # the test tells the two rules apart
            assert want["binary"](length) != want["profile"](length), length
        assert it["freq_limit"] == want[kind](length), (kind, length, it)
        assert it["freq_limit_from"] == f"attribute.json beside {out / 'attr.npz'}: {kind} model", it
        # --freq-limit overrides it; a file of another shape beside attribute.json is not described by it.
        e = run("evaluate", "--attr", out / "attr.npz", "--ohe", out / "ohe.npz", "--out", m, "--freq-limit", 7)
        assert e.returncode == 0 and json.loads(m.read_text())["interpretability"]["freq_limit"] == 7, e.stderr
        with np.load(out / "attr.npz") as h, np.load(out / "ohe.npz") as o:
            np.savez(out / "fewer.npz", arr_0=h["arr_0"][:-1])
            np.savez(tmp_path / f"{kind}_ohe_fewer.npz", arr_0=o["arr_0"][:-1])
        e = run("evaluate", "--attr", out / "fewer.npz", "--ohe", tmp_path / f"{kind}_ohe_fewer.npz", "--out", m)
        assert e.returncode == 0, e.stderr
        it = json.loads(m.read_text())["interpretability"]
        assert it["freq_limit"] == want["binary"](length) and it["freq_limit_from"].startswith("default"), it
    # Seed sets made by different model types cannot share a default cut-off.
    for kind in ("binary", "profile"):
        with np.load(tmp_path / kind / "attr.npz") as h:
            np.savez(tmp_path / kind / "attr.npz", arr_0=h["arr_0"][:2, :, :40])
        info = json.loads((tmp_path / kind / "attribute.json").read_text())
        info.update(rows=2, input_length=40)
        (tmp_path / kind / "attribute.json").write_text(json.dumps(info))
    e = run("evaluate", "--attr-sets", f"{tmp_path / 'binary' / 'attr.npz'},{tmp_path / 'profile' / 'attr.npz'}",
            "--out", tmp_path / "s.json")
    assert e.returncode == 1 and "was made by a profile model but" in e.stderr and "--freq-limit" in e.stderr, \
        e.stderr


def test_export_revcomp_says_what_a_profile_test_split_holds(runs, tmp_path):
    # The trainer tests profile models without reverse complements (REFERENCE §3.2): export --revcomp writes the
    # test split's rows once and says so; the valid split gets them.
    with np.load(runs["dir"] / "profile_data" / "test.npz") as d:
        n = d["x"].shape[0]
    with np.load(runs["dir"] / "profile_data" / "valid.npz") as d:
        nv = d["x"].shape[0]
    for split, rows, said in (("test", n, f"{n} test examples (a profile model's test split has no reverse "
                                          "complements: the trainer tests without them)"),
                              ("valid", 2 * nv, f"{nv} valid examples and their reverse complements")):
        r = run("export", "--config", runs["dir"] / "profile.json", "--split", split, "--revcomp", "--quiet",
                "--out", tmp_path / f"{split}.npz")
        assert r.returncode == 0 and said in r.stdout, r.stdout + r.stderr
        with np.load(tmp_path / f"{split}.npz") as d:
            assert d["x"].shape[0] == rows, (split, d["x"].shape)


def test_evaluate_names_the_npz_of_the_wrong_length_and_export_creates_its_folder(runs, tmp_path):
    e = run("evaluate", "--npz", runs["dir"] / "profile_data" / "test.npz", "--model", runs["binary"], "--out",
            tmp_path / "m.json")
    assert e.returncode == 1 and "test.npz: x has length" in e.stderr and "input_length is 200" in e.stderr, e.stderr
    x = run("export", "--config", runs["config"], "--out", tmp_path / "new" / "sub" / "t.npz")
    assert x.returncode == 0 and (tmp_path / "new" / "sub" / "t.npz").exists(), x.stderr


def test_a_filesystem_without_flock_trains_with_a_warning(runs, tmp_path):
    cc = shutil.which("cc")
    if cc is None:
        pytest.skip("no C compiler for the flock shim")
    (tmp_path / "noflock.c").write_text("#include <errno.h>\nint flock(int fd, int op) { (void)fd; (void)op; "
                                        "errno = ENOLCK; return -1; }\n")
    shim = tmp_path / "noflock.so"
    subprocess.run([cc, "-shared", "-fPIC", "-o", shim, tmp_path / "noflock.c"], check=True)
    env = dict(os.environ, LD_PRELOAD=str(shim))
    r = subprocess.run([CLI, "train", "--config", runs["config"], "--out", tmp_path / "run"], env=env,
                       capture_output=True, text=True)
    assert r.returncode == 0 and "cannot lock" in r.stderr and "in use" not in r.stderr, r.stderr


@pytest.mark.parametrize("kind", ["binary", "profile"])
def test_attribute_ism_windows_equal_whole_passes(runs, tmp_path, kind):
    # fastISM (the default) against a whole forward pass per mutant (--ism-full, hidden), float32 trained models
    # (the profile one with controls): within 1e-5 of the largest score (docs/attribution.md, `ism`).
    a = np.load(runs["dir"] / f"{kind}_data" / "test.npz")
    np.savez(tmp_path / "in.npz", **{k: a[k][:2] for k in a.files if k in ("x", "control")})
    for target in (["logits"] if kind == "binary" else ["profile", "counts"]):
        got = {}
        for full in (False, True):
            out = tmp_path / f"{target}_{int(full)}"
            r = run("attribute", "--model", runs[kind], "--npz", tmp_path / "in.npz", "--out", out, "--method", "ism",
                    "--target", target, "--quiet", "--threads", 1, *(["--ism-full"] if full else []))
            assert r.returncode == 0, r.stderr
            got[full] = np.load(out / "attr.npz")["arr_0"].astype(np.float64)
        scale = np.abs(got[True]).max()
        assert scale > 0, target
        np.testing.assert_allclose(got[False], got[True], rtol=0, atol=1e-5 * scale, err_msg=target)
