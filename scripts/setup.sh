#!/usr/bin/env bash
# Install lowpass's build dependencies from Debian packages (idempotent), then configure and build.
# Usage: scripts/setup.sh [build-dir] [extra meson options...]   (default build dir: build)
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(meson ninja-build g++ pkg-config libeigen3-dev doctest-dev libcli11-dev nlohmann-json3-dev
          libhts-dev libbigwig-dev libopenblas-dev zlib1g-dev python3 python3-dev python3-venv clang libclang-rt-14-dev)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

BUILD=${1:-build}
shift || true
CUDA=${LOWPASS_CUDA:-auto}
# cuDNN (the opt-in conv path) stays `auto` even where LOWPASS_CUDA=enabled: a machine with nvcc but no cuDNN builds.
# LOWPASS_CUDNN=enabled|disabled overrides. An existing build dir gets -Dcudnn only when LOWPASS_CUDNN is set (one
# configured before the option existed would reject it; it picks the option up, as auto, when ninja regenerates).
CUDNN_OPT=()
[ -n "${LOWPASS_CUDNN:-}" ] && CUDNN_OPT=(-Dcudnn="$LOWPASS_CUDNN")
if [ -d "$BUILD" ] && [ -f "$BUILD/build.ninja" ]; then
  meson configure "$BUILD" -Dcuda="$CUDA" "${CUDNN_OPT[@]}" "$@" >/dev/null
else
  [ ${#CUDNN_OPT[@]} -eq 0 ] && CUDNN_OPT=(-Dcudnn=auto)
  meson setup "$BUILD" -Dcuda="$CUDA" "${CUDNN_OPT[@]}" "$@" >/dev/null
fi
bash scripts/cuda_stale.sh "$BUILD"  # meson 1.0 tracks no header dependencies of .cu files: touch the stale ones
ninja -C "$BUILD"
