#!/usr/bin/env bash
# scripts/gpu/decode.sh PART... — decode measurements on the GPU machine, one device call
# (run from the repository root with .carry beside it; logs and CSVs under $OUT):
#   build    configure + build (CUTLASS from .carry) the CLI and the GPU tests
#   check    test_gpu_linear (quick set: every sm90 algorithm incl. the stream GEMM at M 1..300,
#            INT8 bit-exact, FP8 within tolerance) and test_engine_gpu
#   models   BitNet-2B synthesized -> INT8 (and FP8 when DTYPES has fp8) -> PATTERNS slid
#   kernel   bench kernel at the decode M (GEMM alone and the whole linear), sm90 backends
#            with the stream GEMM and with SS_STREAM=0, against cuBLASLt / cuSPARSELt (on the
#            table of an earlier `tune` part, else heuristics)
#   tune     tune the sm90 backends and cuBLASLt at the decode M into $T
#   decode   bench decode, every backend x pattern x dtype, M in MS; dense rows again with
#            SS_STREAM=0 (the CUTLASS kernels alone: the "before" of the same call)
#   profile  bench decode --profile at M PROFILE_M (default 64) for the dense backends and 2_4
#            (stage split)
#   phases   dev_stream_phases: per-block phase times of the stream GEMM (BitNet-2B, M 64)
#   gemm     dev_decode_gemm (nvcc alone, sm_90a, no CUTLASS build): the register form, the shared-memory
#            ring and the multicast form per projection and as a layer against cuBLASLt (GEMM_SHAPES
#            passes DG_SHAPES, e.g. a K sweep), then the DG_EXCHANGE builds
#            (GEMM_EXCHANGES, default "3": the split-K exchange through global memory, no cluster) and
#            the DG_SKIP builds (GEMM_SKIPS, default "2 3": without the cluster exchange / and the MMAs)
#   ceiling  dev_layer_stream: a step's projection weights streamed by one resident grid with grid
#            barriers between projections, against one kernel per projection (plain, PDL)
#   sanitize compute-sanitizer memcheck on test_engine_gpu's quick set, on its FP8 KV
#            attention kernel test and on test_gpu_linear's sm90 tests (quick shapes)
#   prefill  bench prefill at M 16384, sm90dense and the first pattern on sm90sp (no-regression
#            check of the default prefill path)
#   ab       before / after in one call: the tree in .carry/before (`git archive REF | tar -x -C
#            .carry/before`, made where git is) built without CUTLASS into build-before, then
#            bench decode with both binaries, alternating (AB_ROUNDS rounds, default 2), for
#            AB_SPECS (default "dense:cublaslt"; cuBLASLt / cuSPARSELt backends) x DTYPES x KV_DTYPES
#   ncu      Nsight Compute on the stream GEMM's first launches in a tune of BitNet-2B at M 64
#            (speed of light, memory, occupancy, warp states), dense and 2:4
# Environment: MS (decode M list, default 64,128,256,512), PATTERNS (2_4,2_8), DTYPES (int8),
# KV_DTYPES (the decode part's KV caches, default bf16; "bf16 fp8" runs both), PROFILE_M (64),
# KERNEL_STREAM (the kernel part's SS_STREAM values, default "1 0"), TUNE_PLAIN (0: tune only the
# sm90 backends; cuBLASLt / cuSPARSELt keep their heuristics),
# SS_TUNING_DIR (set by tune; unset = heuristics).
set -uo pipefail
cd "$(dirname "$0")/../.."
out=${OUT:-gpu-decode-logs}
mkdir -p "$out"
source scripts/gpu/run.sh env
export SS_STREAM=${SS_STREAM:-1} # the sm90 backends' stream GEMM (opt-in) is what this measures
# configure: Release, sm_90 only, CUDA on, cuSPARSELt / CUTLASS as env found them
gpu_configure() { # gpu_configure BUILD_DIR [SOURCE_DIR]
  cmake -S "${2:-.}" -B "$1" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 -DSS_CUDA=ON \
    ${CUSPARSELT_ROOT:+-DCUSPARSELT_ROOT=$CUSPARSELT_ROOT} ${CUTLASS_ROOT:+-DCUTLASS_ROOT=$CUTLASS_ROOT} \
    >"$out/configure.log" 2>&1 || { tail -20 "$out/configure.log"; return 1; }
  grep "slidesparse:" "$out/configure.log"
}
B=build-gpu S=build-gpu/slidesparse M=/tmp/models T=/tmp/tuning
MS=${MS:-64,128,256,512} PATTERNS=${PATTERNS:-2_4,2_8} DTYPES=${DTYPES:-int8}
tps() { grep -oE '[0-9.]+ tokens/s' "$1" | tr '\n' ' '; }
model() { # model DTYPE PATTERN -> checkpoint dir
  local up=${1^^}
  [[ $2 == dense ]] && echo "$M/BitNet-2B-$up" || echo "$M/slid-$1/BitNet-2B-$up-SlideSparse-$2"
}
for part in "$@"; do
  echo "=== $part at ${SECONDS}s"
  case $part in
  build)
    gpu_configure $B || exit 1
    cmake --build $B -j 16 --target slidesparse test_gpu_linear test_engine_gpu dev_stream_phases dev_layer_stream >"$out/build.log" 2>&1 ||
      { grep -B2 -A8 -m5 error "$out/build.log"; exit 1; } ;;
  check)
    SS_TEST_DATA=$PWD/tests/data SS_GPU_TEST_QUICK=1 timeout 300 $B/test_gpu_linear >"$out/test_gpu_linear.log" 2>&1
    echo "test_gpu_linear rc=$?"
    grep -E "^\[  (PASSED|FAILED|SKIPPED) |FAILED|mismatch|error" "$out/test_gpu_linear.log" | head -20
    SS_TEST_DATA=$PWD/tests/data timeout 200 $B/test_engine_gpu >"$out/test_engine_gpu.log" 2>&1
    echo "test_engine_gpu rc=$?"
    grep -E "^\[  (PASSED|FAILED|SKIPPED) |FAILED" "$out/test_engine_gpu.log" | head -20 ;;
  models)
    $S synth --preset bitnet-2b --out "$M/BitNet-2B-BF16" --force >/dev/null || exit 1
    for dt in ${DTYPES//,/ }; do
      $S quantize --model "$M/BitNet-2B-BF16" --dtype $dt --out "$(model $dt dense)" --force >/dev/null &&
        $S convert --model "$(model $dt dense)" --sparsity "$PATTERNS" --out "$M/slid-$dt" --force >/dev/null ||
        { echo "model prep $dt failed"; exit 1; }
    done ;;
  kernel)
    for st in ${KERNEL_STREAM:-1 0}; do
      SS_STREAM=$st timeout 200 $S bench kernel --preset bitnet-2b --dtype ${DTYPES} --sparsity "$PATTERNS" \
        --m "$MS" --sm90sp --sm90dense ${SS_TUNING_DIR:+--tuning-dir $SS_TUNING_DIR} \
        $([[ -z ${SS_TUNING_DIR:-} ]] && echo --no-tune) --warmup 10 --repeat 50 --out $out/kern$st --quiet \
        >"$out/kernel_stream$st.log" 2>&1
      echo "bench kernel SS_STREAM=$st rc=$?"
      grep -iE "total|speedup" "$out/kernel_stream$st.log" | head -30
    done ;;
  tune)
    sets=("--sm90sp --sm90dense")
    [[ ${TUNE_PLAIN:-1} == 1 ]] && sets+=("") # cuBLASLt / cuSPARSELt too
    for extra in "${sets[@]}"; do
      timeout 200 $S tune --preset bitnet-2b --dtype ${DTYPES} --sparsity "$PATTERNS" --m-coarse "$MS" \
        --m-fine "$MS" --tuning-dir $T --warmup 5 --repeat 20 --quiet --candidates $extra >>"$out/tune.log" 2>&1
      echo "tune '$extra' rc=$?"
    done
    cp $T/*/tuning.json "$out/tuning.json" 2>/dev/null
    export SS_TUNING_DIR=$T ;;
  decode)
    for dt in ${DTYPES//,/ }; do
      for kv in ${KV_DTYPES:-bf16}; do
        for spec in dense:cublaslt dense:sm90dense ${PATTERNS//,/:sm90sp }:sm90sp; do
          IFS=: read -r pat be <<<"$spec"
          log="$out/decode_${dt}_${pat}_${be}_kv$kv.log"
          timeout 200 $S bench decode --model "$(model $dt $pat)" --backend $be --m "$MS" --kv-dtype $kv \
            --out $out/res >"$log" 2>&1
          echo "decode $dt $pat $be kv $kv rc=$?: $(tps "$log")"
          grep -h "memory speed" "$log" | sed "s/.*KV/    KV/"
        done
      done
      SS_STREAM=0 timeout 200 $S bench decode --model "$(model $dt dense)" --backend sm90dense --m "$MS" \
        --out /tmp/nostream >"$out/decode_${dt}_dense_sm90dense_nostream.log" 2>&1
      echo "decode $dt dense sm90dense SS_STREAM=0 rc=$?: $(tps "$out/decode_${dt}_dense_sm90dense_nostream.log")"
    done ;;
  profile)
    for spec in dense:sm90dense 2_4:sm90sp dense:cublaslt; do
      IFS=: read -r pat be <<<"$spec"
      timeout 120 $S bench decode --model "$(model int8 $pat)" --backend $be --m ${PROFILE_M:-64} --profile \
        --out /tmp/prof >"$out/profile_${pat}_${be}_m${PROFILE_M:-64}.log" 2>&1
      echo "profile $pat $be rc=$?"; sed -n '/stages per step/,/host /p' "$out/profile_${pat}_${be}_m${PROFILE_M:-64}.log"
    done ;;
  sanitize)
    SS_TEST_DATA=$PWD/tests/data SS_GPU_TEST_QUICK=1 timeout 240 compute-sanitizer \
      --tool memcheck --error-exitcode 9 $B/test_engine_gpu >"$out/sanitize_engine.log" 2>&1
    echo "memcheck test_engine_gpu (quick) rc=$?"
    grep -E "ERROR SUMMARY|Invalid|PASSED|FAILED" "$out/sanitize_engine.log" | head -8
    SS_TEST_FILTER=test_kv_fp8_kernels_hd128 SS_TEST_DATA=$PWD/tests/data timeout 240 compute-sanitizer \
      --tool memcheck --error-exitcode 9 $B/test_engine_gpu >"$out/sanitize_kv_fp8.log" 2>&1
    echo "memcheck test_engine_gpu (the FP8 KV attention kernels) rc=$?"
    grep -E "ERROR SUMMARY|Invalid|PASSED|FAILED" "$out/sanitize_kv_fp8.log" | head -8
    SS_TEST_FILTER='test_sm90*' SS_GPU_TEST_QUICK=1 SS_TEST_DATA=$PWD/tests/data timeout 300 compute-sanitizer \
      --tool memcheck --error-exitcode 9 $B/test_gpu_linear >"$out/sanitize_sm90.log" 2>&1
    echo "memcheck test_gpu_linear (the sm90 GEMMs, the stream GEMM's candidates included) rc=$?"
    grep -E "ERROR SUMMARY|Invalid|PASSED|FAILED" "$out/sanitize_sm90.log" | head -8 ;;
  prefill)
    for spec in dense:sm90dense ${PATTERNS%%,*}:sm90sp; do
      IFS=: read -r pat be <<<"$spec"
      timeout 200 $S bench prefill --model "$(model int8 $pat)" --backend $be --m 16384 --out /tmp/prefill \
        >"$out/prefill_${pat}_$be.log" 2>&1
      echo "prefill $pat $be rc=$?: $(tps "$out/prefill_${pat}_$be.log")"
    done ;;
  ceiling)
    timeout 120 $B/dev_layer_stream >"$out/layer_stream.log" 2>&1
    echo "dev_layer_stream rc=$?"; cat "$out/layer_stream.log" ;;
  phases)
    timeout 120 $B/dev_stream_phases >"$out/stream_phases.log" 2>&1
    echo "dev_stream_phases rc=$?"; grep -A1 "wg1 w1\|wg2 w1" "$out/stream_phases.log" | head -40 ;;
  gemm)
    # builds: the default (pull exchange, everything), each exchange in GEMM_EXCHANGES, each DG_SKIP in GEMM_SKIPS
    builds=(x0) && for x in ${GEMM_EXCHANGES:-3}; do builds+=(x$x); done
    for v in ${GEMM_SKIPS:-2 3}; do builds+=(s$v); done
    for b in "${builds[@]}"; do # the builds in parallel, the runs one at a time
      flag=-DDG_EXCHANGE=${b#x}; [[ $b == s* ]] && flag=-DDG_SKIP=${b#s}
      nvcc -std=c++17 -O3 -arch=sm_90a -Idev -Isrc/linear/include $flag dev/decode_gemm.cu -lcublasLt -o /tmp/dg$b \
        >"$out/decode_gemm_build_$b.log" 2>&1 &
    done
    wait
    for b in "${builds[@]}"; do
      ${GEMM_SHAPES:+env DG_SHAPES=$GEMM_SHAPES} timeout 120 /tmp/dg$b >"$out/decode_gemm_$b.log" 2>&1
      echo "dev_decode_gemm $b rc=$?"; grep -v "^# " "$out/decode_gemm_$b.log" | tail -6
      grep "^#   " "$out/decode_gemm_$b.log"
    done ;;
  ab)
    [[ -f .carry/before/CMakeLists.txt ]] || { echo "ab: no .carry/before tree"; exit 1; }
    CUTLASS_ROOT=/nonexistent gpu_configure build-before .carry/before || exit 1
    cmake --build build-before -j 16 --target slidesparse >"$out/build_before.log" 2>&1 ||
      { grep -B2 -A8 -m5 error "$out/build_before.log"; exit 1; }
    for round in $(seq 1 ${AB_ROUNDS:-2}); do
      for which in before after; do
        bin=$S; [[ $which == before ]] && bin=build-before/slidesparse
        for dt in ${DTYPES//,/ }; do
          for kv in ${KV_DTYPES:-bf16}; do
            for spec in ${AB_SPECS:-dense:cublaslt}; do
              IFS=: read -r pat be <<<"$spec"
              log="$out/ab_${which}_r${round}_${dt}_${pat}_${be}_kv$kv.log"
              timeout 200 $bin bench decode --model "$(model $dt $pat)" --backend $be --m "$MS" --kv-dtype $kv \
                --out /tmp/ab >"$log" 2>&1
              echo "$which round $round: $dt $pat $be kv $kv rc=$?: $(tps "$log")"
            done
          done
        done
      done
    done ;;
  ncu)
    for sp in "--sm90dense --sparsity 2_4 --stage coarse" "--sm90sp --sparsity 2_4 --stage fine"; do
      timeout 240 ncu --kernel-name regex:stream_kernel --launch-count 6 --section SpeedOfLight \
        --section MemoryWorkloadAnalysis --section LaunchStats --section Occupancy --section WarpStateStats \
        $S tune --preset bitnet-2b --dtype int8 --m-coarse 64 --m-fine 64 --tuning-dir /tmp/ncu-t \
        --warmup 1 --repeat 2 --quiet --retune $sp >>"$out/ncu_stream.log" 2>&1
      echo "ncu '$sp' rc=$?"
    done
    grep -E "Duration|DRAM Throughput|Memory Throughput|Registers Per|Achieved Occupancy|Block Limit|Grid Size|Cluster Size|Shared Memory Config" \
      "$out/ncu_stream.log" | head -60 ;;
  *) echo "unknown part $part"; exit 2 ;;
  esac
done
echo "=== done at ${SECONDS}s"
