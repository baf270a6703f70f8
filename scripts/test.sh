#!/usr/bin/env bash
# The README's test command: install dependencies, build (CUDA where nvcc is found), run every test.
# LOWPASS_CUDA=enabled makes a missing or failing CUDA build an error (.ci/run sets it).
set -euo pipefail
cd "$(dirname "$0")/.."
# The benchmark and GPU-session scripts run only on other machines (a GPU, PyTorch): check here that they parse.
python3 -c 'import ast, sys; [ast.parse(open(f).read(), f) for f in sys.argv[1:]]' bench/*.py scripts/*.py
for f in bench/*.sh scripts/*.sh; do bash -n "$f"; done
scripts/setup.sh build
meson test -C build --print-errorlogs --num-processes 1
bash examples/embed/run.sh build  # the installed library (meson install --destdir) + pkg-config, as a user's tool builds
bash scripts/test_python.sh build  # pip install . (nanobind module) into .venv-python, then pytest python/tests
