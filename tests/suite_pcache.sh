#!/bin/sh
# Prompt caches on disk (--prompt-cache): on every golden case, a run over
# the first 19 tokens saves its state; a run over all of them continues
# from it, feeding only the rest (past the sliding windows and attention
# chunks of 6 and 8 the cases have), and must give the logits of an
# uninterrupted run bit for bit (fed in the same calls) and meet the golden
# bound against the reference.  Then the cases a cache must refuse or
# cannot use.
cd "$(dirname "$0")/.." || exit 1
make -s tests/bin/npycmp >/dev/null || { echo "FAIL pcache: cannot build npycmp"; exit 0; }
T=tests/tmp/pcache
rm -rf $T
mkdir -p $T

npyids() {   # the ids of a 1-D int32 .npy, comma separated
	hl=$(od -An -t u2 -j 8 -N 2 "$1" | tr -d ' ')
	od -An -v -t d4 -j $((10 + hl)) "$1" | tr -s ' \n' ',,' | sed 's/^,//; s/,$//'
}

for c in $(ls tests/golden); do
	d=tests/golden/$c
	[ -f $d/config.json ] || continue
	ids=$(npyids $d/tokens.npy)
	head=$(echo "$ids" | cut -d, -f1-19)
	rm -f $T/c.bin
	./lmcc run $d --tokens $head --prompt-cache $T/c.bin 2>$T/err >/dev/null
	./lmcc run $d --tokens $ids --prompt-cache $T/c.bin --logits-out $T/b.npy --chunk 19 2>$T/err >/dev/null
	./lmcc run $d --tokens $ids --logits-out $T/w.npy --chunk 19 2>/dev/null >/dev/null
	if ! grep -q "19 of [0-9]* prompt tokens from the prompt cache" $T/err; then
		echo "FAIL pcache $c: the cache was not used: $(head -c 300 $T/err)"
	elif ! r=$(tests/bin/npycmp $T/b.npy $T/w.npy --from 19 --exact); then
		echo "FAIL pcache $c: continuing differs from an uninterrupted run: $r"
	elif ! g=$(tests/bin/npycmp $T/b.npy $d/logits.npy --from 19); then
		echo "FAIL pcache $c: continuing misses the golden bound: $g"
	else
		echo "PASS pcache $c: 19 tokens from the cache, the rest equal to an uninterrupted run ($g)"
	fi
done

# a built program reads what lmcc run wrote; the same input again takes
# its logits from the file and generates what an uncached run does
d=tests/golden/kimi_linear
ids=$(npyids $d/tokens.npy)
./lmcc build $d -o $T/kimi 2>/dev/null || echo "FAIL pcache: build kimi_linear"
rm -f $T/k.bin
./lmcc run $d --tokens $ids --prompt-cache $T/k.bin >/dev/null 2>&1
want=$(./lmcc run $d --tokens $ids -n 6 2>/dev/null)
got=$($T/kimi/kimi_linear --tokens $ids -n 6 --prompt-cache $T/k.bin 2>$T/err)
if [ -n "$want" ] && [ "$got" = "$want" ] && grep -q "40 of 40" $T/err && grep -q "prefill 0 tokens" $T/err; then
	echo "PASS pcache built program, whole input cached: nothing fed, generates $got"
else
	echo "FAIL pcache whole input cached: got '$got', want '$want': $(head -c 300 $T/err)"
fi

# a prompt that leaves the cached one after 10 tokens: a model of full
# attention only cuts its caches back to those 10, a recurrent one starts
# afresh; either way the logits are those of an uncached run
for c in afm7_noreuse_bf16 plamo2; do
	d=tests/golden/$c
	ids=$(npyids $d/tokens.npy)
	other=$(echo "$ids" | cut -d, -f1-10),1,2,3
	want=10
	[ $c = plamo2 ] && want=0
	rm -f $T/o.bin
	./lmcc run $d --tokens $ids --prompt-cache $T/o.bin >/dev/null 2>&1
	./lmcc run $d --tokens $other --prompt-cache $T/o.bin --logits-out $T/o.npy --chunk 10 2>$T/err >/dev/null
	./lmcc run $d --tokens $other --logits-out $T/ow.npy --chunk 10 >/dev/null 2>&1
	if grep -q "^lmcc: $T/o.bin: $want of 13 " $T/err && r=$(tests/bin/npycmp $T/o.npy $T/ow.npy --from $want --exact); then
		echo "PASS pcache $c: a prompt that diverges after 10 tokens reuses $want, logits exact"
	else
		echo "FAIL pcache $c diverging prompt: want $want reused: $(head -c 300 $T/err) $r"
	fi
done

expect() {   # NAME WANT CMD...: exit 2, one line naming the file
	name=$1 want=$2
	shift 2
	"$@" >/dev/null 2>$T/err
	rc=$?
	if [ $rc -eq 2 ] && [ "$(wc -l <$T/err)" -eq 1 ] && grep -qF -- "$want" $T/err; then
		echo "PASS pcache refuses $name"
	else
		echo "FAIL pcache $name: exit $rc: $(head -c 300 $T/err)"
	fi
}
expect "another model's cache" "config.json differs" ./lmcc run tests/golden/afm7 --tokens 1,2 --prompt-cache $T/k.bin
./lmcc init tests/golden/afm7/config.json -o $T/s1 --seed 1 >/dev/null 2>&1
./lmcc init tests/golden/afm7/config.json -o $T/s2 --seed 2 >/dev/null 2>&1
rm -f $T/s.bin
./lmcc run $T/s1 --tokens 1,2,3 --prompt-cache $T/s.bin >/dev/null 2>&1
expect "the cache of other weights (another seed)" "weights differ" ./lmcc run $T/s2 --tokens 1,2,3 --prompt-cache $T/s.bin
head -c 100 $T/s.bin >$T/cut.bin
expect "a truncated cache" "truncated" ./lmcc run $T/s1 --tokens 1,2,3 --prompt-cache $T/cut.bin
printf 'not a cache at all, just text' >$T/junk.bin
expect "a file that is no cache" "not an lmcc prompt cache" ./lmcc run $T/s1 --tokens 1 --prompt-cache $T/junk.bin

# an adapter is part of the model: its cache continues exactly, and is
# refused without the adapter
d=tests/golden-mlx/afm7_lora
ids=$(npyids $d/tokens.npy)
head=$(echo "$ids" | cut -d, -f1-7)
rm -f $T/a.bin
./lmcc run $d --adapter $d/adapter --tokens $head --prompt-cache $T/a.bin >/dev/null 2>&1
./lmcc run $d --adapter $d/adapter --tokens $ids --prompt-cache $T/a.bin --logits-out $T/a.npy --chunk 7 2>$T/err >/dev/null
if grep -q "7 of 16 prompt tokens" $T/err && g=$(tests/bin/npycmp $T/a.npy $d/logits.npy --from 7); then
	echo "PASS pcache afm7 with a LoRA adapter: continuing from the cache meets the reference ($g)"
else
	echo "FAIL pcache adapter: $(head -c 300 $T/err) $g"
fi
expect "a cache made with an adapter, used without" "made with an adapter" ./lmcc run $d --tokens $ids --prompt-cache $T/a.bin
