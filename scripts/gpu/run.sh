#!/usr/bin/env bash
# scripts/gpu/run.sh SUBCOMMAND [ARGS] — the one entry point on a GPU machine: environment,
# build, GPU tests, benchmarks, profiles and whole run-all runs, each built on the slidesparse
# CLI (run-all for model preparation and full runs, `slidesparse tune` / `bench` for the rest).
# `scripts/gpu/run.sh --help` lists the subcommands and every environment knob.

usage() {
    cat <<'EOF'
usage: scripts/gpu/run.sh SUBCOMMAND [ARGS]        (from any directory; works on the repository)

  env               prepare the environment: nvcc on PATH, the build's Debian packages from .deb
                    files when the machine has no package registry, cuSPARSELt from the Python
                    environment (0.8.0's header patched for C), CUTLASS headers. Executed, it prints
                    export lines:  eval "$(scripts/gpu/run.sh env)";  sourced, it sets them:
                    source scripts/gpu/run.sh env.  Every other subcommand does this first.
  build             configure (Release, CUDA on, the GPU's architecture) and build everything.
  check             build, then the whole ctest suite (GPU tests one at a time, the rest in
                    parallel) and the skip reasons; SS_MEMCHECK=1 adds compute-sanitizer on the
                    GPU tests, SS_HARNESSES=1 the dev/ harnesses (validation + timing).
  bench             build, prepare the model (run-all tasks 1-2), tune, then `bench kernel`,
                    `bench prefill` and `bench decode` on every backend the build has: dense on
                    cublaslt (+ sm90dense), each pattern on cusparselt (+ sm90sp). Logs and CSVs
                    under $OUT; a summary of tokens/s at the end.
  profile           build, prepare the model, then `bench decode --profile` and
                    `bench prefill --profile`: the per-stage split of a step (quant, GEMM,
                    dequant, attention, norms, lm_head); SS_NCU=1 adds Nsight Compute's duration
                    of every kernel of two decode steps.
  full-run [CONFIG] [RUN-ALL ARGS...]
                    `slidesparse run-all --config CONFIG` (default bench/h100_full.json) into
                    $SS_RUN_DIR; with SS_RESUME=1 (or --resume among the args) it continues the
                    run there; SS_STOP_AFTER=S starts no task after S seconds (exit 3, the rest
                    left for a resumed call). The run folder (no checkpoints) is packed into
                    $OUT/results.tgz.

Environment (defaults in brackets):
  OUT                 logs, CSVs and results [./gpu-logs]
  SS_GPU_BUILD        build folder [build-gpu]
  SS_CUDA_ARCHS       CMAKE_CUDA_ARCHITECTURES [the GPU's compute capability, else 90]
  SS_BUILD_TARGETS    space-separated targets to build [all]
  SS_CMAKE_ARGS       extra configure arguments
  SS_NO_BUILD=1       use the build folder as it is
  SS_DEBS             folder of .deb files unpacked when pkg-config lacks jansson / cmocka
                      [.carry/debs]; fetch them on a machine with a registry:
                      apt-get download libjansson-dev libjansson4 libcmocka-dev libcmocka0 pkgconf pkgconf-bin libpkgconf3 pkg-config
  SS_DEPS_DIR         where they are unpacked [/tmp/ss-deps]
  CUSPARSELT_ROOT     cuSPARSELt prefix [the nvidia-cusparselt-cu13 Python package]
  CUTLASS_ROOT        CUTLASS include folder [.carry/cutlass/include when present, else the
                      nvidia-cutlass Python package, found by CMake]
  SS_CUSPARSELT_PRELOAD  a libcusparseLt.so.0 to LD_PRELOAD in place of the build's (same soname;
                      the banner names its version), e.g. to compare 0.8.1 against 0.8.0
  SS_STEP_TIMEOUT     seconds any one step may run [no limit]
  check:   SS_CHECK_TESTS (ctest -R regex) [all], SS_MEMCHECK=1, SS_HARNESSES=1
  bench / profile:
    SS_PRESET         model preset [bitnet-2b]
    SS_DTYPES         kernel benchmark and tuning dtypes [int8,fp8]
    SS_ENGINE_DTYPE   dtype of the engine's checkpoints [int8]
    SS_PATTERNS       sparsity patterns [2_4,2_8]
    SS_KERNEL_M       bench kernel M list [64,256,1024,4096,16384]
    SS_DECODE_M       bench decode M list [64,128,256,512]
    SS_PREFILL_M      bench prefill M list [4096,16384]
    SS_SCALE          prefill prompt scale, quick|full [quick]
    SS_WARMUP / SS_REPEAT  kernel and tuning timing [5 / 20]
    SS_SM90           auto|0|1: also the sm90sp / sm90dense backends [auto: when built]
    SS_DENSE_BACKENDS / SS_SPARSE_BACKENDS  override the engine's backend lists
    SS_WORK           models and (unless SS_TUNING_DIR is set) the tuning table [$SS_GPU_BUILD/bench-work]
    SS_NO_TUNE=1      keep the tuning table as it is (GPU linears read it through SS_TUNING_DIR)
    SS_SKIP           comma list of stages to leave out: kernel, prefill, decode
    SS_SOAK_S         after bench: `bench decode --m $SS_SOAK_M --soak SS_SOAK_S` on the first
                      dense backend [off; SS_SOAK_M 64]
    SS_PROFILE_M      profile: decode M list [64,512]; SS_PROFILE_PREFILL_M [16384]
  full-run: SS_RUN_DIR [$SS_GPU_BUILD/run-all], SS_RESUME=1, SS_STOP_AFTER=S
  The engine's own switches pass through unchanged (SS_PDL, SS_SEAMS, SS_CUDA_GRAPHS,
  SS_ATTN_DECODE, SS_TUNING_DIR; docs/USAGE.md): e.g. SS_PDL=0 scripts/gpu/run.sh bench.

Examples:
  scripts/gpu/run.sh check
  SS_PATTERNS=2_4,2_6,2_8,2_10 SS_SKIP=prefill,decode scripts/gpu/run.sh bench
  SS_STOP_AFTER=300 scripts/gpu/run.sh full-run bench/h100_full.json; SS_RESUME=1 scripts/gpu/run.sh full-run
EOF
}

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

# --- env --------------------------------------------------------------------------------------
# Sets (exports) what the build and the binaries need; one summary line on stderr.
ss_gpu_env() {
    if ! command -v nvcc >/dev/null 2>&1; then
        local d
        for d in ${CUDA_HOME:-} /usr/local/cuda; do
            [[ -x $d/bin/nvcc ]] && { export PATH=$d/bin:$PATH; break; }
        done
    fi
    # The build's Debian packages (jansson, cmocka, pkg-config) from .deb files.
    local debs=${SS_DEBS:-$REPO/.carry/debs} deps=${SS_DEPS_DIR:-/tmp/ss-deps} from_debs=""
    if ! pkg-config --exists jansson cmocka 2>/dev/null && compgen -G "$debs/*.deb" >/dev/null; then
        if [[ ! -d $deps/usr ]]; then
            mkdir -p "$deps"
            local f
            for f in "$debs"/*.deb; do dpkg -x "$f" "$deps"; done
        fi
        export PATH=$deps/usr/bin:$PATH
        export LD_LIBRARY_PATH=$deps/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
        export PKG_CONFIG_LIBDIR=$deps/usr/lib/x86_64-linux-gnu/pkgconfig:$deps/usr/share/pkgconfig
        export PKG_CONFIG_SYSROOT_DIR=$deps
        export PKG_CONFIG=$deps/usr/bin/pkgconf
        export LIBRARY_PATH=$deps/usr/lib/x86_64-linux-gnu${LIBRARY_PATH:+:$LIBRARY_PATH}
        export CMAKE_PREFIX_PATH=$deps/usr${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}
        from_debs=" (build packages from $debs)"
    fi
    if [[ -z ${CUSPARSELT_ROOT:-} ]]; then
        CUSPARSELT_ROOT=$(python3 -c "import nvidia.cusparselt as m; print(m.__path__[0])" 2>/dev/null || true)
        [[ -n $CUSPARSELT_ROOT ]] && export CUSPARSELT_ROOT
    fi
    # cuSPARSELt 0.8.0's header includes <cstddef> and uses alignas without <stdalign.h>, which a
    # C compiler cannot take (fixed in 0.8.1): the build gets a copy with <stddef.h> /
    # <stdalign.h>, same library.
    if [[ -n ${CUSPARSELT_ROOT:-} ]] && grep -q '#include <cstddef>' "$CUSPARSELT_ROOT/include/cusparseLt.h" 2>/dev/null; then
        local fix=${SS_DEPS_DIR:-/tmp/ss-deps}/cusparselt-c
        mkdir -p "$fix/include"
        { printf '#ifndef __cplusplus\n#include <stddef.h>\n#include <stdalign.h> /* alignas */\n#endif\n'
          sed 's/#include <cstddef>//' "$CUSPARSELT_ROOT/include/cusparseLt.h"; } >"$fix/include/cusparseLt.h"
        ln -sfn "$CUSPARSELT_ROOT/lib" "$fix/lib"
        export CUSPARSELT_ROOT=$fix
    fi
    if [[ -z ${CUTLASS_ROOT:-} && -f $REPO/.carry/cutlass/include/cutlass/cutlass.h ]]; then
        export CUTLASS_ROOT=$REPO/.carry/cutlass/include
    fi
    echo "env: nvcc $(command -v nvcc >/dev/null 2>&1 && nvcc --version | sed -n 's/.*release \([0-9.]*\).*/\1/p' || echo missing)," \
         "cuSPARSELt ${CUSPARSELT_ROOT:-found by CMake}, CUTLASS ${CUTLASS_ROOT:-found by CMake}$from_debs" >&2
}

