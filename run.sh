#!/usr/bin/env bash
# The main job: installs what is missing, builds, and runs `slidesparse run-all`
# (tasks 1-8 + report). Without a GPU that is the embedded default: tiny-bitnet on
# the CPU reference path, short M lists, a report with plots under results/.
# Arguments go to run-all (e.g. ./run.sh --task 1,2 --out /tmp/r).
set -euo pipefail
cd "$(dirname "$0")"
scripts/deps.sh
scripts/build.sh build
exec build/slidesparse run-all "$@"
