# Runs the lowpass CLI for the tests: $LOWPASS_CLI (scripts/test_python.sh points it at build/tools/lowpass),
# else build/tools/lowpass of this checkout; skips (or fails, under LOWPASS_REQUIRE_CLI) when it is absent.
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
