#!/usr/bin/env bash
# scripts/gpu_check.sh [OUTDIR] — the whole GPU check on the GPU machine, one command:
#   1. environment (scripts/device_env.sh: carried debs, cuSPARSELt from pip),
#   2. configure + build (sm_90 unless SS_CUDA_ARCHS says otherwise) of the
#      library, the GPU test and the dev harnesses,
#   3. the GPU tests through ctest,
#   4. compute-sanitizer memcheck on test_gpu_linear with the quick shape set
#      (API errors not reported: the out-of-memory test provokes one on purpose),
#   5. dev harnesses (validation + timings),
#   6. a short summary last.
# Logs go to OUTDIR (default $OUT, else ./gpu-check-logs).
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-${OUT:-gpu-check-logs}}
mkdir -p "$out"
archs=${SS_CUDA_ARCHS:-90}
B=${SS_GPU_BUILD:-build-gpu}
jobs=$(nproc 2>/dev/null || echo 4)
declare -A result
source scripts/gpu_common.sh

nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,clocks.max.mem,memory.total --format=csv 2>&1 | tee "$out/gpu.txt"
source scripts/device_env.sh # also patches cuSPARSELt 0.8.0's header for C

step configure 300 cmake -S . -B "$B" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_CUDA_ARCHITECTURES="$archs" -DSS_CUDA=ON -DCUSPARSELT_ROOT="$CUSPARSELT_ROOT" || exit 1
grep "slidesparse:" "$out/configure.log"
step build 300 cmake --build "$B" -j "$jobs" --target test_gpu_linear test_linear_cpu \
    dev_quant_slide dev_dequant_bias || exit 1

step ctest 200 ctest --test-dir "$B" -R 'test_gpu_linear|test_linear_cpu' --output-on-failure -V
step dev_dequant_bias 90 "$B/dev_dequant_bias" ${SS_DEV_QUICK:+quick}
step dev_quant_slide 200 "$B/dev_quant_slide" ${SS_DEV_QUICK:+quick}
# memcheck last, with what is left of the budget (one device call is 600 s)
left=$(( ${SS_GPU_CHECK_BUDGET:-570} - SECONDS ))
(( left < 60 )) && left=60
step memcheck $left env SS_GPU_TEST_QUICK=1 compute-sanitizer --tool memcheck --leak-check full --report-api-errors no \
    --error-exitcode 1 "$B/test_gpu_linear"
{
echo
echo "== summary ($(head -2 "$out/gpu.txt" | tail -1))"
for s in configure build ctest dev_dequant_bias dev_quant_slide memcheck; do
    printf '%-18s %s\n' "$s" "${result[$s]:-not run}"
done
grep -h "PASSED\|FAILED\|skipped\|\[  FAILED  \]\|OK\b" "$out/ctest.log" | grep -v "^\s*$" | tail -n 15
grep -h "ERROR SUMMARY\|LEAK SUMMARY" "$out/memcheck.log"
grep -h "validation\|e4m3:\|D2D" "$out"/dev_*.log
} 2>&1 | tee "$out/summary.txt"
