#!/usr/bin/env bash
# CLI tests of `slidesparse tune` and `slidesparse bench kernel` on the CPU
# backend (called with the slidesparse binary as $1): a tiny shape set end to
# end, the table reused by the next run, the CSV layout, and every bad input
# (one line on stderr, non-zero exit, no crash; corrupt/foreign tables fall
# back to the heuristic with a warning).
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/support/cli_common.sh"
cli_begin cli_tune "$1"
expect_err() { # DESC NEEDLE -- cmd...
  local desc=$1 needle=$2; shift 3
  "$@" >"$T/out" 2>"$T/err"; local rc=$?
  if [[ $rc == 0 || $rc -ge 128 ]]; then fail "$desc: exit $rc"; return; fi
  [[ $(wc -l <"$T/err") == 1 ]] || fail "$desc: stderr not one line: $(cat "$T/err")"
  grep -qF -- "$needle" "$T/err" || fail "$desc: stderr lacks '$needle': $(cat "$T/err")"
  echo "ok: $desc ($(cat "$T/err"))"
}
cd "$T"
common=(--backend cpu --warmup 1 --repeat 2 --quiet)

# --- tune: tuned once, reused after ----------------------------------------------------
run_ok "$B" tune --preset tiny-bitnet --m-coarse 16,64 --m-fine 16,32 --sparsity 2_6,2_10 "${common[@]}"
grep -q "entries tuned" out && ! grep -q " 0 entries tuned" out || fail "first tune tuned nothing: $(cat out)"
[[ -f tuning/CPU_cc0_cpu/tuning.json ]] || fail "no table at tuning/CPU_cc0_cpu/tuning.json"
run_ok "$B" tune --preset tiny-bitnet --m-coarse 16,64 --m-fine 16,32 --sparsity 2_6,2_10 "${common[@]}"
grep -q " 0 entries tuned" out || fail "second tune re-tuned: $(cat out)"
grep -q "tuning: loaded" out || fail "second tune did not load the table: $(cat out)"
echo "ok: tune reuses its table"
run_ok "$B" tune --preset tiny-bitnet --dtype int8 --sparsity 2_8 --m-coarse 16 --m-fine 16 --sm90sp --sm90dense \
  --tuning-dir t90 "${common[@]}"
grep -q "no GPU context, the CPU backend stands in" out || fail "tune --sm90sp on the CPU: no note: $(head -3 out)"
[[ -s t90/CPU_cc0_cpu/tuning.json ]] || fail "tune --sm90sp on the CPU wrote no table"
# --candidates: one line per timed candidate (4 shapes x (dense + 2_8) at M 16 on the CPU)
run_ok "$B" tune --preset tiny-bitnet --dtype int8 --sparsity 2_8 --m-coarse 16 --m-fine 16 --candidates \
  --tuning-dir tc "${common[@]}"
[[ $(grep -cE "^candidate (qkv|o|gate_up|down) N [0-9]+ K [0-9]+ M 16 .* us " out) == 8 ]] ||
  fail "tune --candidates: expected 8 candidate lines: $(grep candidate out)"

# --- bench kernel: CSV layout, banner, table reuse ---------------------------------------
run_ok "$B" bench kernel --preset tiny-bitnet --m 16,32 --task 6,7 --out res "${common[@]}"
head -1 out | grep -q "== device: CPU" || fail "no device banner first: $(head -2 out)"
for side in cuBLASLt cuSPARSELt; do
  for dt in INT8 FP8; do
    for f in tiny-bitnet_qkv tiny-bitnet_o tiny-bitnet_gate_up tiny-bitnet_down tiny-bitnet_total; do
      p=res/benchmark_kernel/$side/CPU_cc0_${dt}_cpu/$f.csv
      [[ -s $p ]] || { fail "missing $p"; continue; }
      head -1 "$p" | grep -q "^gpu,cc,dtype,cublaslt,cusparselt,toolchain,model,proj,M,N,K,K_slid" || fail "$p header"
    done
  done
