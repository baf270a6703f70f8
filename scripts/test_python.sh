#!/usr/bin/env bash
# Build the Python module from this checkout (`pip install .`, meson-python + nanobind from pip) into a venv
# in an ignored folder, then run its pytest suite (python/tests), the CLI-parity test against build/tools/lowpass.
# Usage: scripts/test_python.sh [build-dir]   (default build; called by scripts/test.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
VENV=$(realpath -m "${LOWPASS_PY_VENV:-.venv-python}")
PY=${PYTHON:-python3}
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
export PATH="$VENV/bin:$PATH"  # pip's meson (meson-python wants a newer one than Debian's) and ninja
"$VENV/bin/python" -m pip install -q --disable-pip-version-check "meson-python>=0.15" "meson>=1.2" ninja \
  "nanobind>=2.0" numpy pytest
# UCSC's bigWig reader for the zoom-level test (test_cli_tracks.py); a machine without its wheel skips that test.
"$VENV/bin/python" -m pip install -q --disable-pip-version-check pybbi || echo "test_python: pybbi not installed; its test skips" >&2
# No build isolation, so that build-python/ is reused between runs (an incremental rebuild).
# A build-python/ configured by another meson version cannot be reused: start it afresh once on failure.
install() {
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-build-isolation --no-deps \
    --config-settings=build-dir=build-python .
}
install || { rm -rf build-python && install; }
LOWPASS_CLI="$PWD/$BUILD/tools/lowpass" LOWPASS_REQUIRE_CLI=1 "$VENV/bin/python" -m pytest -q python/tests
