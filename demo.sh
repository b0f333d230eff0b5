#!/usr/bin/env bash
# The main job on the embedded default: installs what is missing, builds, and
# runs `slidesparse demo` (a tiny generated model on the CPU reference path when
# no GPU is present). Extra arguments go to the demo.
set -euo pipefail
cd "$(dirname "$0")"
scripts/deps.sh
scripts/build.sh build
exec build/slidesparse demo "$@"
