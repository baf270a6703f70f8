#!/usr/bin/env bash
# Packs CUDA-enabled binaries built here, with the non-system shared libraries they need, into .dev/
# for a GPU machine that has the CUDA driver and toolkit but none of our Debian libraries (bench/RESULTS.md).
# Usage: scripts/gpu_bundle.sh [BUILD_DIR]  (then carry [".devpack"] in the device call)
#          (BUILD_DIR configured with -Dcuda=enabled -Dnative=false -Dblas=disabled)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-dev}
rm -rf .dev && mkdir -p .dev/bin .dev/lib
grep -qx '/.dev/' .git/info/exclude 2>/dev/null || echo '/.dev/' >> .git/info/exclude
for b in tests/lowpass_tests tools/lowpass bench/bench_train_step bench/bench_conv1d bench/bench_optim; do
  [ -x "$build/$b" ] && cp "$build/$b" .dev/bin/
done
# Libraries: everything ldd resolves except glibc, the C++/OpenMP runtimes and the CUDA libraries
# (the GPU machine's own, newer ones are used).
for f in .dev/bin/*; do ldd "$f"; done | awk '/=> \//{print $3}' | sort -u | while read -r lib; do
  case "$(basename "$lib")" in
    libc.so*|libm.so*|libdl.so*|libpthread.so*|librt.so*|ld-linux*|libstdc++*|libgcc_s*|libgomp*) ;;
    libcublas*|libcufft*|libcudart*|libcudnn*) ;;
    *) cp -L "$lib" .dev/lib/ ;;
  esac
done
strip .dev/bin/* 2>/dev/null || true
# The device call carries at most 64 MiB of working tree: .dev travels packed (about 14 MB) as .devpack/dev.tar.xz,
# which scripts/gpu_lease.sh and scripts/gpu_cli_check.sh unpack first. Carry ".devpack".
mkdir -p .devpack && rm -f .devpack/dev.tar.xz
grep -qx '/.devpack/' .git/info/exclude 2>/dev/null || echo '/.devpack/' >> .git/info/exclude
tar cJf .devpack/dev.tar.xz .dev
du -sh .dev .devpack/dev.tar.xz
