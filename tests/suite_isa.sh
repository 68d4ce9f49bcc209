#!/bin/sh
# Golden cases on every instruction set this CPU has (LMCC_ISA,
# runtime/isa.c): one case per architecture (bf16 weights for afm7),
# through a built binary and `lmcc run`, fed whole (prefill: the blocked
# products) and one token at a time (the streaming kernels).  An
# instruction set the CPU lacks is skipped, saying so.
cd "$(dirname "$0")/.." || exit 1
. tests/golden_lib.sh
make -s tests/bin/npycmp >/dev/null || { echo "FAIL isa: cannot build npycmp"; exit 0; }
tmp=tests/tmp/isa
mkdir -p "$tmp"
cases="afm7_noreuse_bf16 baichuan_m1 kimi_linear llama4 plamo2"
for c in $cases; do
	dir=tests/golden/$c
	if ! ./lmcc build "$dir" -o "$tmp/$c" 2>"$tmp/$c.err"; then
		echo "FAIL isa golden $c build: $(head -c 300 "$tmp/$c.err")"
		continue
	fi
	for isa in avx512 avx2 portable; do
		for path in build run; do
			for chunk in whole 1; do
				opt=""
				[ $chunk = whole ] || opt="--chunk $chunk"
				out="$tmp/$c.$isa.$path.$chunk.npy"
				LMCC_ISA=$isa
				export LMCC_ISA
				golden_feed $path "$dir" "$tmp/$c/$c" "$out" $opt
				rc=$?
				name="golden[$isa] $c $path chunk=$chunk"
				if [ $rc = 2 ] && grep -q "LMCC_ISA: this CPU cannot run" "$out.err"; then
					echo "skip $name: $(cat "$out.err")"
					break 2
				elif [ -f "$out" ] && ! grep -q "; $isa kernels" "$out.err"; then
					echo "FAIL $name: the stats line does not name $isa: $(head -c 300 "$out.err")"
				else
					golden_check "$name" "$out" "$dir"
				fi
			done
		done
	done
done
# Both prefill products (LMCC_GEMM, runtime/matmul.c) on every case and
# instruction set, whichever the per-shape rule would choose.
for c in $cases; do
	dir=tests/golden/$c
	[ -x "$tmp/$c/$c" ] || continue
	for isa in avx512 avx2 portable; do
		for gemm in lmcc openblas; do
			out="$tmp/$c.$isa.$gemm.npy"
			LMCC_ISA=$isa LMCC_GEMM=$gemm
			export LMCC_ISA LMCC_GEMM
			golden_feed build "$dir" "$tmp/$c/$c" "$out"
			rc=$?
			unset LMCC_GEMM
			if [ $rc = 2 ] && grep -q "LMCC_ISA: this CPU cannot run" "$out.err"; then
				break
			fi
			golden_check "golden[$isa] $c gemm=$gemm" "$out" "$dir"
		done
	done
done
