#!/usr/bin/env bash
# GPU benchmark (issue 7): lowpass vs PyTorch eager training steps on one CUDA device, alternating A/B rounds,
# medians over repeats after warm-up, plus the card's measured ceilings (copy bandwidth, SGEMM). Runs where
# bench_train_step was built with CUDA: on the lent GPU machine from scripts/gpu_bundle.sh's .dev/bin.
# Each round also times lowpass with its opt-in cuDNN conv path (--conv cudnn, impl "lowpass-cudnn"; --no-cudnn skips
# it) and with im2col + cuBLAS for every layer (--conv im2col, impl "lowpass-im2col"; the default `auto` adds the
# direct kernels for layers with few channels and the tiled kernels for wide layers with long reductions), with the
# tiled kernel for every wide layer (--conv tiled, impl "lowpass-tiled") and with the direct kernels and im2col for
# every wide layer (--conv direct, impl "lowpass-direct"), with every shape timed on every route at its first use and
# the fastest kept (--conv tune, impls "lowpass-tune" and, as a CUDA graph, "lowpass-tune-graph"), and
# the training steps (prior, noprior) also run as a captured CUDA graph (--graph, impl "lowpass-graph"), the prior
# step of the profile model with every row's attributions (--prior-rows all, impl "lowpass-allrows": the arithmetic
# before the scored rows were taken apart, docs/fourier_prior.md; the binary bench step, in the reference's "train"
# mode, keeps every row either way), and
# bench_conv1d's kernels run once per conv backend (conv1d_gpu.txt, appended to the summary). The prior steps also
# run once with TF32 and once with bfloat16 GEMMs.
# Usage: bash bench/gpu.sh [--rounds N] [--repeats R] [--cases "binary:prior ..."] [--no-cudnn]
#        (LOWPASS_BENCH_CASES sets the default of --cases; LOWPASS_BENCH_IMPLS which rows run, below)
#        (JSON lines to $OUT or ./gpu-bench)
set -uo pipefail
cd "$(dirname "$0")/.."
ROUNDS=2 REPEATS=10 WARMUP=3
CASES=${LOWPASS_BENCH_CASES:-"binary:prior binary:noprior profile:prior profile:noprior binary:infer binary:attr profile:infer profile:attr"}
CUDNN=1
# Which rows and extras run (LOWPASS_BENCH_IMPLS, default all): the step rows default cudnn im2col tiled direct graph
# tune tune_graph allrows pytorch, and the extras tf32 (TF32 and bf16 prior steps), chain (the prior chain alone) and
# conv1d (bench_conv1d per backend, and once under `tune`).
IMPLS=${LOWPASS_BENCH_IMPLS:-"default cudnn im2col tiled direct graph tune tune_graph allrows pytorch tf32 chain conv1d"}
want() { case " $IMPLS " in *" $1 "*) return 0 ;; esac; return 1; }
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) ROUNDS=$2; shift 2 ;;
    --repeats) REPEATS=$2; shift 2 ;;
    --cases) CASES=$2; shift 2 ;;
    --no-cudnn) CUDNN=0; shift ;;
    *) echo "usage: bench/gpu.sh [--rounds N] [--repeats R] [--cases LIST] [--no-cudnn]" >&2; exit 2 ;;
  esac