if [[ ${BASH_SOURCE[0]} != "$0" ]]; then # sourced: `source scripts/gpu/run.sh env`
    [[ ${1:-env} == env ]] && ss_gpu_env || { echo "run.sh: only 'env' can be sourced" >&2; return 2; }
    return 0
fi

set -uo pipefail
cd "$REPO" || exit 1
B=${SS_GPU_BUILD:-build-gpu}
OUT=${OUT:-$PWD/gpu-logs}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
JOBS=$(nproc 2>/dev/null || echo 4)
S=$PWD/$B/slidesparse
declare -A result
names=()

# --- steps ------------------------------------------------------------------------------------
# step NAME CMD...: CMD with its output in $OUT/NAME.log (the tail echoed), under
# SS_STEP_TIMEOUT when set; records "ok Ns" / "FAILED rc=N Ns" / "TIMEOUT Ns" for the summary and
# returns CMD's status.
step() {
    local name=$1; shift
    names+=("$name")
    echo "== $name: $*"
    local t0=$SECONDS rc
    if [[ -n ${SS_STEP_TIMEOUT:-} ]]; then
        timeout "$SS_STEP_TIMEOUT" "$@" >"$OUT/$name.log" 2>&1
    else
        "$@" >"$OUT/$name.log" 2>&1
    fi
    rc=$?
    tail -n "${SS_STEP_TAIL:-12}" "$OUT/$name.log"
    local verdict=ok
    ((rc == 124)) && verdict=TIMEOUT || { ((rc != 0)) && verdict="FAILED rc=$rc"; }
    result[$name]="$verdict $((SECONDS - t0))s"
    return $rc
}

