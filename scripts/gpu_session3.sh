#!/usr/bin/env bash
# scripts/gpu_session3.sh — one GPU call: build with CUTLASS (sm_90), the GPU tests (ctest:
# test_gpu_linear incl. sm90, test_engine_gpu), dev_quant_slide (validation + timing),
# memcheck of the sm90 tests, bench decode M 64,512 on cublaslt and sm90dense. Logs in $OUT.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-gpu-s3-logs}
mkdir -p "$out"
source scripts/device_env.sh >/dev/null
B=build-gpu
cmake -S . -B $B -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 -DSS_CUDA=ON \
    -DCUSPARSELT_ROOT="$CUSPARSELT_ROOT" -DCUTLASS_ROOT=$PWD/.carry/cutlass/include >"$out/configure.log" 2>&1 || { tail -20 "$out/configure.log"; exit 1; }
grep "slidesparse:" "$out/configure.log"
cmake --build $B -j 16 --target slidesparse test_gpu_linear test_engine_gpu dev_quant_slide >"$out/build.log" 2>&1 || { grep -B2 -A5 error "$out/build.log" | head -40; exit 1; }
echo "built at ${SECONDS}s"
timeout 240 ctest --test-dir $B -R '^(test_gpu_linear|test_engine_gpu)$' --output-on-failure -V >"$out/ctest.log" 2>&1; echo "ctest rc=$?"
grep -E "^[0-9]+: \[  (PASSED|FAILED|SKIPPED) |tests passed|FAILED" "$out/ctest.log" | head -20
timeout 120 $B/dev_quant_slide >"$out/dev_quant_slide.log" 2>&1; echo "dev_quant_slide rc=$?"
grep -E "validation|D2D copy" "$out/dev_quant_slide.log"; grep -A20 "^# 6" "$out/dev_quant_slide.log" | head -14
SS_TEST_FILTER='test_sm90*' SS_GPU_TEST_QUICK=1 timeout 200 compute-sanitizer --tool memcheck --leak-check full --report-api-errors no \
    --error-exitcode 1 $B/test_gpu_linear >"$out/memcheck_sm90.log" 2>&1; echo "memcheck sm90 rc=$?"; grep -E "ERROR SUMMARY|LEAK SUMMARY|PASSED|FAILED" "$out/memcheck_sm90.log"
S=$B/slidesparse M=/tmp/models
[[ -f $M/BitNet-2B-INT8/config.json ]] || {
    $S synth --preset bitnet-2b --out $M/BitNet-2B-BF16 --force >/dev/null &&
    $S quantize --in $M/BitNet-2B-BF16 --dtype int8 --out $M/BitNet-2B-INT8 --force >/dev/null; } || exit 1
for be in cublaslt sm90dense; do
  timeout 150 $S bench decode --model $M/BitNet-2B-INT8 --backend $be --M 64,512 --out /tmp/bd >"$out/decode_$be.log" 2>&1
  echo "decode $be rc=$?"; grep -E "tokens/s" "$out/decode_$be.log"
done
echo "done at ${SECONDS}s"
