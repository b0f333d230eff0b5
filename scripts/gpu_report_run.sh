#!/usr/bin/env bash
# scripts/gpu_report_run.sh [CONFIG] — on the GPU machine, from the repo root:
# builds the CLI and the GPU tests, runs the GPU tests, then `run-all` with
# CONFIG (default bench/h100_quick.json: BitNet-2B, INT8 + FP8, a reduced
# M matrix at quick scale) into /tmp/ra, and packs the report, CSVs, plots,
# status and log (no checkpoints) into $OUT/results.tgz.
set -uo pipefail
cd "$(dirname "$0")/.."
cfg=${1:-bench/h100_quick.json}
source scripts/device_env.sh >/dev/null
B=build-gpu
cmake -S . -B $B -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 -DSS_CUDA=ON \
  -DCUSPARSELT_ROOT="$CUSPARSELT_ROOT" >"$OUT/configure.log" 2>&1 || { tail -20 "$OUT/configure.log"; exit 1; }
cmake --build $B -j "$(nproc)" --target slidesparse test_gpu_linear test_engine_gpu >"$OUT/build.log" 2>&1 \
  || { grep -E "error" "$OUT/build.log" | head -20; exit 1; }
ctest --test-dir $B -R 'test_gpu_linear|test_engine_gpu' --output-on-failure -V >"$OUT/ctest.log" 2>&1
grep -E "tests passed|Failed|FAILED|\*\*\*" "$OUT/ctest.log" | tail -5
timeout "${SS_RUN_ALL_TIMEOUT:-330}" $B/slidesparse run-all --config "$cfg" --out /tmp/ra --quiet >"$OUT/run_all.log" 2>&1
echo "run-all rc=$?"
ls /tmp/ra/*_report_*.md >/dev/null 2>&1 || $B/slidesparse report /tmp/ra >>"$OUT/run_all.log" 2>&1
tail -25 "$OUT/run_all.log"
tar czf "$OUT/results.tgz" --exclude=checkpoints --exclude=checkpoints_slidesparse -C /tmp ra
nvidia-smi --query-gpu=name,clocks.sm,power.draw --format=csv
