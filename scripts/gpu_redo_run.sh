#!/usr/bin/env bash
# scripts/gpu_redo_run.sh [TASKS] [LIMIT_S] — on the GPU machine, one call:
# rebuilds the CLI (with the sm90sp backend when .carry/cutlass holds CUTLASS's
# headers), reruns TASKS (default 1,2,4,5) of the committed run in
# docs/h100_full with `run-all --resume --redo` (tasks 1-2 recreate the
# checkpoints that tasks 4-5 need; the CSV rows of the redone tasks are
# replaced per M), then measures the sm90sp backend (issue #9): bench kernel
# --sm90sp (INT8, 2_4..2_10) and bench prefill on the 2_8 checkpoint with
# sm90sp next to cusparselt and dense cublaslt. Results: $OUT/results.tgz (the
# run folder without checkpoints), $OUT/sm90sp.tgz, logs.
set -uo pipefail
cd "$(dirname "$0")/.."
tasks=${1:-1,2,4,5}
limit=${2:-585}
B=build-gpu
RA=$B/ra
out=${OUT:-gpu-redo-logs}
mkdir -p "$out"
source scripts/device_env.sh >/dev/null
cut=()
[[ -d .carry/cutlass/include ]] && cut=(-DCUTLASS_ROOT="$PWD/.carry/cutlass/include")
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader
cmake -S . -B $B -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 -DSS_CUDA=ON \
    -DCUSPARSELT_ROOT="$CUSPARSELT_ROOT" "${cut[@]}" >"$out/configure.log" 2>&1 || { tail -20 "$out/configure.log"; exit 1; }
grep -i "cutlass" "$out/configure.log" | head -3
cmake --build $B -j "$(nproc)" --target slidesparse test_gpu_linear >"$out/build.log" 2>&1 || { grep -E "error" "$out/build.log" | head -20; exit 1; }
echo "build done at ${SECONDS}s"
SS_TEST_FILTER='test_sm90sp*' timeout 90 $B/test_gpu_linear >"$out/test_sm90sp.log" 2>&1
echo "test_gpu_linear (test_sm90sp*) rc=$? at ${SECONDS}s"; grep -E "OK|FAILED|PASSED|skipped|Error" "$out/test_sm90sp.log" | head -12
rm -rf "$RA" && cp -r docs/h100_full "$RA"
timeout $((limit - SECONDS - 130)) $B/slidesparse run-all --resume --redo "$tasks" --out "$RA" --quiet >"$out/run_all_redo.log" 2>&1
echo "run-all rc=$? at ${SECONDS}s"; tail -6 "$out/run_all_redo.log"
tar czf "$out/results.tgz" --exclude=checkpoints --exclude=checkpoints_slidesparse -C $B ra
S=$B/slidesparse
mkdir -p /tmp/sp
cp -r "$RA/tuning" /tmp/sp/tuning
for side in cusparselt sm90sp; do # the same shapes, M and table: dense vs each sparse side
    ((limit - SECONDS > 60)) || break
    flag=(); [[ $side == sm90sp ]] && flag=(--sm90sp)
    timeout $((limit - SECONDS - 40)) $S bench kernel --preset bitnet-2b --dtype int8 --sparsity 2_4,2_6,2_8,2_10 \
        --m 512,4096,16384 "${flag[@]}" --tuning-dir /tmp/sp/tuning --out /tmp/sp/$side --warmup 5 --repeat 20 \
        >"$out/kernel_$side.log" 2>&1
    echo "bench kernel $side rc=$? at ${SECONDS}s"; tail -14 "$out/kernel_$side.log"
done
slid=$RA/checkpoints_slidesparse/BitNet-2B-INT8-SlideSparse-2_8
for be in sm90sp cusparselt; do
    ((limit - SECONDS > 25)) || break
    timeout $((limit - SECONDS - 10)) $S bench prefill --model "$slid" --backend $be --M 4096,16384 --scale quick \
        --out /tmp/sp >"$out/prefill_$be.log" 2>&1
    echo "prefill 2_8 $be rc=$?"; grep -E "tokens/s" "$out/prefill_$be.log"
done
tar czf "$out/sm90sp.tgz" -C /tmp sp
nvidia-smi --query-gpu=clocks.sm,power.draw --format=csv,noheader
