#!/usr/bin/env bash
# scripts/gpu_decode_probe.sh — decode at M 64 on the GPU machine (one call):
# build the CLI + test_engine_gpu (sm_90), test_engine_gpu, BitNet-2B INT8 bench decode
# M 64 with and without graphs, ncu per-kernel durations of ~2 steady decode steps
# (graphs off so every kernel is one launch), and ncu sections of the skinny GEMM
# harness at M 16 / 64 (gate_up). Logs under $OUT.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-gpu-probe-logs}
mkdir -p "$out"
source scripts/device_env.sh >/dev/null
B=build-gpu
cmake -S . -B $B -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 -DSS_CUDA=ON \
    -DCUSPARSELT_ROOT="$CUSPARSELT_ROOT" >"$out/configure.log" 2>&1 || { tail -20 "$out/configure.log"; exit 1; }
cmake --build $B -j 16 --target slidesparse test_engine_gpu >"$out/build.log" 2>&1 || { grep error "$out/build.log" | head; exit 1; }
timeout 120 $B/test_engine_gpu >"$out/test_engine_gpu.log" 2>&1; echo "test_engine_gpu rc=$?"; grep -E "PASSED|FAILED" "$out/test_engine_gpu.log"
S=$B/slidesparse M=/tmp/models
[[ -f $M/BitNet-2B-INT8/config.json ]] || {
    $S synth --preset bitnet-2b --out $M/BitNet-2B-BF16 --force >/dev/null &&
    $S quantize --in $M/BitNet-2B-BF16 --dtype int8 --out $M/BitNet-2B-INT8 --force >/dev/null; } || exit 1
echo "models ready at ${SECONDS}s"
D=$M/BitNet-2B-INT8
timeout 100 $S bench decode --model $D --M 64 --out /tmp/b1 > $out/dec64.log 2>&1; grep -E "tokens/s" $out/dec64.log
SS_CUDA_GRAPHS=0 timeout 240 ncu --metrics gpu__time_duration.sum --csv --print-units base --launch-skip 30000 --launch-count 900 \
   $S bench decode --model $D --M 64 --out /tmp/b3 > $out/ncu64.csv 2> $out/ncu64.err; echo "ncu rc=$? at ${SECONDS}s"
if [[ -n ${SS_PROBE_SKINNY:-} ]]; then
cmake --build $B -j 16 --target dev_skinny_gemm >>"$out/build.log" 2>&1 || exit 1
timeout 200 ncu --section SpeedOfLight --section WarpStateStats --section MemoryWorkloadAnalysis --section Occupancy --section LaunchStats \
  --kernel-name regex:skinny $B/dev_skinny_gemm profile > $out/ncu_skinny.log 2>&1; echo "ncu skinny rc=$?"
fi
if [[ -n ${SS_PROBE_QUANT:-} ]]; then
cmake --build $B -j 16 --target dev_quant_slide >>"$out/build.log" 2>&1 && timeout 120 $B/dev_quant_slide fused > $out/dev_quant_slide_fused.log 2>&1
echo "dev_quant_slide rc=$?"; grep -A24 "^# 6" $out/dev_quant_slide_fused.log
fi
echo "done at ${SECONDS}s"
