# The CLI's error contract (docs/cli.md): a usage mistake on the command line prints one line
# `lowpass: error: ...` and exits 2; an error in a file, config or run prints one line and exits 1;
# --help and --version exit 0. The CLI: python/tests/cli_run.py.
import pytest

from cli_run import run_cli as run


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
