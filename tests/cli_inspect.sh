#!/usr/bin/env bash
# CLI-level test of `slidesparse inspect` (called with the binary as $1) on
# checkpoints in the real HF layout that the test makes itself: BF16 (synth),
# INT8 (quantize), SlideSparse 2_8 (convert), a bare .safetensors file, and the
# bad inputs (missing path, directory without config.json, corrupt file).
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/support/cli_common.sh"
cli_begin cli_inspect "$1"
cd "$T"
need() { # DESC FILE REGEX: the output must match
  grep -qE -- "$3" "$2" && echo "ok: $1" || fail "$1: no line matching '$3' in: $(head -c 2000 "$2")"
}

"$B" synth --preset tiny-bitnet --out bf16 --seed 3 >/dev/null || fail "synth"
"$B" quantize --model bf16 --dtype int8 --out int8 >/dev/null || fail "quantize"
"$B" convert --model int8 --sparsity 2_8 --out cs >/dev/null || fail "convert"

"$B" inspect bf16 >o1 2>&1 || fail "inspect bf16: exit $?"
need "BF16 architecture" o1 "BitNetForCausalLM"
need "BF16 projection listed" o1 "model\.layers\.0\.self_attn\.q_proj\.weight +BF16 +\[160, 160\]"

"$B" inspect int8 >o2 2>&1 || fail "inspect int8: exit $?"
need "INT8 kind" o2 "weights: .*I8"
need "INT8 projection + scale" o2 "q_proj\.weight_scale +F32 +\[1\]"

"$B" inspect cs/int8-SlideSparse-2_8 >o3 2>&1 || fail "inspect slid: exit $?"
need "slid kind names the pattern" o3 "slidesparse 2_8"
# q_proj: K = 160, K' = ceil32(160/8 * 12) = 256; detected 2_8, 2:4-valid
need "slid row: pattern, 2:4, K, K'" o3 "q_proj\.weight +I8 +\[160, 256\] .* 2_8 +yes +160 +256"
need "slid down_proj K'" o3 "down_proj\.weight +I8 +\[160, 672\] .* 432 +672"

"$B" inspect int8/model.safetensors >o4 2>&1 || fail "inspect file: exit $?"
need "single file lists tensors" o4 "model\.embed_tokens\.weight +BF16"

expect_err() { # DESC NEEDLE -- cmd...
  local desc=$1 needle=$2; shift 3
  "$@" >out 2>err; local rc=$?
  [[ $rc != 0 ]] || { fail "$desc: exit 0"; return; }
  [[ $(wc -l <err) == 1 ]] || fail "$desc: stderr is not one line: $(cat err)"
  grep -qF -- "$needle" err && echo "ok: $desc ($(cat err))" || fail "$desc: stderr lacks '$needle': $(cat err)"
}
expect_err "missing path" "no such file" -- "$B" inspect nowhere
mkdir empty
expect_err "directory without config.json" "no config.json" -- "$B" inspect empty
head -c 100 int8/model.safetensors >trunc.safetensors
expect_err "truncated file" "trunc.safetensors" -- "$B" inspect trunc.safetensors
expect_err "unknown option" "--bogus" -- "$B" inspect bf16 --bogus

echo "$fails failure(s)"
[[ $fails == 0 ]]
