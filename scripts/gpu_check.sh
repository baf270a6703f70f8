#!/usr/bin/env bash
# Runs on the GPU machine (device tool) from the repository root, over .dev/ made by scripts/gpu_bundle.sh:
# the CUDA test suite, compute-sanitizer memcheck/racecheck on it, the opt-in direct and cuDNN conv paths, and the
# GPU benchmarks. Logs go to $OUT.
# The graph stage checks the CUDA-graph training step (models/train/graph_step.h) and times it against the eager step.
# Usage: bash scripts/gpu_check.sh [tests|sanitize|direct|graph|cudnn|bench|all]...
set -uo pipefail
OUT=${OUT:-/tmp/gpu_out}; mkdir -p "$OUT"
cuda_lib=$(dirname "$(find / -name 'libcublas.so.1[0-9]*' -not -path '*/proc/*' 2>/dev/null | head -1)")
cufft_lib=$(dirname "$(find / -name 'libcufft.so.1[0-9]*' -not -path '*/proc/*' 2>/dev/null | head -1)")
export LD_LIBRARY_PATH="$PWD/.dev/lib:$cuda_lib:$cufft_lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
export PATH="$PWD/.dev/bin:/usr/local/cuda/bin:$PATH"
. "$(dirname "$0")/cudnn_path.sh"  # libcudnn.so.9 (PyTorch's pip copy) first on LD_LIBRARY_PATH; sets CUDNN_LIB
steps=${*:-all}
run() { echo "== $*"; "$@"; echo "== rc=$?"; }
{
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
  lscpu | grep -m1 'Model name'
  echo "cublas: $cuda_lib  cufft: $cufft_lib  cudnn: ${CUDNN_LIB:-not found}"
  ldd .dev/bin/lowpass_tests | grep -i 'not found\|cu'
} 2>&1 | tee "$OUT/machine.txt"
for s in $steps; do
  case $s in
  tests|all)
    run timeout "${T_TESTS:-200}" lowpass_tests -ts=cuda 2>&1 | tee "$OUT/tests_cuda.log"
    ;;
  esac
  case $s in
  sanitize|all)
    # kernel-level cases only: the model-level ones run the same kernels, 10-100x slower under the tools
    skip='*training step*,*train --device*,*cuDNN*,CUDA graph step*'  # cuDNN's and the graph step's cases: memcheck
    # in the cudnn and graph stages
    run timeout "${T_MEMCHECK:-150}" compute-sanitizer --tool memcheck --leak-check no lowpass_tests -ts=cuda -tce="$skip" 2>&1 | tail -40 | tee "$OUT/memcheck.log"
    run timeout "${T_RACECHECK:-90}" compute-sanitizer --tool racecheck lowpass_tests -ts=cuda -tce="$skip" 2>&1 | tail -40 | tee "$OUT/racecheck.log"
    ;;
  esac
  case $s in
  direct|all)
    # The direct kernels for layers with <= 16 inputs or outputs per group (opt-in, docs/cuda.md): the whole CUDA suite with
    # every Context on LOWPASS_CUDA_CONV=direct (the conv cases and the training steps then go through them), and
    # memcheck/racecheck on their own case.
    run env LOWPASS_CUDA_CONV=direct timeout "${T_DIRECT:-200}" lowpass_tests -ts=cuda 2>&1 | tee "$OUT/tests_direct.log"
    run timeout "${T_DIRECT_SAN:-120}" compute-sanitizer --tool memcheck --leak-check no lowpass_tests -ts=cuda \
      -tc='direct conv1d kernels on the GPU*' 2>&1 | tail -20 | tee "$OUT/memcheck_direct.log"
    run timeout "${T_DIRECT_SAN:-120}" compute-sanitizer --tool racecheck lowpass_tests -ts=cuda \
      -tc='direct conv1d kernels on the GPU*' 2>&1 | tail -20 | tee "$OUT/racecheck_direct.log"
    ;;
  esac
  case $s in
  graph|all)
    # The CUDA-graph step (docs/cuda.md, "CUDA graphs"): its test case (also in the tests stage), memcheck on it, and
    # eager vs captured steps at the benchmark batches.
    run timeout "${T_GRAPH:-120}" lowpass_tests -ts=cuda -tc='CUDA graph step*' -s 2>&1 | tail -40 | tee "$OUT/tests_graph.log"
    run timeout "${T_GRAPH_SAN:-150}" compute-sanitizer --tool memcheck --leak-check no lowpass_tests -ts=cuda \
      -tc='CUDA graph step*' 2>&1 | tail -20 | tee "$OUT/memcheck_graph.log"
    for c in binary:prior profile:prior binary:noprior; do
      for g in "" --graph; do
        run timeout 90 bench_train_step --device cuda --model "${c%%:*}" --mode "${c##*:}" --repeats 10 --warmup 3 $g \
          2>&1 | tee -a "$OUT/graph_ab.jsonl"
      done
    done
    ;;
  esac
  case $s in
  cudnn|all)
    # The cuDNN conv path (opt-in, docs/cuda.md): its own cases, then the model-level training-step cases with every
    # Context's convs on cuDNN (LOWPASS_CUDA_CONV=cudnn), memcheck on the dispatch case, and the conv1d A/B.
    run env LOWPASS_CUDA_CONV=cudnn timeout "${T_CUDNN:-300}" lowpass_tests -ts=cuda \
      -sf='*test_cuda_cudnn.cpp,*test_cuda_train.cpp' 2>&1 | tee "$OUT/tests_cudnn.log"
    run timeout "${T_CUDNN_MEMCHECK:-150}" compute-sanitizer --tool memcheck --leak-check no lowpass_tests -ts=cuda \
      -tc='cuDNN backend through*' 2>&1 | tail -40 | tee "$OUT/memcheck_cudnn.log"
    for be in im2col cudnn; do
      run timeout "${T_CONV_BENCH:-120}" bench_conv1d --conv "$be" --threads 8 2>&1 | tee -a "$OUT/conv1d_ab.txt"
    done
    ;;
  esac
  case $s in
  bench|all)
    LOWPASS_BENCH_BIN=$PWD/.dev/bin/bench_train_step run timeout "${T_BENCH:-360}" bash bench/gpu.sh ${BENCH_ARGS:-} 2>&1 | tee "$OUT/bench.log"
    # Optimiser-side cost, per-tensor vs arena (engine/arena.h): launches and read-backs per step.
    run timeout 60 bench_optim --device cuda 2>&1 | tee "$OUT/bench_optim.md"
    ;;
  esac
done
