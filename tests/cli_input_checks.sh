#!/usr/bin/env bash
# CLI tests of bad input answered by one clear line and a non-zero exit before
# any work (tests/cli_*.sh, called with the slidesparse binary as $1): NaN /
# Inf in any tensor, Qwen2's q/k/v biases under one rule, output paths that
# cannot be written, bad --task lists, a missing run-all --model, run-all's earlier
# option spellings (a deprecation line, then the error), one --backend value set
# everywhere, GPU backends without a GPU, a full disk under demo and tune, a
# benchmark too large for memory.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/support/cli_common.sh"
cli_begin cli_input_checks "$1"
cd "$T"
# expect_err RC DESC NEEDLE -- cmd...: one stderr line holding NEEDLE, exit RC,
# nothing under bad/, and (the work was not started) nothing on stdout.
expect_err() {
  expect_one_line_error "$@"
  [[ ! -s $T/out ]] || fail "$2: printed before failing: $(head -c 200 "$T/out")"
}
# poke FILE TENSOR BYTES: overwrite the first element of TENSOR in a
# safetensors FILE (printf escapes, little-endian).
poke() {
  local f=$1 name=$2 bytes=$3 n b
  n=$(od -An -t u8 -N 8 "$f" | tr -d ' ')
  b=$(head -c $((8 + n)) "$f" | grep -ao "\"$name\":{[^}]*}" | grep -o '"data_offsets":\[[0-9]*' | grep -o '[0-9]*$')
  [[ -n $b ]] || { fail "poke: no tensor $name in $f"; return 1; }
  printf "$bytes" | dd of="$f" bs=1 seek=$((8 + n + b)) conv=notrunc status=none
}
gen() { "$B" generate --backend cpu --prompt-ids 1,2,3 --max-tokens 4 --model "$@"; }

run_ok "$B" synth --preset tiny-llama --out m --seed 3 || exit 1
run_ok "$B" synth --preset tiny-qwen2 --out w --seed 3 || exit 1

# --- 7. NaN / Inf in any tensor ---------------------------------------------------------------
cp -r m nan && poke nan/model.safetensors model.norm.weight '\xc0\x7f'            # BF16 NaN
expect_err 2 "NaN in a norm (quantize)" "'model.norm.weight': expected finite values, found NaN" -- \
  "$B" quantize --model nan --dtype int8 --out bad/q
cp -r m inf && poke inf/model.safetensors model.embed_tokens.weight '\x80\xff'    # BF16 -Inf
expect_err 2 "Inf in the embeddings (convert)" "found Inf" -- "$B" convert --model inf --sparsity 2_8 --out bad
cp -r w bias && poke bias/model.safetensors model.layers.1.self_attn.v_proj.bias '\x80\x7f'
expect_err 2 "Inf in a bias (quantize)" "v_proj.bias': expected finite values, found Inf" -- \
  "$B" quantize --model bias --dtype fp8 --out bad/q
run_ok "$B" quantize --model m --dtype fp8 --out mq
cp -r mq scale && poke scale/model.safetensors model.layers.0.mlp.up_proj.weight_scale '\x00\x00\xc0\x7f'
expect_err 2 "NaN in a weight scale (convert of a quantized input)" "up_proj.weight_scale': expected finite" -- \
  "$B" convert --model scale --sparsity 2_4 --out bad
cp -r mq f8 && poke f8/model.safetensors model.layers.0.self_attn.o_proj.weight '\x7f'  # E4M3 NaN
expect_err 2 "NaN in an FP8 weight (convert)" "o_proj.weight': expected finite values, found NaN" -- \
  "$B" convert --model f8 --sparsity 2_4 --out bad
expect_err 2 "generate on NaN weights" "not finite" -- gen nan
run_ok gen m && grep -q "generated:" out || fail "generate on a sound model"

# --- 8. Qwen2's q/k/v biases: one rule for every command --------------------------------------------
# LLaMA weights under a Qwen2 config: no biases, which Qwen2 always has.
cp -r m nobias
sed -i 's/"LlamaForCausalLM"/"Qwen2ForCausalLM"/; s/"model_type": "llama"/"model_type": "qwen2"/' nobias/config.json
grep -q '"attention_bias": false' nobias/config.json || fail "nobias: expected attention_bias false in config.json"
expect_err 1 "Qwen2 without biases (quantize)" "q_proj.bias" -- "$B" quantize --model nobias --dtype int8 --out bad/q
expect_err 1 "Qwen2 without biases (convert)" "q_proj.bias" -- "$B" convert --model nobias --sparsity 2_4 --out bad
expect_err 1 "Qwen2 without biases (generate)" "q_proj.bias" -- gen nobias
# Qwen2 with biases and "attention_bias": false: the biases are used everywhere.
run_ok gen w && want=$(grep "logits hash" out)
cp -r w off && sed -i '0,/{/s/{/{\n  "attention_bias": false,/' off/config.json
grep -q '"attention_bias": false' off/config.json || fail "off: attention_bias not set to false"
run_ok gen off && [[ $(grep "logits hash" out) == "$want" ]] || fail "attention_bias false: generate ignored the biases"
run_ok "$B" quantize --model off --dtype int8 --out offq && run_ok gen offq || fail "attention_bias false: quantize"
echo "ok: Qwen2 biases: one rule for quantize, convert and generate"

