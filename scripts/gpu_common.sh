# Sourced by the scripts/gpu_*.sh device scripts: `step` (gpu_bench.sh,
# gpu_check.sh) and `budget_step` (gpu_engine_check.sh, gpu_perf.sh).
# The caller sets `out` (the log folder) and `declare -A result`; STEP_TAIL
# (default 40) is how many lines of each step's log are echoed.

# step NAME TIMEOUT_S CMD...: runs CMD under `timeout`, output to $out/NAME.log;
# echoes its tail, records "rc=N Ss" in result[NAME] and returns CMD's status.
step() {
    local name=$1 t=$2; shift 2
    echo "== $name: $*"
    local t0=$SECONDS
    timeout "$t" "$@" >"$out/$name.log" 2>&1
    local rc=$?
    tail -n "${STEP_TAIL:-40}" "$out/$name.log"
    result[$name]="rc=$rc $((SECONDS - t0))s"
    return $rc
}

# budget_step NAME MIN_SECONDS CMD...: runs CMD under a timeout of what is left
# of `budget` seconds (the caller sets it; counted by $SECONDS from the
# script's start), skipped when less than MIN_SECONDS remain, so that a step
# that cannot finish leaves the rest of one device call to the next ones.
# Appends NAME to the caller's `names` array (its summary order) and records
# "ok Ns", "TIMEOUT Ns", "FAILED rc=N Ns" or "skipped (budget)" in
# result[NAME]; returns CMD's status (1 when skipped). With STEP_LOGS=1 the
# output goes to $out/NAME.log and its tail is echoed (as `step` does); else it
# stays on stdout and a closing "== NAME: VERDICT (Ns)" line follows it.
budget_step() {
    local name=$1 need=$2; shift 2
    local left=$((budget - SECONDS))
    names+=("$name")
    if ((left < need)); then
        echo "== $name: SKIPPED (budget: ${left}s left, needs ~${need}s)"
        result[$name]="skipped (budget)"
        return 1
    fi
    echo "== $name (timeout ${left}s): $*"
    local t0=$SECONDS rc
    if [[ ${STEP_LOGS:-0} == 1 ]]; then
        timeout "$left" "$@" >"$out/$name.log" 2>&1
        rc=$?
        tail -n "${STEP_TAIL:-40}" "$out/$name.log"
    else
        timeout "$left" "$@"
        rc=$?
    fi
    local verdict=ok
    ((rc == 124)) && verdict=TIMEOUT || { ((rc != 0)) && verdict="FAILED rc=$rc"; }
    result[$name]="$verdict $((SECONDS - t0))s"
    [[ ${STEP_LOGS:-0} == 1 ]] || echo "== $name: $verdict ($((SECONDS - t0))s)"
    return $rc
}

# gpu_configure BUILD_DIR [cmake args...]: the device build every scripts/gpu_*.sh uses
# (Release, sm_90 only, CUDA on, the machine's cuSPARSELt, CUTLASS from .carry when it is
# there), log in $out/configure.log; prints the configure summary lines. Needs
# scripts/device_env.sh sourced first (CUSPARSELT_ROOT, the carried Debian packages).
gpu_configure() {
    local b=$1; shift
    local cutlass=()
    [[ -d $PWD/.carry/cutlass/include ]] && cutlass=(-DCUTLASS_ROOT=$PWD/.carry/cutlass/include)
    cmake -S . -B "$b" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 -DSS_CUDA=ON \
        -DCUSPARSELT_ROOT="$CUSPARSELT_ROOT" "${cutlass[@]}" "$@" >"$out/configure.log" 2>&1 ||
        { tail -20 "$out/configure.log"; return 1; }
    grep "slidesparse:" "$out/configure.log"
    return 0
}

# gpu_bitnet_models CLI DIR PATTERNS: the BitNet-2B the device scripts measure: synthesized
# to DIR/BitNet-2B-BF16, INT8 at DIR/BitNet-2B-INT8, slid to PATTERNS (e.g. 2_4,2_8) under
# DIR/slid (DIR/slid/BitNet-2B-INT8-SlideSparse-2_L); quiet, non-zero when a step fails.
gpu_bitnet_models() {
    local cli=$1 dir=$2 pats=$3
    "$cli" synth --preset bitnet-2b --out "$dir/BitNet-2B-BF16" --force >/dev/null &&
        "$cli" quantize --in "$dir/BitNet-2B-BF16" --dtype int8 --out "$dir/BitNet-2B-INT8" --force >/dev/null &&
        "$cli" convert --in "$dir/BitNet-2B-INT8" --sparsity "$pats" --out-root "$dir/slid" --force >/dev/null
}
