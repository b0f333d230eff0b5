set -uo pipefail
source scripts/device_env.sh >/dev/null
B=build-gpu S=build-gpu/slidesparse M=/tmp/models T=/tmp/tuning
cmake -S . -B $B -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 -DSS_CUDA=ON -DCUSPARSELT_ROOT="$CUSPARSELT_ROOT" > $OUT/configure.log 2>&1 && cmake --build $B -j 16 --target slidesparse > $OUT/build.log 2>&1 || { grep -A5 error $OUT/build.log | head; exit 1; }
echo "built at ${SECONDS}s"
D=$M/BitNet-2B-INT8
$S synth --preset bitnet-2b --out $M/B --force >/dev/null && $S quantize --in $M/B --dtype int8 --out $D --force >/dev/null && $S convert --in $D --sparsity 2_4 --out-root $M/slid --force >/dev/null || exit 1
echo "models at ${SECONDS}s"
$S tune --preset bitnet-2b --dtype int8 --sparsity 2_4 --m-coarse 64,512 --m-fine 64,512 --tuning-dir $T --warmup 10 --repeat 30 --quiet > $OUT/tune.log 2>&1; echo "tune rc=$? at ${SECONDS}s"
for tab in none tuned; do
  for seams in 1 0; do
    for spec in dense:$D 2_4:$M/slid/BitNet-2B-INT8-SlideSparse-2_4; do
      IFS=: read -r pat model <<<"$spec"
      if [[ $tab == tuned ]]; then export SS_TUNING_DIR=$T; else unset SS_TUNING_DIR; fi
      SS_SEAMS=$seams timeout 100 $S bench decode --model $model --M 64,512 --out /tmp/ab > $OUT/dec_${tab}_${seams}_$pat.log 2>&1
      echo "table $tab seams $seams $pat: $(grep -oE '[0-9.]+ tokens/s' $OUT/dec_${tab}_${seams}_$pat.log | tr '\n' ' ')"
    done
  done
done
echo "done at ${SECONDS}s"
