#!/bin/sh
# The C API (runtime/lmcc_api.h): examples/generate through the JIT path
# and through a built model's object gives the ids lmcc run gives, and a
# bad input comes back as a status, not an exit; the shared runtime
# exports only lm_ names.
cd "$(dirname "$0")/.." || exit 1
T=tests/tmp/api
rm -rf $T
mkdir -p $T
make -s examples/generate >/dev/null || { echo "FAIL api: examples/generate does not build"; exit 0; }
for c in afm7 llama4 plamo2; do
	G=tests/golden/$c
	want=$(./lmcc run $G --tokens 5,9,17 -n 8 2>/dev/null)
	got=$(LMCC=./lmcc examples/generate $G 5,9,17 2>$T/err)
	rc=$?
	if [ $rc -eq 0 ] && [ "$(echo "$got" | head -1)" = "$want" ] \
	   && echo "$got" | grep -q "bad token: status 2: feed: token 0: id"; then
		echo "PASS api $c: the JIT path generates as lmcc run does ($want), errors return"
	else
		echo "FAIL api $c JIT: exit $rc: '$got', expected '$want': $(head -c 200 $T/err)"
	fi
done
G=tests/golden/llama4
./lmcc emit $G -o $T/obj 2>/dev/null
# (LMCC_CFLAGS: the sanitizer of a make test-asan runtime, as lmcc build adds it)
if cc -c -O2 $LMCC_CFLAGS -DLMCC_LIBRARY -Iruntime $T/obj/model.c -o $T/obj/model.o \
   && cc -O2 $LMCC_CFLAGS -DWITH_OBJECT -Iruntime examples/generate.c $T/obj/model.o -Lruntime -llmcc \
	-Wl,-rpath,"$(pwd)/runtime" -o $T/gen_obj; then
	want=$(./lmcc run $G --tokens 5,9,17 -n 8 2>/dev/null)
	got=$($T/gen_obj -o 5,9,17 2>$T/err | head -1)
	if [ "$got" = "$want" ]; then
		echo "PASS api a built model's object, linked in, generates as lmcc run does"
	else
		echo "FAIL api model object: '$got', expected '$want': $(head -c 200 $T/err)"
	fi
	# another model's checkpoint: a status naming the field, the host goes on
	$T/gen_obj -o 1,2 tests/golden/llama4_3layers >/dev/null 2>$T/err
	rc=$?
	if [ $rc -eq 2 ] && grep -q "^generate: .*field 'text_config.vocab_size'" $T/err; then
		echo "PASS api another model's checkpoint is a status, not an exit of lmcc's"
	else
		echo "FAIL api another model's checkpoint: exit $rc: $(head -c 200 $T/err)"
	fi
else
	echo "FAIL api: the model object does not build"
fi
n=$(nm -D --defined-only runtime/liblmcc.so | awk '{print $3}' | grep -vc '^lm_')
if [ "$n" -eq 0 ]; then
	echo "PASS api liblmcc.so exports only lm_ symbols"
else
	echo "FAIL api liblmcc.so exports $n symbols without lm_: $(nm -D --defined-only runtime/liblmcc.so | awk '{print $3}' | grep -v '^lm_' | head -5 | tr '\n' ' ')"
fi
if objdump -p runtime/liblmcc.so | grep -q "SONAME *liblmcc.so.0"; then
	echo "PASS api liblmcc.so has the SONAME liblmcc.so.0"
else
	echo "FAIL api SONAME: $(objdump -p runtime/liblmcc.so | grep SONAME)"
fi
