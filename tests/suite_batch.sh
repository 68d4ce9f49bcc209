#!/bin/sh
# Batched decoding (--parallel N): every golden case's input run as N
# sequences decoded together, staggered so that at each step they stand at
# different positions (one crossing a window or chunk boundary while the
# others do not), with prefills landing between steps (runtime/batch.c).
# Every sequence's logits at every position must meet the bound against
# the case's logits, those of the input alone.  Through `lmcc run` with 4
# sequences, and a built program with 7.
#   sh tests/suite_batch.sh [CASE...]     (default: every case of both)
cd "$(dirname "$0")/.." || exit 1
. tests/golden_lib.sh
make -s tests/bin/npycmp >/dev/null || { echo "FAIL batch: cannot build npycmp"; exit 0; }
tmp=tests/tmp/batch
rm -rf "$tmp"
mkdir -p "$tmp"
cases="$*"
[ -n "$cases" ] || cases=$(ls tests/golden tests/golden-mlx | grep -v ':$')
# check NAME OUT DIR N: every one of the N sequences' logits
check() {
	s=0
	while [ $s -lt $4 ]; do
		f=$2
		[ $s = 0 ] || f=${2%.npy}.$s.npy
		cp "$2.err" "$f.err" 2>/dev/null
		golden_check "$1 seq=$s" "$f" "$3"
		s=$((s + 1))
	done
}
for c in $cases; do
	dir=tests/golden/$c
	[ -f "$dir/config.json" ] || dir=tests/golden-mlx/$c
	[ -f "$dir/config.json" ] || continue
	ad=""
	[ -d "$dir/adapter" ] && ad="--adapter $dir/adapter"
	golden_feed run "$dir" - "$tmp/$c.run.npy" $ad --parallel 4
	check "batch $c run N=4" "$tmp/$c.run.npy" "$dir" 4
done
# a built program, with more sequences than some cases have chunk positions
for c in llama4 baichuan_tied_swa kimi_linear; do
	dir=tests/golden/$c
	if ! ./lmcc build "$dir" -o "$tmp/$c" 2>"$tmp/$c.err"; then
		echo "FAIL batch $c build: $(head -c 300 "$tmp/$c.err")"
		continue
	fi
	golden_feed build "$dir" "$tmp/$c/$c" "$tmp/$c.build.npy" --weights "$dir" --parallel 7
	check "batch $c build N=7" "$tmp/$c.build.npy" "$dir" 7
done
# the option's limits
if ./lmcc run tests/golden/llama4 --tokens 1,2 --parallel 2 >/dev/null 2>"$tmp/e" ||
   ! grep -q "needs --serve, or --tokens with --logits-out" "$tmp/e"; then
	echo "FAIL batch: --parallel without --logits-out: $(head -c 200 "$tmp/e")"
else
	echo "PASS batch: --parallel without --serve or --logits-out is refused"
fi
