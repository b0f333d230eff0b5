#!/usr/bin/env bash
# Prints, for every test CTest skipped in build dir $1, the reason the test
# printed (e.g. "test_gpu_linear: skipped: no CUDA device"), so GPU tests
# skipped on a machine without a GPU are visible in the output.
log="$1/Testing/Temporary/LastTest.log"
[[ -f $log ]] || exit 0
awk '/^[0-9]+\/[0-9]+ Testing: /{name=$3} /^skipped: /{print "  " name ": " $0}' "$log" | sort -u
