#!/usr/bin/env bash
# Crash-safety check: `lowpass train` on a tiny task is killed with SIGKILL at random moments CYCLES times,
# resumed with --resume each time, and its final weights compared byte for byte with an uninterrupted run
# (CPU, one thread); every checkpoint on disk is verified after each kill. Then SIGTERM/SIGINT and the numerics guard.
# Usage: scripts/kill_resume.sh [CYCLES] [build-dir]   (default 20 cycles, build; the doctest cases in tests/test_reliability.cpp)
set -euo pipefail
cd "$(dirname "$0")/.."
CYCLES=${1:-20}
BUILD=${2:-build}
if [ ! -f "$BUILD/build.ninja" ]; then
  meson setup "$BUILD" -Dcuda=disabled -Dbench=false >/dev/null
fi
ninja -C "$BUILD" tests/lowpass_tests tools/lowpass >/dev/null
export LOWPASS_BIN="$PWD/$BUILD/tools/lowpass"
LOG="$BUILD/kill_resume.log"
set +e
LOWPASS_KILL_CYCLES=$CYCLES "$BUILD/tests/lowpass_tests" -ts=reliability -tc='crash safety*,numerics guard*' -s >"$LOG" 2>&1
rc=$?
set -e
grep -E 'kill/resume:|test cases|assertions' "$LOG" | sed 's/^ *//' | sort -u
[ $rc -ne 0 ] && echo "kill_resume: FAILED, see $LOG" >&2
exit $rc
