#!/usr/bin/env bash
# Installs what the build needs and is missing, on Debian as root; elsewhere it
# only says what is missing. Idempotent and quiet when everything is there.
#   scripts/deps.sh [--fuzz]    (--fuzz adds clang + libFuzzer runtime + libomp)
set -euo pipefail
want=(cmake ninja-build pkg-config gcc libjansson-dev libcmocka-dev gnuplot-nox libmicrohttpd-dev curl jq)
if [[ "${1:-}" == "--fuzz" ]]; then
  want+=(clang libclang-rt-dev libomp-dev)
fi
missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
    echo "deps: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "deps: missing Debian packages: ${missing[*]} (run as root: apt-get install -y ${missing[*]})" >&2
    exit 1
  fi
fi
# cuSPARSELt headers/library for the sparse GPU backend: only useful with nvcc.
if command -v nvcc >/dev/null && command -v python3 >/dev/null && python3 -m pip --version >/dev/null 2>&1; then
  if ! python3 -m pip show -q nvidia-cusparselt-cu13 >/dev/null 2>&1 && [[ -z "${CUSPARSELT_ROOT:-}" ]]; then
    echo "deps: pip install nvidia-cusparselt-cu13"
    python3 -m pip install -q nvidia-cusparselt-cu13 || echo "deps: cuSPARSELt not installed; the sparse GPU backend will be off" >&2
  fi
  # CUTLASS headers for the sm90sp backend (Hopper 2:4 GEMM with the dequant fused).
  if ! python3 -m pip show -q nvidia-cutlass >/dev/null 2>&1 && [[ -z "${CUTLASS_ROOT:-}" ]]; then
    echo "deps: pip install nvidia-cutlass"
    python3 -m pip install -q nvidia-cutlass || echo "deps: CUTLASS not installed; the sm90sp backend will be off" >&2
  fi
fi