summary() {
    echo
    local gpu
    gpu=$(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | head -1)
    echo "== summary (${gpu:-no GPU}; logs in $OUT)"
    local n
    for n in "${names[@]}"; do
        printf '%-34s %-16s' "$n" "${result[$n]}"
        grep -oE '[0-9.]+ tokens/s' "$OUT/$n.log" 2>/dev/null | awk '{printf " %s", $1} END {if (NR) printf " tokens/s"}'
        echo
    done
}

# Prefix of every slidesparse command: SS_CUSPARSELT_PRELOAD in LD_PRELOAD when set.
PRE=()
[[ -n ${SS_CUSPARSELT_PRELOAD:-} ]] && PRE=(env "LD_PRELOAD=$SS_CUSPARSELT_PRELOAD")

# --- build ------------------------------------------------------------------------------------
cmd_build() {
    ss_gpu_env
    [[ ${SS_NO_BUILD:-0} == 1 && -x $S ]] && return 0
    local archs=${SS_CUDA_ARCHS:-$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d '. ')}
    local conf=(-S . -B "$B" -G Ninja -DCMAKE_BUILD_TYPE=Release -DSS_CUDA=ON "-DCMAKE_CUDA_ARCHITECTURES=${archs:-90}")
    [[ -n ${CUSPARSELT_ROOT:-} ]] && conf+=("-DCUSPARSELT_ROOT=$CUSPARSELT_ROOT")
    [[ -n ${CUTLASS_ROOT:-} ]] && conf+=("-DCUTLASS_ROOT=$CUTLASS_ROOT")
    # shellcheck disable=SC2206
    conf+=(${SS_CMAKE_ARGS:-})
    step configure cmake "${conf[@]}" || return 1
    grep "slidesparse:" "$OUT/configure.log"
    local targets=()
    # shellcheck disable=SC2206
    [[ -n ${SS_BUILD_TARGETS:-} ]] && targets=(--target ${SS_BUILD_TARGETS})
    step build cmake --build "$B" -j "$JOBS" "${targets[@]}"
}

