# Inputs as users' files come (docs/reliability.md, "Bad inputs" and the audit findings): a narrowPeak whose name
# column is empty or holds a space keeps its summits; evaluate reads a binary y of shape (N,) as training does; a bad
# value in a model folder's config.json names the file; an --out that cannot be what the command writes is refused
# before any work. The CLI: python/tests/cli_run.py.
import json
import os

import numpy as np
import pytest

from cli_run import run_cli as run, simulated_runs


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return simulated_runs(tmp_path_factory.mktemp("runs"), controls=False)


def one_line_error(r):
    assert r.returncode == 1, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    return lines[0]


def test_narrowpeak_name_column_empty_or_with_a_space_keeps_the_summits(runs, tmp_path):
    rng = np.random.default_rng(5)
    seq = "".join(rng.choice(list("ACGT"), 5000))
    (tmp_path / "g.fa").write_text(">chr1\n" + "\n".join(seq[i:i + 60] for i in range(0, len(seq), 60)) + "\n")
    peaks = [(1000, 1400, 50), (2000, 2300, 260), (3000, 3100, 7)]
    names = {"clean": lambda i: f"peak_{i}", "empty": lambda i: "", "space": lambda i: f"peak {i}"}
    npz = {}
    for kind, name in names.items():
        bed = tmp_path / f"{kind}.bed"
        bed.write_text("".join(f"chr1\t{s}\t{e}\t{name(i)}\t0\t.\t1.5\t0\t0\t{o}\n" for i, (s, e, o) in enumerate(peaks)))
        r = run("predict", "--model", runs["binary"], "--regions", bed, "--genome", tmp_path / "g.fa",
                "--out", tmp_path / kind, "--quiet")
        assert r.returncode == 0, r.stderr
        npz[kind] = np.load(tmp_path / kind / "predictions.npz")["logits"]
        starts = [int(l.split("\t")[1]) for l in (tmp_path / kind / "regions.bed").read_text().splitlines()]
        assert starts == [s + o - 100 for s, e, o in peaks], kind  # windows of 200 centred on the summits
    np.testing.assert_array_equal(npz["empty"], npz["clean"])
    np.testing.assert_array_equal(npz["space"], npz["clean"])


def test_evaluate_reads_a_binary_y_of_shape_n_as_one_task(runs, tmp_path):
    d = dict(np.load(runs["dir"] / "binary_data" / "test.npz"))
    assert d["y"].shape[1:] == (1,)
    np.savez(tmp_path / "t2.npz", x=d["x"], y=d["y"])
    np.savez(tmp_path / "t1.npz", x=d["x"], y=d["y"][:, 0])
    r = run("predict", "--model", runs["binary"], "--npz", tmp_path / "t2.npz", "--out", tmp_path / "p", "--quiet")
    assert r.returncode == 0, r.stderr
    got = {}
    for y in ("t2", "t1"):
        for how in (["--model", runs["binary"]], ["--predictions", tmp_path / "p" / "predictions.npz"]):
            out = tmp_path / f"{y}_{how[0][2:]}.json"
            r = run("evaluate", "--npz", tmp_path / f"{y}.npz", *how, "--out", out, "--quiet")
            assert r.returncode == 0, r.stderr
            got[(y, how[0])] = json.loads(out.read_text())
    for how in ("--model", "--predictions"):
        assert got[("t1", how)] == got[("t2", how)]
    # the attribution metrics' --rows positives reads it too
    r = run("attribute", "--model", runs["binary"], "--npz", tmp_path / "t2.npz", "--out", tmp_path / "a", "--quiet")
    assert r.returncode == 0, r.stderr
    for y in ("t2", "t1"):
        r = run("evaluate", "--npz", tmp_path / f"{y}.npz", "--attr", tmp_path / "a" / "attr.npz", "--ohe",
                tmp_path / "a" / "ohe.npz", "--rows", "positives", "--out", tmp_path / f"{y}_attr.json")
        assert r.returncode == 0, r.stderr
    assert (json.loads((tmp_path / "t1_attr.json").read_text()) ==
            json.loads((tmp_path / "t2_attr.json").read_text()))
    # a mismatch names the model directory, not "the model's"
    np.savez(tmp_path / "t3.npz", x=d["x"], y=np.stack([d["y"][:, 0]] * 2, axis=1))
    msg = one_line_error(run("evaluate", "--npz", tmp_path / "t3.npz", "--model", runs["binary"],
                             "--out", tmp_path / "m.json", "--quiet"))
    assert f"--model {runs['binary']}: logits" in msg and "t3.npz" in msg, msg


@pytest.mark.parametrize("edit, what", [
    (lambda m: m.update(input_length="200"), "model.input_length"),
    (lambda m: m.update(dtype="f16"), "model.dtype"),
    (lambda m: m.update(type=5), "model.type"),
])
def test_a_bad_value_in_a_model_folders_config_names_the_file(runs, tmp_path, edit, what):
    model = tmp_path / "model"
    model.mkdir()
    cfg = json.loads((runs["binary"] / "config.json").read_text())
    edit(cfg["model"])
    (model / "config.json").write_text(json.dumps(cfg))
    (model / "model.safetensors").write_bytes((runs["binary"] / "model.safetensors").read_bytes())
    (tmp_path / "s.fa").write_text(">a\n" + "ACGT" * 50 + "\n")
    msg = one_line_error(run("predict", "--model", model, "--fasta", tmp_path / "s.fa", "--out", tmp_path / "p"))
    assert msg.startswith(f"lowpass: error: {model / 'config.json'}: {what}"), msg


