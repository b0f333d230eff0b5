# Sourced by the CLI tests tests/cli_*.sh (after `set -uo pipefail`): their
# shared start, so every one makes and removes its temp folder and counts its
# failures the same way.
#   cli_begin NAME BINARY: B = the slidesparse binary (absolute path), T = a
#     fresh /tmp/NAME.XXXXXX removed on exit (a test that needs more cleanup
#     sets its own EXIT trap, which must remove $T too), fails = 0.
#   fail MSG: prints "FAIL: MSG" and counts it.
#   run_ok CMD...: runs CMD (stdout in $T/out, stderr in $T/err); a failing
#     exit is counted with its stderr and returned as 1.
#   cli_tmpfs DIR SIZE: mounts a tmpfs of SIZE on DIR (created), for full-disk
#     cases; returns 1 when mounting is not permitted (not root). The EXIT
#     trap of cli_begin unmounts it before removing $T.
#   expect_one_line_error RC DESC NEEDLE -- CMD...: CMD must exit with RC (empty
#     RC: any non-zero status), print exactly one stderr line containing NEEDLE,
#     and leave no file under $T/bad.

cli_begin() {
  B=$(realpath "$2")
  T=$(mktemp -d "/tmp/$1.XXXXXX")
  cli_mounts=()
  trap cli_end EXIT
  fails=0
}
cli_end() {
  local m
  for m in "${cli_mounts[@]}"; do umount "$m" 2>/dev/null; done
  rm -rf "$T"
}
cli_tmpfs() {
  mkdir -p "$1" && mount -t tmpfs -o size="$2" tmpfs "$1" 2>/dev/null || return 1
  cli_mounts+=("$(realpath "$1")")
}
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
run_ok() { "$@" >"$T/out" 2>"$T/err" || { fail "$* -> exit $?: $(cat "$T/err")"; return 1; }; }
expect_one_line_error() {
  local want=$1 desc=$2 needle=$3; shift 4
  "$@" >"$T/out" 2>"$T/err"; local rc=$?
  local lines; lines=$(wc -l <"$T/err")
  if [[ -n $want && $rc != "$want" ]]; then fail "$desc: exit $rc, expected $want"; return; fi
  if [[ -z $want && $rc == 0 ]]; then fail "$desc: exit 0"; return; fi
  if [[ $lines != 1 ]]; then fail "$desc: stderr has $lines lines: $(cat "$T/err")"; fi
  if ! grep -qF -- "$needle" "$T/err"; then fail "$desc: stderr lacks '$needle': $(cat "$T/err")"; fi
  if [[ -n $(find "$T/bad" -type f 2>/dev/null) ]]; then fail "$desc: left $(find "$T/bad" -type f)"; fi
  echo "ok: $desc ($(cat "$T/err"))"
}
