#!/bin/sh
# `make bench`: speed on the benchmark models (every dimension of the
# released models, fewer layers/experts; tests/bench/<name>/config.json),
# as BF16 checkpoints made by lmcc init in out/bench/ (2.6 to 9.7 GB each).
#   sh tests/bench.sh [NAME...]      (default: all five)
# Reports tokens/s for prefill of 128 and 512 tokens and for decoding 32,
# each as a ratio to this machine's bound (measured first by bench_matmul):
#   decode bound  = read bandwidth / bytes of the weights a token reads
#   prefill bound = sgemm's float32 rate / (2 x parameters a token reads,
#                   the head left out: only the last position needs it)
# and the llama.cpp figures of the same checkpoints on a machine of this
# kind (BF16, 2 threads, release b10056, from the project's benchmark
# notes: the AVX-512 machine's when this CPU has AVX-512, else the AVX2
# machine's, which has no pp512 figure).  The kernels are those LMCC_ISA
# chooses (runtime/isa.c); the first line names the CPU and the path, and
# the bound is measured with the same instruction set.
cd "$(dirname "$0")/.." || exit 1
make -s all tests/bin/bench_matmul || exit 1
names="$*"
[ -n "$names" ] || names="plamo2 afm7 baichuan_m1 llama4 kimi_linear"
mach=$(tests/bin/bench_matmul | head -1)
bw=$(echo "$mach" | sed 's/.*read \([0-9.]*\) GB.*/\1/')
rate=$(echo "$mach" | sed 's/.*sgemm \([0-9.]*\) GFLOP.*/\1/')
echo "$mach"
if grep -m1 '^flags' /proc/cpuinfo | grep -qw avx512f; then
	kind="AVX-512 machine"
else
	kind="AVX2 machine"
fi
ref() {   # llama.cpp BF16 pp128 pp512 tg32 on this kind of machine
	case "$kind,$1" in
	AVX-512*,plamo2) echo "136 128 18.4" ;;
	AVX-512*,kimi_linear) echo "251 238 27.8" ;;
	AVX-512*,llama4) echo "101 102 10.7" ;;
	AVX2*,plamo2) echo "49.5 - 10.2" ;;
	AVX2*,kimi_linear) echo "85.6 - 15.1" ;;
	AVX2*,llama4) echo "34.1 - 5.5" ;;
	*) echo "- - -" ;;
	esac
}
echo "llama.cpp figures: the $kind's"
ids() {   # N deterministic ids below V
	awk -v n=$1 -v v=$2 'BEGIN { s = 12345; for (i = 0; i < n; i++) {
		s = (s * 1103515245 + 12345) % 2147483648; printf "%s%d", i ? "," : "", s % v } }'
}
printf "%-12s %10s %10s %10s   %s\n" model pp128 pp512 tg32 "(tok/s; ratio to bound; llama.cpp BF16)"
for m in $names; do
	d=out/bench/$m
	if [ ! -f $d/model.safetensors ]; then
		./lmcc init tests/bench/$m/config.json -o $d --dtype bf16 || exit 1
	fi
	./lmcc build $d -o $d.bin 2>/dev/null || { echo "$m: build failed"; continue; }
	# the checkpoint into the page cache first: the five do not all fit in
	# memory at once, and reading the disk is not what is measured
	cat $d/model.safetensors >/dev/null
	plan=$(./lmcc plan $d)
	vocab=$(echo "$plan" | head -1 | sed 's/.*vocab \([0-9]*\),.*/\1/')
	hidden=$(echo "$plan" | head -1 | sed 's/.*hidden \([0-9]*\),.*/\1/')
	active=$(echo "$plan" | sed -n 's/.*read per token: \([0-9]*\)).*/\1/p')
	pp() { $d.bin/$m --tokens $(ids $1 $vocab) -n 1 2>&1 >/dev/null | sed 's/.*prefill [0-9]* tokens in [0-9.]* s (\([0-9.]*\) tok.*/\1/'; }
	p128=$(pp 128)
	p512=$(pp 512)
	tg=$($d.bin/$m --tokens $(ids 8 $vocab) -n 33 2>&1 >/dev/null | sed 's/.*decode [0-9]* tokens in [0-9.]* s (\([0-9.]*\) tok.*/\1/')
	set -- $(ref $m)
	awk -v m=$m -v a=$p128 -v b=$p512 -v t=$tg -v bw=$bw -v r=$rate -v act=$active \
	    -v la="$1" -v lb="$2" -v lt="$3" -v head=$((vocab * hidden)) 'BEGIN {
		dec = bw * 1e9 / (2 * act); pre = r * 1e9 / (2 * (act - head))
		printf "%-12s %10.1f %10.1f %10.2f\n", m, a, b, t
		printf "%-12s %10.2f %10.2f %10.2f   ratio to the bound (%.0f / %.0f / %.2f tok/s)\n", "", a / pre, b / pre, t / dec, pre, pre, dec
		printf "%-12s %10s %10s %10s   llama.cpp BF16\n", "", la, lb, lt }'
done
