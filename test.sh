#!/usr/bin/env bash
# The whole test suite: installs what is missing, then
#   1. builds everything (CPU library, CLI, every .cu file when nvcc is present)
#      and runs the tests (GPU tests print "skipped: no CUDA device" without a GPU);
#   2. rebuilds the CPU library and tests under ASan + UBSan and runs them;
#   3. builds the libFuzzer targets with clang and runs each on its seed corpus
#      for a bounded number of executions.
# --fast runs step 1 only.
set -euo pipefail
cd "$(dirname "$0")"
fast=0
[[ "${1:-}" == "--fast" ]] && fast=1
scripts/deps.sh $([[ $fast == 0 ]] && echo --fuzz)
jobs=$(nproc 2>/dev/null || echo 2)

# ctest runs $jobs tests at once: one OpenMP thread each, so parallel tests do
# not oversubscribe the cores (an OpenMP barrier then spins for milliseconds).
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}

echo "== 1/3 build + tests"
scripts/build.sh build
ctest --test-dir build --output-on-failure -j "$jobs"
scripts/show_skips.sh build
[[ $fast == 1 ]] && exit 0

echo "== 2/3 AddressSanitizer + UndefinedBehaviorSanitizer"
scripts/build.sh build-asan -DSS_CUDA=OFF -DSS_SANITIZE=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure -j "$jobs"

echo "== 3/3 fuzz targets (libFuzzer)"
CC=clang scripts/build.sh build-fuzz -DSS_CUDA=OFF -DSS_FUZZ=ON -DBUILD_TESTING=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo
runs=${SS_FUZZ_RUNS:-20000}
for f in build-fuzz/fuzz_*; do
  [[ -x "$f" ]] || continue
  name=$(basename "$f")
  corpus=$(mktemp -d)
  cp -r "fuzz/corpus/${name#fuzz_}/." "$corpus/" 2>/dev/null || true
  echo "-- $name: $runs runs"
  "$f" -runs="$runs" -max_len=65536 -timeout=10 "$corpus" 2>&1 | tail -n 3
  rm -rf "$corpus"
done
echo "fuzz: all targets ran $runs executions without a crash"
