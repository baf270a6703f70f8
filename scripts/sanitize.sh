#!/usr/bin/env bash
# Builds the whole suite with AddressSanitizer + UndefinedBehaviorSanitizer in a second build folder
# (-Db_sanitize=address,undefined -Dcuda=disabled) and runs every test there; any report fails the run.
# Usage: scripts/sanitize.sh [build-dir] [doctest args...]   (default build-asan; called from .ci/run)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build-asan}
shift || true
if [ ! -f "$BUILD/build.ninja" ]; then
  meson setup "$BUILD" -Dcuda=disabled -Dbench=false -Db_sanitize=address,undefined -Db_lundef=false \
    -Dbuildtype=plain -Dcpp_args=-O1 >/dev/null  # -O1, no -g: the usual sanitizer setting, half the compile time
fi
ninja -C "$BUILD" tests/lowpass_tests tools/lowpass
# halt_on_error makes any UBSan report a failure; leaks are errors too (LeakSanitizer).
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
"$BUILD/tests/lowpass_tests" "$@"
echo "sanitize: clean ($BUILD)"