has_sm90() { # the build has the sm90sp / sm90dense backends and SS_SM90 allows them
    case ${SS_SM90:-auto} in
    0) return 1 ;;
    1) return 0 ;;
    *) grep -q 'ss_sm90sp' "$B/build.ninja" 2>/dev/null ;;
    esac
}

# --- check ------------------------------------------------------------------------------------
cmd_check() {
    cmd_build || return 1
    local gpu_re='gpu|^cli_' # tests that use the GPU: one at a time
    if [[ -n ${SS_CHECK_TESTS:-} ]]; then
        step ctest ctest --test-dir "$B" --output-on-failure -j 1 -R "$SS_CHECK_TESTS"
    else
        step ctest_gpu ctest --test-dir "$B" --output-on-failure -j 1 -R "$gpu_re"
        step ctest_cpu ctest --test-dir "$B" --output-on-failure -j "$JOBS" -E "$gpu_re"
    fi
    scripts/show_skips.sh "$B"
    if [[ ${SS_MEMCHECK:-0} == 1 ]]; then
        # API errors not reported: the out-of-memory test provokes one on purpose
        step memcheck_gpu_linear env SS_GPU_TEST_QUICK=1 compute-sanitizer --tool memcheck --leak-check full \
            --report-api-errors no --error-exitcode 1 "$B/test_gpu_linear"
        step memcheck_engine_gpu env SS_GPU_TEST_QUICK=1 SS_TEST_DATA="$PWD/tests/data" compute-sanitizer \
            --tool memcheck --leak-check full --error-exitcode 1 "$B/test_engine_gpu"
    fi
    if [[ ${SS_HARNESSES:-0} == 1 ]]; then
        local h
        for h in dev_quant_slide dev_dequant_bias dev_attention dev_wgmma_peak; do
            [[ -x $B/$h ]] && step "$h" "$B/$h"
        done
    fi
    summary
}

