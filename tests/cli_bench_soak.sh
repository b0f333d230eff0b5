#!/usr/bin/env bash
# CLI-level tests of `bench decode --soak SECONDS` (the slidesparse
# binary is $1) on a tiny BitNet (synth tiny-bitnet, whose 2048 positions fit
# the decode workload, quantized INT8) on the CPU: the shortest soak
# (two repetitions of M 64), its per-repetition lines, the verdict line and the
# soak_64.csv rows agreeing with each other; no throughput CSV; the bad-input
# errors (exit 2, one stderr line, nothing written) and Ctrl-C (exit 130).
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/support/cli_common.sh"
# the CPU path is what this test checks (CSV paths, CPU verdicts): the same on a GPU machine
export CUDA_VISIBLE_DEVICES=""
cli_begin cli_bench_soak "$1"
# expect_err DESC NEEDLE -- cmd...   (exit 2, one stderr line, nothing under $T/bad)
expect_err() { expect_one_line_error "2" "$@"; }
cd "$T"

run_ok "$B" synth --preset tiny-bitnet --out tiny-bitnet --seed 5 || exit 1
run_ok "$B" quantize --model tiny-bitnet --dtype int8 --out tiny-bitnet-INT8 || exit 1

# --- a CPU soak: 0.2 s means the minimum of two repetitions ---------------------------------------
# Two repetitions of M 64 take ~100 s under AddressSanitizer (~5 s in Release): the soak itself runs
# in the plain build only; the bad input and Ctrl-C below run in both.
# (not `ldd | grep -q`: under pipefail grep's early exit can SIGPIPE ldd and the pipeline reads as "no")
if [[ $(ldd "$B" 2>/dev/null) == *libasan* ]]; then
  echo "skip: the two-repetition soak in an AddressSanitizer build (too slow; covered by the Release build)"
else
run_ok "$B" bench decode --model tiny-bitnet-INT8 --m 64 --soak 0.2 --out res || { cat out; exit 1; }
cp out soak.out
NUM='[0-9]+\.[0-9]'
grep -Eq "^soak: after load: host RSS $NUM MB \(peak $NUM MB\)$" soak.out || fail "no after-load line: $(cat soak.out)"
grep -q "device used" soak.out && fail "device memory printed on a CPU context: $(cat soak.out)"
verdict=$(grep -E "^soak: [0-9]+ repetitions in " soak.out) || { fail "no verdict line: $(cat soak.out)"; exit 1; }
re="^soak: ([0-9]+) repetitions in ($NUM) s, host RSS after first repetition ($NUM) MB, at end ($NUM) MB, growth (-?$NUM) MB \(tolerance ($NUM) MB\)$"
if [[ $verdict =~ $re ]]; then
  n=${BASH_REMATCH[1]} secs=${BASH_REMATCH[2]} first=${BASH_REMATCH[3]} last=${BASH_REMATCH[4]}
  growth=${BASH_REMATCH[5]} tol=${BASH_REMATCH[6]}
  [[ $n -ge 2 ]] || fail "verdict: $n repetitions, expected at least 2"
  awk -v a="$first" -v b="$last" -v g="$growth" 'BEGIN { d = b - a - g; exit !(d * d < 0.15 * 0.15) }' ||
    fail "verdict: growth $growth != end $last - first $first"
  awk -v a="$first" -v t="$tol" 'BEGIN { m = 0.02 * a; if (m < 16) m = 16; d = t - m; exit !(d * d < 0.1 * 0.1) }' ||
    fail "verdict: tolerance $tol, expected max(16 MB, 2% of $first MB)"
  echo "ok: $verdict"
else
  fail "verdict line malformed: $verdict"; n=0 last=none
fi
# one line per repetition, numbered 1..n, the first the baseline
[[ $(grep -c "^soak rep " soak.out) == "$n" ]] || fail "expected $n repetition lines: $(cat soak.out)"
grep -Eq "^soak rep 1: elapsed $NUM+ s, $NUM tokens/s, host RSS $NUM MB, delta \+0\.0 MB, peak $NUM MB \(baseline\)$" soak.out ||
  fail "repetition 1 line: $(grep '^soak rep 1:' soak.out)"
grep -Eq "^soak rep $n: elapsed $NUM+ s, $NUM tokens/s, host RSS $last MB, delta [-+]$NUM MB, peak $NUM MB$" soak.out ||
  fail "repetition $n line does not end at $last MB: $(grep "^soak rep $n:" soak.out)"

