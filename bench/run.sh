#!/usr/bin/env bash
# Framework benchmark (issue 8): lowpass vs PyTorch (and bpnet-lite's BPNet) training steps, alternating A/B runs,
# medians over rounds after warm-up, same threads; FLOPs per step, % of the SGEMM rate measured in the same run.
# Usage: bench/run.sh [--rounds N] [--repeats R] [--warmup W] [--threads T] [--cases "binary:prior ..."] [--no-append]
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=3 REPEATS=3 WARMUP=1 THREADS=2 APPEND=1
CASES="binary:prior binary:noprior profile:prior profile:noprior binary:infer binary:attr profile:infer profile:attr"
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) ROUNDS=$2; shift 2 ;;
    --repeats) REPEATS=$2; shift 2 ;;
    --warmup) WARMUP=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;;
    --cases) CASES=$2; shift 2 ;;
    --no-append) APPEND=0; shift ;;
    *) echo "usage: bench/run.sh [--rounds N] [--repeats R] [--warmup W] [--threads T] [--cases LIST] [--no-append]" >&2
       exit 2 ;;
  esac
done
BUILD=${LOWPASS_BENCH_BUILD:-build-bench}
VENV=${LOWPASS_BENCH_VENV:-/work/torchenv}
OUT=${LOWPASS_BENCH_OUT:-$BUILD/bench-results}
mkdir -p "$OUT"
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
JSONL="$OUT/run-$STAMP.jsonl"
LOG="$OUT/run-$STAMP.log"

# ---- PyTorch venv (created with pip when absent) ----
if [ ! -x "$VENV/bin/python" ]; then
  echo "creating venv $VENV with torch (CPU wheel)" >&2
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet torch numpy
fi
PY="$VENV/bin/python"

# ---- build ----
if [ "${LOWPASS_BENCH_NOBUILD:-0}" != 1 ]; then  # 1: use the binaries already in $BUILD/bench as they are
  if [ ! -d "$BUILD" ]; then meson setup "$BUILD" -Dcuda=disabled --buildtype=release >&2; fi
  ninja -C "$BUILD" -j2 bench/bench_train_step bench/bench_conv1d >&2
fi

# ---- bpnet-lite (peer without prior): installed when pip can ----
# `pip install bpnet-lite` pulls macs3 etc. and builds them from source (> 15 min here, timed out): when that
# fails, install bpnet-lite and tangermeme without deps plus the few deps BPNet's import needs.
HAVE_BPNET=0
BPIMPORT="from bpnetlite.bpnet import BPNet"
if ! "$PY" -c "$BPIMPORT" 2>/dev/null; then
  timeout 600 "$VENV/bin/pip" install --quiet bpnet-lite >>"$LOG" 2>&1 ||
    { "$VENV/bin/pip" install --quiet --no-deps bpnet-lite tangermeme >>"$LOG" 2>&1 &&
      "$VENV/bin/pip" install --quiet h5py tqdm pandas numba >>"$LOG" 2>&1; } || true
fi
"$PY" -c "$BPIMPORT" 2>>"$LOG" && HAVE_BPNET=1
[ $HAVE_BPNET = 1 ] || echo "note: bpnet-lite could not be installed/imported (see $LOG); skipped" | tee -a "$LOG" >&2

# ---- SGEMM rate of this machine, same threads (bench_conv1d's OpenBLAS path), before and after ----
# Prints "wall-rate cpu-time-rate" (GFLOP/s); the cpu-time rate = FLOPs / (process CPU seconds / threads).
sgemm() {
  "$BUILD/bench/bench_conv1d" --only sgemm --threads "$THREADS" --reps 5 | tee -a "$LOG" |
    awk '/square 2048/ && /openblas/ {for (i = 1; i <= NF; i++) if ($i == "GFLOP/s") w = $(i - 1);
         c = $NF; sub(/\)/, "", c); print w, c}' | head -1
}
S1=$(sgemm)

# ---- alternating A/B rounds: lowpass then PyTorch, order flipped every round ----
run_lp() { "$BUILD/bench/bench_train_step" --model "$1" --mode "$2" --threads "$THREADS" --repeats "$REPEATS" --warmup "$WARMUP"; }
run_pt() { "$PY" bench/cpu_clock.py bench/bench_torch.py --model "$1" --mode "$2" --threads "$THREADS" --repeats "$REPEATS" --warmup "$WARMUP"; }
run_bp() { "$PY" bench/cpu_clock.py bench/bench_bpnetlite.py --threads "$THREADS" --repeats "$REPEATS" --warmup "$WARMUP"; }
for r in $(seq 1 "$ROUNDS"); do
  for c in $CASES; do
    m=${c%%:*} mode=${c##*:}
    echo "round $r: $m $mode (load: $(cut -d' ' -f1-3 /proc/loadavg))" >&2
    if [ $((r % 2)) = 1 ]; then run_lp "$m" "$mode" | tee -a "$JSONL"; run_pt "$m" "$mode" | tee -a "$JSONL"
    else run_pt "$m" "$mode" | tee -a "$JSONL"; run_lp "$m" "$mode" | tee -a "$JSONL"; fi
  done
  if [ $HAVE_BPNET = 1 ] && [ -f bench/bench_bpnetlite.py ]; then run_bp | tee -a "$JSONL" || true; fi
done
S2=$(sgemm)
SGEMM=$(printf '%s\n%s\n' "${S1%% *}" "${S2%% *}" | sort -g | tail -1)
SGEMM_CPU=$(printf '%s\n%s\n' "${S1##* }" "${S2##* }" | sort -g | tail -1)

# ---- table, appended with the machine description and date ----
CPU=$(lscpu | sed -n 's/^Model name: *//p' | head -1)
GPU=$(command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1 || true)
MACHINE="$(date -u '+%Y-%m-%d %H:%M UTC'); CPU: $CPU; $(nproc) cores visible, $THREADS threads used; GPU: ${GPU:-none}; \
PyTorch $("$PY" -c 'import torch; print(torch.__version__)'); load average at end: $(cut -d' ' -f1-3 /proc/loadavg); \
$ROUNDS rounds × ($WARMUP warm-up + $REPEATS timed steps) per case; SGEMM (wall, cpu-time) before: $S1, after: $S2 GFLOP/s"
ARGS=(--sgemm "$SGEMM" --sgemm-cpu "$SGEMM_CPU" --machine "$MACHINE")
[ "$APPEND" = 1 ] && ARGS+=(--append bench/RESULTS.md)
"$PY" bench/summarize.py "$JSONL" "${ARGS[@]}"
echo "raw results: $JSONL" >&2
