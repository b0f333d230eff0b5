#!/usr/bin/env bash
# scripts/gpu_perf.sh [OUTDIR] — decode/prefill performance of the GPU engine
# with the opt-in switches, run on the GPU machine from the repo root:
#   1. build (sm_90) of slidesparse, test_engine_gpu, dev_attention in build-gpu
#      (configured by scripts/gpu_engine_check.sh, or here when missing),
#   2. dev_attention quick (validation of every variant incl. 5 = decode v2,
#      then decode timings), test_engine_gpu (incl. graphs on == off),
#   3. bitnet-2b INT8 dense (cublaslt) and 2_8 (cusparselt), from
#      build-gpu/engine-models (made here as gpu_engine_check.sh does when
#      missing): `bench decode --M 64,512` with graphs off, SS_CUDA_GRAPHS=1,
#      and SS_CUDA_GRAPHS=1 SS_ATTN_DECODE=2; `bench prefill --M 4096,16384
#      --scale quick`; `bench prefill --M 16384 --scale quick --profile` once,
#   4. a summary table last (tokens/s per run, step verdicts).
# Steps get what is left of SS_GPU_PERF_BUDGET seconds (default 240); a step
# that does not fit is skipped. Logs: OUTDIR (default $OUT, else ./gpu-perf-logs).
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-${OUT:-gpu-perf-logs}}
mkdir -p "$out"
exec > >(tee "$out/gpu_perf.log") 2>&1
budget=${SS_GPU_PERF_BUDGET:-240}
B=${SS_GPU_BUILD:-build-gpu}
models=$B/engine-models
cli=$B/slidesparse
dense=$models/bitnet-2b-INT8
slid=$models/slid/bitnet-2b-INT8-SlideSparse-2_8
jobs=$(nproc 2>/dev/null || echo 4)
names=()
declare -A result

STEP_LOGS=1 STEP_TAIL=${STEP_TAIL:-25}
source scripts/gpu_common.sh
# step NAME MIN_SECONDS CMD...: CMD (output in OUTDIR/NAME.log, tail echoed)
# under the budget left; skipped when less than MIN_SECONDS remain (replaces the
# fixed-timeout step of gpu_common.sh).
step() { budget_step "$@"; }

source scripts/device_env.sh
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,memory.total --format=csv,noheader 2>&1
if [[ ! -f $B/build.ninja ]]; then
    step configure 30 cmake -S . -B "$B" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 \
        -DSS_CUDA=ON -DCUSPARSELT_ROOT="${CUSPARSELT_ROOT:-}"
fi
step build 60 cmake --build "$B" -j "$jobs" --target slidesparse test_engine_gpu dev_attention || {
    echo "build failed: nothing else to run"; exit 1; }
step dev_attention 30 "$B/dev_attention" quick
step test_engine_gpu 40 ctest --test-dir "$B" -R '^test_engine_gpu$' --output-on-failure -V

mkdir -p "$models"
[[ -f $models/bitnet-2b/config.json ]] || step synth 60 "$cli" synth --preset bitnet-2b --out "$models/bitnet-2b" --force
[[ -f $dense/config.json ]] || step quantize 40 "$cli" quantize --in "$models/bitnet-2b" --dtype int8 --out "$dense" --force
[[ -f $slid/config.json ]] || step convert 40 "$cli" convert --in "$dense" --sparsity 2_8 --out-root "$models/slid" --force

bench() { # NAME ENV MODEL BENCH-ARGS...
    local name=$1 envs=$2 model=$3; shift 3
    [[ -f $model/config.json ]] || { names+=("$name"); result[$name]="skipped (no model)"; return; }
    step "$name" 25 env $envs "$cli" bench --model "$model" --out "$out/csv" "$@"
}
# Most informative first: the budget cuts from the end.
bench decode_int8_off SS_CUDA_GRAPHS=0 "$dense" decode --M 64,512
bench decode_int8_graphs SS_CUDA_GRAPHS=1 "$dense" decode --M 64,512
bench decode_int8_graphs_dec2 "SS_CUDA_GRAPHS=1 SS_ATTN_DECODE=2" "$dense" decode --M 64,512
bench prefill_int8_profile SS_CUDA_GRAPHS=0 "$dense" prefill --M 16384 --scale quick --profile
bench decode_2_8_off SS_CUDA_GRAPHS=0 "$slid" decode --M 64,512
bench decode_2_8_graphs_dec2 "SS_CUDA_GRAPHS=1 SS_ATTN_DECODE=2" "$slid" decode --M 64,512
bench prefill_int8 SS_CUDA_GRAPHS=0 "$dense" prefill --M 4096,16384 --scale quick
bench prefill_2_8 SS_CUDA_GRAPHS=0 "$slid" prefill --M 4096,16384 --scale quick
bench decode_2_8_graphs SS_CUDA_GRAPHS=1 "$slid" decode --M 64,512
bench decode_int8_dec2 "SS_CUDA_GRAPHS=0 SS_ATTN_DECODE=2" "$dense" decode --M 64,512

echo
echo "== summary (${SECONDS}s of ${budget}s; logs in $out)"
printf '%-26s %s\n' step result
for n in "${names[@]}"; do
    printf '%-26s %-22s' "$n" "${result[$n]}"
    # bench steps: "M <m>: ..." then "  <s> s: ... <x> tokens/s": one "M=x tok/s" per M
    [[ -f $out/$n.log ]] && awk '/^M [0-9]+:/ {m=$2; sub(":","",m)} /tokens\/s \(/ {
        for (i = 1; i <= NF; i++) if ($i == "tokens/s") printf " M=%s %s tok/s", m, $(i-1) }' "$out/$n.log"
    echo
done
grep -hE "^(OK |BAD) v5|decode .*5 as 4" "$out/dev_attention.log" 2>/dev/null | head -12 | sed 's/^/  /'
grep -hE "decode graphs on == off|FAILED|PASSED" "$out/test_engine_gpu.log" 2>/dev/null | head -6 | sed 's/^/  /'
grep -hA10 "stages per step" "$out/prefill_int8_profile.log" 2>/dev/null | sed 's/^/  /'
