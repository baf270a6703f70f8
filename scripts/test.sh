#!/usr/bin/env bash
# The README's test command: install dependencies, build (CUDA where nvcc is found), run every test.
# LOWPASS_CUDA=enabled makes a missing or failing CUDA build an error (.ci/run sets it).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh build
meson test -C build --print-errorlogs --num-processes 1
