#!/usr/bin/env bash
# scripts/build.sh DIR [cmake -D options...]: configure (once) and build.
set -euo pipefail
dir=$1; shift
jobs=$(nproc 2>/dev/null || echo 2)
if [[ ! -f "$dir/build.ninja" ]]; then
  cmake -S . -B "$dir" -G Ninja "$@" >"$dir.configure.log" 2>&1 || { cat "$dir.configure.log"; exit 1; }
  grep "slidesparse:" "$dir.configure.log" || true
fi
cmake --build "$dir" -j "$jobs"
