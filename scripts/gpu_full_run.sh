#!/usr/bin/env bash
# scripts/gpu_full_run.sh PHASE [LIMIT_S] — the seed's default run-all matrix on
# the GPU machine, in lease-sized slices (one device call each, on one warm
# machine; outputs live in build-gpu/ra, which a warm machine keeps):
#   PHASE 1: environment, configure + build, the GPU tests (test_gpu_linear,
#            test_engine_gpu) and the kernel harness (dev_quant_slide), then
#            `run-all --config bench/h100_full.json` (seed defaults: BitNet-2B,
#            INT8 + FP8, every M list and pattern; quick scale, warm-up 3 /
#            repeat 10) with --stop-after set so the last task started still
#            ends inside LIMIT_S (default 585).
#   PHASE 2+: `run-all --resume` with the same rule, then (when the run is
#            complete and time is left) `bench prefill --profile` at M 16384.
# Each phase packs the CSVs, status, log and report (no checkpoints) into
# $OUT/results.tgz. If the GPU tests fail in phase 1, no run-all starts (their
# log comes back instead); build-gpu/ra.env holds environment switches the
# later phases must share (empty by default).
set -uo pipefail
cd "$(dirname "$0")/.."
phase=${1:?phase 1 or 2}
limit=${2:-585}
longest=${SS_LONGEST_TASK_S:-230} # the slowest task's estimate (tuning, ~200 s)
B=build-gpu
RA=$B/ra
out=${OUT:-gpu-full-logs}
mkdir -p "$out"
source scripts/device_env.sh >/dev/null
if [[ $phase == 1 ]]; then
    nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,memory.total --format=csv,noheader
    cmake -S . -B $B -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 -DSS_CUDA=ON \
        -DCUSPARSELT_ROOT="$CUSPARSELT_ROOT" >"$out/configure.log" 2>&1 || { tail -20 "$out/configure.log"; exit 1; }
    cmake --build $B -j "$(nproc)" --target slidesparse test_gpu_linear test_engine_gpu test_tune test_linear_rmsnorm test_linear_epilogue dev_quant_slide dev_dequant_bias \
        >"$out/build.log" 2>&1 || { grep -E "error" "$out/build.log" | head -20; exit 1; }
    echo "build done at ${SECONDS}s"
    ctest --test-dir $B -R 'test_gpu_linear|test_engine_gpu|test_tune|test_linear_rmsnorm|test_linear_epilogue' --output-on-failure -V >"$out/ctest.log" 2>&1
    rc=$?
    grep -E "tests passed|Failed|FAILED|\*\*\*|skipped" "$out/ctest.log" | tail -8
    rm -rf "$RA" && mkdir -p "$RA"
    : >"$RA.env"
    if ((rc != 0)) && [[ -z ${SS_FULL_RUN_ANYWAY:-} ]]; then
        grep -B5 -A20 -E "FAILED|\[  FAILED|Failed" "$out/ctest.log" | head -60
        echo "GPU tests failed: no run-all (SS_FULL_RUN_ANYWAY=1 runs it regardless)"
        exit 1
    fi
    timeout 90 $B/dev_quant_slide fused >"$out/dev_quant_slide.log" 2>&1
    echo "dev_quant_slide rc=$? at ${SECONDS}s"; tail -30 "$out/dev_quant_slide.log"
    timeout 60 $B/dev_dequant_bias fused >"$out/dev_dequant_bias.log" 2>&1
    echo "dev_dequant_bias rc=$? at ${SECONDS}s"; tail -16 "$out/dev_dequant_bias.log"
    args=(--config bench/h100_full.json --out "$RA")
else
    args=(--resume --out "$RA")
fi
source "$RA.env"
left=$((limit - SECONDS - longest))
((left < 10)) && left=10
echo "run-all ${args[*]} --stop-after $left (at ${SECONDS}s)"
timeout $((limit - SECONDS - 5)) $B/slidesparse run-all "${args[@]}" --stop-after $left --quiet >"$out/run_all_$phase.log" 2>&1
rc=$?
echo "run-all rc=$rc at ${SECONDS}s"
tail -12 "$out/run_all_$phase.log"
if ((rc == 0 && limit - SECONDS > 60)); then
    timeout $((limit - SECONDS - 10)) $B/slidesparse bench prefill --model "$RA/checkpoints/BitNet-2B-INT8" \
        --backend cublaslt --M 16384 --scale quick --profile --out /tmp/prof >"$out/profile_prefill.log" 2>&1
    echo "profile rc=$?"; tail -25 "$out/profile_prefill.log"
    timeout $((limit - SECONDS - 10)) $B/slidesparse bench decode --model "$RA/checkpoints/BitNet-2B-INT8" \
        --backend cublaslt --M 64,512 --profile --out /tmp/prof >"$out/profile_decode.log" 2>&1
    echo "decode profile rc=$?"; tail -25 "$out/profile_decode.log"
fi
tar czf "$out/results.tgz" --exclude=checkpoints --exclude=checkpoints_slidesparse -C $B ra
nvidia-smi --query-gpu=name,clocks.sm,power.draw,memory.used --format=csv,noheader
