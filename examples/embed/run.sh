#!/usr/bin/env bash
# CI check of the installed library: `meson install --destdir` a configured build into a temp prefix, then
# build examples/embed with make + pkg-config against that prefix only, and run both programs.
# Usage: examples/embed/run.sh [build-dir]   (default: build; called by scripts/test.sh)
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build}
DEST=$(mktemp -d)
trap 'rm -rf "$DEST"' EXIT
meson install -C "$BUILD" --destdir "$DEST" --quiet
PC=$(find "$DEST" -name lowpass.pc -print -quit)
[ -n "$PC" ] || { echo "examples/embed: lowpass.pc was not installed" >&2; exit 1; }
# Nothing but the public headers is installed.
extra=$(find "$DEST" -name '*.h' ! -path '*/include/lowpass/lowpass.h' ! -path '*/include/lowpass/lowpass_c.h')
[ -z "$extra" ] || { echo "examples/embed: internal headers installed: $extra" >&2; exit 1; }
# The shared library exports the public API only (hidden visibility; include/lowpass/*.h push default): no engine,
# nlohmann-json or Eigen symbol an embedding program's own copies could clash with. (CUDA objects are not covered:
# meson passes no visibility flag to nvcc: lowpass::cuda and runtime.cu's lowpass::CudaState stay exported.)
SO=$(find "$DEST" -name 'liblowpass.so.*' -type f -print -quit)
leaked=$(nm -D --defined-only -C "$SO" | cut -d' ' -f3- | sed -E 's/^(typeinfo name for|typeinfo for|vtable for|VTT for) //' |
  grep -E '^(nlohmann|Eigen::|lowpass::)' | grep -vE '^lowpass::(api::|cuda::|CudaState::)' | head -5 || true)
[ -z "$leaked" ] || { echo "examples/embed: internal symbols exported by $SO: $leaked" >&2; exit 1; }
WORK="$DEST/work"
mkdir -p "$WORK"
cp examples/embed/embed.cpp examples/embed/embed_c.c examples/embed/Makefile "$WORK/"
# The .pc names the real prefix; the sysroot maps its -I/-L paths into the destdir.
export PKG_CONFIG_PATH=$(dirname "$PC") PKG_CONFIG_SYSROOT_DIR="$DEST"
make -s -C "$WORK"
(cd "$WORK" && ./embed && ./embed_c)
echo "examples/embed: built against the installed library and ran"
