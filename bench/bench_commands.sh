#!/usr/bin/env bash
# End-to-end timing of the inference commands as a user runs them on the real data of ../shared/data (README.md
# there): predict, attribute (gradxinput, deepshap, ig, ism) over yeast genome regions, variants on SNVs in peaks,
# marginalize with yeast motifs, and predict/attribute --fasta with the NFE2 binary model. A/B of two `lowpass`
# binaries, alternating A B / B A per round so both see the same load; each run under /usr/bin/time (wall, user+sys
# CPU, peak RSS); the outputs of A and B are compared (cmp) per case. Prints a markdown table of medians and ratios.
# Usage: bash bench/bench_commands.sh A_LOWPASS B_LOWPASS [ROUNDS=3] [THREADS=2] [CASES="predict gxi ..."]
# (A = B measures one binary.) Models: trained here once by B (30 steps, no prior: speed does not depend on the
# weights) into $WORK (default /tmp/lowpass_bench_commands; kept between runs). LOWPASS_DATA: default ../shared/data.
set -euo pipefail
A=$(realpath "$1") B=$(realpath "$2") ROUNDS=${3:-3} THREADS=${4:-2}
CASES=${5:-"predict gxi deepshap ig ism variants marginalize fasta_predict fasta_gxi"}
cd "$(dirname "$0")/.."
ROOT=$(pwd)
export LOWPASS_DATA=${LOWPASS_DATA:-$(cd .. && pwd)/shared/data}
WORK=${WORK:-/tmp/lowpass_bench_commands}
G=$LOWPASS_DATA/yeast_atac
mkdir -p "$WORK"
cd "$WORK"

# Inputs: 3,000 tiles of 500 bp (genome order), the peaks (first 400 / 20 / 4), 3,000 random SNVs near summits.
if [ ! -f snv.vcf ]; then
  python3 - "$G" <<'PY'
import random, sys
g = sys.argv[1]
random.seed(1)
sizes = [(c, int(s)) for c, s in (l.split() for l in open(g + "/sacCer3.chrom.sizes")) if c != "chrM"]
tiles = [(c, st) for c, s in sorted(sizes) for st in range(0, s - 500, 500)]
with open("tiles.bed", "w") as f:
    for c, st in tiles[:3000]:
        f.write(f"{c}\t{st}\t{st + 500}\n")
seq, cur = {}, None
for l in open(g + "/sacCer3.fa"):
    if l[0] == ">":
        cur = l[1:].split()[0]; seq[cur] = []
    else:
        seq[cur].append(l.strip())
seq = {k: "".join(v) for k, v in seq.items()}
peaks = [l.split() for l in open(g + "/hmmratac_yeast500k_accessible_regions.narrowPeak") if not l.startswith("track")]
peaks = [p for p in peaks if p[0] != "chrM"]
for n in (400, 20, 4):
    with open(f"peaks{n}.bed", "w") as f:
        f.writelines("\t".join(p) + "\n" for p in peaks[:n])
recs = []
while len(recs) < 3000:
    p = random.choice(peaks)
    pos = int(p[1]) + int(p[9]) + random.randint(-50, 50)
    ref = seq[p[0]][pos].upper()
    if ref in "ACGT":
        recs.append((p[0], pos + 1, ref, random.choice([b for b in "ACGT" if b != ref])))
order = {c: i for i, (c, _) in enumerate(sizes)}
recs.sort(key=lambda r: (order[r[0]], r[1]))
with open("snv.vcf", "w") as f:
    f.write("##fileformat=VCFv4.2\n")
    f.writelines(f"##contig=<ID={c},length={s}>\n" for c, s in sizes)
    f.write("#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n")
    f.writelines(f"{c}\t{p}\t.\t{r}\t{a}\t.\t.\t.\n" for c, p, r, a in recs)
