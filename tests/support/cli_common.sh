# Sourced by the CLI tests tests/cli_*.sh (after `set -uo pipefail`): their
# shared start, so every one makes and removes its temp folder and counts its
# failures the same way.
#   cli_begin NAME BINARY: B = the slidesparse binary (absolute path), T = a
#     fresh /tmp/NAME.XXXXXX removed on exit (a test that needs more cleanup
#     sets its own EXIT trap, which must remove $T too), fails = 0.
#   fail MSG: prints "FAIL: MSG" and counts it.
#   run_ok CMD...: runs CMD (stdout in $T/out, stderr in $T/err); a failing
#     exit is counted with its stderr and returned as 1.

cli_begin() {
  B=$(realpath "$2")
  T=$(mktemp -d "/tmp/$1.XXXXXX")
  trap 'rm -rf "$T"' EXIT
  fails=0
}
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
run_ok() { "$@" >"$T/out" 2>"$T/err" || { fail "$* -> exit $?: $(cat "$T/err")"; return 1; }; }
