#!/usr/bin/env bash
# Runs each libFuzzer target (tests/fuzz/fuzz_<target>.cpp) for SECONDS (default 10) from its seed corpus
# and reports executions and crashes per target; exit 1 when any target crashed. Crash inputs: build-fuzz/fuzz-artifacts/.
# Usage: scripts/fuzz.sh [SECONDS] [target...]   (targets: safetensors npz meme config folds bed fasta bigwig vcf; BUILD=build-fuzz)
set -uo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER=${1:-10}
shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -eq 0 ] && TARGETS=(safetensors npz meme config folds bed fasta bigwig vcf)
BUILD=${BUILD:-build-fuzz}

if ! command -v clang++ >/dev/null; then
  echo "fuzz: clang++ not found (apt-get install clang libclang-rt-14-dev)" >&2
  exit 2
fi
if [ ! -f "$BUILD/build.ninja" ]; then
  CXX=clang++ CC=clang meson setup "$BUILD" -Dfuzz=true -Dcuda=disabled -Dbench=false \
    -Db_sanitize=address,undefined -Db_lundef=false >/dev/null || exit 2
fi
ninja -C "$BUILD" $(printf 'tests/fuzz/fuzz_%s ' "${TARGETS[@]}") >/dev/null || { echo "fuzz: build failed" >&2; exit 2; }

ART="$BUILD/fuzz-artifacts"
mkdir -p "$ART"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
failed=0
printf '%-12s %10s %8s %8s  %s\n' target execs exec/s crashes result
for t in "${TARGETS[@]}"; do
  work="$BUILD/fuzz-corpus/$t"   # grows; the committed seeds stay untouched
  mkdir -p "$work"
  log="$BUILD/fuzz-$t.log"
  "$BUILD/tests/fuzz/fuzz_$t" "$work" "tests/fuzz/corpus/$t" -max_total_time="$SECONDS_PER" \
    -rss_limit_mb=2048 -malloc_limit_mb=1024 -timeout=10 -max_len=8192 -print_final_stats=1 \
    -artifact_prefix="$ART/$t-" >"$log" 2>&1
  rc=$?
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  speed=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  crashes=$(grep -c '^artifact_prefix=\|Test unit written to' "$log")
  if [ $rc -eq 0 ]; then result=ok; else result="FAILED (rc $rc, see $log)"; failed=1; fi
  [ -z "$execs" ] && execs=$(grep -o '^#[0-9]*' "$log" | tail -1 | tr -d '#')
  printf '%-12s %10s %8s %8s  %s\n' "$t" "${execs:-?}" "${speed:-?}" "$crashes" "$result"
  [ $rc -ne 0 ] && grep -m1 -A12 'ERROR\|runtime error\|uncaught\|terminate' "$log" | sed 's/^/    /'
done
exit $failed
