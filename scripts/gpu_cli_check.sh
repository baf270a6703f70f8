#!/usr/bin/env bash
# On a GPU machine (device tool, .dev/ from scripts/gpu_bundle.sh carried): `lowpass train|predict|attribute
# --device cuda` end to end on small simulated binary and profile sets, each GPU output compared with the CPU's.
# Usage: bash scripts/gpu_cli_check.sh   (needs python3 with numpy for the comparison)
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d .dev/bin ] || { [ -f .devpack/dev.tar.xz ] && tar xJf .devpack/dev.tar.xz; }  # packed by gpu_bundle.sh
export LD_LIBRARY_PATH="$PWD/.dev/lib:/usr/local/cuda/lib64:/usr/local/cuda-13.0/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}"
. scripts/cudnn_path.sh  # a build with cuDNN (meson -Dcudnn) needs libcudnn.so.9 to load: PyTorch's pip copy there
LP=${LOWPASS_BIN:-$PWD/.dev/bin/lowpass}
W=$(mktemp -d)
# compare NPZ_A NPZ_B, per array: max |a-b| / max |b|, ‖a-b‖ / ‖b‖, and how many entries differ by more than 1e-4 of
# max |b| (a ReLU whose input lies within rounding distance of zero switches under another summation order and moves
# a few positions' attributions: a large max figure, a small norm figure, few entries; docs/cuda.md)
compare() {
  python3 - "$1" "$2" <<'PY'
import sys, numpy as np
a, b = np.load(sys.argv[1]), np.load(sys.argv[2])
for k in b.files:
    x, y = a[k].astype(np.float64), b[k].astype(np.float64)
    d, m = np.abs(x - y), max(np.abs(y).max(), 1e-30)
    print(f"  {sys.argv[1].split('/')[-2]}/{k}: shape {y.shape}, max|cuda-cpu|/max|cpu| = {d.max()/m:.2e}, "
          f"norm {np.linalg.norm(x - y)/max(np.linalg.norm(y), 1e-30):.2e}, {int((d > 1e-4 * m).sum())} of {y.size} "
          f"entries above 1e-4 of max|cpu|")
PY
}
for type in ${TYPES:-binary profile}; do
  if [ $type = binary ]; then args="--n 512 --length 300"; else args="--n 64 --length 1346 --output-length 1000"; fi
  "$LP" simulate --out "$W/$type" --type $type $args --seed 3 > /dev/null
  python3 - "$W/$type/train_config.json" ${TRAIN_DEVICE:-cuda} <<'PY'
import json, sys
p = sys.argv[1]; c = json.load(open(p))
c.setdefault("train", {}).update({"epochs": 2, "device": "cuda", "progress": False, "early_stopping": False})
if len(sys.argv) > 2: c["train"]["device"] = sys.argv[2]
json.dump(c, open(p, "w"))
PY
  echo "== $type: train --device cuda (2 epochs)"
  "$LP" train --config "$W/$type/train_config.json" --out "$W/$type/run" --quiet
  tail -1 "$W/$type/run/metrics.jsonl" | cut -c1-200
  for dev in cpu cuda; do
    "$LP" predict --model "$W/$type/run" --npz "$W/$type/test.npz" --out "$W/$type/pred_$dev" --device $dev --quiet
    "$LP" attribute --model "$W/$type/run" --npz "$W/$type/test.npz" --out "$W/$type/attr_$dev" --method gradxinput \
      --device $dev --quiet
    "$LP" attribute --model "$W/$type/run" --npz "$W/$type/test.npz" --out "$W/$type/ig_$dev" --method ig \
      --device $dev --quiet
    "$LP" attribute --model "$W/$type/run" --npz "$W/$type/test.npz" --out "$W/$type/ds_$dev" --method deepshap \
      --refs 5 --device $dev --quiet
  done
  echo "== $type: predict / attribute (grad×input, integrated gradients, DeepSHAP), cuda vs cpu"
  compare "$W/$type/pred_cuda/predictions.npz" "$W/$type/pred_cpu/predictions.npz"
  compare "$W/$type/attr_cuda/attr.npz" "$W/$type/attr_cpu/attr.npz"
  compare "$W/$type/ig_cuda/attr.npz" "$W/$type/ig_cpu/attr.npz"
  compare "$W/$type/ds_cuda/attr.npz" "$W/$type/ds_cpu/attr.npz"
done
rm -rf "$W"
