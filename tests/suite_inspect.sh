#!/bin/sh
# Inspection: lmcc plan --cost, a built program's --check CASE_DIR, the
# peak memory in the stats line, progress of a long prefill on a terminal.
cd "$(dirname "$0")/.." || exit 1
T=tests/tmp/inspect
rm -rf $T
mkdir -p $T
G=tests/golden/afm7

# --cost of the AFM-7 case, by hand: layers 0-1 own K/V: q 64x64, k and v
# 64x32, o 64x64, the SwiGLU 3 x 64x208: 52224 weights; the KV-reuse
# layers 2-3 lack k and v: 48128; the head 128x64: 8192.  F32: 4 bytes.
# At context 100 each layer's attention does 2 x 4 heads x (16 + 16) x 100.
./lmcc plan $G --cost --ctx=100 >$T/cost 2>&1
want_mb=$(awk 'BEGIN { printf "%.2f", (2 * 52224 + 2 * 48128 + 8192) * 4 / 1e6 }')
want_mix=$(awk 'BEGIN { printf "%.3f", 4 * 2 * 4 * 32 * 100 / 1e6 }')
if grep -Eq "^total +[0-9.]+ +$want_mix +$want_mb " $T/cost && [ "$(grep -Ec '^[0-3] ' $T/cost)" -eq 4 ]; then
	echo "PASS inspect plan --cost: per layer, and $want_mb MB, $want_mix MFLOP of attention in total"
else
	echo "FAIL inspect plan --cost: expected total $want_mix MFLOP attention, $want_mb MB: $(cat $T/cost | head -c 600)"
fi
# the cache grows with the context: 2 layers x 2 kv heads x 32 floats x 4 bytes x 1000
./lmcc plan $G --cost -c 1000 >$T/cost2
if grep -Eq "^total .* 0\.51$" $T/cost2; then
	echo "PASS inspect plan --cost --ctx: the cache at 1000 tokens"
else
	echo "FAIL inspect plan --cost --ctx 1000: $(grep total $T/cost2)"
fi

# --check: the case passes; damaged logits fail with exit 1; another
# model's case is refused (exit 2) naming the field
./lmcc build $G -o $T/bin 2>/dev/null || echo "FAIL inspect: build"
out=$($T/bin/afm7 --check $G 2>$T/err)
rc=$?
if [ $rc -eq 0 ] && echo "$out" | grep -q "max relative error .* bound 0.0001: pass"; then
	echo "PASS inspect --check a golden case: $out"
else
	echo "FAIL inspect --check: exit $rc: $out $(head -c 200 $T/err)"
fi
mkdir -p $T/bad
cp $G/config.json $G/tokens.npy $G/logits.npy $T/bad/
ln -sf "$(pwd)/$G/model.safetensors" $T/bad/model.safetensors
printf '\177' | dd of=$T/bad/logits.npy bs=1 seek=1003 conv=notrunc 2>/dev/null
out=$($T/bin/afm7 --check $T/bad 2>$T/err)
rc=$?
if [ $rc -eq 1 ] && echo "$out" | grep -q "FAIL"; then
	echo "PASS inspect --check fails on logits off the bound: $out"
else
	echo "FAIL inspect --check on damaged logits: exit $rc: $out"
fi
$T/bin/afm7 --check tests/golden/baichuan_m1 >/dev/null 2>$T/err
if [ $? -eq 2 ] && grep -q "model_type" $T/err; then
	echo "PASS inspect --check refuses another model's case"
else
	echo "FAIL inspect --check of another model: $(head -c 200 $T/err)"
fi

# the stats line: peak resident memory
$T/bin/afm7 --tokens 1,2,3 -n 2 >/dev/null 2>$T/err
if grep -Eq "peak memory [0-9.]+ MB" $T/err; then
	echo "PASS inspect the stats line has the peak memory"
else
	echo "FAIL inspect stats line: $(cat $T/err)"
fi

# progress of a long prefill, on a terminal only (here shown at once)
if command -v script >/dev/null 2>&1; then
	ids=$(seq -s, 1 600 | sed 's/[0-9]*/1/g')
	LMCC_PROGRESS_AFTER=0 script -q -c "$T/bin/afm7 --tokens $ids" /dev/null >$T/tty 2>&1
	LMCC_PROGRESS_AFTER=0 $T/bin/afm7 --tokens $ids >/dev/null 2>$T/notty
	if grep -q "prefill 256 of 600 tokens" $T/tty && ! grep -q "of 600" $T/notty; then
		echo "PASS inspect a long prefill shows progress on a terminal, not elsewhere"
	else
		echo "FAIL inspect progress: $(head -c 300 $T/tty)"
	fi
else
	echo "inspect: no 'script' command here; the progress line is not tested"
fi
