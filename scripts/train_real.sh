#!/usr/bin/env bash
# Real-data runs of issue 3 (longer than the test suite): NFE2 binary (test auROC vs the shipped gkm-SVM scores) and
# the yeast ATAC profile model (test NLL vs a uniform profile, JSD, count Pearson), each with and without the prior.
# Usage: scripts/train_real.sh [BUILD_DIR=build] [OUT=real_runs]   (LOWPASS_DATA defaults to ../shared/data)
# Measured 2026-11-26 at 5c5d61b on the 2-core dev machine (AMD EPYC Zen 5, CPU build, THREADS=1 EPOCHS_YEAST=6, seed 1;
# test = NFE2 chr1 / yeast chrIV; another build running beside it):
#   NFE2 binary (nfe2_binary.json, 15 epochs): test auROC 0.956 with prior (95 s), 0.970 without (39 s); gkm-SVM 0.993.
#   yeast small (yeast_profile_small.json, 6 epochs, uniform NLL 202.3, uniform JSD 0.161):
#     prior    NLL 165.5, JSD 0.118, count Pearson 0.388 (11 s);  no prior NLL 174.0, JSD 0.139, count Pearson 0.381 (6 s)
# (2026-11-25, 8 NFE2 epochs, older kernels: auROC 0.969 / 0.970 in 383 / 93 s; yeast small NLL 173.7 / 176.1.)
#   yeast (yeast_profile.json, 846/500 bp, 3 epochs, uniform NLL 387.9, uniform JSD 0.226):
#     prior    NLL 344.3, JSD 0.194, count Pearson 0.416 (361 s);  no prior NLL 343.3, JSD 0.194, count Pearson 0.371 (85 s)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
OUT=${2:-real_runs}
export LOWPASS_DATA=${LOWPASS_DATA:-$(cd .. && pwd)/shared/data}
LP="$BUILD/tools/lowpass"
EPOCHS_NFE2=${EPOCHS_NFE2:-15}
EPOCHS_YEAST=${EPOCHS_YEAST:-10}
# yeast_profile_small.json (output 200, 4 dilated layers of 32: ~1-2 min per run on 1 core) or yeast_profile.json
YEAST_CONFIG=${YEAST_CONFIG:-models/configs/yeast_profile_small.json}
mkdir -p "$OUT"
[ -x "$LP" ] || { echo "build $LP first (ninja -C $BUILD tools/lowpass)"; exit 1; }

# gkm-SVM baseline auROC from the shipped scores (positives then negatives; ties count one half)
python3 - "$LOWPASS_DATA/nfe2_gm12878" <<'PY'
import sys
d = sys.argv[1]
pos = [float(l.split()[1]) for l in open(d + "/gkmsvm.test.pred.txt") if l.strip()]
neg = [float(l.split()[1]) for l in open(d + "/gkmsvm.neg.test.pred.txt") if l.strip()]
a = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg) / (len(pos) * len(neg))
print(f"gkm-SVM NFE2 test auROC: {a:.4f} ({len(pos)} + {len(neg)} sequences)")
PY

run() {  # name config prior_weight epochs
  local name=$1 cfg=$2 w=$3 ep=$4
  python3 - "$cfg" "$OUT/$name.json" "$w" "$ep" <<'PY'
import json, sys, os
c = json.load(open(sys.argv[1]))
c["prior"]["weight"] = float(sys.argv[3])
if float(sys.argv[3]) == 0: c["prior"]["type"] = "none"
c["train"]["epochs"] = int(sys.argv[4])
c["train"]["seed"] = 1
if "genome" in c["data"] and not os.path.isabs(c["data"]["genome"]["folds"]):
    c["data"]["genome"]["folds"] = os.path.join(os.path.dirname(os.path.abspath(sys.argv[1])), c["data"]["genome"]["folds"])
json.dump(c, open(sys.argv[2], "w"), indent=1)
PY
  rm -rf "$OUT/$name"
  local t0=$(date +%s)
  "$LP" train --config "$OUT/$name.json" --out "$OUT/$name" --quiet --threads "${THREADS:-0}"
  echo "$name: $(( $(date +%s) - t0 )) s; test metrics: $(tr -d '\n ' < "$OUT/$name/test_metrics.json")"
}

"$LP" data-stats --config models/configs/nfe2_binary.json
run nfe2_prior models/configs/nfe2_binary.json 1.0 "$EPOCHS_NFE2"
run nfe2_noprior models/configs/nfe2_binary.json 0 "$EPOCHS_NFE2"
"$LP" data-stats --config "$YEAST_CONFIG"
run yeast_prior "$YEAST_CONFIG" 50 "$EPOCHS_YEAST"
run yeast_noprior "$YEAST_CONFIG" 0 "$EPOCHS_YEAST"
