#!/usr/bin/env bash
# Meson 1.0's CUDA rules record no header dependencies for .cu files (no depfile), so ninja does not rebuild a .cu
# whose headers changed (docs/cuda.md). This finds each CUDA object in BUILD whose .cu includes (directly or not) a
# project header newer than the object, and touches that .cu so the next ninja run recompiles it. The header list
# comes from the host preprocessor (g++ -MM with __CUDACC__ defined; the CUDA toolkit's headers as system headers,
# not listed); where it fails, the .cu is touched anyway. scripts/setup.sh runs it before ninja.
# Usage: scripts/cuda_stale.sh [BUILD=build]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
cuda_inc=/usr/local/cuda/include
command -v nvcc >/dev/null 2>&1 && cuda_inc="$(dirname "$(dirname "$(command -v nvcc)")")/include"
shopt -s nullglob
for obj in "$build"/*.p/kernels_cuda_*.cu.o; do
  base=$(basename "$obj" .cu.o)      # kernels_cuda_conv1d
  src="kernels/cuda/${base#kernels_cuda_}.cu"
  [ -f "$src" ] || continue
  if deps=$(g++ -std=c++20 -MM -MG -x c++ -D__CUDACC__ -DLOWPASS_HAVE_CUDA=1 -I. -isystem "$cuda_inc" "$src" 2>/dev/null); then
    stale=0
    for f in $(printf '%s\n' "$deps" | sed 's/\\$//' | tr ' ' '\n' | grep -v ':$' | grep -v '^$'); do
      [ -f "$f" ] && [ "$f" -nt "$obj" ] && { stale=1; break; }
    done
  else
    stale=1
  fi
  if [ "$stale" = 1 ]; then
    echo "cuda_stale: $src (a header changed since $obj)" >&2
    touch "$src"
  fi
done