PY
fi
train() {  # name config
  [ -f "m_$1/best.safetensors" ] && return 0
  python3 - "$ROOT/models/configs/$2.json" "$1.json" "$ROOT/models/configs/yeast_folds.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["prior"] = {"type": "none"}
c["train"].update(epochs=1, max_steps=30, seed=1, early_stopping=False)
if "genome" in c["data"]:
    c["data"]["genome"]["folds"] = sys.argv[3]
json.dump(c, open(sys.argv[2], "w"), indent=1)
PY
  rm -rf "m_$1"
  "$B" train --config "$1.json" --out "m_$1" --quiet --threads "$THREADS" > /dev/null
}
train yeast yeast_profile   # BPNet, 7 dilated layers of 64, input 846, output 500
train nfe2 nfe2_binary      # 3 convs of 64, input 235

MY="--model m_yeast --genome $G/sacCer3.fa --threads $THREADS --quiet"
MB="--model m_nfe2 --threads $THREADS --quiet"
cmd_of() {  # case -> command line (without the binary and --out); outputs compared between A and B
  case $1 in
    predict) echo "predict $MY --regions tiles.bed" ;;
    gxi) echo "attribute $MY --regions peaks400.bed --method gradxinput" ;;
    deepshap) echo "attribute $MY --regions peaks20.bed --method deepshap" ;;
    ig) echo "attribute $MY --regions peaks20.bed --method ig" ;;
    ism) echo "attribute $MY --regions peaks4.bed --method ism" ;;
    variants) echo "variants --model m_yeast --genome $G/sacCer3.fa --threads $THREADS --quiet --vcf snv.vcf" ;;
    marginalize) echo "marginalize $MY --regions peaks400.bed --backgrounds 100 --motifs $LOWPASS_DATA/motifs/SwissRegulon_s_cer.meme --motif-names REB1,ABF1,CBF1,RAP1" ;;
    fasta_predict) echo "predict $MB --fasta $LOWPASS_DATA/nfe2_gm12878/nfe2.tr.fa" ;;
    fasta_gxi) echo "attribute $MB --fasta $LOWPASS_DATA/nfe2_gm12878/nfe2.tr.fa --method gradxinput" ;;
    *) echo "unknown case $1" >&2; exit 2 ;;
  esac
}
log=$WORK/times.txt
: > "$log"
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
for c in $CASES; do
  cl=$(cmd_of "$c")
  echo "case $c: lowpass $cl --out OUT"
  for r in $(seq 1 "$ROUNDS"); do
    order="A B"; [ $((r % 2)) = 0 ] && order="B A"
    for side in $order; do
      bin=$A; [ "$side" = B ] && bin=$B
      rm -rf "out_$side"
      # shellcheck disable=SC2086
      /usr/bin/time -f "%e %U %S %M" -o t.txt "$bin" $cl --out "out_$side" > /dev/null
      echo "$c $side $(cat t.txt)" >> "$log"
    done
  done
  same=yes
  for f in out_A/*; do cmp -s "$f" "out_B/$(basename "$f")" || same="no ($(basename "$f") differs)"; done
  echo "$c same $same" >> "$log"
done
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$log" <<'PY'
import statistics, sys
t, same, order = {}, {}, []
for line in open(sys.argv[1]):
    c, side, rest = line.split(" ", 2)
    if side == "same":
        same[c] = rest.strip(); continue
    if c not in order: order.append(c)
    e, u, s, m = rest.split()
    t.setdefault(c, {}).setdefault(side, []).append((float(e), float(u) + float(s), int(m)))
print("\n| case | runs | A wall s | B wall s | A / B wall | A CPU s | B CPU s | A / B CPU | B peak RSS MB | outputs identical |")
print("|---|---|---|---|---|---|---|---|---|---|")
for c in order:
    a, b = t[c]["A"], t[c]["B"]
    med = lambda v, i: statistics.median(x[i] for x in v)
    print(f"| {c} | {len(a)} | {med(a,0):.2f} | {med(b,0):.2f} | {med(a,0)/med(b,0):.2f}× | {med(a,1):.2f} | "
          f"{med(b,1):.2f} | {med(a,1)/med(b,1):.2f}× | {med(b,2)/1024:.0f} | {same.get(c, '?')} |")
PY