# --- 9. output paths checked before any work ----------------------------------------------------------
echo file >F
expect_err 2 "bench prefill --out FILE" "--out F: exists and is not a folder" -- "$B" bench prefill --model m --m 512 --out F
expect_err 2 "bench decode --out FILE/x" "F exists and is not a folder" -- "$B" bench decode --model m --m 64 --out F/x
expect_err 2 "bench prefill --out inside --model" "inside the input" -- "$B" bench prefill --model m --m 512 --out m/results
expect_err 2 "bench kernel --out FILE" "--out F" -- "$B" bench kernel --preset tiny-llama --m 16 --out F
expect_err 2 "bench kernel --tuning-dir FILE" "--tuning-dir F: exists and is not a folder" -- \
  "$B" bench kernel --preset tiny-llama --m 16 --tuning-dir F
expect_err 2 "tune --tuning-dir FILE" "--tuning-dir F" -- "$B" tune --preset tiny-llama --tuning-dir F
[[ $(cat F) == file ]] || fail "F changed"

# --- 10. --task lists ----------------------------------------------------------------------------------------
for t in 9 "" 6,6 "6," 5 x; do
  expect_err 2 "bench kernel --task '$t' --sparsity 2_4" "--task" -- \
    "$B" bench kernel --preset tiny-llama --m 16 --task "$t" --sparsity 2_4 --out bad
done

# --- 11. run-all says why it failed --------------------------------------------------------------------------
expect_err 2 "run-all --model /nonexistent" "--model /nonexistent: no config.json" -- \
  "$B" run-all --model /nonexistent --out bad/r
"$B" run-all --task 2 --out r2 --quiet >out 2>err; rc=$?
[[ $rc == 1 && $(wc -l <err) == 1 ]] && grep -q "1 task(s) failed; first task 2: .*missing" err &&
  echo "ok: run-all with a failed task says so on stderr ($(cat err))" || fail "run-all failed task: exit $rc: $(cat err)"

# run-all's earlier spellings still parse: the deprecation line, then the same error as the new one
# expect_deprecated DESC OLD NEW NEEDLE -- cmd...: exit 2, stderr = the deprecation line + one line with NEEDLE
expect_deprecated() {
  local desc=$1 old=$2 new=$3 needle=$4; shift 5
  "$@" >out 2>err; local rc=$?
  [[ $rc == 2 && $(wc -l <err) == 2 && $(head -1 err) == "slidesparse run-all: $old is deprecated, use $new" ]] &&
    tail -1 err | grep -qF -- "$needle" && echo "ok: $desc ($(tr '\n' ' ' <err))" || fail "$desc: exit $rc: $(cat err)"
}
expect_deprecated "run-all --base" --base --model "--model /nonexistent: no config.json" -- \
  "$B" run-all --base /nonexistent --out bad/r
expect_deprecated "run-all --tasks" --tasks --task "unknown task '10'" -- "$B" run-all --out bad/r --tasks 1,10
expect_deprecated "run-all --models" --models --preset "unknown model 'gpt-5'" -- "$B" run-all --out bad/r --models gpt-5
expect_deprecated "run-all --dtypes" --dtypes --dtype "unknown dtype 'bf16'" -- "$B" run-all --out bad/r --dtypes=int8,bf16

# --- 12. one --backend value set: the same answer from every command that has the option --------------------
SET="expected auto, gpu, cpu, cublaslt, cusparselt, sm90sp or sm90dense"
expect_err 2 "generate --backend cuda" "--backend 'cuda': $SET" -- \
  "$B" generate --model m --backend cuda --prompt-ids 1 --max-tokens 1
expect_err 2 "bench decode --backend cuda" "--backend 'cuda': $SET" -- "$B" bench decode --model m --backend cuda --out bad
expect_err 2 "bench kernel --backend cuda" "--backend 'cuda': $SET" -- \
  "$B" bench kernel --preset tiny-llama --m 16 --backend cuda --out bad
expect_err 2 "tune --backend cuda" "--backend 'cuda': $SET" -- "$B" tune --preset tiny-llama --backend cuda --tuning-dir bad/t
expect_err 2 "run-all --backend cuda" "--backend 'cuda': $SET" -- "$B" run-all --backend cuda --out bad/r
expect_err 2 "run-all --backend cusparselt" "run-all measures every GEMM library" -- \
  "$B" run-all --backend cusparselt --out bad/r
for c in "generate" "bench prefill" "bench kernel" "tune" "run-all"; do
  $B $c --help | grep -qF "cpu, or a GEMM" || fail "$c --help: not the shared --backend text"
done

