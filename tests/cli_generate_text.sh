#!/usr/bin/env bash
# CLI-level test of `slidesparse generate --prompt` and `tokenize` (binary as $1)
# on the tiny test models of tests/data/engine (each with a tokenizer.json):
# the streamed text is the decoding of the same greedy ids `--prompt-ids` gives
# (up to EOS); sampling with a seed repeats, top-k 1 is greedy; --stop cuts the
# text before the stop string; --chat wraps in the family's role markers; bad
# options print one line and exit 2.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/support/cli_common.sh"
cli_begin cli_generate_text "$1"
cd "$T"
D=$SS_TEST_DATA/engine
PROMPT="Hello world, the model"

eos_of() { grep -o '"eos_token_id": *[0-9]*' "$D/$1/config.json" | grep -o '[0-9]*$'; }

# --- text out == decode(ids out) -------------------------------------------------------------
for m in llama bitnet qwen2; do
  ids=$("$B" tokenize --model "$D/$m" --text "$PROMPT" --add-special) || { fail "$m: tokenize"; continue; }
  gen=$("$B" generate --model "$D/$m" --prompt-ids "$ids" --max-tokens 12 | sed -n 's/^generated: //p')
  eos=$(eos_of $m)
  kept=$(echo "$gen" | tr ',' '\n' | sed "/^$eos\$/,\$d" | paste -sd, -) # the ids before the first EOS
  want=$(if [[ -n $kept ]]; then "$B" tokenize --model "$D/$m" --ids "$kept" --skip-special; else echo; fi)
  run_ok "$B" generate --model "$D/$m" --prompt "$PROMPT" --max-tokens 12 || continue
  got=$(cat "$T/out")
  [[ "$got" == "$want" ]] && echo "ok: $m text = decode of greedy ids [$kept] ($(printf %q "$got"))" \
    || fail "$m: text '$got' != decode of [$kept] '$want'"
  grep -q "^speed: .* prompt + .* generated tokens" "$T/err" || fail "$m: no speed line on stderr: $(cat "$T/err")"
done

# --- sampling -----------------------------------------------------------------------------------
Q=$D/qwen2
S=(--model "$Q" --prompt "$PROMPT" --max-tokens 24)
"$B" generate "${S[@]}" >greedy 2>/dev/null || fail "greedy run"
"$B" generate "${S[@]}" --temperature 0.9 --top-k 50 --top-p 0.95 --seed 7 >s7a 2>/dev/null || fail "seed 7"
"$B" generate "${S[@]}" --temperature 0.9 --top-k 50 --top-p 0.95 --seed 7 >s7b 2>/dev/null || fail "seed 7 again"
cmp -s s7a s7b && echo "ok: --seed 7 twice gives the same text" || fail "--seed 7 twice differs"
distinct=$(for s in 1 2 3 4 5; do "$B" generate "${S[@]}" --temperature 1.5 --seed $s 2>/dev/null | md5sum; done | sort -u | wc -l)
[[ $distinct -ge 2 ]] && echo "ok: 5 seeds give $distinct different texts" || fail "5 seeds all gave the same text"
"$B" generate "${S[@]}" --temperature 1 --top-k 1 --seed 3 >k1 2>/dev/null
cmp -s k1 greedy && echo "ok: --top-k 1 is greedy" || fail "--top-k 1 differs from greedy"
"$B" generate "${S[@]}" --temperature 2 >/dev/null 2>err
grep -q "^seed: [0-9]* (give --seed to repeat" err && echo "ok: the clock seed is printed" || fail "no seed line: $(cat err)"

# --- stop strings ------------------------------------------------------------------------------
text=$(cat greedy)
stop=""
for c in $(printf '%s' "$text" | LC_ALL=C grep -o '[a-z=]' | sort -u); do # an ASCII character after the start
  prefix=${text%%"$c"*}
  [[ -n $prefix && $prefix != "$text" ]] && { stop=$c; break; }
done
if [[ -z $stop ]]; then
  fail "no ASCII character past the start of the greedy text to stop at: $(printf %q "$text")"
