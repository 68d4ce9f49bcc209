#!/bin/sh
# `make bench`: lmcc bench on the benchmark models (every dimension of the
# released models, fewer layers/experts; tests/bench/<name>/config.json),
# as BF16 checkpoints made by lmcc init in out/bench/ (2.6 to 9.7 GB each)
# and as the 8-bit (group 64) and 4-bit (groups 64 and 32) checkpoints
# lmcc quantize makes of them (out/bench/<name>-q8g64, ...).
#   sh tests/bench.sh [NAME...]      (default: all five)
#   BENCH_REPS=R                     repetitions of each test (default 3)
#   BENCH_LONG="4096 32768"          the long prompts' lengths (default 4096;
#                                    32768 takes minutes and GBs per model)
# For each model, tables of lmcc bench (see lmcc bench --help: each figure
# beside its bound, measured in the same run on the same threads):
#   BF16: prefill of 128 and 512 tokens and decoding of 32 on 1 and 2
#         threads, the first model also JIT-compiled (lmcc run) beside the
#         built binary; prefill of 4096 tokens (each of BENCH_LONG), and
#         decoding 32 after them, on 2 threads, each with its time and
#         peak memory;
#   q8/64, q4/64, q4/32: prefill of 128 and 512 and decoding of 32 on 2.
# Each row on 2 threads carries llama.cpp's figure of the same checkpoint
# on a machine with this CPU (2 threads; Zen 4 and Zen 3: release b10056,
# from ../shared/bench/README.md; the Intel Xeon's measured beside lmcc on
# 2026-12-03 with build d32676d77 built with every AVX-512 extension and
# AMX, its AMX files mended locally (that build crashed on every Q8_0 and
# Q4_0 file there; README.md says how); Zen 5's (family 26 model 2) beside lmcc on
# 2026-12-02, build d32676d77 with -march=native, Q4_0 files with
# llama-quantize's q6_K head; BF16 beside BF16, Q8_0 beside 8-bit, Q4_0
# beside both 4-bit formats), "-" for another CPU or where it has none.
cd "$(dirname "$0")/.." || exit 1
make -s all || exit 1
names="$*"
[ -n "$names" ] || names="plamo2 afm7 baichuan_m1 llama4 kimi_linear"
reps=${BENCH_REPS:-3}
long=${BENCH_LONG:-4096}
cpu=$(awk -F': ' '/^vendor_id/ {v = $2} /^cpu family/ {f = $2} /^model\t/ {m = $2; exit}
             END {print v "," f "," m}' /proc/cpuinfo)
case $cpu in
AuthenticAMD,25,17) kind="AVX-512 machine (Zen 4)" ;;
AuthenticAMD,25,1) kind="AVX2 machine (Zen 3)" ;;
GenuineIntel,6,167) kind="Intel Xeon machine" ;;
AuthenticAMD,26,2) kind="Zen 5 machine" ;;
GenuineIntel,6,207) kind="Xeon-207 machine (Intel Xeon, family 6 model 207)" ;;
*) kind="CPU $cpu, not measured" ;;
esac