# --- models and tuning (bench, profile) -------------------------------------------------------
W=${SS_WORK:-$PWD/$B/bench-work}
PRESET=${SS_PRESET:-bitnet-2b}
PATTERNS=${SS_PATTERNS:-2_4,2_8}
EDT=${SS_ENGINE_DTYPE:-int8}

# The dense checkpoint and one slid checkpoint per pattern, by run-all tasks 1-2 (kept in $W and
# reused by later calls).
prepare_models() {
    step models "$S" run-all --task 1,2 --preset "$PRESET" --dtype "$EDT" --sparsity "$PATTERNS" \
        --out "$W" --name models --quiet || return 1
    DENSE=$(ls -d "$W"/checkpoints/*-"${EDT^^}" 2>/dev/null | head -1)
    [[ -n $DENSE ]] || { echo "no ${EDT^^} checkpoint under $W/checkpoints"; return 1; }
}
slid_model() { echo "$W/checkpoints_slidesparse/$(basename "$DENSE")-SlideSparse-$1"; }

tune_all() { # M_LIST: one table for every backend at these M
    export SS_TUNING_DIR=${SS_TUNING_DIR:-$W/tuning}
    [[ ${SS_NO_TUNE:-0} == 1 ]] && return 0
    local args=(tune --preset "$PRESET" --dtype "${SS_DTYPES:-int8,fp8}" --sparsity "$PATTERNS" --m-coarse "$1"
                --m-fine "$1" --tuning-dir "$SS_TUNING_DIR" --warmup "${SS_WARMUP:-5}" --repeat "${SS_REPEAT:-20}" --quiet)
    step tune "${PRE[@]}" "$S" "${args[@]}"
    has_sm90 && step tune_sm90 "${PRE[@]}" "$S" "${args[@]}" --sm90sp --sm90dense
    return 0
}

dense_backends() { echo "${SS_DENSE_BACKENDS:-cublaslt$(has_sm90 && echo ,sm90dense)}"; }
sparse_backends() { echo "${SS_SPARSE_BACKENDS:-cusparselt$(has_sm90 && echo ,sm90sp)}"; }
skipped() { [[ ,${SS_SKIP:-}, == *,$1,* ]]; }

# engine STAGE NAME MODEL BACKEND ARGS...: bench prefill|decode of one checkpoint on one backend
engine() {
    local stage=$1 name=$2 model=$3 be=$4; shift 4
    [[ -f $model/config.json ]] || { names+=("$name"); result[$name]="skipped (no $model)"; return; }
    step "$name" "${PRE[@]}" "$S" bench "$stage" --model "$model" --backend "$be" --out "$OUT/results" "$@"
}

# for_each_model STAGE SUFFIX ARGS...: the stage on the dense checkpoint (every dense backend) and
# on each pattern's checkpoint (every sparse backend)
for_each_model() {
    local stage=$1 sfx=$2; shift 2
    local be p dense sparse pats
    IFS=, read -ra dense <<<"$(dense_backends)"
    IFS=, read -ra sparse <<<"$(sparse_backends)"
    IFS=, read -ra pats <<<"$PATTERNS"
    for be in "${dense[@]}"; do engine "$stage" "${stage}_dense_$be$sfx" "$DENSE" "$be" "$@"; done
    for p in "${pats[@]}"; do
        for be in "${sparse[@]}"; do engine "$stage" "${stage}_${p}_$be$sfx" "$(slid_model "$p")" "$be" "$@"; done
    done
}

# --- bench ------------------------------------------------------------------------------------
cmd_bench() {
    cmd_build || return 1
    prepare_models || { summary; return 1; }
    local km=${SS_KERNEL_M:-64,256,1024,4096,16384} dm=${SS_DECODE_M:-64,128,256,512} pm=${SS_PREFILL_M:-4096,16384}
    tune_all "$(echo "$km,$dm,$pm" | tr , '\n' | sort -nu | paste -sd,)"
    if ! skipped kernel; then
        local kargs=(bench kernel --preset "$PRESET" --dtype "${SS_DTYPES:-int8,fp8}" --sparsity "$PATTERNS" --m "$km"
                     --tuning-dir "$SS_TUNING_DIR" --warmup "${SS_WARMUP:-5}" --repeat "${SS_REPEAT:-20}"
                     --out "$OUT/results" --quiet)
        step kernel "${PRE[@]}" "$S" "${kargs[@]}"
        has_sm90 && step kernel_sm90 "${PRE[@]}" "$S" "${kargs[@]}" --sm90sp --sm90dense
    fi
    skipped prefill || for_each_model prefill "" --m "$pm" --scale "${SS_SCALE:-quick}"
    skipped decode || for_each_model decode "" --m "$dm"
    if [[ -n ${SS_SOAK_S:-} ]]; then
        local be
        be=$(dense_backends)
        engine decode soak "$DENSE" "${be%%,*}" --m "${SS_SOAK_M:-64}" --soak "$SS_SOAK_S"
    fi
    summary
}

# --- profile ----------------------------------------------------------------------------------
cmd_profile() {
    cmd_build || return 1
    prepare_models || { summary; return 1; }
    local dm=${SS_PROFILE_M:-64,512} pm=${SS_PROFILE_PREFILL_M:-16384}
    tune_all "$dm,$pm"
    for_each_model decode _profile --m "$dm" --profile
    for_each_model prefill _profile --m "$pm" --scale "${SS_SCALE:-quick}" --profile
    if [[ ${SS_NCU:-0} == 1 ]]; then
        # graphs off so every kernel is one launch; ~two steady decode steps of M 64
        step ncu_decode env SS_CUDA_GRAPHS=0 ncu --metrics gpu__time_duration.sum --csv --print-units base \
            --launch-skip 30000 --launch-count 900 "$S" bench decode --model "$DENSE" --m 64 --out "$OUT/ncu"
    fi
    summary
}

# --- full-run ---------------------------------------------------------------------------------
cmd_full_run() {
    local cfg=bench/h100_full.json
    [[ $# -gt 0 && $1 != -* ]] && { cfg=$1; shift; }
    cmd_build || return 1
    local dir=${SS_RUN_DIR:-$PWD/$B/run-all} args=("$@")
    if [[ ${SS_RESUME:-0} == 1 || " ${args[*]} " == *" --resume "* ]]; then
        [[ " ${args[*]} " == *" --resume "* ]] || args+=(--resume)
    else
        args=(--config "$cfg" "${args[@]}")
    fi
    [[ -n ${SS_STOP_AFTER:-} ]] && args+=(--stop-after "$SS_STOP_AFTER")
    step run_all "${PRE[@]}" "$S" run-all --out "$dir" --quiet "${args[@]}"
    local rc=$?
    tar czf "$OUT/results.tgz" --exclude=checkpoints --exclude=checkpoints_slidesparse \
        -C "$(dirname "$dir")" "$(basename "$dir")" 2>/dev/null
    summary
    echo "run folder $dir (packed: $OUT/results.tgz); exit 3 = stopped early, continue with SS_RESUME=1"
    return $rc
}

# --- dispatch ---------------------------------------------------------------------------------
sub=${1:-}
shift || true
case $sub in
env)
    ss_gpu_env
    for v in PATH LD_LIBRARY_PATH PKG_CONFIG_LIBDIR PKG_CONFIG_SYSROOT_DIR PKG_CONFIG LIBRARY_PATH \
             CMAKE_PREFIX_PATH CUSPARSELT_ROOT CUTLASS_ROOT; do
        [[ -n ${!v:-} ]] && printf 'export %s=%q\n' "$v" "${!v}"
    done ;;
build) cmd_build ;;
check) cmd_check ;;
bench) cmd_bench ;;
profile) cmd_profile ;;
full-run) cmd_full_run "$@" ;;
-h | --help | help) usage ;;
*) usage >&2; exit 2 ;;
esac
