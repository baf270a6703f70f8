#!/usr/bin/env bash
# The GPU checks, for one short device call that spends a fixed budget on them in order of value (docs/cuda.md,
# "How a GPU session runs the checks"): the CUDA suite, the benchmark against PyTorch (one round), the optimiser's arena on the device, the
# training-step cases through the direct and cuDNN conv paths, then compute-sanitizer on the kernel-level cases with
# whatever time is left. Each stage's timeout is cut to the time left, so the call ends inside its budget and its
# logs come back: $OUT/all.log (everything, appended as it runs), $OUT/gpu_bench.jsonl, $OUT/logs.tgz (per stage).
# Runs from the repository root over .dev/ made by scripts/gpu_bundle.sh.
# Usage: bash scripts/gpu_lease.sh [BUDGET_SECONDS=540] [STAGES="tests bench optim paths sanitize"]
#   other stages: suite_direct, suite_cudnn, suite_im2col, suite_tiled (the whole CUDA suite per conv backend),
#   suite_tune (the suite with every conv shape timed and routed by `tune`), conv_tune (bench_conv1d under `tune`:
#   every route's time per layer shape and direction), sanitize_tune (memcheck of the tune and taps cases),
#   sanitize_direct, sanitize_tiled, sanitize_cudnn, memcheck (the kernel-level cases), racecheck_nn, racecheck_prior,
#   cli (scripts/gpu_cli_check.sh), case (one doctest filter, CASE_TC and CASE_SC, under each conv backend of
#   CASE_BACKENDS, with each binary of CASE_BINS, default lowpass_tests), initcheck (compute-sanitizer's initcheck
#   on that filter: reads of device memory never written), profile (ncu: kernel time per step by kernel name), profile_tiled (the same
#   under LOWPASS_CUDA_CONV=tiled), profile_chain (ncu: the prior chain alone at batch 8192, every row scored or
#   CHAIN_ROWS=status, each kernel's time and DRAM bytes), chain_blocks (the fused chain alone per smoothing-kernel
#   occupancy, LOWPASS_PRIOR_BLOCKS in PRIOR_BLOCKS (default "4 6 8"): batch 8192 both row sets, batch 256, 20
#   repeats; $OUT/chain_blocks.jsonl, and the prior's CUDA tests under each)
set -uo pipefail
# .dev travels packed (scripts/gpu_bundle.sh): unpack it once
[ -d .dev/bin ] || { [ -f .devpack/dev.tar.xz ] && tar xJf .devpack/dev.tar.xz; }
BUDGET=${1:-540}
STAGES=${2:-tests bench optim paths sanitize}
OUT=${OUT:-/tmp/gpu_out}; mkdir -p "$OUT"
L=/tmp/gpu_lease; rm -rf "$L"; mkdir -p "$L"
ALL="$OUT/all.log"
. "$(dirname "$0")/find_lib.sh"
cuda_lib=$(dirname "$(ls /opt/torch/.venv/lib/python3*/site-packages/nvidia/*/lib/libcublas.so.1[0-9]* 2>/dev/null | head -1)")
[ -n "$cuda_lib" ] && [ "$cuda_lib" != . ] || cuda_lib=$(lib_dir_anywhere 'libcublas.so.1[0-9]*')
cufft_lib=$(dirname "$(ls "$cuda_lib"/libcufft.so.1[0-9]* 2>/dev/null | head -1)")
[ -n "$cufft_lib" ] && [ "$cufft_lib" != . ] || cufft_lib=$(lib_dir_anywhere 'libcufft.so.1[0-9]*')
export LD_LIBRARY_PATH="$PWD/.dev/lib:$cuda_lib:$cufft_lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
export PATH="$PWD/.dev/bin:/usr/local/cuda/bin:$PATH"
. "$(dirname "$0")/cudnn_path.sh"
left() { echo $((BUDGET - SECONDS)); }
# stage NAME MAX_SECONDS CMD...: runs CMD under timeout min(MAX, time left - 5), logs to $L/NAME.log and $ALL
stage() {
  local name=$1 max=$2; shift 2
  local t; t=$(left); t=$((t - 5)); [ "$t" -gt "$max" ] && t=$max
  if [ "$t" -lt 10 ]; then echo "== $name: skipped, ${t}s left" | tee -a "$ALL"; return; fi
  echo "== $name (timeout ${t}s, at ${SECONDS}s): $*" | tee -a "$ALL"
  local s=$SECONDS
  timeout "$t" "$@" > "$L/$name.log" 2>&1
  local rc=$?
  tail -c "${TAIL_BYTES:-6000}" "$L/$name.log" >> "$ALL"
  echo "== $name rc=$rc in $((SECONDS - s))s" | tee -a "$ALL"
}
{
  date -u
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
  lscpu | grep -m1 'Model name'
  echo "cublas: $cuda_lib  cufft: $cufft_lib  cudnn: ${CUDNN_LIB:-not found}"
  ldd .dev/bin/lowpass_tests | grep -i 'not found\|libcu'
} >> "$ALL" 2>&1
kernel_cases='*training step*,*train --device*,*cuDNN*,CUDA graph step*'
# Nsight Compute, for the profile stages (empty when the machine has none)
ncu=$(command -v ncu || ls /usr/local/cuda/bin/ncu /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
for s in $STAGES; do
  case $s in
  tests) TAIL_BYTES=20000 stage tests 200 lowpass_tests -ts=cuda ;;
  # the whole CUDA suite with every Context on the direct kernels, then on cuDNN (LOWPASS_CUDA_CONV)
  suite_direct) LOWPASS_CUDA_CONV=direct TAIL_BYTES=12000 stage suite_direct 150 lowpass_tests -ts=cuda ;;
  suite_cudnn) LOWPASS_CUDA_CONV=cudnn TAIL_BYTES=12000 stage suite_cudnn 150 lowpass_tests -ts=cuda ;;
  suite_im2col) LOWPASS_CUDA_CONV=im2col TAIL_BYTES=12000 stage suite_im2col 150 lowpass_tests -ts=cuda ;;
  suite_tiled) LOWPASS_CUDA_CONV=tiled TAIL_BYTES=12000 stage suite_tiled 150 lowpass_tests -ts=cuda ;;
  suite_tune) LOWPASS_CUDA_CONV=tune TAIL_BYTES=12000 stage suite_tune 150 lowpass_tests -ts=cuda ;;
  # every route's time per shape and direction of bench_conv1d's model layers, as `tune` measures them
  conv_tune) TAIL_BYTES=12000 stage conv_tune 90 bench_conv1d --conv tune --threads 8 ;;
  sanitize_tiled)
    stage memcheck_tiled 60 compute-sanitizer --tool memcheck --leak-check no lowpass_tests -ts=cuda -tc='*tiled*'
    stage racecheck_tiled 60 compute-sanitizer --tool racecheck lowpass_tests -ts=cuda -tc='*tiled*'
    ;;
  sanitize_tune)  # memcheck of the tune and taps cases: tune runs every route, the unverified ones included
    stage memcheck_tune 90 compute-sanitizer --tool memcheck --leak-check no lowpass_tests -ts=cuda \
      -tc='*conv tune*,*taps*'
    ;;
  cli) TAIL_BYTES=8000 stage cli 120 bash scripts/gpu_cli_check.sh ;;  # train/predict/attribute --device cuda vs cpu
  profile|profile_tiled)
    # profile_tiled: the same with every Context on LOWPASS_CUDA_CONV=tiled (the kernels waiting to be timed).
    # Where a training step's GPU time goes: Nsight Compute's duration of every kernel of one step (no warm-up: the
    # first step's one-off setup kernels are few) of the binary and the profile model with the prior, summed by
    # kernel name (scripts/ncu_summary.py). ncu replays each launch; one step is about 1500 launches.
    [ -n "$ncu" ] || { echo "== $s: ncu not found" >> "$ALL"; continue; }
    conv=""; [ "$s" = profile_tiled ] && conv=tiled
    for m in binary profile; do
      TAIL_BYTES=200 LOWPASS_CUDA_CONV=$conv stage "ncu_$m$conv" 120 "$ncu" --clock-control none \
        --metrics gpu__time_duration.sum --csv --print-units base bench_train_step --device cuda --model $m \
        --mode prior --repeats 1 --warmup 0
      python3 scripts/ncu_summary.py "$L/ncu_$m$conv.log" --steps 1 --top 40 >> "$ALL" 2>&1
    done
    ;;
  profile_chain)
    # The Fourier-prior chain alone (bench_train_step --mode chain, batch 8192, every row scored): each kernel's
    # duration and DRAM traffic (achieved GB/s against the copy bandwidth), over the 5 chains the run makes (1 warm-up,
    # 1 timed, 3 queued rounds of 1).
    [ -n "$ncu" ] || { echo "== $s: ncu not found" >> "$ALL"; continue; }
    TAIL_BYTES=200 stage ncu_chain 90 "$ncu" --clock-control none \
      --metrics gpu__time_duration.sum,dram__bytes_read.sum,dram__bytes_write.sum --csv --print-units base \
      bench_train_step --device cuda --model binary --mode chain --batch 8192 --chain-rows "${CHAIN_ROWS:-all}" \
      --repeats 1 --warmup 1
    python3 scripts/ncu_summary.py "$L/ncu_chain.log" --steps 5 --top 20 >> "$ALL" 2>&1
    ;;
  bench)
    # BENCH_ARGS: bench/gpu.sh's options (default: one round of every case); LOWPASS_BENCH_IMPLS its rows
    TAIL_BYTES=3000 OUT="$L/bench" LOWPASS_BENCH_BIN=$PWD/.dev/bin/bench_train_step \
      stage bench 330 bash bench/gpu.sh ${BENCH_ARGS:---rounds 1 --repeats 10}
    cp "$L/bench/gpu_bench.jsonl" "$OUT/" 2>/dev/null
    python3 bench/summarize_gpu.py "$L/bench/gpu_bench.jsonl" >> "$ALL" 2>&1
    cat "$L/bench/conv1d_gpu.txt" >> "$ALL" 2>/dev/null
    python3 bench/conv_compare.py "$L/bench/conv1d_gpu.txt" --other tiled >> "$ALL" 2>&1
    python3 bench/conv_compare.py "$L/bench/conv1d_gpu.txt" --other tune >> "$ALL" 2>&1
    ;;
  optim) stage optim 40 bench_optim --device cuda ;;
  case)
    for bin in ${CASE_BINS:-lowpass_tests}; do
      for be in ${CASE_BACKENDS:-auto}; do
        LOWPASS_CUDA_CONV=$be TAIL_BYTES=${CASE_TAIL:-2500} stage "case_$(basename "$bin")_$be" 60 "$bin" -ts=cuda \
          -tc="${CASE_TC:-*}" -sc="${CASE_SC:-*}"
      done
    done
    ;;
  initcheck)
    TAIL_BYTES=4000 stage initcheck 120 compute-sanitizer --tool initcheck lowpass_tests -ts=cuda -tc="${CASE_TC:-*}" \
      -sc="${CASE_SC:-*}"
    ;;
  paths)
    LOWPASS_CUDA_CONV=direct stage train_direct 70 lowpass_tests -ts=cuda -sf='*test_cuda_train.cpp,*test_cuda_attr.cpp'
    LOWPASS_CUDA_CONV=cudnn stage train_cudnn 70 lowpass_tests -ts=cuda -sf='*test_cuda_train.cpp,*test_cuda_attr.cpp'
    ;;
  sanitize_cudnn)  # the cuDNN dispatch case (the sanitize stage leaves the cuDNN cases out)
    stage memcheck_cudnn 90 compute-sanitizer --tool memcheck --leak-check no lowpass_tests -ts=cuda \
      -tc='cuDNN backend through*'
    ;;
  sanitize_direct)
    stage memcheck_direct 60 compute-sanitizer --tool memcheck --leak-check no lowpass_tests -ts=cuda -tc='*direct*'
    stage racecheck_direct 60 compute-sanitizer --tool racecheck lowpass_tests -ts=cuda -tc='*direct*'
    ;;
  memcheck)  # memcheck of the kernel-level cases alone (the first stage of sanitize)
    stage memcheck 150 compute-sanitizer --tool memcheck --leak-check no lowpass_tests -ts=cuda -tce="$kernel_cases"
    ;;
  racecheck_nn)  # racecheck of the batch-norm, max-pool and softmax kernels' case
    stage racecheck_nn 60 compute-sanitizer --tool racecheck lowpass_tests -ts=cuda -tc='batch-norm*'
    ;;
  chain_blocks)
    for nb in ${PRIOR_BLOCKS:-4 6 8}; do
      LOWPASS_PRIOR_BLOCKS=$nb stage "prior_tests_$nb" 30 lowpass_tests -ts=cuda -tc='fused Fourier prior*'
      for cfg in "8192 status" "8192 all" "256 status"; do
        set -- $cfg
        LOWPASS_PRIOR_BLOCKS=$nb TAIL_BYTES=0 stage "chain_${nb}_$1_$2" 30 bench_train_step --device cuda \
          --model binary --mode chain --batch "$1" --chain-rows "$2" --repeats 20 --warmup 3
        sed "s/^{/{\"prior_blocks\":$nb,/" "$L/chain_${nb}_$1_$2.log" | grep '^{' >> "$OUT/chain_blocks.jsonl"
      done
    done
    ;;
  racecheck_prior)  # racecheck of the fused prior chain's kernels (shared windows, block sums) and the DeepLIFT twins
    stage racecheck_prior 60 compute-sanitizer --tool racecheck lowpass_tests -ts=cuda \
      -tc='fused Fourier prior*,DeepLIFT*'
    ;;
  sanitize)
    stage memcheck 150 compute-sanitizer --tool memcheck --leak-check no lowpass_tests -ts=cuda -tce="$kernel_cases"
    stage memcheck_graph 90 compute-sanitizer --tool memcheck --leak-check no lowpass_tests -ts=cuda -tc='CUDA graph step*'
    stage racecheck 90 compute-sanitizer --tool racecheck lowpass_tests -ts=cuda -tce="$kernel_cases"
    ;;
  esac
done
echo "== done at ${SECONDS}s of ${BUDGET}s" >> "$ALL"
tar czf "$OUT/logs.tgz" -C "$L" . 2>/dev/null
