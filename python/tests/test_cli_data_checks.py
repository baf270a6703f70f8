# Files users write whose mistakes would otherwise pass silently (docs/reliability.md): a key repeated in a model
# folder's config.json or a folds file is refused with the file and the key's path, where JSON readers keep the
# last value. The CLI: python/tests/cli_run.py.
import json

import pytest

from cli_run import run_cli as run


@pytest.mark.parametrize("text, key", [
    ('{"model": {"type": "binary"}, "model": {"type": "profile"}}', "'model'"),
    ('{"model": {"type": "binary", "input_length": 100, "type": "profile"}}', "'model.type'"),
    ('{"model": {"type": "binary", "conv": [{"k": 3}, {"k": 5, "k": 7}]}}', "'model.conv[1].k'"),
])
def test_a_repeated_key_in_a_model_config_is_refused(tmp_path, text, key):
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text(text)
    seqs = tmp_path / "s.fa"
    seqs.write_text(">a\n" + "ACGT" * 25 + "\n")
    r = run("predict", "--model", model, "--fasta", seqs, "--out", tmp_path / "p")
    assert r.returncode == 1, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and f"{model / 'config.json'}: key {key} appears twice" in lines[0], r.stderr
    assert not (tmp_path / "p").exists()


def test_the_same_key_in_sibling_objects_is_not_a_repeat(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"model": {"type": "binary"}, "data": {"type": "x"}}))
    seqs = tmp_path / "s.fa"
    seqs.write_text(">a\n" + "ACGT" * 25 + "\n")
    r = run("predict", "--model", model, "--fasta", seqs, "--out", tmp_path / "p")
    assert "appears twice" not in r.stderr


def test_a_repeated_section_in_a_training_config_is_refused(tmp_path):
    (tmp_path / "c.json").write_text('{"model": {"type": "binary"}, "train": {"max_steps": 6}, "train": {"lr": 0.5}}')
    for cmd in (["train", "--config", tmp_path / "c.json", "--out", tmp_path / "run"],
                ["data-stats", "--config", tmp_path / "c.json"]):
        r = run(*cmd)
        assert r.returncode == 1 and f"{tmp_path / 'c.json'}: key 'train' appears twice" in r.stderr, r.stderr
    assert not (tmp_path / "run").exists()
