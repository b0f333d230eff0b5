#!/usr/bin/env bash
# CLI-level tests of `slidesparse run-all` / `slidesparse report` (the binary
# is $1): the real no-GPU run on the embedded default (tiny-bitnet, CPU
# backend, quick scale) into a temp dir, checked through its report, status
# JSON, CSVs and PNGs; `report` regenerating the same report from the folder;
# a run killed with SIGKILL in the middle of a task and resumed; bad input
# failing with one line before any work.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/support/cli_common.sh"
cli_begin cli_run_all "$1"
cd "$T"
# never a GPU here, even on a GPU machine: the test checks the embedded default
export CUDA_VISIBLE_DEVICES=""
# expect_err DESC NEEDLE -- cmd...: one stderr line with NEEDLE, non-zero exit, no work started in bad/
expect_err() {
  local desc=$1 needle=$2; shift 3
  rm -rf bad
  "$@" >out 2>err; local rc=$?
  [[ $rc != 0 ]] || fail "$desc: exit 0"
  [[ $(wc -l <err) == 1 ]] || fail "$desc: stderr has $(wc -l <err) lines: $(cat err)"
  grep -qF -- "$needle" err || fail "$desc: stderr lacks '$needle': $(cat err)"
  [[ -z $(ls bad/*_status.json bad/checkpoints 2>/dev/null) ]] || fail "$desc: work started in bad/"
  echo "ok: $desc ($(cat err))"
}

# Under AddressSanitizer the CPU engine is ~10x slower: the same checks run on a
# lighter configuration (INT8, one pattern per kernel task, decode M 64, no prefill).
LIGHT=()
TASKS="1 2 3 4 5 6 7 8 9" DTS="INT8 FP8" STAGES="prefill:512 decode:64" VARIANTS=" 2_4/ 2_6/ 2_8/ 2_10/"
KILL_AT="task 4: .* M 512" REDO=4
if grep -qa __asan_init "$B"; then
  echo '{"tasks": [1,2,3,5,6,7,8,9], "dtypes": ["int8"], "sparsity": ["2_6"], "sparsity_task8": ["2_16"],
         "m_decode": [64], "m_kernel": [64], "m_tune_coarse": [256], "m_tune_fine": [64], "warmup": 1,
         "repeat": 1}' >light.json
  LIGHT=(--config light.json)
  TASKS="1 2 3 5 6 7 8 9" DTS="INT8" STAGES="decode:64" VARIANTS=" 2_6/" KILL_AT="task 5: .* M 64" REDO=5
  echo "sanitizer build: lighter configuration $(tr -d '\n ' <light.json)"
fi

# --- the embedded default, end to end -----------------------------------------------------------
t0=$(date +%s.%N)
"$B" run-all --out r1 "${LIGHT[@]}" >out1 2>err1 || fail "run-all exit $?: $(tail -5 err1 out1)"
t1=$(date +%s.%N)
echo "embedded default run: $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }') s"
REPORT=$(ls r1/CPU_report_*.md 2>/dev/null | head -1)
STATUS=$(ls r1/run_all_*_status.json 2>/dev/null | head -1)
LOG=$(ls r1/run_all_*.log 2>/dev/null | head -1)
[[ -s $REPORT ]] || fail "no report in r1: $(ls r1)"
[[ -s $STATUS ]] || fail "no status JSON in r1"
[[ -s $LOG ]] || fail "no log in r1"
for k in $TASKS; do
  grep -q "^| $k | .* | done | " "$REPORT" || fail "report: task $k not done: $(grep "^| $k |" "$REPORT")"
done
[[ $(grep -c '"state": "done"' "$STATUS") == $(wc -w <<<"$TASKS") ]] || fail "status: tasks not done: $(grep '"state"' "$STATUS")"
grep -q '"embedded_default": true' "$STATUS" && grep -q '"scale": "quick"' "$STATUS" || fail "status: scale/embedded not recorded"
for needle in "Embedded no-GPU default" "Synthetic weights were used" "## Prefill throughput" "## Decode throughput" \
  "## Kernel benchmarks" "## Accuracy (task 9)" "## Skipped" "## Failed" "## Conclusions" "quick (1/16" "| 64 | dense |"; do
  grep -qF "$needle" "$REPORT" || fail "report lacks '$needle'"
done
grep -q "task 3/[89]: start" "$LOG" && grep -q "task 9: end: done" "$LOG" || fail "log lacks task start/end lines"
# task 9: the dense model and every pattern, each a row of the CSV and of the report's table
for dt in $DTS; do
  f=r1/accuracy/CPU_cc0_${dt}_cpu/tiny-bitnet_perplexity.csv
  [[ $(grep -c ",tiny-bitnet," "$f") == $((1 + $(wc -w <<<"$VARIANTS"))) ]] || fail "$f: expected dense + every pattern: $(cat "$f")"
  grep -q "^| dense | cpu | .* | — (baseline) |" "$REPORT" || fail "report: no dense perplexity row"
done
HEADER="M,prompt_len,max_num_seqs,num_prompts,N,output_len,requests_per_s,tokens_per_s,elapsed_time_s"
for dt in $DTS; do
  for st in $STAGES; do
    stage=${st%%:*} m=${st##*:}
    for v in "" $VARIANTS; do
      f=r1/throughput_benchmark_results/$stage/CPU_cc0_${dt}_cpu/cpu/${v}tiny-bitnet_$stage.csv
      [[ $(head -1 "$f" 2>/dev/null) == "$HEADER" ]] || { fail "$f: missing or bad header"; continue; }
      grep -q "^$m," "$f" || fail "$f: no row for M $m"
      # each reported tokens/s appears in the report's table for that M
      tps=$(awk -F, -v m="$m" '$1 == m { printf "%.1f", $8 }' "$f")
      grep -q "^| $m | ${v%/}${v:+ }.*| $tps |" "$REPORT" 2>/dev/null || grep -q "| $tps |" "$REPORT" ||
        fail "report lacks tokens/s $tps of $f"
    done
  done
  for task in 6 7 8; do
    f=r1/kernel_task$task/benchmark_kernel/cuSPARSELt/CPU_cc0_${dt}_cpu/tiny-bitnet_total.csv
    [[ $(wc -l <"$f" 2>/dev/null) -gt 1 ]] || fail "$f: missing or empty"
  done
done
grep -q "^| 64 | [0-9.]* | [0-9.]* (2.00) | [0-9.]* (1.50) |" "$REPORT" || fail "report: kernel table without ideal speedups"
per_dt=4; [[ $STAGES == *prefill* ]] && per_dt=6  # speedup + tokens/s per stage, kernel GEMM + linear
n_expect=$(( $(wc -w <<<"$DTS") * per_dt ))
n_png=0
# gnuplot is one of test.sh's installs; a machine without it (the GPU machine: no package manager)
# gets a report without plots, which is what run-all promises there
HAVE_GNUPLOT=1
command -v gnuplot >/dev/null || { HAVE_GNUPLOT=0; echo "skipped: PNG checks (no gnuplot on this machine)"; }
for p in r1/plots/*.png; do
  [[ $HAVE_GNUPLOT == 1 ]] || break
  [[ -s $p && $(head -c 4 "$p" | od -An -tx1 | tr -d ' ') == 89504e47 ]] || fail "$p: not a PNG"
  grep -qF "(plots/$(basename "$p"))" "$REPORT" || fail "report does not link $p"
  n_png=$((n_png + 1))
done
[[ $HAVE_GNUPLOT == 0 || $n_png == "$n_expect" ]] || fail "only $n_png PNGs in r1/plots (expected $n_expect)"
[[ -z $(find r1 -name '*.tmp*') ]] || fail "temporary files left: $(find r1 -name '*.tmp*')"

# --- report regenerates the same report from the folder alone -------------------------------------
cp "$REPORT" report.orig && rm -f "$REPORT" r1/plots/*.png
"$B" report r1 >out2 2>err2 || fail "report exit $?: $(cat err2)"
cmp -s report.orig "$REPORT" || fail "regenerated report differs: $(diff report.orig "$REPORT" | head -5)"
[[ $(ls r1/plots/*.png 2>/dev/null | wc -l) == "$n_png" ]] || fail "report did not redraw the plots"

# --- the summary: first, one row per stage and dtype, a column per pattern with its ideal ---------
sum_at=$(grep -n "^## Summary" "$REPORT" | cut -d: -f1) tasks_at=$(grep -n "^## Tasks" "$REPORT" | cut -d: -f1)
[[ -n $sum_at && -n $tasks_at && $sum_at -lt $tasks_at ]] || fail "report: no Summary before the task table"
grep -q "^| stage | dtype | model | 2_4 (ideal 2.00×) | 2_6 (ideal 1.50×) |" "$REPORT" ||
  fail "summary: no header with the patterns and their ideal: $(grep '^| stage |' "$REPORT")"
SUM_STAGES=(); for st in $STAGES; do SUM_STAGES+=("${st%%:*}"); done
for dt in $DTS; do
  for stage in "${SUM_STAGES[@]}" "kernel GEMM only" "kernel whole linear"; do
    grep -qE "^\| $stage \| $dt \| tiny-bitnet \| .*[0-9]×(\*\*)? \(M [0-9]+\) \|" "$REPORT" ||
      fail "summary: no row for $stage $dt: $(grep "^| $stage | $dt |" "$REPORT")"
  done
done
grep -q "^\*\*Verdict" "$REPORT" || fail "summary: no verdict"
grep -q "^## Measurement spread" "$REPORT" || fail "report: no measurement spread section"
# the kernel tasks measure dense three times: the spread is either flagged or said to be small
grep -q "machine was busy: treat these numbers with care\|Every repeated point agrees within 10%" "$REPORT" ||
  fail "spread: neither a warning nor an all-clear"

# --- report from another directory: resolves its paths against the folder, same text -------------
# run-all recorded the tuning table as r1/tuning/... (relative to $T): from / that is another file
rm -f "$REPORT"
(cd / && "$B" report "$T/r1") >out2b 2>err2b || fail "report from /: exit $?: $(cat err2b)"
grep -q "Table: \`tuning/CPU_cc0_cpu/tuning.json\` ([0-9]* entries)" "$REPORT" ||
  fail "report from /: tuning line wrong: $(grep -A2 '^## Tuning' "$REPORT" | tail -1)"
cmp -s report.orig "$REPORT" || fail "report from / differs: $(diff report.orig "$REPORT" | head -5)"

# --- SIGKILL in the middle of task 4, then --resume (reuses r1's checkpoints) ----------------------

"$B" run-all --out r2 --dtype int8 "${LIGHT[@]}" >out3 2>err3 &
pid=$!
for _ in $(seq 1 600); do
  grep -qs "$KILL_AT" r2/run_all_*.log && break
  sleep 0.1
done
kill -9 $pid 2>/dev/null
wait $pid 2>/dev/null
S2=$(ls r2/run_all_*_status.json | head -1)
[[ $(grep -A3 "\"task\": $REDO," "$S2") == *'"state": "running"'* ]] || fail "killed run: task $REDO not 'running' in $S2"
[[ $(grep -A3 '"task": 3,' "$S2") == *'"state": "done"'* ]] || fail "killed run: task 3 not 'done'"
"$B" run-all --out r2 --resume >out4 2>err4 || fail "resume exit $?: $(tail -3 err4 out4)"
grep -q "task 3 (.*): done in the interrupted run, kept" out4 || fail "resume did not keep task 3: $(head out4)"
grep -q "start: task $REDO" out4 || fail "resume did not redo task $REDO"
grep -q "start: task 1 " out4 && fail "resume redid task 1"
[[ $(grep -c '"state": "done"' "$S2") == $(wc -w <<<"$TASKS") ]] || fail "resumed status: tasks not done"
[[ $(ls r2/run_all_*_status.json | wc -l) == 1 ]] || fail "resume started a second status file"
st=${STAGES%% *} stage=${st%%:*} m=${st##*:} last=${VARIANTS##* }
for f in r2/throughput_benchmark_results/$stage/CPU_cc0_INT8_cpu/cpu/tiny-bitnet_$stage.csv \
  r2/throughput_benchmark_results/$stage/CPU_cc0_INT8_cpu/cpu/${last}tiny-bitnet_$stage.csv; do
  [[ $(grep -c "^$m," "$f" 2>/dev/null) == 1 ]] || fail "$f: expected one M $m row after resume"
done
ls r2/CPU_report_*.md >/dev/null 2>&1 || fail "no report after resume"

# --- throughput_repeats: each decode point run twice on r1's checkpoints, median + spread in the report
# (the plain build only: under the sanitizers its 8 more decode runs were most of this test's time; the CSV append
# and the median are also unit-tested in test_serve / test_pipeline, which the sanitizer build runs)
if [[ ${#LIGHT[@]} == 0 ]]; then
  pat=${VARIANTS%%/*}; pat=${pat# }
  echo "{\"tasks\": [5], \"checkpoints\": \"r1/checkpoints\", \"dtypes\": [\"int8\"], \"sparsity\": [\"$pat\"],
         \"m_decode\": [64], \"throughput_repeats\": 2}" >repeats.json
  "$B" run-all --out rr --config repeats.json >outr 2>errr || fail "throughput_repeats run: exit $?: $(tail -3 errr outr)"
  RR=$(ls rr/CPU_report_*.md 2>/dev/null | head -1)
  DEC=rr/throughput_benchmark_results/decode/CPU_cc0_INT8_cpu
  for f in $DEC/cpu/tiny-bitnet_decode.csv $DEC/cpu/$pat/tiny-bitnet_decode.csv; do
    [[ $(grep -c "^64," "$f" 2>/dev/null) == 2 ]] || fail "$f: expected two M 64 rows (runs): $(cat "$f")"
  done
  [[ $(grep -c "^64," $DEC/tiny-bitnet_decode_speedup.csv 2>/dev/null) == 1 ]] || fail "speedup CSV: expected one M 64 row"
  # the table shows the median of the two runs
  med=$(awk -F, '$1 == 64 { v[n++] = $8 } END { printf "%.1f", (v[0] + v[1]) / 2 }' $DEC/cpu/tiny-bitnet_decode.csv)
  grep -q "^| 64 | dense | $med |" "$RR" || fail "report: dense decode row is not the median $med: $(grep '^| 64 | dense' "$RR")"
  grep -qE "^\| decode \| INT8 \| tiny-bitnet \| dense \| 1 \| 2 \| 64 \| [0-9.]+ tokens/s \| $med tokens/s \|" "$RR" ||
    fail "report: no decode row in Measurement spread: $(sed -n '/^## Measurement spread/,/^## /p' "$RR")"
  # a redone task rebuilds its CSVs: still two runs per point, not four
  "$B" run-all --out rr --resume --redo 5 >outr2 2>errr2 || fail "--redo 5 with repeats: exit $?: $(tail -3 errr2)"
  [[ $(grep -c "^64," $DEC/cpu/tiny-bitnet_decode.csv) == 2 ]] || fail "--redo 5: runs counted twice: $(cat $DEC/cpu/tiny-bitnet_decode.csv)"
  echo "ok: throughput_repeats 2: two runs per point, median in the table, spread listed, redo not double-counted"
else
  echo "skipped under the sanitizers: the throughput_repeats run (unit tests cover the append and the median)"
fi

# --- task 1's sources: a given --model checkpoint, then one already present -------------------------
"$B" run-all --out r3 --model r1/checkpoints/tiny-bitnet-BF16 --task 1,2 --dtype int8 --sparsity 2_8 >out6 2>err6 ||
  fail "--model run exit $?: $(tail -3 err6)"
R3=$(ls r3/CPU_report_*.md | head -1)
grep -q "| base | r1/checkpoints/tiny-bitnet-BF16 | given (--model): real weights |" "$R3" &&
  grep -q "Real checkpoint weights were used" "$R3" || fail "--model: report does not name the given weights"
[[ -d r3/checkpoints_slidesparse/tiny-bitnet-INT8-SlideSparse-2_8 ]] || fail "--model: no conversion"
sleep 1 # a new stamp
"$B" run-all --out r3 --task 1,2 --dtype int8 --sparsity 2_8 >out7 2>err7 || fail "rerun exit $?: $(tail -3 err7)"
grep -q "tiny-bitnet-INT8 already present, skipped" out7 && grep -q "SlideSparse-2_8 already present, skipped" out7 ||
  fail "rerun did not reuse the checkpoints: $(cat out7)"
grep -q "tiny-bitnet-BF16 absent, not needed" out7 || fail "rerun synthesized a base it does not need"
grep -q "already present; where their weights came from is not recorded" r3/CPU_report_*.md ||
  fail "rerun: report does not say the weights' origin is unknown"

# --- --stop-after: a time-limited slice, the rest left pending for --resume -----------------------
"$B" run-all --out r4 --model r1/checkpoints/tiny-bitnet-BF16 --task 1,2 --dtype int8 --sparsity 2_8 \
  --stop-after 0.000001 >out9 2>err9
rc=$?
[[ $rc == 3 ]] || fail "--stop-after: exit $rc, expected 3: $(tail -3 err9 out9)"
grep -q "stopping after .* 2 task(s) left for --resume" r4/run_all_*.log || fail "--stop-after: no stop line in the log"
grep -q "continue with .*--resume" out9 || fail "--stop-after: no hint to resume"
S4=$(ls r4/run_all_*_status.json | head -1)
[[ $(grep -c '"state": "pending"' "$S4") == 2 ]] || fail "--stop-after: tasks 1, 2 not pending in $S4"
"$B" run-all --out r4 --resume --stop-after 600 >out10 2>err10 || fail "resume after --stop-after: exit $?: $(tail -3 err10)"
[[ $(grep -c '"state": "done"' "$S4") == 2 ]] || fail "resume after --stop-after: tasks 1, 2 not done"
"$B" run-all --out r4 --resume --redo 2 >out11 2>err11 || fail "--redo 2: exit $?: $(tail -3 err11)"
grep -q "start: task 2 " out11 && ! grep -q "start: task 1 " out11 || fail "--redo 2: did not rerun exactly task 2: $(grep start out11)"
grep -q -- "--redo 2: these tasks run again" r4/run_all_*.log || fail "--redo 2: the log does not say so"
[[ $(grep -c '"state": "done"' "$S4") == 2 ]] || fail "--redo 2: tasks 1, 2 not done"
expect_err "--redo without --resume" "needs --resume" -- "$B" run-all --out bad --redo 4
expect_err "--redo unknown task" "unknown task '10'" -- "$B" run-all --out r4 --resume --redo 10
expect_err "--stop-after zero" "--stop-after '0'" -- "$B" run-all --out bad --stop-after 0
expect_err "--stop-after not a number" "--stop-after 'soon'" -- "$B" run-all --out bad --stop-after soon

# --- a full disk mid-run (needs root for a small tmpfs; skipped otherwise) ------------------------
if cli_tmpfs small 3m; then
  "$B" run-all --out small/r --dtype int8 --task 1,2 >out5 2>err5 && fail "full disk: exit 0"
  S5=$(ls small/r/run_all_*_status.json | head -1)
  [[ $(grep -A6 '"task": 2,' "$S5") == *'"error": "SS_ENOSPC: '* ]] || fail "full disk: no ENOSPC for task 2 in $S5"
  [[ $(grep -A3 '"task": 1,' "$S5") == *'"state": "done"'* ]] || fail "full disk: task 1 not done"
  [[ -z $(find small -name '*.tmp*' -o -name '*.reserve') ]] || fail "full disk: left $(find small -name '*.tmp*')"
  umount small && echo "ok: full disk recorded as SS_ENOSPC, nothing partial left"
else
  echo "skipped: full-disk check (needs root to mount a small tmpfs)"
fi

# --- task 3 tunes the dense (coarse) stage at task 5's decode M too ---------------------------------
# The default coarse list starts at 256; lookups take the smallest tuned M >= the request, so without
# this dense decode at M 64 would run M 256's algorithm while the fine stage tunes sparse at 64.
# Here fine runs at 128 only, so every entry at M 64 is a coarse one: the four projections.
echo '{"tasks": [3], "dtypes": ["int8"], "sparsity": ["2_6"], "m_decode": [64], "m_tune_coarse": [256],
       "m_tune_fine": [128], "warmup": 1, "repeat": 1}' >tune_only.json
"$B" run-all --out rt --config tune_only.json >outt 2>errt || fail "tune-only run: exit $?: $(tail -2 errt)"
n64=$(grep -c '"m": 64,' rt/tuning/CPU_cc0_cpu/tuning.json)
[[ $n64 == 0 ]] || fail "task 5 not in the run, yet $n64 entries at M 64"
echo '{"tasks": [3, 5], "dtypes": ["int8"], "sparsity": ["2_6"], "m_decode": [64], "m_tune_coarse": [256],
       "m_tune_fine": [128], "warmup": 1, "repeat": 1}' >tune_dec.json
"$B" run-all --out rt2 --config tune_dec.json >outt2 2>errt2 # task 5 fails here: no checkpoints (tasks 1-2)
n64=$(grep -c '"m": 64,' rt2/tuning/CPU_cc0_cpu/tuning.json)
[[ $n64 == 4 ]] && echo "ok: coarse stage tuned at the decode M 64 (4 projections)" ||
  fail "coarse stage at decode M 64: $n64 entries, expected 4"

# --- bad input: one line on stderr, non-zero exit, no work ---------------------------------------
echo '{"dtypes": "int8"}' >wrongtype.json
echo '{"m_decode": [64, "x"]}' >wrongelem.json
echo '{"colour": 1}' >unknown.json
echo '{"tasks": [1, 2' >broken.json
touch afile
expect_err "unknown task" "unknown task '10'" -- "$B" run-all --out bad --task 1,10
expect_err "unknown model" "unknown model 'gpt-5'" -- "$B" run-all --out bad --preset gpt-5
expect_err "unknown dtype" "unknown dtype 'bf16'" -- "$B" run-all --out bad --dtype int8,bf16
expect_err "unknown pattern" "unknown pattern '2_5'" -- "$B" run-all --out bad --sparsity 2_4,2_5
expect_err "unwritable output" "afile/out" -- "$B" run-all --out afile/out
expect_err "config: wrong type" '"dtypes": expected a non-empty array of strings' -- "$B" run-all --out bad --config wrongtype.json
expect_err "config: wrong element" '"m_decode"[1]: expected an integer' -- "$B" run-all --out bad --config wrongelem.json
expect_err "config: unknown key" 'unknown key "colour"' -- "$B" run-all --out bad --config unknown.json
expect_err "config: not JSON" "broken.json: line" -- "$B" run-all --out bad --config broken.json
expect_err "config: missing" "nowhere.json" -- "$B" run-all --out bad --config nowhere.json
echo '{"throughput_repeats": 0}' >repeats0.json
expect_err "config: throughput_repeats 0" '"throughput_repeats": expected an integer in 1..16' -- "$B" run-all --out bad --config repeats0.json
echo '{"m_decode": [100]}' >decode_m.json
expect_err "decode M off the SPEC list" "M 100" -- "$B" run-all --out bad --config decode_m.json
expect_err "resume with options" "give only --out" -- "$B" run-all --out bad --resume --task 4
expect_err "resume without a run" "no *_status.json" -- "$B" run-all --out bad --resume
expect_err "report of an empty folder" "no *_status.json" -- "$B" report "$T"

if [[ $fails != 0 ]]; then
  echo "$fails failure(s)"
  exit 1
fi
echo "cli_run_all: all checks passed"