# --- 12b. a GPU backend without a GPU ---------------------------------------------------------------------------
if command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; then
  echo "skip: a GPU is present: the no-GPU messages are not reachable here"
else
  expect_err 1 "generate --backend cublaslt" "no CUDA device: backend cublaslt needs a GPU" -- \
    "$B" generate --model m --backend cublaslt --prompt-ids 1 --max-tokens 1
  expect_err 1 "bench prefill --backend cublaslt" "no CUDA device: backend cublaslt needs a GPU" -- \
    "$B" bench prefill --model m --m 512 --backend cublaslt --out bad
  expect_err 1 "bench kernel --backend gpu" "no CUDA device: --backend gpu needs a GPU" -- \
    "$B" bench kernel --preset tiny-llama --m 16 --backend gpu --out bad
  expect_err 1 "tune --backend sm90sp" "needs a GPU" -- "$B" tune --preset tiny-llama --backend sm90sp --tuning-dir bad/t
  expect_err 1 "generate --backend gpu" "needs a GPU" -- "$B" generate --model m --backend gpu --prompt-ids 1 --max-tokens 1
  expect_err 1 "run-all --backend gpu" "no CUDA device: --backend gpu needs a GPU" -- \
    "$B" run-all --backend gpu --out bad/r
fi

# --- 13. a full disk leaves no folders behind (demo, tune) --------------------------------------------------------
# A tmpfs filled up, else a file-size limit (ulimit -f: writes fail with EFBIG).
full_disk_case() { # DESC NEEDLE DIR -- cmd...
  local desc=$1 needle=$2 dir=$3; shift 4
  "$@" >out 2>err; local rc=$?
  if [[ $rc == 0 ]]; then fail "$desc: exit 0"
  elif ! grep -q "$needle" err; then fail "$desc: $(cat err)"
  elif [[ -n $(ls -A "$dir" | grep -v '^fill$') ]]; then fail "$desc: left $(ls -A "$dir")"
  else echo "ok: $desc ($(cat err))"; fi
}
if cli_tmpfs small 256k; then
  full_disk_case "full disk: demo" "No space" small -- "$B" demo --out small/demo
  dd if=/dev/zero of=small/fill bs=4k 2>/dev/null
  full_disk_case "full disk: tune" "No space" small -- "$B" tune --preset tiny-llama --stage coarse --dtype int8 \
    --m-coarse 16 --warmup 1 --repeat 1 --quiet --tuning-dir small/tuning
  full_disk_case "full disk: bench kernel" "No space" small -- "$B" bench kernel --preset tiny-llama --task 6 \
    --dtype int8 --m 16 --warmup 1 --repeat 1 --quiet --out small/results --tuning-dir small/tuning
  # the CSVs fail, the tuning table (elsewhere) is saved after them: the reason must survive
  full_disk_case "full disk: bench kernel CSVs" "tiny-llama_qkv.csv.*No space" small -- "$B" bench kernel \
    --preset tiny-llama --task 6 --dtype int8 --m 16 --warmup 1 --repeat 1 --quiet --out small/results \
    --tuning-dir tuning_ok
  # no inode left midway through creating missing parents: the ones made go again
  cli_tmpfs inodes "1m,nr_inodes=4" &&
    full_disk_case "no inode left: synth into missing folders" "No space" inodes -- \
      "$B" synth --preset tiny-llama --out inodes/a/b/c/d/m
else
  echo "skip: cannot mount a tmpfs (not root?): the full-disk cases use a file-size limit instead"
  full_disk_case "file-size limit: demo" "File too large" small -- bash -c "ulimit -f 64; exec \"$B\" demo --out small/demo"
  full_disk_case "file-size limit: tune" "File too large" small -- bash -c "ulimit -f 0; exec \"$B\" tune \
    --preset tiny-llama --stage coarse --dtype int8 --m-coarse 16 --warmup 1 --repeat 1 --quiet --tuning-dir small/tuning"
fi
expect_err 2 "demo --out FILE" "--out F" -- "$B" demo --out F
run_ok "$B" demo --out demo && run_ok "$B" demo --out demo --force || fail "demo, then demo --force"
expect_one_line_error 1 "demo into an existing folder" "already exists" -- "$B" demo --out demo

# --- 14. a benchmark too large for memory is refused up front ----------------------------------------------------
# (the device banner is printed first: only stderr is checked)
expect_one_line_error 1 "bench kernel --square --m 65536" "needs about" -- \
  timeout 20 "$B" bench kernel --square --m 65536 --dtype int8 --task 6 --out bad --quiet
expect_one_line_error 1 "tune with an M too large" "needs about" -- \
  timeout 20 "$B" tune --preset qwen2.5-14b --stage coarse --dtype int8 --m-coarse 1048576 --tuning-dir bad/t --quiet
[[ ! -e bad ]] || fail "left $(find bad | head -3)"

if [[ $fails != 0 ]]; then echo "$fails failure(s)"; exit 1; fi
echo "cli_input_checks: all ok"
