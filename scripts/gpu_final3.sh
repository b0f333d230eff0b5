#!/usr/bin/env bash
# scripts/gpu_final3.sh PART — the session's closing GPU measurements (H100), from a tree
# with .carry (run it from a snapshot of HEAD so nobody's half-edited file gets built):
#   build  configure + build with CUTLASS (sm_90), ctest test_gpu_linear + test_engine_gpu,
#          BitNet-2B synth -> INT8 -> 2_4, 2_8, tune (coarse + fine, cuBLASLt/cuSPARSELt and
#          sm90dense/sm90sp) at M 64, 512, 4096, 16384 into /tmp/tuning
#   bench  bench decode M 64,512 and bench prefill M 4096,16384 (--scale quick) for dense
#          (cublaslt, sm90dense) and 2_4 / 2_8 (cusparselt, sm90sp) with that table
#   kernels bench kernel --preset llama3.2-3b / qwen2.5-7b, INT8 + FP8, 2_4 / 2_8, M 4096,16384:
#          sm90dense + sm90sp, then cuBLASLt + cuSPARSELt (issue #9's other shapes)
#   soak   bench decode --M 64 --soak ${SS_SOAK_S:-560} (dense cublaslt) on the same machine
# Logs under $OUT.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-gpu-final-logs}
mkdir -p "$out"
source scripts/gpu_common.sh
source scripts/device_env.sh >/dev/null
B=build-gpu S=build-gpu/slidesparse M=/tmp/models T=/tmp/tuning
D=$M/BitNet-2B-INT8 S24=$M/slid/BitNet-2B-INT8-SlideSparse-2_4 S28=$M/slid/BitNet-2B-INT8-SlideSparse-2_8
case ${1:-build} in
build)
  cmake -S . -B $B -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 -DSS_CUDA=ON \
      -DCUSPARSELT_ROOT="$CUSPARSELT_ROOT" -DCUTLASS_ROOT=$PWD/.carry/cutlass/include >"$out/configure.log" 2>&1 || { tail -20 "$out/configure.log"; exit 1; }
  cmake --build $B -j 16 --target slidesparse test_gpu_linear test_engine_gpu >"$out/build.log" 2>&1 || { grep -B2 -A5 error "$out/build.log" | head -40; exit 1; }
  echo "built at ${SECONDS}s"
  timeout 240 ctest --test-dir $B -R '^(test_gpu_linear|test_engine_gpu)$' --output-on-failure -V >"$out/ctest.log" 2>&1; echo "ctest rc=$?"
  grep -E "^[0-9]+: \[  (PASSED|FAILED|SKIPPED) |tests passed|FAILED" "$out/ctest.log" | head -20
  gpu_bitnet_models $S $M 2_4,2_8 || { echo "model prep failed"; exit 1; }
  echo "models at ${SECONDS}s"
  for extra in "" "--sm90sp --sm90dense"; do
    timeout 200 $S tune --preset bitnet-2b --dtype int8 --sparsity 2_4,2_8 --m-coarse 64,512,16384 \
        --m-fine 64,512,16384 --tuning-dir $T --warmup 10 --repeat 30 --quiet $extra >>"$out/tune.log" 2>&1
    echo "tune '$extra' rc=$? at ${SECONDS}s"
  done ;;
bench)
  timeout 100 $S bench decode --model $D --M 64,512 --out /tmp/nt >"$out/decode_dense_heuristic.log" 2>&1
  echo "decode dense cublaslt, no table: $(grep -oE '[0-9.]+ tokens/s' "$out/decode_dense_heuristic.log" | tr '\n' ' ')"
  export SS_TUNING_DIR=$T
  for spec in dense:cublaslt:$D dense:sm90dense:$D 2_4:cusparselt:$S24 2_4:sm90sp:$S24 2_8:cusparselt:$S28 2_8:sm90sp:$S28; do
    IFS=: read -r pat be model <<<"$spec"
    timeout 120 $S bench decode --model $model --backend $be --M 64,512 --out $out/res >"$out/decode_${pat}_$be.log" 2>&1
    echo "decode $pat $be rc=$?: $(grep -oE '[0-9.]+ tokens/s' "$out/decode_${pat}_$be.log" | tr '\n' ' ')"
    timeout 120 $S bench prefill --model $model --backend $be --M 16384 --scale quick --out $out/res >"$out/prefill_${pat}_$be.log" 2>&1
    echo "prefill $pat $be rc=$?: $(grep -oE '[0-9.]+ tokens/s' "$out/prefill_${pat}_$be.log" | tr '\n' ' ')"
  done
  echo "done at ${SECONDS}s" ;;
kernels)
  for preset in llama3.2-3b qwen2.5-7b; do
    for extra in "--sm90sp --sm90dense" ""; do
      timeout 280 $S bench kernel --preset $preset --dtype int8,fp8 --sparsity 2_4,2_8 --m 4096,16384 --tuning-dir $T \
          --warmup 5 --repeat 20 --out $out/kern $extra >"$out/kernel_${preset}_${extra:+sm90}.log" 2>&1
      echo "kernel $preset '$extra' rc=$? at ${SECONDS}s"
    done
  done ;;
soak)
  export SS_TUNING_DIR=$T
  nvidia-smi --query-gpu=memory.used,memory.total --format=csv | tee "$out/smi_before.txt"
  timeout $(( ${SS_SOAK_S:-560} + 30 )) $S bench decode --model $D --M 64 --soak ${SS_SOAK_S:-560} --out $out/soak >"$out/soak.log" 2>&1
  echo "soak rc=$?"; head -4 "$out/soak.log"; tail -6 "$out/soak.log"
  nvidia-smi --query-gpu=memory.used,memory.total --format=csv | tee "$out/smi_after.txt" ;;
esac
