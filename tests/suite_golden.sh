#!/bin/sh
# Golden cases (DESIGN.md): every case in tests/golden, through `lmcc build`
# and through `lmcc run`, with the input fed whole, one token at a time and
# in chunks of 5, must meet the bound npycmp checks.
#   sh tests/suite_golden.sh [CASE...]     (default: every case)
cd "$(dirname "$0")/.." || exit 1
. tests/golden_lib.sh
make -s tests/bin/npycmp >/dev/null || { echo "FAIL golden: cannot build npycmp"; exit 0; }
tmp=tests/tmp/golden
mkdir -p "$tmp"
cases="$*"
[ -n "$cases" ] || cases=$(ls tests/golden)
for c in $cases; do
	dir=tests/golden/$c
	[ -f "$dir/config.json" ] || continue
	if ! ./lmcc build "$dir" -o "$tmp/$c" 2>"$tmp/$c.err"; then
		echo "FAIL golden $c build: $(head -c 300 "$tmp/$c.err")"
		continue
	fi
	for path in build run; do
		for chunk in whole 1 5; do
			opt=""
			[ $chunk = whole ] || opt="--chunk $chunk"
			out="$tmp/$c.$path.$chunk.npy"
			golden_feed $path "$dir" "$tmp/$c/$c" "$out" $opt
			golden_check "golden $c $path chunk=$chunk" "$out" "$dir"
		done
	done
done
