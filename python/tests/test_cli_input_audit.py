# Inputs as users' files come (docs/reliability.md, "Findings"): a narrowPeak whose name column is empty or holds a
# space keeps its summits; a bad value in a model folder's config.json names the file. The CLI:
# python/tests/cli_run.py.
import json

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