# llama.cpp's tokens/s: ref MODEL FORMAT TEST ("-" when not measured)
ref() {
	case "$kind,$1,$2" in
	AVX-512*,plamo2,BF16) set -- "$3" 136 128 18.4 ;;
	AVX-512*,plamo2,Q8_0) set -- "$3" 92 87 21.6 ;;
	AVX-512*,kimi_linear,BF16) set -- "$3" 251 238 27.8 ;;
	AVX-512*,kimi_linear,Q8_0) set -- "$3" 188 177 34.4 ;;
	AVX-512*,llama4,BF16) set -- "$3" 101 102 10.7 ;;
	AVX-512*,llama4,Q8_0) set -- "$3" 73 72 13.8 ;;
	AVX2*,plamo2,BF16) set -- "$3" 49.5 - 10.2 ;;
	AVX2*,plamo2,Q8_0) set -- "$3" 39.9 - 17.0 ;;
	AVX2*,plamo2,Q4_0) set -- "$3" 47.4 - 23.8 ;;
	AVX2*,kimi_linear,BF16) set -- "$3" 85.6 - 15.1 ;;
	AVX2*,kimi_linear,Q8_0) set -- "$3" 127.3 - 21.5 ;;
	AVX2*,kimi_linear,Q4_0) set -- "$3" 147.7 - 30.5 ;;
	AVX2*,llama4,BF16) set -- "$3" 34.1 - 5.5 ;;
	AVX2*,llama4,Q8_0) set -- "$3" 44.3 - 8.9 ;;
	AVX2*,llama4,Q4_0) set -- "$3" 58.0 - 15.7 ;;
	Intel*,plamo2,BF16) set -- "$3" 84.3 80.8 8.19 ;;
	Intel*,plamo2,Q8_0) set -- "$3" 135.3 127.7 18.6 ;;
	Intel*,plamo2,Q4_0) set -- "$3" 145.3 142.8 28.3 ;;
	Intel*,kimi_linear,BF16) set -- "$3" 138.3 166.2 13.1 ;;
	Intel*,kimi_linear,Q8_0) set -- "$3" 236.1 232.9 25.8 ;;
	Intel*,kimi_linear,Q4_0) set -- "$3" 268.2 264.9 26.5 ;;
	Intel*,llama4,BF16) set -- "$3" 61.7 61.1 4.54 ;;
	Intel*,llama4,Q8_0) set -- "$3" 91.5 91.6 10.2 ;;
	Intel*,llama4,Q4_0) set -- "$3" 103.3 113.4 11.1 ;;
	Xeon-207*,plamo2,BF16) set -- "$3" 83.7 83.5 9.27 ;;
	Xeon-207*,plamo2,Q8_0) set -- "$3" 77.8 78.5 12.9 ;;
	Xeon-207*,plamo2,Q4_0) set -- "$3" 110.4 108.1 20.0 ;;
	Xeon-207*,kimi_linear,BF16) set -- "$3" 174.3 181.2 15.3 ;;
	Xeon-207*,kimi_linear,Q8_0) set -- "$3" 166.0 180.0 21.3 ;;
	Xeon-207*,kimi_linear,Q4_0) set -- "$3" 222.6 216.6 29.3 ;;
	Xeon-207*,llama4,BF16) set -- "$3" 62.5 70.6 5.38 ;;
	Xeon-207*,llama4,Q8_0) set -- "$3" 64.6 69.0 7.50 ;;
	Xeon-207*,llama4,Q4_0) set -- "$3" 82.0 86.1 10.7 ;;
	Zen*,plamo2,BF16) set -- "$3" 174.7 168.7 12.6 ;;
	Zen*,plamo2,Q8_0) set -- "$3" 99.6 83.7 17.9 ;;
	Zen*,plamo2,Q4_0) set -- "$3" 160.8 184.5 38.0 ;;
	Zen*,kimi_linear,BF16) set -- "$3" 268.6 299.6 21.1 ;;
	Zen*,kimi_linear,Q8_0) set -- "$3" 156.7 204.3 30.8 ;;
	Zen*,kimi_linear,Q4_0) set -- "$3" 278.5 258.6 48.5 ;;
	Zen*,llama4,BF16) set -- "$3" 113.6 123.5 10.1 ;;
	Zen*,llama4,Q8_0) set -- "$3" 69.3 83.0 17.1 ;;
	Zen*,llama4,Q4_0) set -- "$3" 119.4 117.8 20.8 ;;
	*) set -- "$3" - - - ;;
	esac
	case $1 in
	pp128) echo "$2" ;;
	pp512) echo "$3" ;;
	tg32) echo "$4" ;;
	*) echo - ;;
	esac
}

# lmcc bench's table with a llama.cpp column: with MODEL FORMAT ARGS...
bench() {
	m=$1 fmt=$2
	shift 2
	./lmcc bench "$@" | while IFS= read -r line; do
		case "$line" in
		"| model |"*) echo "$line llama.cpp $fmt |" ;;
		"|---"*) echo "$line---|" ;;
		"| "*)
			threads=$(echo "$line" | awk -F'|' '{ gsub(/ /, "", $5); print $5 }')
			test=$(echo "$line" | awk -F'|' '{ gsub(/ /, "", $6); print $6 }')
			if [ "$threads" = 2 ]; then r=$(ref $m $fmt $test); else r=-; fi
			echo "$line $r |" ;;
		*) echo "$line" ;;
		esac
	done
}

echo "llama.cpp figures beside the rows: $kind"
first=1
for m in $names; do
	d=out/bench/$m
	if [ ! -f $d/model.safetensors ]; then
		./lmcc init tests/bench/$m/config.json -o $d --dtype bf16 || exit 1
	fi
	for q in "8 64" "4 64" "4 32"; do
		set -- $q
		if [ ! -f $d-q$1g$2/config.json ]; then
			./lmcc quantize $d -o $d-q$1g$2 --bits $1 --group-size $2 --no-report || exit 1
		fi
	done
	# the checkpoint into the page cache first: the models do not all fit
	# in memory at once, and reading the disk is not what is measured
	cat $d/model.safetensors >/dev/null
	echo
	via=gcc
	[ $first = 1 ] && via=gcc,tcc
	first=0
	bench $m BF16 $d -p 128,512 -n 32 -r $reps -t 1,2 --via $via
	for l in $long; do
		echo
		bench $m BF16 $d -p $l -n 0 -r 1 -t 2 --allow-long-ctx
		echo
		bench $m BF16 $d -p 0 -n 32 -d $l -r 1 -t 2 --allow-long-ctx
	done
	for q in "8 64 Q8_0" "4 64 Q4_0" "4 32 Q4_0"; do
		set -- $q
		cat $d-q$1g$2/model*.safetensors >/dev/null
		echo
		bench $m $3 $d-q$1g$2 -p 128,512 -n 32 -r $reps -t 2
	done
done
