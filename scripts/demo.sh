#!/usr/bin/env bash
# The README's main job: install, build, then simulate a small binary dataset and train the paper's
# binary model with and without the Fourier prior; prints test auROC and high-frequency share.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh build
./build/tools/lowpass demo --out "${1:-demo_out}"
