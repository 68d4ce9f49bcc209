#!/bin/sh
# The weights in 2 MB pages (runtime/st.c): --no-mmap reads every golden
# case (float, quantized, with an adapter) into memory of its own and gives
# the logits of the mapped run bit for bit, over MPI ranks too; the stats
# line says how the weights were loaded; a copy outlives a change of its
# file that ends a mapped run; lmcc bench measures the bound in both page
# sizes; bench_matmul refuses a page size it lacks.
cd "$(dirname "$0")/.." || exit 1
. tests/golden_lib.sh
T=tests/tmp/pages
rm -rf $T
mkdir -p $T

for dir in tests/golden/*/ tests/golden-mlx/*/; do
	c=$(basename "$dir")
	[ -f "$dir/config.json" ] || continue
	set --
	[ -d "$dir/adapter" ] && set -- --adapter "$dir/adapter"
	golden_feed run "$dir" - $T/$c.map.npy -t 1 "$@"
	golden_feed run "$dir" - $T/$c.copy.npy -t 1 --no-mmap "$@"
	if [ ! -f $T/$c.copy.npy ] || [ ! -f $T/$c.map.npy ]; then
		echo "FAIL pages $c --no-mmap: $(head -c 300 $T/$c.copy.npy.err $T/$c.map.npy.err)"
	elif ! cmp -s $T/$c.copy.npy $T/$c.map.npy; then
		echo "FAIL pages $c --no-mmap: logits differ from the mapped run's"
	elif ! grep -q "weights mapped" $T/$c.map.npy.err; then
		echo "FAIL pages $c: the stats line does not say the weights were mapped: $(tail -c 300 $T/$c.map.npy.err)"
	elif grep -q "(weights copied in [0-9.]* s" $T/$c.copy.npy.err \
	     || grep -q -- "--no-mmap: .*the weights stay in the file's mapping" $T/$c.copy.npy.err; then
		echo "PASS pages $c --no-mmap: the mapped run's logits, bit for bit; $(grep -o 'weights copied[^)]*' $T/$c.copy.npy.err)"
	else
		echo "FAIL pages $c --no-mmap: the stats line does not say the weights were copied: $(tail -c 300 $T/$c.copy.npy.err)"
	fi
done

# A copy is immune to later changes of its file: the change that ends a
# mapped run (exit 2, suite_hostile) leaves this one running until killed.
G=tests/golden/afm7
d=$T/immune
mkdir -p $d && cp $G/config.json $G/model.safetensors $d/
if ./lmcc build $d -o $T/bin 2>$T/build.err; then
	( timeout 4 $T/bin/immune --no-mmap --tokens 1,2,3 -n 100000 --ctx 100010 >/dev/null \
		2>$T/immune.err; echo $? >$T/immune.rc ) &
	sleep 1
	truncate -s 1000 $d/model.safetensors
	wait
	rc=$(cat $T/immune.rc)
	if [ "$rc" = 124 ] && ! grep -q "shrank\|rewritten" $T/immune.err; then
		echo "PASS pages a --no-mmap run outlives its file truncated under it"
	else
		echo "FAIL pages a --no-mmap run with its file truncated: exit $rc, $(head -c 200 $T/immune.err)"
	fi
else
	echo "FAIL pages build: $(head -c 300 $T/build.err)"
fi

# over MPI ranks: each reads only its own tensors into memory
if command -v mpirun >/dev/null && [ -f runtime/liblmcc-mpi.a ]; then
	export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
	export OMPI_MCA_btl_base_warn_component_unused=0
	G=tests/golden/plamo2
	./lmcc build $G --mpi -o $T/mpi 2>$T/mpi.err
	$T/mpi/plamo2 --tokens @$G/tokens.npy --logits-out $T/one.npy -t 1 2>>$T/mpi.err
	timeout 120 mpirun --oversubscribe --bind-to none -np 2 $T/mpi/plamo2 --no-mmap \
		--tokens @$G/tokens.npy --logits-out $T/two.npy -t 1 >/dev/null 2>>$T/mpi.err
	if [ -f $T/two.npy ] && cmp -s $T/one.npy $T/two.npy; then
		echo "PASS pages --no-mmap over 2 ranks: one mapped process's logits, bit for bit"
	else
		echo "FAIL pages --no-mmap over 2 ranks: $(grep -v '^lmcc:  ' $T/mpi.err | head -c 300)"
	fi
fi

make -s tests/bin/bench_matmul >/dev/null 2>&1
if tests/bin/bench_matmul 2 8k >/dev/null 2>$T/bm.err; then
	echo "FAIL pages bench_matmul 2 8k: accepted"
elif grep -q "usage: bench_matmul \[THREADS \[4k|2m\]\]" $T/bm.err; then
	echo "PASS pages bench_matmul refuses a page size other than 4k and 2m"
else
	echo "FAIL pages bench_matmul 2 8k: $(head -c 200 $T/bm.err)"
fi

# lmcc bench passes --no-mmap on, measures both bounds and says which
# pages the weights got
if ./lmcc bench tests/golden/baichuan_m1 -p 0 -n 2 -r 1 -t 1 --no-mmap -o json >$T/bench.json 2>$T/bench.err; then
	got=$(python3 -c '
import json, sys
j = json.load(open(sys.argv[1]))
b, r = j["builds"][0], j["bounds"][0]
print(0 <= b["huge_pages"] <= 1 and r["read_gb_s"] > 0 and r["read_2mb_gb_s"] > 0)' $T/bench.json 2>&1)
	if [ "$got" = True ]; then
		echo "PASS pages lmcc bench --no-mmap: both bounds and the weights' huge-page fraction"
	else
		echo "FAIL pages lmcc bench --no-mmap: $got $(head -c 200 $T/bench.json)"
	fi
else
	echo "FAIL pages lmcc bench --no-mmap: $(head -c 300 $T/bench.err)"
fi