def test_an_out_that_cannot_be_written_is_refused_first(runs, tmp_path):
    folder = tmp_path / "folder"
    folder.mkdir()
    msg = one_line_error(run("evaluate", "--npz", runs["dir"] / "binary_data" / "test.npz", "--model", runs["binary"],
                             "--out", folder, "--quiet"))
    assert f"{folder}: is a folder; --out names the metrics file" in msg, msg
    msg = one_line_error(run("export", "--config", runs["dir"] / "binary.json", "--out", folder, "--quiet"))
    assert f"{folder}: is a folder; --out names the npz file" in msg, msg
    assert list(folder.iterdir()) == []
    afile = tmp_path / "afile"
    afile.write_text("keep")
    msg = one_line_error(run("simulate", "--out", afile, "--n", "10"))
    assert f"{afile}: cannot create the output folder (--out)" in msg, msg
    msg = one_line_error(run("export", "--config", runs["dir"] / "binary.json", "--out", afile / "x.npz", "--quiet"))
    assert f"{afile}: cannot create the folder of --out" in msg, msg
    assert afile.read_text() == "keep"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into any folder (checked by hand with setpriv as nobody)")
def test_a_read_only_out_folder_is_refused_before_the_work(runs, tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    npz = runs["dir"] / "binary_data" / "test.npz"
    for cmd in (["predict", "--model", runs["binary"], "--npz", npz, "--out", ro],
                ["attribute", "--model", runs["binary"], "--npz", npz, "--out", ro],
                ["marginalize", "--model", runs["binary"], "--npz", npz, "--sequence", "ACGT", "--backgrounds", "4", "--out", ro]):
        msg = one_line_error(run(*cmd, "--quiet"))
        assert f"{ro}: cannot write into the output folder (--out)" in msg, msg
    msg = one_line_error(run("evaluate", "--npz", npz, "--model", runs["binary"], "--out", ro / "m.json", "--quiet"))
    assert f"{ro}: cannot write into the folder of --out" in msg, msg
    msg = one_line_error(run("export", "--config", runs["dir"] / "binary.json", "--out", ro / "x.npz", "--quiet"))
    assert f"{ro}: cannot write into the folder of --out" in msg, msg
    msg = one_line_error(run("simulate", "--out", ro, "--n", "10"))
    assert f"{ro}: cannot write into the output folder (--out)" in msg, msg
    assert list(ro.iterdir()) == []


def test_train_does_not_write_its_resolved_config_over_the_users(runs, tmp_path):
    exp = tmp_path / "exp"
    exp.mkdir()
    text = (runs["dir"] / "binary.json").read_text()
    (exp / "config.json").write_text(text)
    msg = one_line_error(run("train", "--config", exp / "config.json", "--out", exp, "--quiet"))
    assert f"{exp / 'config.json'}: this --config is the config.json that train writes into --out" in msg, msg
    assert (exp / "config.json").read_text() == text and sorted(p.name for p in exp.iterdir()) == ["config.json"]
    # a run resumed with its own config.json (the documented way to raise train.epochs) is not that
    r = run("train", "--config", runs["binary"] / "config.json", "--out", runs["binary"], "--resume", "--quiet")
    assert r.returncode == 0, r.stderr


def test_a_control_array_that_does_not_fit_the_model_names_the_npz(runs, tmp_path_factory):
    ctl = simulated_runs(tmp_path_factory.mktemp("ctl"), controls=True)  # profile model with controls "shared"
    d = dict(np.load(ctl["dir"] / "profile_data" / "test.npz"))
    t = tmp_path_factory.mktemp("npz")
    np.savez(t / "none.npz", **{k: v for k, v in d.items() if k != "control"})
    np.savez(t / "short.npz", **{**d, "control": d["control"][..., :-1]})
    for name, want in [("none.npz", "no array 'control', but the model takes control tracks"),
                       ("short.npz", "does not fit the model: expected")]:
        for cmd in ("predict", "attribute"):
            msg = one_line_error(run(cmd, "--model", ctl["profile"], "--npz", t / name, "--out", t / "o", "--quiet"))
            assert f"{t / name}: " in msg and want in msg, msg
    # a model without controls (runs["profile"]) and an npz that has them
    msg = one_line_error(run("predict", "--model", runs["profile"], "--npz", ctl["dir"] / "profile_data" / "test.npz",
                             "--out", t / "o", "--quiet"))
    assert "test.npz: has a 'control' array, but the model takes no control track" in msg, msg
    # training: the config's model.controls against the npz, with the file named before the first batch
    cfg = json.loads((ctl["dir"] / "profile.json").read_text())
    cfg["model"]["controls"] = "none"
    (t / "c.json").write_text(json.dumps(cfg))
    msg = one_line_error(run("train", "--config", t / "c.json", "--out", t / "run", "--quiet"))
    assert "train.npz: gives control tracks (N, 1, S, O) but the model takes no control (model.controls)" in msg, msg
