#!/usr/bin/env bash
# A/B of two bench_train_step binaries (e.g. a worktree build of an earlier commit against this one), alternating
# A, B, B, A, ... in one script so that both see the same machine load; prints each run's JSON line and, per case, the
# median step time (wall and CPU) of each side and their ratio.
# Usage: bash bench/ab_step.sh A_BIN B_BIN [ROUNDS=3] [CASES="binary:prior"] [EXTRA bench_train_step flags...]
set -euo pipefail
A=$1 B=$2 ROUNDS=${3:-3} CASES=${4:-binary:prior}
shift $(( $# < 4 ? $# : 4 ))
out=$(mktemp)
for c in $CASES; do
  m=${c%%:*} mode=${c##*:}
  for r in $(seq 1 "$ROUNDS"); do
    order="A B"; [ $((r % 2)) = 0 ] && order="B A"
    for side in $order; do
      bin=$A; [ "$side" = B ] && bin=$B
      line=$("$bin" --model "$m" --mode "$mode" "$@")
      echo "$line"
      echo "$side $m $mode $line" >> "$out"
    done
  done
done
python3 - "$out" <<'PY'
import json, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    side, m, mode, js = line.split(" ", 3)
    d = json.loads(js)
    rows.setdefault((m, mode), {}).setdefault(side, []).append((d["median_s"], d.get("cpu_s_per_step", float("nan"))))
print("\n| model | mode | A s/step | B s/step | A / B | A CPU s | B CPU s | A / B (CPU) |")
print("|---|---|---|---|---|---|---|---|")
for (m, mode), s in rows.items():
    aw, bw = statistics.median(x[0] for x in s["A"]), statistics.median(x[0] for x in s["B"])
    ac, bc = statistics.median(x[1] for x in s["A"]), statistics.median(x[1] for x in s["B"])
    print(f"| {m} | {mode} | {aw:.3f} | {bw:.3f} | {aw / bw:.2f}× | {ac:.2f} | {bc:.2f} | {ac / bc:.2f}× |")
PY
rm -f "$out"
