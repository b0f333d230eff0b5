#!/usr/bin/env bash
# scripts/gpu_final4.sh PART — session 4's closing GPU measurements (H100), run from a snapshot of
# HEAD (so nobody's half-edited file gets built) with .carry beside it:
#   build   configure + build with CUTLASS, ctest test_gpu_linear + test_engine_gpu, BitNet-2B
#           synth -> INT8 -> 2_4, 2_8, tune cuBLASLt/cuSPARSELt and sm90dense/sm90sp at the decode
#           and prefill M into /tmp/tuning
#   bench   bench decode M 64,128,256,512 and bench prefill M 4096,16384 (--scale quick): dense
#           (cublaslt, sm90dense) and 2_4 / 2_8 (cusparselt, sm90sp) with that table; the dense
#           decode rows again with SS_PDL=0 (programmatic dependent launch off)
#   prof    decode --profile at M 64 and 512 (cuBLASLt, sm90dense): the stage split per step
#   kernels bench kernel --preset bitnet-2b INT8 + FP8, 2_4..2_10, M 64..16384, sm90 and plain,
#           one table tuned for those M first (issue #9's full table)
# Logs under $OUT.
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/gpu_common.sh
out=${OUT:-gpu-final4-logs}
mkdir -p "$out"
source scripts/device_env.sh >/dev/null
B=build-gpu S=build-gpu/slidesparse M=/tmp/models T=/tmp/tuning
D=$M/BitNet-2B-INT8 S24=$M/slid/BitNet-2B-INT8-SlideSparse-2_4 S28=$M/slid/BitNet-2B-INT8-SlideSparse-2_8
tps() { grep -oE '[0-9.]+ tokens/s' "$1" | tr '\n' ' '; }
case ${1:-build} in
build)
  gpu_configure $B || exit 1
  cmake --build $B -j 16 --target slidesparse test_gpu_linear test_engine_gpu >"$out/build.log" 2>&1 ||
      { grep -B2 -A5 error "$out/build.log" | head -40; exit 1; }
  echo "built at ${SECONDS}s"
  timeout 300 ctest --test-dir $B -R '^(test_gpu_linear|test_engine_gpu)$' --output-on-failure -V >"$out/ctest.log" 2>&1
  echo "ctest rc=$?"
  grep -E "^[0-9]+: \[  (PASSED|FAILED|SKIPPED) |tests passed|FAILED" "$out/ctest.log" | head -40
  gpu_bitnet_models $S $M 2_4,2_8 || { echo "model prep failed"; exit 1; }
  echo "models at ${SECONDS}s"
  for extra in "" "--sm90sp --sm90dense"; do
    timeout 240 $S tune --preset bitnet-2b --dtype int8 --sparsity 2_4,2_8 --m-coarse 64,128,256,512,4096,16384 \
        --m-fine 64,128,256,512,4096,16384 --tuning-dir $T --warmup 10 --repeat 30 --quiet $extra >>"$out/tune.log" 2>&1
    echo "tune '$extra' rc=$? at ${SECONDS}s"
  done ;;
bench)
  export SS_TUNING_DIR=$T
  for spec in dense:cublaslt:$D dense:sm90dense:$D 2_4:cusparselt:$S24 2_4:sm90sp:$S24 2_8:cusparselt:$S28 2_8:sm90sp:$S28; do
    IFS=: read -r pat be model <<<"$spec"
    timeout 150 $S bench decode --model $model --backend $be --M 64,128,256,512 --out $out/res >"$out/decode_${pat}_$be.log" 2>&1
    echo "decode $pat $be rc=$?: $(tps "$out/decode_${pat}_$be.log")"
    timeout 150 $S bench prefill --model $model --backend $be --M 4096,16384 --scale quick --out $out/res >"$out/prefill_${pat}_$be.log" 2>&1
    echo "prefill $pat $be rc=$?: $(tps "$out/prefill_${pat}_$be.log")"
  done
  for be in cublaslt sm90dense; do
    SS_PDL=0 timeout 150 $S bench decode --model $D --backend $be --M 64,512 --out /tmp/nopdl >"$out/decode_dense_${be}_nopdl.log" 2>&1
    echo "decode dense $be SS_PDL=0 rc=$?: $(tps "$out/decode_dense_${be}_nopdl.log")"
  done
  timeout 100 $S bench decode --model $D --backend cublaslt --M 64 --profile --out /tmp/prof >"$out/decode_profile.log" 2>&1
  echo "profile rc=$?"
  echo "done at ${SECONDS}s" ;;
prof)
  export SS_TUNING_DIR=$T
  for be in cublaslt sm90dense; do
    for m in 64 512; do
      timeout 120 $S bench decode --model $D --backend $be --M $m --profile --out /tmp/prof >"$out/profile_${be}_$m.log" 2>&1
      echo "profile $be M $m rc=$?"; sed -n '/stages per step/,/host /p' "$out/profile_${be}_$m.log"
    done
  done ;;
kernels)
  Ms=64,256,1024,4096,16384
  for extra in "" "--sm90sp --sm90dense"; do
    timeout 240 $S tune --preset bitnet-2b --dtype int8,fp8 --sparsity 2_4,2_6,2_8,2_10 --m-coarse $Ms --m-fine $Ms \
        --tuning-dir $T --warmup 5 --repeat 20 --quiet $extra >>"$out/tune_kernels.log" 2>&1
    echo "tune '$extra' rc=$? at ${SECONDS}s"
  done
  for extra in "--sm90sp --sm90dense" ""; do
    timeout 200 $S bench kernel --preset bitnet-2b --dtype int8,fp8 --sparsity 2_4,2_6,2_8,2_10 --m $Ms --tuning-dir $T \
        --warmup 5 --repeat 20 --out $out/kern $extra >"$out/kernel_bitnet${extra:+_sm90}.log" 2>&1
    echo "kernel '$extra' rc=$? at ${SECONDS}s"
  done ;;
esac
