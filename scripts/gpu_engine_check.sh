#!/usr/bin/env bash
# scripts/gpu_engine_check.sh [OUTDIR] — the GPU engine check, run on the GPU
# machine from the repo root, one command:
#   1. environment (scripts/device_env.sh), configure (sm_90) + build of the
#      engine tests, the CLI and dev_attention in build-gpu,
#   2. test_engine_cpu and test_engine_gpu (ctest),
#   3. dev_attention: the attention kernel vs a CPU reference, then timings,
#   4. compute-sanitizer memcheck on test_engine_gpu (quick set: a tiny model),
#   5. bitnet-2b: synth -> quantize int8 -> convert 2_8 (kept in
#      build-gpu/engine-models, so a second run reuses them), then
#      `slidesparse generate` on cublaslt (INT8 dense) and cusparselt (2_8),
#      printing tokens/s,
#   6. a summary table last.
# A failing step is reported and the next independent step still runs. Steps
# get what is left of SS_ENGINE_CHECK_BUDGET seconds (default 570: one device
# call is 600 s); a step that does not fit is reported as skipped, and a rerun
# resumes the model preparation where it stopped.
# Everything goes to OUTDIR/engine_gpu.log (default $OUT, else ./gpu-engine-logs).
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-${OUT:-gpu-engine-logs}}
mkdir -p "$out"
log=$out/engine_gpu.log
exec > >(tee "$log") 2>&1
budget=${SS_ENGINE_CHECK_BUDGET:-570}
B=${SS_GPU_BUILD:-build-gpu}
models=$B/engine-models
jobs=$(nproc 2>/dev/null || echo 4)
names=()
declare -A result

source scripts/gpu_common.sh
# step NAME MIN_SECONDS CMD...: CMD (output here, in the log) with a timeout of
# the budget left; skipped when less than MIN_SECONDS remain (replaces the
# fixed-timeout step of gpu_common.sh).
step() { budget_step "$@"; }
skip() { names+=("$1"); result[$1]="skipped ($2)"; echo "== $1: skipped ($2)"; }

nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,memory.total --format=csv 2>&1
source scripts/device_env.sh # also patches cuSPARSELt 0.8.0's header for C

built=0
if step configure 30 cmake -S . -B "$B" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 \
        -DSS_CUDA=ON -DCUSPARSELT_ROOT="${CUSPARSELT_ROOT:-}"; then
    step build 60 cmake --build "$B" -j "$jobs" --target test_engine_gpu test_engine_cpu slidesparse dev_attention \
        && built=1
else
    skip build "configure failed"
fi

if ((built)); then
    step test_engine_cpu 30 ctest --test-dir "$B" -R '^test_engine_cpu$' --output-on-failure
    step test_engine_gpu 30 ctest --test-dir "$B" -R '^test_engine_gpu$' --output-on-failure -V
    step dev_attention 30 "$B/dev_attention"
    step memcheck 60 env SS_GPU_TEST_QUICK=1 SS_TEST_DATA="$PWD/tests/data" \
        compute-sanitizer --tool memcheck --leak-check full --error-exitcode 1 "$B/test_engine_gpu"
else
    for s in test_engine_cpu test_engine_gpu dev_attention memcheck; do skip $s "no build"; done
fi

# --- bitnet-2b: prepare once (reused by later runs), then generate -------------------------------
cli=$B/slidesparse
dense=$models/bitnet-2b-INT8
slid_root=$models/slid
slid=$slid_root/bitnet-2b-INT8-SlideSparse-2_8
mkdir -p "$models"
prepared=0
if ((built)); then
    if [[ -f $models/bitnet-2b/config.json ]] || step synth_bitnet2b 120 "$cli" synth --preset bitnet-2b --out "$models/bitnet-2b" --force; then
        if [[ -f $dense/config.json ]] || step quantize_int8 60 "$cli" quantize --in "$models/bitnet-2b" --dtype int8 --out "$dense" --force; then
            prepared=1
            [[ -f $slid/config.json ]] || step convert_2_8 60 "$cli" convert --in "$dense" --sparsity 2_8 --out-root "$slid_root" --force \
                || prepared=2
        fi
    fi
fi
prompt=$(seq -s, 1 128)
gen() { # name backend dir
    step "$1" 40 "$cli" generate --model "$3" --backend "$2" --prompt-ids "$prompt" --max-tokens 128
}
if ((prepared >= 1)); then
    gen generate_int8_cublaslt cublaslt "$dense"
    if [[ -f $slid/config.json ]]; then
        gen generate_2_8_cusparselt cusparselt "$slid"
    else
        skip generate_2_8_cusparselt "no 2_8 checkpoint"
    fi
else
    skip generate_int8_cublaslt "no bitnet-2b INT8 checkpoint"
    skip generate_2_8_cusparselt "no bitnet-2b INT8 checkpoint"
fi

echo
echo "== summary (${SECONDS}s of ${budget}s; log: $log)"
printf '%-26s %s\n' step result
for n in "${names[@]}"; do
    printf '%-26s %s\n' "$n" "${result[$n]}"
done
grep -h "^speed:" "$log" 2>/dev/null | sed 's/^/  /'
grep -hE "^(OK |BAD) .*(TFLOPS|GB/s)|^(prefill|decode) " "$log" 2>/dev/null | head -8 | sed 's/^/  /'