# soak_64.csv: the same repetitions
CSV=res/soak_64.csv
[[ $(head -1 $CSV) == "M,repetition,elapsed_s,tokens_per_s,device_used_mb,device_delta_mb,host_rss_mb,host_rss_delta_mb,host_peak_rss_mb" ]] ||
  fail "$CSV header: $(head -1 $CSV)"
[[ $(($(wc -l <$CSV) - 1)) == "$n" ]] || fail "$CSV: $(($(wc -l <$CSV) - 1)) rows, expected $n"
awk -F, -v n="$n" -v last="$last" -v secs="$secs" '
  NR == 1 { next }
  { r = NR - 1
    if (NF != 9 || $1 != 64 || $2 != r || $5 != "" || $6 != "") { print "row " r ": " $0; bad = 1 }
    if (!($3 > prev) || !($4 > 0) || !($7 > 0) || !($9 >= $7)) { print "row " r " numbers: " $0; bad = 1 }
    if (r == 1 && $8 != 0) { print "row 1 delta not 0: " $0; bad = 1 }
    prev = $3; rss = $7; el = $3 }
  END { if (rss != last) { print "last RSS " rss " != verdict " last; bad = 1 }
        d = el - secs; if (d * d > 0.06 * 0.06) { print "elapsed " el " != verdict " secs; bad = 1 }
        if (secs < 0.2) { print "soak ended before 0.2 s"; bad = 1 }
        exit bad }' $CSV || fail "$CSV rows disagree with the output: $(cat $CSV)"
echo "ok: $CSV ($n rows)"
[[ -z $(find res -name '*.tmp*') ]] || fail "temporary files left: $(find res -name '*.tmp*')"
[[ ! -e res/throughput_benchmark_results ]] || fail "soak wrote a throughput CSV: $(find res -type f)"
[[ $("$B" bench decode --help) == *"Writes NO throughput CSV"* ]] || fail "--help does not say that --soak writes no throughput CSV"
fi

# --- bad input --------------------------------------------------------------------------------------
expect_err "soak with two M" "--soak runs exactly one M, found 2" -- \
  "$B" bench decode --model tiny-bitnet-INT8 --m 64,128 --soak 1 --out bad
expect_err "soak without M (four by default)" "--soak runs exactly one M, found 4" -- \
  "$B" bench decode --model tiny-bitnet-INT8 --soak 1 --out bad
expect_err "soak 0 s" "--soak '0'" -- "$B" bench decode --model tiny-bitnet-INT8 --m 64 --soak 0 --out bad
expect_err "negative soak" "--soak '-3'" -- "$B" bench decode --model tiny-bitnet-INT8 --m 64 --soak -3 --out bad
expect_err "soak not a number" "--soak '10s'" -- "$B" bench decode --model tiny-bitnet-INT8 --m 64 --soak 10s --out bad
expect_err "soak nan" "--soak 'nan'" -- "$B" bench decode --model tiny-bitnet-INT8 --m 64 --soak nan --out bad
expect_err "soak beyond a week" "--soak '1e9'" -- "$B" bench decode --model tiny-bitnet-INT8 --m 64 --soak 1e9 --out bad
LONG=bad/$(printf "d%.0s" $(seq 1 4100))
expect_err "soak --out too long (before loading)" "path too long" -- "$B" bench decode --model tiny-bitnet-INT8 --m 64 --soak 1 --out "$LONG"
expect_err "soak with prefill" "--soak is a decode soak" -- \
  "$B" bench prefill --model tiny-bitnet-INT8 --m 512 --soak 1 --out bad
expect_err "soak with a decode M outside the list" "expected one of 64, 128, 256, 512" -- \
  "$B" bench decode --model tiny-bitnet-INT8 --m 100 --soak 1 --out bad

# --- Ctrl-C inside the first repetition: exit 130, nothing written -----------------------------------
"$B" bench decode --model tiny-bitnet-INT8 --m 512 --soak 60 --out bad >"$T/out" 2>"$T/err" &
pid=$!
sleep 0.7
kill -INT $pid
wait $pid; rc=$?
[[ $rc == 130 ]] || fail "Ctrl-C: exit $rc, expected 130: $(cat "$T/err")"
grep -q "interrupted at soak repetition 1; nothing written" "$T/err" || fail "Ctrl-C: stderr: $(cat "$T/err")"
[[ -z $(find bad -type f 2>/dev/null) ]] || fail "Ctrl-C left $(find bad -type f)"
echo "ok: Ctrl-C ($(cat "$T/err"))"

if [[ $fails != 0 ]]; then echo "$fails failure(s)"; exit 1; fi
echo "cli_bench_soak: all passed"
