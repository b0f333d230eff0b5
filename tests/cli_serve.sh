#!/usr/bin/env bash
# CLI-level tests of `bench prefill` / `bench decode` (called with the
# slidesparse binary as $1) on a tiny BitNet (synth tiny-bitnet, whose 2048
# positions fit the SPEC workloads, quantized INT8, slid 2_8): the CSV layout
# and columns, the progress line per M, the speedup table, the earlier --M
# spelling, the bad-input errors (exit code, one stderr line, no CSV left) and
# Ctrl-C (exit 130, no CSV, no temp file).
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/support/cli_common.sh"
# the CPU path is what this test checks (CSV paths, CPU verdicts): the same on a GPU machine
export CUDA_VISIBLE_DEVICES=""
cli_begin cli_serve "$1"
# expect_err DESC NEEDLE -- cmd...   (and nothing under $T/bad)
expect_err() { expect_one_line_error "" "$@"; }
cd "$T"

run_ok "$B" synth --preset tiny-bitnet --out tiny-bitnet --seed 5 || exit 1
run_ok "$B" quantize --model tiny-bitnet --dtype int8 --out tiny-bitnet-INT8 || exit 1
run_ok "$B" convert --model tiny-bitnet-INT8 --sparsity 2_8 --out cs || exit 1
SLID=cs/tiny-bitnet-INT8-SlideSparse-2_8
HEADER="M,prompt_len,max_num_seqs,num_prompts,N,output_len,requests_per_s,tokens_per_s,elapsed_time_s"

# check_csv FILE M P S R N O
check_csv() {
  local f=$1; shift
  [[ -f $f ]] || { fail "missing $f"; return; }
  [[ $(head -1 "$f") == "$HEADER" ]] || fail "$f: header $(head -1 "$f")"
  local row; row=$(grep "^$1," "$f") || { fail "$f: no row for M $1"; return; }
  IFS=, read -r m p s r n o rps tps el <<<"$row"
  [[ "$m,$p,$s,$r,$n,$o" == "$1,$2,$3,$4,$5,$6" ]] || fail "$f: row $row, expected $1,$2,$3,$4,$5,$6,..."
  awk -v a="$rps" -v b="$tps" -v c="$el" 'BEGIN { exit !(a > 0 && b > 0 && c > 0) }' || fail "$f: non-positive numbers: $row"
  # tokens/s = (R*P + R*O) / elapsed, requests/s = R / elapsed (to print precision)
  awk -v r="$r" -v p="$p" -v o="$o" -v a="$rps" -v b="$tps" -v c="$el" \
    'BEGIN { t = (r * (p + o)) / c; q = r / c; exit !((b - t) ^ 2 < (1e-3 * t) ^ 2 && (a - q) ^ 2 < (1e-3 * q) ^ 2) }' ||
    fail "$f: tokens/s or requests/s inconsistent with elapsed: $row"
  echo "ok: $f: $row"
}

DEC=res/throughput_benchmark_results/decode/CPU_cc0_INT8_cpu
PRE=res/throughput_benchmark_results/prefill/CPU_cc0_INT8_cpu
# decode M 64 quick: P 16, O 256, S 64, R 64 (one wave: quick never shrinks a batch), T 272
run_ok "$B" bench decode --model tiny-bitnet-INT8 --m 64 --scale quick --out res && grep -q "fraction of peak: n/a" out ||
  fail "decode dense: $(cat out)"
grep -q "^M 64: P 16, O 256, S 64, R 64, T 272$" out || fail "decode: no progress line for M 64: $(cat out)"
check_csv $DEC/cpu/tiny-bitnet_decode.csv 64 16 64 64 272 256
run_ok "$B" bench decode --model $SLID --m 64 --scale quick --out res
check_csv $DEC/cpu/2_8/tiny-bitnet_decode.csv 64 16 64 64 272 256
grep -q "^M,cpu_tokens_per_s,cpu_2_8_tokens_per_s,cpu_2_8_speedup$" $DEC/tiny-bitnet_decode_speedup.csv &&
  grep -q "^64," $DEC/tiny-bitnet_decode_speedup.csv || fail "speedup CSV: $(cat $DEC/tiny-bitnet_decode_speedup.csv 2>&1)"