done
OUTDIR=${OUT:-gpu-bench}
mkdir -p "$OUTDIR"
JSONL="$OUTDIR/gpu_bench.jsonl"
LP=${LOWPASS_BENCH_BIN:-$(command -v bench_train_step || echo build/bench/bench_train_step)}
CONV=${LOWPASS_BENCH_CONV_BIN:-$(dirname "$LP")/bench_conv1d}
. scripts/cudnn_path.sh  # binaries built with cuDNN load libcudnn.so.9 from PyTorch's pip copy on the GPU machine
PY=${LOWPASS_BENCH_PY:-python3}
"$PY" bench/gpu_ceilings.py | tee -a "$JSONL"
run_lp() { "$LP" --device cuda --model "$1" --mode "$2" --repeats "$REPEATS" --warmup "$WARMUP" $3; }
# run_lp_as TAG MODEL MODE FLAGS: run_lp with FLAGS, its JSON tagged as impl "lowpass-TAG".
run_lp_as() { run_lp "$2" "$3" "$4" | sed "s/\"impl\":\"lowpass\"/\"impl\":\"lowpass-$1\"/"; }
# lowpass with the cuDNN conv path (skipped with --no-cudnn).
run_lp_cudnn() { [ "$CUDNN" = 1 ] || return 0; run_lp_as cudnn "$1" "$2" "--conv cudnn"; }
# lowpass with im2col + cuBLAS for every layer (the first default; what the default `auto` runs per layer shape:
# docs/cuda.md, "What `auto` runs").
run_lp_im2col() { run_lp_as im2col "$1" "$2" "--conv im2col"; }
# lowpass with the tiled implicit-GEMM kernels for every wide layer.
run_lp_tiled() { run_lp_as tiled "$1" "$2" "--conv tiled"; }
# lowpass with the direct kernels and im2col + cuBLAS for every wide layer (the default of the first H200 run).
run_lp_direct() { run_lp_as direct "$1" "$2" "--conv direct"; }
# the training step captured once as a CUDA graph and replayed (models/train/graph_step.h); steps only.
run_lp_graph() { case "$2" in noprior|prior) run_lp_as graph "$1" "$2" "--graph" ;; esac; }
# lowpass with every conv shape timed on its first use on every route and the fastest kept (--conv tune; its JSON
# lists the choices, "conv_tune"), eager and as a CUDA graph.
run_lp_tune() { run_lp_as tune "$1" "$2" "--conv tune"; }
run_lp_tune_graph() { case "$2" in noprior|prior) run_lp_as tune-graph "$1" "$2" "--conv tune --graph" ;; esac; }
run_lp_allrows() { case "$1:$2" in profile:prior) run_lp_as allrows "$1" "$2" "--prior-rows all" ;; esac; }
run_pt() { "$PY" bench/bench_torch.py --device cuda --model "$1" --mode "$2" --repeats "$REPEATS" --warmup "$WARMUP" --tf32 "$3"; }
# One row of a round: IMPL MODEL MODE.
run_row() {
  case $1 in
    default) run_lp "$2" "$3" "" ;;
    cudnn) run_lp_cudnn "$2" "$3" ;;
    im2col) run_lp_im2col "$2" "$3" ;;
    tiled) run_lp_tiled "$2" "$3" ;;
    direct) run_lp_direct "$2" "$3" ;;
    graph) run_lp_graph "$2" "$3" ;;
    tune) run_lp_tune "$2" "$3" ;;
    tune_graph) run_lp_tune_graph "$2" "$3" ;;
    allrows) run_lp_allrows "$2" "$3" ;;
    pytorch) run_pt "$2" "$3" 0 ;;
  esac
}
ROW_ORDER="default cudnn im2col tiled direct graph tune tune_graph allrows pytorch"
for r in $(seq 1 "$ROUNDS"); do
  for c in $CASES; do
    m=${c%%:*} mode=${c##*:}
    echo "round $r: $m $mode" >&2
    order=$ROW_ORDER  # odd rounds in this order, even rounds reversed
    [ $((r % 2)) = 0 ] && order=$(echo "$ROW_ORDER" | tr ' ' '\n' | tac | tr '\n' ' ')
    for impl in $order; do
      want "$impl" && run_row "$impl" "$m" "$mode" | tee -a "$JSONL"
    done
  done
done
# TF32 variants once (PyTorch's own default lets cuDNN convolutions use TF32), and lowpass's bfloat16 GEMMs once
# (impl "lowpass-bf16"; compared with lowpass float32 and TF32 of the same run, see summarize_gpu.py).
want tf32 && for c in binary:prior profile:prior; do
  m=${c%%:*} mode=${c##*:}
  run_lp_as tf32 "$m" "$mode" --tf32 | tee -a "$JSONL"
  run_lp_as bf16 "$m" "$mode" --bf16 | tee -a "$JSONL"
  run_pt "$m" "$mode" 1 | sed 's/"impl": "pytorch"/"impl": "pytorch-tf32"/' | tee -a "$JSONL"
done
# The prior chain alone (fused vs composed), at the training batch and at a batch whose data outgrow the L2 cache,
# scoring the batch's positives (half the rows); at the large batch also every row (a CUDA-graph step's row set).
want chain && for b in 256 8192; do
  for rows in status all; do
    [ "$rows" = all ] && [ "$b" != 8192 ] && continue
    for mode in chain chain_composed; do
      "$LP" --device cuda --model binary --mode $mode --batch $b --repeats "$REPEATS" --warmup "$WARMUP" \
        --chain-rows $rows | tee -a "$JSONL"
    done
  done
done
# conv1d kernels alone per backend (each checked against the CPU before it is timed); the `tune` block ends with every
# route's time per shape and direction.
if want conv1d && [ -x "$CONV" ]; then
  bes="im2col direct tiled auto"; [ "$CUDNN" = 1 ] && bes="$bes cudnn"; bes="$bes tune"
  for be in $bes; do "$CONV" --conv "$be" --threads 8 2>&1 | tee -a "$OUTDIR/conv1d_gpu.txt"; done
fi
"$PY" bench/summarize_gpu.py "$JSONL" | tee "$OUTDIR/gpu_summary.md"
if [ -s "$OUTDIR/conv1d_gpu.txt" ]; then
  { echo; echo "conv1d kernels alone (bench_conv1d --conv im2col, direct, tiled, auto, cudnn, then tune):"; echo; echo '```'
    cat "$OUTDIR/conv1d_gpu.txt"; echo '```'
    # per shape and direction, the default against `tiled` (where kernels not yet in `auto` wait) and `direct`
    "$PY" bench/conv_compare.py "$OUTDIR/conv1d_gpu.txt" --other tiled || true
    "$PY" bench/conv_compare.py "$OUTDIR/conv1d_gpu.txt" --other direct || true
    "$PY" bench/conv_compare.py "$OUTDIR/conv1d_gpu.txt" --other tune || true; } | tee -a "$OUTDIR/gpu_summary.md"
fi
