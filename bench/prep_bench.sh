#!/usr/bin/env bash
# bench/prep_bench.sh [BIN] [WORKDIR]: model preparation on bitnet-2b —
# synth -> quantize int8 -> convert 2_4,2_6,2_8,2_10 -> verify 2_8 — printing
# seconds, MB/s (of the step's input; synth: its output) and peak RSS per step. Writes ~15 GB under WORKDIR
# (default /tmp/prep_bench.<pid>) and removes it at the end (KEEP=1 keeps it).
# Bars (2 cores): quantize <= 30 s, convert (4 patterns) <= 120 s,
# verify (one pattern) <= 60 s, peak RSS <= 1 GiB.
set -euo pipefail
BIN=$(realpath "${1:-build/slidesparse}")
W=${2:-/tmp/prep_bench.$$}
mkdir -p "$W"
[[ ${KEEP:-0} == 1 ]] || trap 'rm -rf "$W"' EXIT
cd "$W"
df -h . | tail -1 | awk '{print "disk: " $4 " free on " $6}'
echo "cpus: $(nproc)  $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
base=bitnet-b1.58-2B-4T-bf16
mb() { du -sm --apparent-size "$1" | cut -f1; }
printf "%-10s %9s %9s %11s %9s %6s\n" step seconds MB "MB/s" RSS_MB bar
# step NAME BAR_S INPUT_DIR -- command...
step() {
  local name=$1 bar=$2 input=$3; shift 4
  /usr/bin/time -f "%e %M" -o "$W/$name.time" "$@" >"$W/$name.log" 2>&1 ||
    { echo "$name failed:"; tail -3 "$W/$name.log"; exit 1; }
  read -r sec rss <"$W/$name.time"
  local in_mb; in_mb=$(mb "$input")
  local ok="ok"
  if [[ $bar != - ]] && awk -v s="$sec" -v b="$bar" 'BEGIN{exit !(s > b)}'; then ok="MISS($bar s)"; fi
  (( rss > 1048576 )) && ok="$ok RSS>1GiB"
  printf "%-10s %9.1f %9d %11.1f %9.1f %s\n" "$name" "$sec" "$in_mb" \
    "$(awk -v m="$in_mb" -v s="$sec" 'BEGIN{print m/(s>0?s:1)}')" "$(awk -v r="$rss" 'BEGIN{print r/1024}')" "$ok"
}
step synth - $base -- "$BIN" synth --preset bitnet-2b --out $base --force
step quantize 30 $base -- "$BIN" quantize --model $base --dtype int8 --out bitnet-b1.58-2B-4T-INT8 --force
step convert 120 bitnet-b1.58-2B-4T-INT8 -- "$BIN" convert --model bitnet-b1.58-2B-4T-INT8 \
  --sparsity 2_4,2_6,2_8,2_10 --out cs --force
step verify 60 cs/bitnet-b1.58-2B-4T-INT8-SlideSparse-2_8 -- "$BIN" verify bitnet-b1.58-2B-4T-INT8 \
  cs/bitnet-b1.58-2B-4T-INT8-SlideSparse-2_8
grep "^verify:" "$W/verify.log"
echo "outputs: $(du -sh --apparent-size "$W" | cut -f1) in $W"
