#!/usr/bin/env bash
# scripts/gpu_profile.sh — where the time goes, on the GPU machine (one call):
#   1. build the CLI (sm_90), bitnet-2b synth -> INT8 -> 2_4, 2_8,
#   2. bench decode M 64: dense and 2_4 with graphs (default) and without,
#      then --profile (stage split; graphs off while profiling),
#   3. bench prefill M 16384 --profile: dense and 2_8,
#   4. cuSPARSELt vs cuBLASLt at M 16384 (FP8, 2_4): SM clock / power /
#      throttle reasons sampled by nvidia-smi while `bench kernel` runs, then
#      Nsight Compute's SpeedOfLight of the GEMM kernels (--clock-control none).
# Uses the tuning table in $SS_TUNING_DIR (default .carry/tuning, the run-all's).
# Logs under $OUT.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-gpu-profile-logs}
mkdir -p "$out"
source scripts/gpu_common.sh
source scripts/device_env.sh >/dev/null
export SS_TUNING_DIR=${SS_TUNING_DIR:-$PWD/.carry/tuning}
B=build-gpu
cmake -S . -B $B -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 -DSS_CUDA=ON \
    -DCUSPARSELT_ROOT="$CUSPARSELT_ROOT" >"$out/configure.log" 2>&1 || { tail -20 "$out/configure.log"; exit 1; }
cmake --build $B -j "$(nproc)" --target slidesparse >"$out/build.log" 2>&1 || { grep error "$out/build.log" | head; exit 1; }
S=$B/slidesparse M=$B/prof-models
[[ -f $M/BitNet-2B-INT8/config.json ]] || gpu_bitnet_models $S $M 2_4,2_8 || exit 1
D=$M/BitNet-2B-INT8 S24=$M/slid/BitNet-2B-INT8-SlideSparse-2_4 S28=$M/slid/BitNet-2B-INT8-SlideSparse-2_8
echo "models ready at ${SECONDS}s"
for spec in "dec_dense:$D:" "dec_24:$S24:" "dec_24_nographs:$S24:SS_CUDA_GRAPHS=0" "dec_dense_prof:$D::--profile" "dec_24_prof:$S24::--profile"; do
    IFS=: read -r name model envs extra <<<"$spec"
    echo "== $name"
    env $envs timeout 120 $S bench decode --model "$model" --M 64 $extra --out /tmp/prof >"$out/$name.log" 2>&1
    grep -E "tokens/s|graphs|per step|stages|^    [a-z]" "$out/$name.log" | head -14
done
for spec in "pre_dense_prof:$D" "pre_28_prof:$S28"; do
    IFS=: read -r name model <<<"$spec"
    echo "== $name"
    timeout 120 $S bench prefill --model "$model" --M 16384 --scale quick --profile --out /tmp/prof >"$out/$name.log" 2>&1
    grep -E "tokens/s|per step|stages|^    [a-z]" "$out/$name.log" | head -14
done
echo "== clocks during bench kernel FP8 2_4 M 16384 (at ${SECONDS}s)"
nvidia-smi --query-gpu=timestamp,clocks.sm,power.draw,clocks_throttle_reasons.active --format=csv -lms 100 >"$out/smi.csv" &
smi=$!
timeout 120 $S bench kernel --preset bitnet-2b --dtype fp8,int8 --sparsity 2_4 --m 16384 --tuning-dir "$SS_TUNING_DIR" \
    --out /tmp/prof >"$out/kernel_16384.log" 2>&1
kill $smi
awk -F', ' 'NR>1 {n++; c+=$2; p+=$3; if ($4 != "0x0000000000000000") t++} END {printf "samples %d, mean SM clock %.0f MHz, mean power %.0f W, throttled %d\n", n, c/n, p/n, t}' "$out/smi.csv"
sort -t, -k2 -n "$out/smi.csv" | head -3
echo "== ncu SpeedOfLight, GEMM kernels (at ${SECONDS}s)"
timeout 200 ncu --clock-control none --section SpeedOfLight --kernel-name regex:"gemm|sparse|xmma|sm90" --launch-skip 0 \
    --launch-count 12 $S bench kernel --preset bitnet-2b --dtype fp8 --sparsity 2_4 --m 16384 --warmup 0 --repeat 1 \
    --no-flush --tuning-dir "$SS_TUNING_DIR" --out /tmp/prof2 >"$out/ncu.log" 2>&1
echo "ncu rc=$?"
grep -E "^  [a-zA-Z_0-9]+.*\(|SM Frequency|Duration|Compute \(SM\) Throughput|Memory Throughput|DRAM Throughput" "$out/ncu.log" | head -60
echo "done at ${SECONDS}s"
