#!/usr/bin/env bash
# CLI-level tests of synth / quantize / convert / verify (tests/cli_*.sh,
# called with the slidesparse binary as $1): the tiny presets through the whole
# pipeline, every error path's exit code + one-line stderr + no output left
# behind, a full disk, and kill -9 in the middle of a convert.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/support/cli_common.sh"
cli_begin cli_prep "$1"
# expect_err DESC NEEDLE [PATH_THAT_MUST_NOT_EXIST] -- cmd...
expect_err() {
  local desc=$1 needle=$2 nopath=$3; shift 4
  "$@" >"$T/out" 2>"$T/err"; local rc=$?
  local lines; lines=$(wc -l <"$T/err")
  if [[ $rc == 0 ]]; then fail "$desc: exit 0"; return; fi
  if [[ $lines != 1 ]]; then fail "$desc: stderr has $lines lines: $(cat "$T/err")"; fi
  if ! grep -qF -- "$needle" "$T/err"; then fail "$desc: stderr lacks '$needle': $(cat "$T/err")"; fi
  if [[ -n $nopath ]] && compgen -G "$nopath*" >/dev/null; then fail "$desc: left $(compgen -G "$nopath*")"; fi
  echo "ok: $desc ($(cat "$T/err"))"
}
cd "$T"

# --- the pipeline on every tiny preset --------------------------------------------------
for p in tiny-bitnet tiny-llama tiny-qwen2; do
  run_ok "$B" synth --preset $p --out $p --seed 5 || continue
  run_ok "$B" quantize --model $p --dtype int8 --out $p-INT8
  run_ok "$B" quantize --model $p --dtype fp8 --out $p-FP8
  run_ok "$B" convert --model $p --sparsity 2_4,2_6,2_8,2_10,2_12,2_14,2_16 --out cs
  for l in 4 6 8 10 12 14 16; do
    run_ok "$B" verify $p cs/$p-SlideSparse-2_$l && grep -q "lossless" out || fail "verify $p 2_$l"
  done
  run_ok "$B" convert --model $p-FP8 --sparsity 2_6,2_10 --out cs
  run_ok "$B" verify $p-FP8 cs/$p-FP8-SlideSparse-2_10 || fail "verify $p-FP8 2_10"
  run_ok "$B" convert --model $p-INT8 --sparsity 2_8 --out cs
  run_ok "$B" verify $p-INT8 cs/$p-INT8-SlideSparse-2_8 || fail "verify $p-INT8 2_8"
  echo "ok: $p synth -> quantize int8/fp8 -> convert 2_4..2_16 -> verify"
done
for c in synth quantize convert verify; do "$B" $c --help >/dev/null || fail "$c --help"; done

# synth creates a missing parent of --out, as convert does for its --out
run_ok "$B" synth --preset tiny-llama --out new/nested/tiny-llama --seed 5 &&
  [[ -f new/nested/tiny-llama/config.json ]] && echo "ok: synth into a missing parent" ||
  fail "synth into a missing parent"

# --- one spelling per concept: --model in, --out out; the earlier ones still work ---------------
"$B" quantize --help >out && grep -q -- "--model DIR" out && ! grep -q -- "--in " out || fail "quantize --help: $(cat out)"
"$B" convert --help >out && grep -q "at least 2 zeros in every L consecutive weights" out &&
  grep -q "6:8 = 2_8" out && ! grep -q -- "--out-root" out || fail "convert --help: $(cat out)"
"$B" quantize --in tiny-llama --dtype fp8 --out old-q >out 2>err && [[ -f old-q/config.json ]] ||
  fail "quantize --in: exit $?: $(cat err)"
[[ $(cat err) == "slidesparse quantize: --in is deprecated, use --model" ]] || fail "quantize --in: stderr: $(cat err)"
"$B" convert --in=tiny-llama-INT8 --sparsity 6:8,2:4 --out-root old-cs >out 2>err &&
  [[ -d old-cs/tiny-llama-INT8-SlideSparse-2_8 && -d old-cs/tiny-llama-INT8-SlideSparse-2_4 ]] ||
  fail "convert --in= --out-root: exit $?: $(cat err)"
[[ $(cat err) == $'slidesparse convert: --in is deprecated, use --model\nslidesparse convert: --out-root is deprecated, use --out' ]] ||
  fail "convert --in --out-root: stderr: $(cat err)"
run_ok "$B" verify tiny-llama-INT8 old-cs/tiny-llama-INT8-SlideSparse-2_8 || fail "verify the 6:8 conversion"
echo "ok: --model / --out, and --in / --out-root with a deprecation line; 6:8 = 2_8"

# --- argument and input errors -----------------------------------------------------------
expect_err "unknown preset" "gpt-9" o1 -- "$B" synth --preset gpt-9 --out o1
expect_err "synth without --out" "--out" "" -- "$B" synth --preset tiny-llama
expect_err "bad dtype" "int4" o2 -- "$B" quantize --model tiny-llama --dtype int4 --out o2
for pat in 2_5 2_3 2_2 3_8 2_inf 2_x 5:8 2:8; do
  expect_err "pattern '$pat'" "2_L" badroot -- "$B" convert --model tiny-llama --sparsity "$pat" --out badroot
