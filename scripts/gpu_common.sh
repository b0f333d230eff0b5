# Sourced by scripts/gpu_bench.sh and scripts/gpu_check.sh: their `step`.
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
