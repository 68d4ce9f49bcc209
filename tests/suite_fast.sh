#!/bin/sh
# --fast (README, "Speed"): its cost in quality on the golden cases, and
# what it must leave alone.  Each architecture's float case and each
# quantized case runs through `lmcc run` with
# --fast, its logits against the reference's: the worst row's error
# relative to its largest logit and the rows whose argmax agrees are
# reported (that is the measurement README quotes).  Each product's own
# error is bounded exactly by tests/unit/test_gemm_q8.c (int8) and
# test_kernels.c (bf16); here the golden
# cases' random tiny models amplify it through their layers (quantizing
# their weights to 4 bits already moves their logits by 0.16 to 1.2 of the
# largest, tests/golden-mlx/README.md) and through the discrete choice of
# experts, so the floor is only what a broken product would miss: finite
# logits whose argmax agrees in 70% of the rows or more (a wrong product
# agrees by chance, 1 in 256).  The run's stats line says what --fast does
# on the path that ran: int8 products for 8- and 4-bit weights on AVX2 and
# AVX-512 (with AMX, or AVX512_BF16 without AMX, bf16 products of every
# affine quantized weight dequantized instead); bf16 products for float weights where the AVX-512 path has
# AVX512_BF16 (on AMX's tiles or vdpbf16ps, F32 and F16 weights rounded to
# bf16: the golden cases' F32 weights change too, so their figures carry
# that); nothing on the portable path.  Where it does nothing the logits
# must equal the exact run's bit for bit, and where it does they must
# differ, or the faster product did not run.  afm7_noreuse_bf16 is the
# case whose weights are BF16 as stored, what the bench checkpoints hold.
cd "$(dirname "$0")/.." || exit 1
. tests/golden_lib.sh
make -s tests/bin/npycmp >/dev/null || { echo "FAIL fast: cannot build npycmp"; exit 0; }
tmp=tests/tmp/fast
mkdir -p "$tmp"
worst=0 agree=0 rows=0
for dir in tests/golden/afm7 tests/golden/afm7_noreuse_bf16 tests/golden/baichuan_m1 tests/golden/kimi_linear \
           tests/golden/llama4 tests/golden/plamo2 tests/golden-mlx/*_q4g64*; do
	[ -f "$dir/config.json" ] || continue
	[ -d "$dir/adapter" ] && continue
	c=$(basename "$dir")
	quant=0
	grep -q '"quantization"' "$dir/config.json" && quant=1
	golden_feed run "$dir" - "$tmp/$c.fast.npy" --fast
	golden_feed run "$dir" - "$tmp/$c.exact.npy"
	if [ ! -f "$tmp/$c.fast.npy" ] || [ ! -f "$tmp/$c.exact.npy" ]; then
		echo "FAIL fast $c: $(head -c 300 "$tmp/$c.fast.npy.err" "$tmp/$c.exact.npy.err")"
		continue
	fi
	same=0
	tests/bin/npycmp "$tmp/$c.fast.npy" "$tmp/$c.exact.npy" --exact >/dev/null && same=1
	note=$(grep -o -e '--fast: [^;]*' "$tmp/$c.fast.npy.err" | head -n 1)
	faster=0
	case $quant,$note in
	1,*"int8 products"*|1,*"bf16 products"*"quantized"*|0,*"bf16 products"*) faster=1 ;;
	esac
	if [ $faster = 0 ]; then
		if [ $same = 1 ]; then
			echo "PASS fast $c: the exact logits (${note:-no --fast note})"
		else
			echo "FAIL fast $c: --fast changed the logits where the run says it does nothing faster (${note:-no --fast note})"
		fi
		continue
	fi
	r=$(tests/bin/npycmp "$tmp/$c.fast.npy" "$dir/logits.npy" --report)
	w=$(echo "$r" | sed -n 's/^max relative error \([^ ]*\) .*/\1/p')
	a=$(echo "$r" | sed -n 's/.*agrees in \([0-9]*\) of \([0-9]*\) rows/\1 \2/p')
	if [ -z "$w" ] || [ -z "$a" ]; then
		echo "FAIL fast $c: $r"
		continue
	fi
	set -- $a
	worst=$(awk -v a="$worst" -v b="$w" 'BEGIN { print (b > a ? b : a) }')
	agree=$((agree + $1)) rows=$((rows + $2))
	if [ $same = 1 ]; then
		echo "FAIL fast $c: --fast gave the exact logits ($note, but it did not run)"
	elif awk -v w="$w" -v a="$1" -v n="$2" 'BEGIN { exit !(w + 0 == w && w < 1e30 && a >= 0.7 * n) }'; then
		echo "PASS fast $c: $r"
	else
		echo "FAIL fast $c: beyond the floor (top-1 in 70% of rows): $r"
	fi
done
if [ $rows -gt 0 ]; then
	echo "PASS fast quality: worst relative error $worst, top-1 agreement $agree of $rows rows"
fi
