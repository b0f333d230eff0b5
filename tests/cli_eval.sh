#!/usr/bin/env bash
# CLI-level test of `slidesparse eval` (binary as $1) on the tiny Llama model of
# tests/data/engine: the result line; a dense INT8 checkpoint and its 2_8-slid
# version give finite perplexities > 1 that differ (pruning changes the model);
# --ids gives what --text gives for the same ids; a sliding window scores every
# token but the first; --kv-dtype fp8 moves the perplexity of each tiny model
# (bitnet, llama, qwen2) by at most 2% relative to the BF16 cache, on 120
# tokens the model samples itself (generate --temperature 1: English text is
# no text to these random-weight models, whose perplexity on it is ~1e11 and
# moves by exp of any NLL change); bad input prints one line and exits
# non-zero.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/support/cli_common.sh"
cli_begin cli_eval "$1"
cd "$T"
L=$SS_TEST_DATA/engine/llama
cat >text.txt <<'TXT'
Pruning keeps two zeros in every eight weights. The slid model computes exactly what the
pruned model computes; this measures what the pruning itself costs on a short text.
TXT

# "perplexity P over T tokens (mean NLL X nats) — model DIR, backend B[, kv fp8]"; echoes P T X.
ppl_of() {
  sed -n 's/^perplexity \([0-9.]*\) over \([0-9]*\) tokens (mean NLL \([0-9.]*\) nats) — model .*, backend cpu\(, kv fp8\)\{0,1\}$/\1 \2 \3/p' "$T/out"
}
# P > 1, finite, and exp(X) == P to the printed digits; r = "P T".
check_line() {
  local desc=$1 p n x
  r=""
  read -r p n x <<<"$(ppl_of)"
  if [[ -z ${p:-} || $(wc -l <"$T/out") != 1 ]]; then fail "$desc: not one result line: $(cat "$T/out")"; return 1; fi
  awk -v p="$p" -v x="$x" 'BEGIN { e = exp(x); exit !(p > 1 && p == p + 0 && x > 0 && (e - p) / p < 1e-4 && (p - e) / p < 1e-4) }' \
    || { fail "$desc: perplexity $p, mean NLL $x: not finite, not > 1, or not exp(mean NLL)"; return 1; }
  echo "ok: $desc: $(cat "$T/out")"
  r="$p $n"
}

