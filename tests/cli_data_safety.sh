#!/usr/bin/env bash
# CLI tests of what must never happen to a user's files (tests/cli_*.sh, called
# with the slidesparse binary as $1): an output that is, holds or sits inside
# its input; an output replaced without --force (two runs into one target, a
# folder created meanwhile); a FIFO or a file truncated while being read;
# SIGINT / SIGTERM / SIGHUP / SIGKILL in the middle of a write; a trailing
# slash on --out.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/support/cli_common.sh"
cli_begin cli_data_safety "$1"
set -m # background jobs get SIGINT like a foreground command would (not ignored)
cd "$T"
# expect_err RC DESC NEEDLE -- cmd...: as expect_one_line_error, and nothing
# named *.tmp.* may remain anywhere under $T.
expect_err() {
  expect_one_line_error "$@"
  no_tmp "$2"
}
sum() { cat "$@" | md5sum; }
# no_tmp DESC: no temporary output may be left under $T
no_tmp() { local left; left=$(find . -name '*.tmp.*' | head -3); [[ -z $left ]] || fail "$1: left $left"; }

run_ok "$B" synth --preset tiny-llama --out m --seed 3 || exit 1
m_sum=$(sum m/model.safetensors m/config.json)

# --- 1. an output that is, contains or is inside its input --------------------------------------
expect_err 2 "quantize --out = --model" "is the input" -- "$B" quantize --model m --dtype int8 --out m --force
mkdir p && cp -r m p/m
expect_err 2 "quantize --out holds --model" "contains the input" -- "$B" quantize --model p/m --dtype int8 --out p --force
[[ -f p/m/model.safetensors ]] || fail "quantize --out holds --model: the input is gone"
expect_err 2 "quantize --out inside --model" "inside the input" -- "$B" quantize --model m --dtype int8 --out m/q
ln -s m link
expect_err 2 "--model through a link, --out the same folder" "is the input" -- "$B" quantize --model link --dtype int8 --out ./m/../m/ --force
expect_err 2 "convert --out inside --model" "inside the input" -- "$B" convert --model m --sparsity 2_8 --out m
expect_err 2 "convert --out = --model (link)" "inside the input" -- "$B" convert --model m --sparsity 2_8 --out link/cs --force
[[ $(sum m/model.safetensors m/config.json) == "$m_sum" && $(ls m | wc -l) == 2 ]] || fail "the input changed"

# --- 2. nothing that appears after start-up is replaced without --force ----------------------------
SS_TEST_SLOW_MS=40 "$B" convert --model m --sparsity 2_8 --out two >o1 2>e1 & p1=$!
SS_TEST_SLOW_MS=40 "$B" convert --model m --sparsity 2_8 --out two >o2 2>e2 & p2=$!
wait $p1; r1=$?; wait $p2; r2=$?
if (( (r1 == 0) + (r2 == 0) != 1 )); then fail "two converts into one target: exits $r1 / $r2, expected one 0"
elif ! grep -q "already exists" e1 e2; then fail "two converts: the loser says $(cat e1 e2)"
else echo "ok: two converts into one target: one wins, the other says $(cat e1 e2)"; fi
run_ok "$B" verify m two/m-SlideSparse-2_8 || fail "two converts: the winner's output does not verify"
no_tmp "two converts"
SS_TEST_SLOW_MS=40 "$B" quantize --model m --dtype int8 --out late >/dev/null 2>err & pid=$!
sleep 0.5; mkdir late && echo mine >late/keep.txt
wait $pid; rc=$?
[[ $rc != 0 ]] && grep -q "already exists" err && [[ $(cat late/keep.txt) == mine && $(ls late) == keep.txt ]] &&
  echo "ok: a folder created meanwhile is kept ($(cat err))" || fail "folder created meanwhile: exit $rc, $(ls late), $(cat err)"
no_tmp "folder created meanwhile"
# --force replaces an earlier output, never a folder that is not one
expect_err 1 "--force over a folder that is not an output" "not an earlier output" -- \
  "$B" quantize --model m --dtype int8 --out late --force
[[ $(cat late/keep.txt) == mine ]] || fail "--force over a foreign folder: keep.txt is gone"
run_ok "$B" quantize --model m --dtype int8 --out q1 && run_ok "$B" quantize --model m --dtype fp8 --out q1 --force &&
  grep -q fp8 q1/config.json || fail "--force did not replace an earlier output"

# --- 3. a FIFO is refused, never waited on ---------------------------------------------------------
mkdir fifo && cp m/config.json fifo/ && mkfifo fifo/model.safetensors
expect_err 1 "FIFO as model.safetensors" "found a FIFO" -- timeout 20 "$B" quantize --model fifo --dtype int8 --out bad/q
expect_err 1 "FIFO to inspect" "found a FIFO" -- timeout 20 "$B" inspect fifo/model.safetensors
rm fifo/model.safetensors && cp m/model.safetensors fifo/ && rm fifo/config.json && mkfifo fifo/config.json
expect_err 1 "FIFO as config.json" "found a FIFO" -- timeout 20 "$B" convert --model fifo --sparsity 2_4 --out bad

