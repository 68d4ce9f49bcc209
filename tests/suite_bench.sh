#!/bin/sh
# lmcc bench on tiny models: the table's shape (a row per thread count and
# test, each with its bound), JSON output, the JIT beside the built binary,
# a context depth, and every bad argument ending in exit 2 with one line.
cd "$(dirname "$0")/.." || exit 1
T=tests/tmp/bench
rm -rf $T
mkdir -p $T
G=tests/golden

# expect NAME WANT -- command...: exit 2, one stderr line holding WANT
expect() {
	name=$1 want=$2
	shift 3
	"$@" >$T/out 2>$T/err
	rc=$? lines=$(wc -l <$T/err) msg=$(head -c 300 $T/err)
	if [ $rc -ne 2 ]; then
		echo "FAIL bench $name: exit $rc, expected 2: $msg"
	elif [ "$lines" -ne 1 ]; then
		echo "FAIL bench $name: $lines lines on stderr, expected 1: $msg"
	elif ! grep -qF -- "$want" $T/err; then
		echo "FAIL bench $name: message lacks '$want': $msg"
	else
		echo "PASS bench $name"
	fi
}

# The markdown table: 2 thread counts x (2 prefill tests + 1 decode test),
# each row with numbers in every column and a bound above zero.
if ./lmcc bench $G/baichuan_m1 -p 8,16 -n 4 -r 2 -t 1,2 >$T/md 2>$T/err; then
	rows=$(grep -c '^| baichuan_m1 |' $T/md)
	bad=$(grep '^| baichuan_m1 |' $T/md | awk -F'|' '
		NF != 13 || $7 !~ /^ [0-9.]+ ± [0-9.]+ $/ || !($8 > 0) || $9 !~ /^ [0-9.e+-]+ $/ ||
		!($10 > 0) || $12 !~ (substr($6, 2, 2) == "tg" ? "^ [0-9.]+ ms/token $" : "^ [0-9.]+ s $") { n++ }
		END { print n + 0 }')
	tests=$(grep '^| baichuan_m1 |' $T/md | awk -F'|' '{ printf "%s%s", $5, $6 }' | tr -d ' ')
	if [ "$rows" -ne 6 ] || [ "$bad" -ne 0 ]; then
		echo "FAIL bench table: $rows rows ($bad malformed), expected 6: $(head -c 600 $T/md)"
	elif [ "$tests" != "1pp81pp161tg42pp82pp162tg4" ]; then
		echo "FAIL bench table: threads and tests '$tests'"
	elif ! grep -q '^bounds measured now: 1 thread: read [0-9.]* GB/s in 4 KB pages, [0-9.]* in 2 MB pages, f32 FMA peak [0-9.]* GFLOP/s, F32 product [0-9.]*; 2 threads' $T/md; then
		echo "FAIL bench table: no bounds line: $(head -3 $T/md)"
	elif ! grep -q '^gcc: built in [0-9.]* s; load [0-9.]* s' $T/md; then
		echo "FAIL bench table: no load line: $(head -4 $T/md)"
	else
		echo "PASS bench table"
	fi
else
	echo "FAIL bench table: $(head -c 300 $T/err)"
fi

# JSON, the JIT beside the built binary, and a depth: decode at a context
# of 40 tokens reads more cache than at 0, so its bound is lower.
if ./lmcc bench $G/llama4 -p 8 -n 4 -r 1 -t 1 -d 0,40 --via gcc,tcc -o json >$T/json 2>$T/err; then
	got=$(python3 -c '
import json, sys
j = json.load(open(sys.argv[1]))
t = j["tests"]
print(len(t), [b["via"] for b in j["builds"]], sorted(set(x["test"] for x in t)),
      all(x["tokens_s"] > 0 and x["bound_tokens_s"] > 0 and x["peak_bytes"] > 0 for x in t),
      [x["bound_tokens_s"] for x in t if x["via"] == "gcc" and x["test"].startswith("tg")])
' $T/json)
	case "$got" in
	"8 ['gcc', 'tcc'] ['pp8', 'pp8 @ d40', 'tg4', 'tg4 @ d40'] True ["*)
		if python3 -c 'import json, sys; t = [x["bound_tokens_s"] for x in json.load(open(sys.argv[1]))["tests"] if x["via"] == "gcc" and x["test"].startswith("tg")]; sys.exit(not t[0] > t[1])' $T/json; then
			echo "PASS bench json, tcc beside gcc, depth"
		else
			echo "FAIL bench depth: the decode bound does not fall with the context: $got"
		fi ;;
	*) echo "FAIL bench json: $got" ;;
	esac
else
	echo "FAIL bench json: $(head -c 300 $T/err)"
fi

# --help, and bad arguments
if ./lmcc bench --help | grep -q '^usage: lmcc bench MODEL_DIR'; then
	echo "PASS bench --help"
else
	echo "FAIL bench --help"
fi
M=$G/afm7
expect "no model" "needs MODEL_DIR" -- ./lmcc bench
expect "two models" "unexpected argument" -- ./lmcc bench $M $M
expect "-p -1" "-p: '-1' is not an integer in [0, 1048576]" -- ./lmcc bench $M -p -1
expect "-p 8,x" "-p: 'x'" -- ./lmcc bench $M -p 8,x
expect "-p 8," "-p: '8,' is not a comma-separated list" -- ./lmcc bench $M -p 8,
expect "-p too many" "-p: more than 16 values" -- ./lmcc bench $M -p 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17
expect "nothing to measure" "nothing to measure" -- ./lmcc bench $M -p 0 -n 0
expect "-n -1" "-n: '-1'" -- ./lmcc bench $M -n -1
expect "-r 0" "-r: '0' is not an integer in [1, 1000]" -- ./lmcc bench $M -r 0
expect "-t 0" "-t: '0'" -- ./lmcc bench $M -t 0
expect "-o xml" "-o: 'xml' is not md or json" -- ./lmcc bench $M -o xml
expect "--via clang" "--via: 'clang'" -- ./lmcc bench $M --via clang
expect "unknown option" "--nope" -- ./lmcc bench $M --nope
expect "missing directory" "$T/none" -- ./lmcc bench $T/none
# a context past the config's position limit (baichuan_m1: 32768)
expect "past max_position_embeddings" "--allow-long-ctx" -- \
	./lmcc bench $G/baichuan_m1 -p 32768 -n 1 -r 1 -t 1 -d 8
# the model's side of it, given a bad SPEC directly
./lmcc build $M -o $T/bin 2>/dev/null || echo "FAIL bench: cannot build afm7"
expect "SPEC without d" "lacks one of p, n, r, t, d" -- $T/bin/afm7 --bench 'p=8;n=1;r=1;t=1'
expect "SPEC bad key" "unknown key 'x'" -- $T/bin/afm7 --bench 'x=1'
expect "SPEC with --tokens" "--bench: its SPEC gives the input" -- $T/bin/afm7 --bench 'p=8;n=1;r=1;t=1;d=0' --tokens 1