done
# clock columns: present, empty on the CPU backend, and the last line says so
q=res/benchmark_kernel/cuSPARSELt/CPU_cc0_INT8_cpu/tiny-bitnet_qkv.csv
head -1 "$q" | grep -q ",algo,sm_mhz_mean,sm_mhz_min,power_w,power_capped$" || fail "$q: no clock columns: $(head -1 "$q")"
[[ $(tail -n +2 "$q" | grep -vc ",,,,$") == 0 ]] || fail "$q: clock fields not empty on the CPU"
tail -1 out | grep -q "^SM clock during timed runs: not recorded: CPU backend" || fail "no clock note last: $(tail -1 out)"
n=$(grep -c ",2_8,gemm," res/benchmark_kernel/cuSPARSELt/CPU_cc0_INT8_cpu/tiny-bitnet_total.csv)
[[ $n == 2 ]] || fail "total CSV: expected 2 rows of 2_8 gemm (M 16, 32), found $n"
grep -q "tuning: loaded" out || fail "bench did not load the table"
run_ok "$B" bench kernel --preset tiny-bitnet --m 16,32 --task 6,7 --out res "${common[@]}"
grep -q "tuning: 0 table entries tuned" out || fail "second bench re-tuned: $(grep tuning: out)"
ls res/benchmark_kernel/cuSPARSELt/CPU_cc0_INT8_cpu/ | grep -q tmp && fail "temporary files left"
run_ok "$B" bench kernel --square --m 32,64 --sparsity 2_8 --dtype int8 --out sq "${common[@]}"
[[ -s sq/benchmark_kernel/cuSPARSELt/CPU_cc0_INT8_cpu/square_sq64.csv ]] || fail "square CSV missing"
echo "ok: bench kernel layout, totals, reuse, square"

# --- bad input ----------------------------------------------------------------------------
expect_err "unknown preset" "gpt-9" -- "$B" tune --preset gpt-9 --backend cpu
expect_err "no shapes" "--preset" -- "$B" tune --backend cpu
expect_err "M zero" "'0'" -- "$B" bench kernel --preset tiny-llama --m 16,0 --backend cpu
expect_err "M negative" "'-16'" -- "$B" tune --preset tiny-llama --m-fine -16 --backend cpu
expect_err "M not a number" "'abc'" -- "$B" bench kernel --preset tiny-llama --m abc --backend cpu
expect_err "M empty item" "--m" -- "$B" bench kernel --preset tiny-llama --m 16,,32 --backend cpu
expect_err "odd pattern" "2_5" -- "$B" tune --preset tiny-llama --sparsity 2_5 --backend cpu
expect_err "dense pattern" "2_L" -- "$B" bench kernel --preset tiny-llama --sparsity dense --backend cpu
expect_err "bad dtype" "int4" -- "$B" tune --preset tiny-llama --dtype int4 --backend cpu
expect_err "bad task" "--task" -- "$B" bench kernel --preset tiny-llama --task 9 --backend cpu
expect_err "bad backend" "--backend" -- "$B" tune --preset tiny-llama --backend tpu
expect_err "bench what" "expected kernel" -- "$B" bench warp
expect_err "model dir without config" "config.json" -- "$B" tune --model "$T/nowhere" --backend cpu

# corrupt and foreign tables: a warning, the heuristic, no crash, no misapplication
mkdir -p bad/CPU_cc0_cpu && printf '{"format": "slidesparse-tuning", "version": 1, "key": {' >bad/CPU_cc0_cpu/tuning.json
run_ok "$B" bench kernel --preset tiny-llama --m 16 --task 6 --dtype int8 --tuning-dir bad --no-tune --out r2 "${common[@]}"
grep -q "warning: ignoring corrupt" out || fail "corrupt table not reported: $(cat out)"
grep -q ",heuristic,,,,$" r2/benchmark_kernel/cuBLASLt/CPU_cc0_INT8_cpu/tiny-llama_qkv.csv || fail "corrupt table: not the heuristic"
sed 's/"gpu": "CPU"/"gpu": "Other GPU"/' tuning/CPU_cc0_cpu/tuning.json >bad/CPU_cc0_cpu/tuning.json
run_ok "$B" bench kernel --preset tiny-llama --m 16 --task 6 --dtype int8 --tuning-dir bad --no-tune --out r3 "${common[@]}"
grep -q "warning: ignoring bad/CPU_cc0_cpu/tuning.json: tuned for Other GPU" out || fail "foreign table not reported: $(cat out)"
echo "ok: corrupt and foreign tables fall back to the heuristic"
for c in "tune --help" "bench --help" "bench kernel --help"; do $B $c >/dev/null || fail "$c"; done
# the top-level and bench help name every bench kind
for c in "--help" "bench --help"; do
  $B $c | grep -q "kernel|prefill|decode" || fail "$c does not list bench kernel|prefill|decode"
done
# on the CPU the warm-up / repeat defaults are CPU-sized (25 / 100 are for a GPU)
run_ok "$B" bench kernel --preset tiny-llama --m 16 --task 6 --dtype int8 --backend cpu --no-tune --quiet --out r4 &&
  grep -q "warm-up 2, median of 5" out || fail "bench kernel CPU defaults: $(grep timing out)"
run_ok "$B" bench kernel --preset tiny-llama --m 16 --task 6 --dtype int8 --backend cpu --no-tune --quiet --out r4 \
  --warmup 3 --repeat 4 && grep -q "warm-up 3, median of 4" out || fail "bench kernel --warmup 3 --repeat 4: $(grep timing out)"

[[ $fails == 0 ]] || { echo "$fails failure(s)"; exit 1; }
echo "cli_tune_bench: all ok"