else
  "$B" generate "${S[@]}" --stop "never-there" --stop="$stop" >stopped 2>err || fail "--stop run"
  [[ "$(cat stopped)" == "$prefix" ]] && echo "ok: --stop '$stop' leaves '$(printf %q "$prefix")'" \
    || fail "--stop '$stop': '$(cat stopped)' != '$prefix'"
  n=$(sed -n 's/.* + \([0-9]*\) generated tokens.*/\1/p' err)
  [[ -n $n && $n -lt 24 ]] && echo "ok: generation ended at the stop ($n tokens)" || fail "did not stop early: $(cat err)"
fi

# --- chat -------------------------------------------------------------------------------------
chat=$("$B" tokenize --model "$Q" --text "hi" --chat)
lit=$("$B" tokenize --model "$Q" --text $'<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n' --add-special)
[[ "$chat" == "$lit" ]] && echo "ok: qwen2 --chat = the ChatML template ($chat)" || fail "qwen2 --chat [$chat] != [$lit]"
chat=$("$B" tokenize --model "$D/bitnet" --text " hi " --chat)
lit=$("$B" tokenize --model "$D/bitnet" --text "User: hi<|eot_id|>Assistant: " --add-special)
[[ "$chat" == "$lit" ]] && echo "ok: bitnet --chat = its template ($chat)" || fail "bitnet --chat [$chat] != [$lit]"
run_ok "$B" generate --model "$Q" --prompt "hi" --chat --max-tokens 8 && echo "ok: generate --chat runs"
run_ok "$B" generate --model "$Q" --prompt "hi" && echo "ok: --max-tokens defaults to the context left"

# --- bad input: one line, exit 2 (1 for a broken file) --------------------------------------------
mkdir -p notok && cp "$Q/config.json" notok/
printf '{"model": {"vocab": []}}' >broken.json
G=(generate --model "$Q" --prompt hi)
expect_one_line_error 2 "temperature not a number" "--temperature 'abc'" -- "$B" "${G[@]}" --temperature abc
expect_one_line_error 2 "negative temperature" "--temperature '-1'" -- "$B" "${G[@]}" --temperature -1
expect_one_line_error 2 "top-p 0" "--top-p '0'" -- "$B" "${G[@]}" --top-p 0
expect_one_line_error 2 "top-p above 1" "--top-p '1.5'" -- "$B" "${G[@]}" --top-p 1.5
expect_one_line_error 2 "negative top-k" "--top-k '-1'" -- "$B" "${G[@]}" --top-k -1
expect_one_line_error 2 "seed not a number" "--seed 'x'" -- "$B" "${G[@]}" --seed x
expect_one_line_error 2 "empty stop string" "--stop" -- "$B" "${G[@]}" --stop ""
expect_one_line_error 2 "stop without a value" "--stop needs a value" -- "$B" "${G[@]}" --stop
expect_one_line_error 2 "both prompts" "exactly one of --prompt or --prompt-ids" -- "$B" "${G[@]}" --prompt-ids 1
expect_one_line_error 2 "no prompt" "exactly one of --prompt or --prompt-ids" -- "$B" generate --model "$Q"
expect_one_line_error 2 "stop with ids" "go with --prompt" -- "$B" generate --model "$Q" --prompt-ids 1 --max-tokens 2 --stop x
expect_one_line_error 2 "chat without markers" "no chat role markers" -- "$B" generate --model "$D/llama" --prompt hi --chat
expect_one_line_error 2 "no tokenizer.json" "has no tokenizer.json" -- "$B" generate --model notok --prompt hi
expect_one_line_error 1 "broken tokenizer" "broken.json: model.vocab: expected an object" -- "$B" "${G[@]}" --tokenizer broken.json
expect_one_line_error 2 "invalid UTF-8 prompt" "not valid UTF-8" -- "$B" generate --model "$Q" --prompt $'a\xff'
expect_one_line_error 2 "prompt past the context" "exceed max_position_embeddings 128" -- "$B" "${G[@]}" --max-tokens 200
expect_one_line_error 2 "tokenize without input" "one of --text or --ids" -- "$B" tokenize --model "$Q"
expect_one_line_error 2 "tokenize bad ids" "--ids 'x'" -- "$B" tokenize --model "$Q" --ids x

echo "$fails failure(s)"
[[ $fails == 0 ]]
