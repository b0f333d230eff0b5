#!/usr/bin/env bash
# scripts/gpu_bench.sh [OUTDIR] — tuning + kernel benchmark on the GPU machine, one command:
#   1. environment (scripts/device_env.sh: carried debs, cuSPARSELt from pip,
#      header patched for C when it is 0.8.0) + build of the CLI,
#   2. slidesparse tune   --preset bitnet-2b, int8+fp8, coarse + fine,
#   3. slidesparse bench kernel, bitnet-2b, int8+fp8, tasks 6-8   (run 1)
#   4. the same again                                              (run 2: must tune nothing)
#   5. a summary; CSVs + tuning tables in OUTDIR/results.tgz, logs beside it.
# Budget knobs (defaults sized for a ~8 minute device call):
#   SS_TUNE_M_FINE   64,256,1024,4096,16384     SS_TUNE_M_COARSE 256,1024,4096,16384
#   SS_TUNE_SPARSITY 2_4,2_6,2_8,2_10,2_12,2_14,2_16,2_inf  (bench run 1 then reuses all)
#   SS_TUNE_REPEAT 20 / SS_TUNE_WARMUP 5;  SS_BENCH_REPEAT 30 / SS_BENCH_WARMUP 10
#   SS_BENCH_M 64,128,256,512,1024,2048,4096,8192,16384   SS_BENCH_TASKS 6,7,8
#   step timeouts: SS_CONF_TIMEOUT 60, SS_BUILD_TIMEOUT 200, SS_TUNE_TIMEOUT 270, SS_BENCH_TIMEOUT 150
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-${OUT:-gpu-bench-logs}}
mkdir -p "$out"
B=${SS_GPU_BUILD:-build-gpu}
jobs=$(nproc 2>/dev/null || echo 4)
work=$(mktemp -d /tmp/gpu_bench.XXXXXX)
declare -A result
STEP_TAIL=30
source scripts/gpu_common.sh

nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,clocks.max.mem,memory.total --format=csv 2>&1 | tee "$out/gpu.txt"
source scripts/device_env.sh # also patches cuSPARSELt 0.8.0's header for C
step configure ${SS_CONF_TIMEOUT:-60} cmake -S . -B "$B" -G Ninja -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF \
    -DCMAKE_CUDA_ARCHITECTURES="${SS_CUDA_ARCHS:-90}" -DSS_CUDA=ON -DCUSPARSELT_ROOT="$CUSPARSELT_ROOT" || exit 1
step build ${SS_BUILD_TIMEOUT:-200} cmake --build "$B" -j "$jobs" --target slidesparse || exit 1
S=$(realpath "$B/slidesparse")

cd "$work"
pats=${SS_TUNE_SPARSITY:-2_4,2_6,2_8,2_10,2_12,2_14,2_16,2_inf}
step tune ${SS_TUNE_TIMEOUT:-270} "$S" tune --preset bitnet-2b --dtype int8,fp8 --stage coarse,fine \
    --sparsity "$pats" --m-coarse "${SS_TUNE_M_COARSE:-256,1024,4096,16384}" \
    --m-fine "${SS_TUNE_M_FINE:-64,256,1024,4096,16384}" \
    --warmup "${SS_TUNE_WARMUP:-5}" --repeat "${SS_TUNE_REPEAT:-20}" --backend gpu
pack() { tar czf "$out/results.tgz" res tuning 2>/dev/null; }
pack
for run in 1 2; do
    step bench$run ${SS_BENCH_TIMEOUT:-150} "$S" bench kernel --preset bitnet-2b --dtype int8,fp8 \
        --task "${SS_BENCH_TASKS:-6,7,8}" --m "${SS_BENCH_M:-64,128,256,512,1024,2048,4096,8192,16384}" \
        --warmup "${SS_BENCH_WARMUP:-10}" --repeat "${SS_BENCH_REPEAT:-30}" --backend gpu --out res
    pack
done
{
echo
echo "== summary ($(sed -n 2p "$out/gpu.txt"))"
for s in configure build tune bench1 bench2; do printf '%-10s %s\n' "$s" "${result[$s]:-not run}"; done
grep -h "^tune:" "$out/tune.log"
grep -h "^tuning:" "$out"/bench1.log "$out"/bench2.log
ls res/benchmark_kernel/*/ 2>/dev/null
} 2>&1 | tee "$out/summary.txt"
