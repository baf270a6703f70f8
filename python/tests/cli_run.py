# Runs the lowpass CLI for the tests: $LOWPASS_CLI (scripts/test_python.sh points it at build/tools/lowpass),
# else build/tools/lowpass of this checkout; skips (or fails, under LOWPASS_REQUIRE_CLI) when it is absent.
import json
import os
import subprocess

import pytest

CLI = os.environ.get("LOWPASS_CLI") or os.path.join(os.path.dirname(__file__), "..", "..", "build", "tools", "lowpass")


def run_cli(*args):
    if not os.access(CLI, os.X_OK):
        if os.environ.get("LOWPASS_REQUIRE_CLI"):
            pytest.fail(f"the lowpass CLI is not at {CLI}")
        pytest.skip(f"no lowpass CLI at {CLI} (set LOWPASS_CLI)")
    return subprocess.run([CLI, *map(str, args)], capture_output=True, text=True)


def simulated_runs(d, controls=True):
    """A binary (L 200) and a profile (O 40) run directory in d, one epoch each on 40 simulated sequences; with
    controls=False the profile model takes no control track (the simulated one is dropped from its npz files)."""
    out = {}
    for kind, sim in [("binary", ["--length", "200", "--motif-bound", "40"]),
                      ("profile", ["--type", "profile", "--output-length", "40"])]:
        r = run_cli("simulate", "--out", d / f"{kind}_data", "--n", "40", "--seed", "3", *sim)
        assert r.returncode == 0, r.stderr
        cfg = json.loads((d / f"{kind}_data" / "train_config.json").read_text())
        # A fixed seed: the same models every run, so a failure can be rerun (a config without one draws one).
        cfg["train"] = {"epochs": 1, "threads": 1, "batch_size": 16, "progress": False, "seed": 1}
        for k in ("train", "valid", "test"):
            cfg["data"][k] = str(d / f"{kind}_data" / f"{k}.npz")
        if kind == "profile" and not controls:
            import numpy as np
            cfg["model"]["controls"] = "none"
            for k in ("train", "valid", "test"):
                a = dict(np.load(cfg["data"][k]))
                a.pop("control", None)
                np.savez(d / f"{kind}_{k}.npz", **a)
                cfg["data"][k] = str(d / f"{kind}_{k}.npz")
        (d / f"{kind}.json").write_text(json.dumps(cfg))
        r = run_cli("train", "--config", d / f"{kind}.json", "--out", d / kind, "--quiet")
        assert r.returncode == 0, r.stderr
        out[kind] = d / kind
    out["dir"] = d
    return out
