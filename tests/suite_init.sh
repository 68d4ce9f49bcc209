#!/bin/sh
# Models made by `lmcc init` from configs unlike the golden ones (other
# sizes, GQA ratios, windows, schedules, BF16): built and JIT-run, the
# logits must not depend on the path or on how the input is chunked, and
# init must be deterministic.
cd "$(dirname "$0")/.." || exit 1
make -s tests/bin/npycmp >/dev/null
T=tests/tmp/init
rm -rf $T
mkdir -p $T
toks=3,17,99,4,4,4,120,7,61,12,0,1,2,3,5,8,13,21,34,55,89,44,33,22,11,10,9,8,7,6,5,4
for c in afm7_gqa3:f32 baichuan_swa3:bf16; do
	name=${c%:*} dtype=${c#*:}
	d=$T/$name
	if ! ./lmcc init tests/configs/$name.json -o $d --seed 5 --dtype $dtype 2>$T/err; then
		echo "FAIL init $name: $(head -c 300 $T/err)"
		continue
	fi
	./lmcc build $d -o $T/$name.bin 2>/dev/null
	$T/$name.bin/$name --tokens $toks --logits-out $T/$name.whole.npy 2>/dev/null
	for run in "build 1" "build 3" "run 1" "run 3" "run 32"; do
		set -- $run
		if [ $1 = build ]; then
			$T/$name.bin/$name --tokens $toks --chunk $2 --logits-out $T/x.npy 2>$T/err
		else
			./lmcc run $d --tokens $toks --chunk $2 --logits-out $T/x.npy 2>$T/err
		fi
		if r=$(tests/bin/npycmp $T/x.npy $T/$name.whole.npy); then
			echo "PASS init $name ($dtype) $1 --chunk $2 matches the whole input: $r"
		else
			echo "FAIL init $name ($dtype) $1 --chunk $2: $r $(head -c 200 $T/err)"
		fi
	done
done
./lmcc init tests/configs/afm7_gqa3.json -o $T/again --seed 5 2>/dev/null
./lmcc init tests/configs/afm7_gqa3.json -o $T/other --seed 6 2>/dev/null
if cmp -s $T/again/model.safetensors $T/afm7_gqa3/model.safetensors \
   && ! cmp -s $T/other/model.safetensors $T/afm7_gqa3/model.safetensors; then
	echo "PASS init is deterministic in its seed"
else
	echo "FAIL init: same seed gave different files, or another seed the same"
fi
if ./lmcc init tests/configs/afm7_gqa3.json -o $T/again 2>$T/err; then
	echo "FAIL init overwrote a checkpoint without --force"
elif grep -q "force" $T/err; then
	echo "PASS init refuses to replace a checkpoint without --force"
else
	echo "FAIL init: $(cat $T/err)"
fi
