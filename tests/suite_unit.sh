#!/bin/sh
# Unit tests: every runtime kernel against a naive loop (test_kernels.c),
# on every instruction set this CPU has (LMCC_ISA, runtime/isa.c).
cd "$(dirname "$0")/.." || exit 1
if ! make -s tests/bin/test_kernels >tests/tmp/unit.log 2>&1; then
	echo "FAIL unit: test_kernels does not build: $(head -c 300 tests/tmp/unit.log)"
	exit 0
fi
for isa in avx512 avx2 portable; do
	LMCC_ISA=$isa tests/bin/test_kernels 2>tests/tmp/unit.err
	rc=$?
	if [ $rc = 2 ] && grep -q "cannot run" tests/tmp/unit.err; then
		echo "skip unit[$isa]: $(cat tests/tmp/unit.err)"
	elif [ $rc != 0 ]; then
		echo "FAIL unit[$isa]: test_kernels exited $rc: $(head -c 300 tests/tmp/unit.err)"
	fi
done
# An instruction set the CPU lacks or does not know is refused, one line,
# exit 2 (avx512 on a CPU that has it: only the unknown name is tried).
for bad in avx512 sse9; do
	LMCC_ISA=$bad tests/bin/test_kernels >/dev/null 2>tests/tmp/unit.err
	rc=$?
	msg=$(cat tests/tmp/unit.err)
	case $bad,$rc in
	avx512,0) ;;
	*,2) if [ "$(wc -l <tests/tmp/unit.err)" = 1 ] && echo "$msg" | grep -q "^lmcc: LMCC_ISA: "; then
		echo "PASS unit: LMCC_ISA=$bad refused: $msg"
	     else
		echo "FAIL unit: LMCC_ISA=$bad: not one 'lmcc: LMCC_ISA:' line: $msg"
	     fi ;;
	*) echo "FAIL unit: LMCC_ISA=$bad: exit $rc, not 2: $msg" ;;
	esac
done
if make -s tests/bin/test_sample >tests/tmp/unit.log 2>&1; then
	tests/bin/test_sample || true
else
	echo "FAIL unit: test_sample does not build: $(head -c 300 tests/tmp/unit.log)"
fi
if make -s tests/bin/test_stop >tests/tmp/unit.log 2>&1; then
	tests/bin/test_stop || true
else
	echo "FAIL unit: test_stop does not build: $(head -c 300 tests/tmp/unit.log)"
fi
# The chunked Mamba-2 scan (ssd.c) against the token-by-token one.
if make -s tests/bin/test_ssd >tests/tmp/unit.log 2>&1; then
	tests/bin/test_ssd || echo "FAIL unit: test_ssd exited $?"
else
	echo "FAIL unit: test_ssd does not build: $(head -c 300 tests/tmp/unit.log)"
fi
# on_isas NAME: tests/bin/test_NAME under every instruction set this CPU has
on_isas() {
	for isa in avx512 avx2 portable; do
		LMCC_ISA=$isa tests/bin/test_$1 >tests/tmp/$1.log 2>tests/tmp/$1.err
		rc=$?
		if [ $rc = 2 ] && grep -q "cannot run" tests/tmp/$1.err; then
			echo "skip $1[$isa]: $(cat tests/tmp/$1.err)"
			continue
		fi
		cat tests/tmp/$1.log
		[ $rc = 0 ] || echo "FAIL unit: test_$1 exited $rc under LMCC_ISA=$isa"
	done
}
# The chunked gated delta rule (kda_chunk.c) against the token-by-token one
# (delta.c), on every instruction set this CPU has.
if make -s tests/bin/test_kda >tests/tmp/unit.log 2>&1; then
	on_isas kda
else
	echo "FAIL unit: test_kda does not build: $(head -c 300 tests/tmp/unit.log)"
fi
# Latent attention's expanded prefill (mla.c) against its latent path and
# a float64 oracle, with the up-projections in every stored form.
if make -s tests/bin/test_mla >tests/tmp/unit.log 2>&1; then
	on_isas mla
else
	echo "FAIL unit: test_mla does not build: $(head -c 300 tests/tmp/unit.log)"
fi
# The prefill product (gemm.c) on every instruction set this CPU has.
if make -s tests/bin/test_gemm >tests/tmp/unit.log 2>&1; then
	on_isas gemm
else
	echo "FAIL unit: test_gemm does not build: $(head -c 300 tests/tmp/unit.log)"
fi
# Weights stored [in, out], transposed at load (st.c), read through views.
mkdir -p tests/tmp/flip
if make -s tests/bin/test_flip >tests/tmp/unit.log 2>&1; then
	tests/bin/test_flip tests/tmp/flip || echo "FAIL unit: test_flip exited $?"
else
	echo "FAIL unit: test_flip does not build: $(head -c 300 tests/tmp/unit.log)"
fi
# --fast's int8 product for quantized weights, against the exact one.
if make -s tests/bin/test_gemm_q8 >tests/tmp/unit.log 2>&1; then
	tests/bin/test_gemm_q8 || echo "FAIL unit: test_gemm_q8 exited $?"
else
	echo "FAIL unit: test_gemm_q8 does not build: $(head -c 300 tests/tmp/unit.log)"
fi
# An unknown prefill product is refused, one line, exit 2.
LMCC_GEMM=blis tests/bin/test_kernels >/dev/null 2>tests/tmp/unit.err
rc=$?
msg=$(cat tests/tmp/unit.err)
if [ $rc = 2 ] && [ "$(wc -l <tests/tmp/unit.err)" = 1 ] && echo "$msg" | grep -q "^lmcc: LMCC_GEMM: "; then
	echo "PASS unit: LMCC_GEMM=blis refused: $msg"
else
	echo "FAIL unit: LMCC_GEMM=blis: exit $rc, not one 'lmcc: LMCC_GEMM:' line: $msg"
fi
# Quantized products on every instruction set this CPU can run.
if make -s tests/bin/test_qmat >tests/tmp/unit.log 2>&1; then
	flags=$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null)
	for isa in portable avx2 avx512; do
		case $isa in
		avx2) echo "$flags" | grep -qw avx2 && echo "$flags" | grep -qw fma \
		      && echo "$flags" | grep -qw f16c || continue ;;
		avx512) echo "$flags" | grep -qw avx512f && echo "$flags" | grep -qw avx512bw \
		        && echo "$flags" | grep -qw avx512vl || continue ;;
		esac
		LMCC_ISA=$isa tests/bin/test_qmat >tests/tmp/qmat.log 2>&1
		rc=$?
		sed "s/^\(PASS\|FAIL\) qmat /\1 qmat $isa /" tests/tmp/qmat.log
		[ $rc -eq 0 ] || echo "FAIL unit: test_qmat exited $rc under LMCC_ISA=$isa"
	done
else
	echo "FAIL unit: test_qmat does not build: $(head -c 300 tests/tmp/unit.log)"
fi
