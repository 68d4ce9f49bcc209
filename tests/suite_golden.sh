#!/bin/sh
# Golden cases (DESIGN.md): every case in tests/golden (float checkpoints
# in the released layout) and tests/golden-mlx (what mlx-lm itself saved:
# quantized, or float in its layout), through `lmcc build` and through
# `lmcc run`, with the input fed whole, one token at a time and in chunks
# of 5, must meet the bound npycmp checks.  A case with an adapter/ (an
# mlx-lm LoRA adapter) is built and run with --adapter, and its built
# program given --weights and --adapter too.
#   sh tests/suite_golden.sh [CASE...]     (default: every case of both)
cd "$(dirname "$0")/.." || exit 1
make -s tests/bin/npycmp >/dev/null || { echo "FAIL golden: cannot build npycmp"; exit 0; }
tmp=tests/tmp/golden
mkdir -p "$tmp"
cases="$*"
[ -n "$cases" ] || cases=$(ls tests/golden tests/golden-mlx | grep -v ':$')
for c in $cases; do
	dir=tests/golden/$c
	[ -f "$dir/config.json" ] || dir=tests/golden-mlx/$c
	[ -f "$dir/config.json" ] || continue
	ad="" given=""
	if [ -d "$dir/adapter" ]; then
		ad="--adapter $dir/adapter"
		given="--weights $dir $ad"
	fi
	if ! ./lmcc build "$dir" $ad -o "$tmp/$c" 2>"$tmp/$c.err"; then
		echo "FAIL golden $c build: $(head -c 300 "$tmp/$c.err")"
		continue
	fi
	for path in build run; do
		for chunk in whole 1 5; do
			opt=""
			[ $chunk = whole ] || opt="--chunk $chunk"
			out="$tmp/$c.$path.$chunk.npy"
			rm -f "$out"
			if [ $path = build ]; then
				"$tmp/$c/$c" $given --tokens @$dir/tokens.npy --logits-out "$out" $opt 2>"$tmp/$c.err"
			else
				./lmcc run "$dir" $ad --tokens @$dir/tokens.npy --logits-out "$out" $opt 2>"$tmp/$c.err"
			fi
			name="golden $c $path chunk=$chunk"
			if [ ! -f "$out" ]; then
				echo "FAIL $name: $(head -c 300 "$tmp/$c.err")"
			elif r=$(tests/bin/npycmp "$out" "$dir/logits.npy"); then
				echo "PASS $name: $r"
			else
				echo "FAIL $name: $r"
			fi
		done
	done
done