done
expect_err "pattern twice" "twice" badroot -- "$B" convert --model tiny-llama --sparsity 2_8,2_8 --out badroot
expect_err "existing output" "already exists" "" -- "$B" quantize --model tiny-llama --dtype int8 --out tiny-llama-INT8
run_ok "$B" quantize --model tiny-llama --dtype int8 --out tiny-llama-INT8 --force
expect_err "existing convert output" "already exists" "" -- "$B" convert --model tiny-llama --sparsity 2_8 --out cs
mkdir noconf && cp tiny-llama/model.safetensors noconf/
expect_err "config.json missing" "config.json" o3 -- "$B" quantize --model noconf --dtype int8 --out o3
echo '{"architectures": [' >noconf/config.json
expect_err "config.json malformed" "config.json" o3 -- "$B" quantize --model noconf --dtype int8 --out o3
echo '{"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2"}' >noconf/config.json
expect_err "unsupported architecture" "GPT2LMHeadModel" badroot -- "$B" convert --model noconf --sparsity 2_8 --out badroot
mkdir trunc && cp tiny-llama/config.json trunc/ && head -c 5000 tiny-llama/model.safetensors >trunc/model.safetensors
expect_err "truncated safetensors" "model.safetensors" o4 -- "$B" quantize --model trunc --dtype fp8 --out o4
expect_err "quantized input to quantize" "already quantized" o5 -- "$B" quantize --model tiny-llama-INT8 --dtype int8 --out o5
expect_err "slid input to convert" "SlideSparse" badroot -- "$B" convert --model cs/tiny-llama-SlideSparse-2_8 --sparsity 2_4 --out badroot
expect_err "verify different models" "config.json" "" -- "$B" verify tiny-llama cs/tiny-qwen2-SlideSparse-2_8

# a slid checkpoint from other weights: verify reports the mismatch, exit 1
mkdir other && run_ok "$B" synth --preset tiny-llama --out other/tiny-llama --seed 6
run_ok "$B" convert --model other/tiny-llama --sparsity 2_8 --out other/cs
"$B" verify tiny-llama other/cs/tiny-llama-SlideSparse-2_8 >out 2>err; rc=$?
[[ $rc == 1 ]] && grep -q FAIL out && [[ $(wc -l <err) == 1 ]] || fail "verify mismatch: exit $rc"
echo "ok: verify mismatch exits 1"

# --- full disk -------------------------------------------------------------------------------
if cli_tmpfs small 64k; then
  expect_err "full disk (quantize)" "No space" small/q -- "$B" quantize --model tiny-llama --dtype int8 --out small/q
  expect_err "full disk (convert)" "No space" small/cs -- "$B" convert --model tiny-qwen2 --sparsity 2_4,2_8 --out small/cs
  [[ -z $(ls -A small/cs 2>/dev/null) ]] || fail "full disk: left $(ls -A small/cs)"
else
  echo "note: cannot mount a tmpfs (not root?): full-disk case covered by the writer's tests only"
fi

# --- kill -9 midway ------------------------------------------------------------------------------
# A fresh output: nothing (or only a *.tmp.* sibling) may remain.
SS_TEST_SLOW_MS=100 "$B" convert --model tiny-llama --sparsity 2_4,2_8 --out kill >/dev/null 2>&1 &
pid=$!; sleep 1; kill -9 $pid; wait $pid 2>/dev/null
for l in 4 8; do [[ ! -e kill/tiny-llama-SlideSparse-2_$l ]] || fail "kill: partial kill/tiny-llama-SlideSparse-2_$l"; done
# Over an old output with --force: the old state or the complete new directory.
run_ok "$B" convert --model other/tiny-llama --sparsity 2_4,2_8 --out kill --force
old=$(cat kill/tiny-llama-SlideSparse-2_8/model.safetensors | md5sum)
SS_TEST_SLOW_MS=100 "$B" convert --model tiny-llama --sparsity 2_4,2_8 --out kill --force >/dev/null 2>&1 &
pid=$!; sleep 1.5; kill -9 $pid; wait $pid 2>/dev/null
for l in 4 8; do
  d=kill/tiny-llama-SlideSparse-2_$l
  if "$B" verify other/tiny-llama $d >/dev/null 2>&1; then echo "ok: kill -9: $d is the old state"
  elif "$B" verify tiny-llama $d >/dev/null 2>&1; then echo "ok: kill -9: $d is the complete new one"
  else fail "kill -9: $d is neither the old nor the new checkpoint"; fi
done
[[ $(cat kill/tiny-llama-SlideSparse-2_8/model.safetensors | md5sum) == "$old" ]] || fail "kill -9: old 2_8 changed"
# and a rerun completes
run_ok "$B" convert --model tiny-llama --sparsity 2_4,2_8 --out kill --force
run_ok "$B" verify tiny-llama kill/tiny-llama-SlideSparse-2_4 || fail "verify after rerun"

if [[ $fails != 0 ]]; then echo "$fails failure(s)"; exit 1; fi
echo "cli_prep: all ok"