# --- dense INT8 vs 2_8-slid INT8 -------------------------------------------------------------------
run_ok "$B" quantize --model "$L" --dtype int8 --out llama-INT8 || exit 1
run_ok "$B" convert --model llama-INT8 --sparsity 2_8 --out slid || exit 1
S=slid/llama-INT8-SlideSparse-2_8
[[ -f $S/config.json ]] || fail "convert did not write $S"
run_ok "$B" eval --model llama-INT8 --text text.txt && check_line "dense INT8" && dense=$r
run_ok "$B" eval --model "$S" --text text.txt && check_line "2_8-slid INT8" && sparse=$r
[[ -n ${dense:-} && -n ${sparse:-} ]] || fail "no perplexity for dense or slid"
if [[ -n ${dense:-} && -n ${sparse:-} ]]; then
  [[ ${dense#* } == "${sparse#* }" ]] && echo "ok: both score ${dense#* } tokens" || fail "token counts differ: $dense vs $sparse"
  [[ ${dense% *} != "${sparse% *}" ]] && echo "ok: pruning to 2_8 changes the perplexity (${dense% *} -> ${sparse% *})" \
    || fail "dense and 2_8 give the same perplexity ${dense% *}: was the model pruned?"
fi

# --- --ids == --text on the same ids; --context / --stride ------------------------------------------
run_ok "$B" tokenize --model "$L" --text "$(cat text.txt)"$'\n' --add-special && tr ',' ' ' <"$T/out" >ids.txt
run_ok "$B" eval --model "$L" --text text.txt && from_text=$(cat "$T/out")
run_ok "$B" eval --model "$L" --ids ids.txt && from_ids=$(cat "$T/out")
[[ -n ${from_text:-} && ${from_text%% — *} == "${from_ids%% — *}" ]] && echo "ok: --ids gives what --text gives (${from_text%% — *})" \
  || fail "--text '${from_text:-}' vs --ids '${from_ids:-}'"
n_ids=$(wc -w <ids.txt)
r=""
run_ok "$B" eval --model "$L" --ids ids.txt --context 16 --stride 8 && check_line "context 16 stride 8"
[[ ${r#* } == $((n_ids - 1)) ]] && echo "ok: a sliding window scores all $n_ids ids but the first" || fail "scored '${r#* }' of $n_ids ids"
run_ok "$B" eval --model "$L" --ids ids.txt --context 16 && check_line "context 16"
want=$((n_ids - (n_ids + 15) / 16))
[[ ${r#* } == "$want" ]] && echo "ok: windows of 16 score $want of $n_ids ids" || fail "windows of 16 scored '${r#* }', expected $want"
run_ok "$B" eval --model "$L" --ids ids.txt --max-tokens 5 && check_line "max-tokens 5"
[[ ${r#* } == 4 ]] && echo "ok: --max-tokens 5 scores 4" || fail "--max-tokens 5 scored '${r#* }'"
run_ok "$B" eval --help && grep -q "usage: slidesparse eval" "$T/out" && echo "ok: --help" || fail "--help"

# --- --kv-dtype fp8 against the BF16 cache -------------------------------------------------------------
for arch in bitnet llama qwen2; do
  M=$SS_TEST_DATA/engine/$arch
  bf=""; f8=""
  run_ok "$B" generate --model "$M" --prompt-ids 1,2,3,4,5,6,7,8 --max-tokens 112 --temperature 1 --seed 7 \
    && sed -n 's/^generated: //p' "$T/out" | awk '{ print "1,2,3,4,5,6,7,8," $0 }' | tr ',' ' ' >sampled.txt
  run_ok "$B" eval --model "$M" --ids sampled.txt && check_line "$arch kv bf16" && bf=$r
  run_ok "$B" eval --model "$M" --ids sampled.txt --kv-dtype fp8 && check_line "$arch kv fp8" && f8=$r
  grep -q ', kv fp8$' "$T/out" || fail "$arch: the fp8 result line does not say kv fp8"
  if [[ -n $bf && -n $f8 ]]; then
    awk -v a="${bf% *}" -v b="${f8% *}" 'BEGIN { d = (b - a) / a; printf "ok: %s perplexity kv bf16 %s -> fp8 %s (%+.3f%%, bound 2%%)\n", ARGV[1], a, b, 100 * d; exit !(d < 0.02 && d > -0.02) }' "$arch" \
      || fail "$arch: kv fp8 moves the perplexity ${bf% *} -> ${f8% *} by more than 2%"
  fi
done

# --- bad input: one line, non-zero exit ---------------------------------------------------------------
E=(eval --model "$L")
printf '1 2 x\n' >bad_ids.txt
printf '7' >one_id.txt
printf '999 1' >big_id.txt
expect_one_line_error 1 "missing text file" "nowhere.txt" -- "$B" "${E[@]}" --text nowhere.txt
expect_one_line_error 1 "missing ids file" "nowhere.ids" -- "$B" "${E[@]}" --ids nowhere.ids
expect_one_line_error 1 "missing model" "no-model/config.json" -- "$B" eval --model no-model --text text.txt
expect_one_line_error 2 "context 1" "--context '1'" -- "$B" "${E[@]}" --text text.txt --context 1
expect_one_line_error 2 "context past the model" "exceeds max_position_embeddings 128" -- "$B" "${E[@]}" --text text.txt --context 129
expect_one_line_error 2 "stride past context" "--stride 9 is larger than --context 8" -- "$B" "${E[@]}" --text text.txt --context 8 --stride 9
expect_one_line_error 2 "unknown backend" "--backend 'tpu'" -- "$B" "${E[@]}" --text text.txt --backend tpu
expect_one_line_error 2 "unknown kv dtype" "--kv-dtype 'int4': expected bf16 or fp8" -- "$B" "${E[@]}" --text text.txt --kv-dtype int4
expect_one_line_error 2 "text and ids" "exactly one of --text or --ids" -- "$B" "${E[@]}" --text text.txt --ids ids.txt
expect_one_line_error 2 "no input" "exactly one of --text or --ids" -- "$B" "${E[@]}"
expect_one_line_error 2 "junk id" "bad_ids.txt: entry 3 'x'" -- "$B" "${E[@]}" --ids bad_ids.txt
expect_one_line_error 2 "one id" "at least 2" -- "$B" "${E[@]}" --ids one_id.txt
expect_one_line_error 2 "id past the vocabulary" "id 999 at index 0 is out of vocabulary" -- "$B" "${E[@]}" --ids big_id.txt
expect_one_line_error 2 "slid on a dense backend" "cannot run on the dense backend" -- "$B" eval --model "$S" --text text.txt --backend cublaslt

echo "$fails failure(s)"
[[ $fails == 0 ]]