mkdir -p tun/CPU_cc0_cpu && mkfifo tun/CPU_cc0_cpu/tuning.json # the tuning table as a FIFO: ignored, not replaced
expect_err 1 "FIFO as tuning.json" "tuning.json: exists and is not a regular file; not replaced" -- \
  timeout 20 "$B" tune --preset tiny-llama --stage coarse --dtype int8 --m-coarse 16 --warmup 1 --repeat 1 \
  --quiet --backend cpu --tuning-dir tun
grep -q "ignoring corrupt table (.*found a FIFO)" out || fail "FIFO as tuning.json: no warning: $(cat out)"
[[ -p tun/CPU_cc0_cpu/tuning.json ]] || fail "FIFO as tuning.json: replaced"

# --- 4. an input truncated while being read ------------------------------------------------------------
cp -r m shrink
SS_TEST_SLOW_MS=100 "$B" convert --model shrink --sparsity 2_4,2_8 --out bad >/dev/null 2>err & pid=$!
sleep 1; truncate -s 100000 shrink/model.safetensors
wait $pid; rc=$?
[[ $rc == 1 && $(wc -l <err) == 1 ]] && grep -q "shrink/model.safetensors: input changed while reading" err &&
  echo "ok: input truncated while read ($(cat err))" || fail "truncated input: exit $rc: $(cat err)"
[[ ! -e bad ]] || fail "truncated input: left $(find bad)"
no_tmp "truncated input"

# --- 5. signals remove the temporary output; SIGKILL's is swept by the next run -------------------------
for sig in INT TERM HUP; do
  SS_TEST_SLOW_MS=100 "$B" convert --model m --sparsity 2_4,2_8 --out new/root >/dev/null 2>err & pid=$!
  sleep 1
  [[ -n $(find new -name '*.tmp.*' 2>/dev/null) ]] || fail "SIG$sig: no temporary output to remove (too fast?)"
  kill -$sig $pid; wait $pid; rc=$?
  want=$((128 + $(kill -l $sig)))
  [[ $rc == "$want" ]] || fail "SIG$sig during convert: exit $rc, expected $want"
  [[ ! -e new ]] || fail "SIG$sig during convert: left $(find new)"
  echo "ok: SIG$sig during convert: exit $rc, nothing left ($(cat err))"
done
SS_TEST_SLOW_MS=100 "$B" quantize --model m --dtype fp8 --out killed >/dev/null 2>&1 & pid=$!
sleep 1; kill -KILL $pid; wait $pid
[[ -d killed.tmp.$pid ]] || fail "SIGKILL: expected killed.tmp.$pid to be left (nothing to sweep)"
sleep 60 & alive=$!
mkdir killed.tmp.$alive # a live process's temporary output is not touched
true & dead=$!; wait $dead
mkdir killed.tmp.$dead
run_ok "$B" quantize --model m --dtype fp8 --out killed
[[ ! -e killed.tmp.$pid && ! -e killed.tmp.$dead && -d killed.tmp.$alive ]] &&
  echo "ok: the next run sweeps the dead processes' temporary outputs only" ||
  fail "sweep: $(ls -d killed*)"
kill $alive; wait $alive 2>/dev/null; rmdir killed.tmp.$alive
# only "<out>.tmp.<pid>" is ever swept: anything else of a similar name stays
mkdir killed.old.$dead killed.tmp.x killed.tmp.$dead.bak
run_ok "$B" quantize --model m --dtype fp8 --out killed --force
[[ -d killed.old.$dead && -d killed.tmp.x && -d killed.tmp.$dead.bak ]] || fail "sweep removed a look-alike"
rmdir killed.old.$dead killed.tmp.x killed.tmp.$dead.bak

# --- 6. a trailing slash on --out ----------------------------------------------------------------------------------
run_ok "$B" quantize --model m --dtype int8 --out qs/ && [[ -f qs/model.safetensors ]] || fail "quantize --out qs/"
run_ok "$B" quantize --model m --dtype int8 --out qs/ --force || fail "quantize --out qs/ --force"
run_ok "$B" synth --preset tiny-llama --out ss/ && run_ok "$B" synth --preset tiny-llama --out ss/ --force ||
  fail "synth --out ss/"
no_tmp "trailing slash"
echo "ok: --out with a trailing slash"

if [[ $fails != 0 ]]; then echo "$fails failure(s)"; exit 1; fi
echo "cli_data_safety: all ok"
