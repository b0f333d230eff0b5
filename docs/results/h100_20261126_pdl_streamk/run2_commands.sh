#!/usr/bin/env bash
# The commands of run 2 (kept as the record of how these logs were made): build, test_gpu_linear,
# memcheck of the sm90 algorithms, bench kernel (sm90 + cuBLASLt/cuSPARSELt), bench decode dense + 2_4
# with PDL 0/1; logs packed in one tgz
set -u
O=$OUT; L=/tmp/logs; mkdir -p $L; B=build-gpu S=build-gpu/slidesparse M=/tmp/models T=/tmp/tuning D=/tmp/models/BitNet-2B-INT8 S24=/tmp/models/slid/BitNet-2B-INT8-SlideSparse-2_4
trap 'tar -czf $O/logs.tgz -C $L . 2>/dev/null' EXIT
source scripts/device_env.sh >/dev/null 2>&1
cmake -S . -B $B -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 -DSS_CUDA=ON \
  -DCUSPARSELT_ROOT="$CUSPARSELT_ROOT" -DCUTLASS_ROOT=$PWD/.carry/cutlass/include >$L/configure.log 2>&1 || { tail -20 $L/configure.log; exit 1; }
cmake --build $B -j 16 --target slidesparse test_gpu_linear >$L/build.log 2>&1 || { grep -B2 -A8 "error" $L/build.log | head -60; exit 1; }
echo "built at ${SECONDS}s"
( $S synth --preset bitnet-2b --out $M/BitNet-2B-BF16 --force >/dev/null && $S quantize --in $M/BitNet-2B-BF16 --dtype int8 --out $D --force >/dev/null &&
  $S convert --in $D --sparsity 2_4 --out-root $M/slid --force >/dev/null ) >$L/prep.log 2>&1 &
prep=$!
timeout 90 ctest --test-dir $B -R '^test_gpu_linear$' --output-on-failure -V >$L/ctest.log 2>&1; echo "ctest rc=$? at ${SECONDS}s"
grep -E "\[  (PASSED|FAILED) |FAILED|Passed|Failed" $L/ctest.log | head -8
SS_TEST_FILTER='test_sm90*_algos' timeout 100 compute-sanitizer --tool memcheck --error-exitcode 9 $B/test_gpu_linear >$L/memcheck.log 2>&1
echo "memcheck sm90 algos rc=$? at ${SECONDS}s: $(grep -E 'ERROR SUMMARY|PASSED|FAILED' $L/memcheck.log | tr '\n' ' ')"
wait $prep; echo "prep rc=$? at ${SECONDS}s"
timeout 100 $S bench kernel --preset bitnet-2b --dtype int8 --sparsity 2_4 --m 64,128,256,512 --tuning-dir $T \
  --warmup 10 --repeat 50 --out $L/kern --sm90dense --sm90sp >$L/kernel_sm90.log 2>&1; echo "kernel sm90 rc=$? at ${SECONDS}s"
sed -n '/total of one layer/,$p' $L/kernel_sm90.log | grep -E "^ +[0-9]+ " 
timeout 45 $S bench kernel --preset bitnet-2b --dtype int8 --sparsity 2_4 --m 64,128,256,512 --tuning-dir $T \
  --warmup 10 --repeat 50 --out $L/kern >$L/kernel_plain.log 2>&1; echo "kernel plain rc=$? at ${SECONDS}s"
sed -n '/total of one layer/,$p' $L/kernel_plain.log | grep -E "^ +[0-9]+ "
cp -r $T $L/tuning
python3 - $T <<'PY' 2>&1 | tee $L/top.txt
import json,glob,sys
for f in glob.glob(sys.argv[1]+'/*/tuning.json'):
    for e in json.load(open(f))['entries']:
        if e.get('backend') in ('sm90dense','sm90sp','cublaslt','cusparselt') and e.get('m') in (64,128,256,512):
            print(e['backend'], e['n'], e['k'], e['m'], ' | '.join('%s %.1f' % (t['algo']['desc'], t['us']) for t in e.get('top', [])))
PY
for spec in cublaslt:$D sm90dense:$D cusparselt:$S24 sm90sp:$S24; do IFS=: read -r be mdl <<<"$spec"; for pdl in 0 1; do
  SS_TUNING_DIR=$T SS_PDL=$pdl timeout 60 $S bench decode --model $mdl --backend $be --M 64,512 --out /tmp/res >$L/decode_${be}_pdl$pdl.log 2>&1
  echo "decode $be tuned PDL=$pdl rc=$?: $(grep -oE '[0-9.]+ tokens/s' $L/decode_${be}_pdl$pdl.log | tr '\n' ' ')"
done; done
SS_PDL=1 timeout 60 $S bench decode --model $D --backend sm90dense --M 64,512 --out /tmp/res >$L/decode_sm90dense_heur.log 2>&1
echo "decode sm90dense heuristic PDL=1 rc=$?: $(grep -oE '[0-9.]+ tokens/s' $L/decode_sm90dense_heur.log | tr '\n' ' ')"
echo "done at ${SECONDS}s"