# prefill M 512 with 1/128 of the prompts: P 512, O 1, S 1, R 1, T 512; --profile prints per-step lines
run_ok "$B" bench prefill --model tiny-bitnet-INT8 --m 512 --num-prompts-scale 0.0078125 --out res --profile &&
  grep -q "step     0:.*host.*forward.*layers.*sampling" out || fail "prefill --profile: $(cat out)"
check_csv $PRE/cpu/tiny-bitnet_prefill.csv 512 512 1 1 512 1
grep -q "^M 512: P 512, O 1, S 1, R 1, T 512$" out || fail "prefill: no progress line for M 512: $(cat out)"
# the earlier --M spelling still works, with one deprecation line on stderr
"$B" bench prefill --model tiny-bitnet-INT8 --M 512 --num-prompts-scale 0.0078125 --out old >out 2>err ||
  fail "prefill --M: exit $?: $(cat err)"
[[ $(cat err) == "slidesparse bench prefill: --M is deprecated, use --m" ]] || fail "prefill --M: stderr: $(cat err)"
check_csv old/throughput_benchmark_results/prefill/CPU_cc0_INT8_cpu/cpu/tiny-bitnet_prefill.csv 512 512 1 1 512 1
[[ -z $(find res -name '*.tmp*') ]] || fail "temporary files left: $(find res -name '*.tmp*')"

# --- bad input ------------------------------------------------------------------------------------
expect_err "prefill M outside the list" "M 100 is not supported" -- "$B" bench prefill --model tiny-bitnet-INT8 --m 100 --out bad
expect_err "decode M outside the list" "expected one of 64, 128, 256, 512" -- "$B" bench decode --model tiny-bitnet-INT8 --m 64,1024 --out bad
expect_err "workload beyond max positions" "exceed max_position_embeddings 128" -- \
  "$B" bench decode --model "$SS_TEST_DATA/engine/bitnet" --m 64 --out bad
expect_err "one sequence beyond the KV budget" "needs 17 KV blocks" -- \
  "$B" bench decode --model tiny-bitnet-INT8 --m 64 --scale quick --kv-memory-mb 0.01 --out bad
expect_err "slid checkpoint on a dense backend" "cublaslt" -- "$B" bench decode --model $SLID --backend cublaslt --m 64 --out bad
expect_err "unknown backend" "expected auto, gpu, cpu, cublaslt, cusparselt, sm90sp or sm90dense" -- \
  "$B" bench decode --model tiny-bitnet-INT8 --backend cuda --m 64 --out bad
expect_err "--backend gpu without a GPU" "needs a GPU" -- "$B" bench decode --model tiny-bitnet-INT8 --backend gpu --m 64 --out bad
expect_err "bad scale" "--scale 'slow'" -- "$B" bench decode --model tiny-bitnet-INT8 --scale slow --out bad
expect_err "bad prompt scale" "--num-prompts-scale '2'" -- "$B" bench decode --model tiny-bitnet-INT8 --num-prompts-scale 2 --out bad
expect_err "missing model" "config.json" -- "$B" bench prefill --model nowhere --out bad
expect_err "unknown stage" "expected kernel, prefill or decode" -- "$B" bench serve

# --- Ctrl-C: a full decode M 512 takes seconds; interrupt it ----------------------------------------
"$B" bench decode --model tiny-bitnet-INT8 --m 512 --out bad >"$T/out" 2>"$T/err" &
pid=$!
sleep 0.7
kill -INT $pid
wait $pid; rc=$?
if [[ $rc != 130 ]]; then fail "Ctrl-C: exit $rc, expected 130: $(cat "$T/err")"; fi
grep -q "interrupted" "$T/err" || fail "Ctrl-C: stderr: $(cat "$T/err")"
[[ -z $(find bad -type f 2>/dev/null) ]] || fail "Ctrl-C left $(find bad -type f)"
echo "ok: Ctrl-C ($(cat "$T/err"))"

if [[ $fails != 0 ]]; then echo "$fails failure(s)"; exit 1; fi
echo "cli_serve: all passed"
