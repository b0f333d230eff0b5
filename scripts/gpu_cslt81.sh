#!/usr/bin/env bash
# scripts/gpu_cslt81.sh PART — cuSPARSELt 0.8.0 (the machine's package) against 0.8.1 on the
# same GPU in the same call. The 0.8.1 wheel (170 MB) does not fit one call's 64 MiB working
# tree, so its library travels xz-compressed in pieces over several calls that follow each other
# within the idle window (the machine keeps /tmp between them):
#   here:  split -b 25000000 -d -a 1 libcusparseLt.so.0.xz part_ ; spread the parts over
#          .csl_1 .. .csl_4 (ignored through .git/info/exclude), the sha256 file in the last
#   build  configure (no CUTLASS: only cuBLASLt / cuSPARSELt are compared) + build the CLI,
#          stash the parts carried in this call
#   stash  stash the parts carried in this call (CSL_SRC: the repo root holding .csl_*, default .)
#   compare reassemble + check the sha256, then for each version (0.8.1 through LD_PRELOAD: same
#          soname) tune BitNet-2B INT8 + FP8 2_4 / 2_8 at M 512, 4096, 16384 and bench kernel;
#          0.8.0 is benched twice (before and after) to show the run-to-run spread.
# One tuning folder per version (0.8.0's second run reuses its first table).
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/gpu_common.sh
out=${OUT:-gpu-cslt-logs}
mkdir -p "$out" /tmp/csl81
B=build-gpu S=build-gpu/slidesparse T=/tmp/tuning-cslt L=/tmp/csl81
stash() { for d in ${CSL_SRC:-.}/.csl_*; do [[ -d $d ]] && cp $d/* $L/; done; ls $L | tr '\n' ' '; echo; }
case ${1:-build} in
build)
  source scripts/device_env.sh
  stash
  gpu_configure $B -DCUTLASS_ROOT=/nonexistent || exit 1 # no CUTLASS: faster, not compared here
  cmake --build $B -j 16 --target slidesparse >"$out/build.log" 2>&1 || { grep -B2 -A5 error "$out/build.log" | head -40; exit 1; }
  echo "built at ${SECONDS}s" ;;
stash) stash ;;
compare)
  source scripts/device_env.sh >/dev/null
  stash
  cat $L/part_? | xz -d >$L/libcusparseLt.so.0 || exit 1
  (cd $L && sed 's#nvidia/cusparselt/lib/##' so.sha | sha256sum -c -) || exit 1
  k() { # k LABEL [preload]: tune (cuSPARSELt + cuBLASLt) then time, under one library
    local pre=${2:-} T=$T${2:+-081}
    env ${pre:+LD_PRELOAD=$pre} timeout 240 $S tune --preset bitnet-2b --dtype int8,fp8 --sparsity 2_4,2_8 \
        --m-coarse 512,4096,16384 --m-fine 512,4096,16384 --tuning-dir $T --warmup 5 --repeat 20 --quiet \
        >"$out/tune_$1.log" 2>&1
    echo "tune $1 rc=$? at ${SECONDS}s"
    env ${pre:+LD_PRELOAD=$pre} timeout 200 $S bench kernel --preset bitnet-2b --dtype int8,fp8 \
        --sparsity 2_4,2_8 --m 512,4096,16384 --tuning-dir $T --warmup 5 --repeat 20 --out $out/kern_$1 \
        >"$out/kernel_$1.log" 2>&1
    echo "kernel $1 rc=$? at ${SECONDS}s: $(grep -m1 -o 'cuSPARSELt [^;]*' "$out/kernel_$1.log")"
  }
  k v080a
  k v081 $L/libcusparseLt.so.0
  k v080b ;;
esac
