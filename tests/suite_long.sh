#!/bin/sh
# Long prompts in bounded memory: prefill runs MAXB tokens at a time, so
# a model whose layers keep only a window or a fixed state must peak at
# the same memory for 512 and 4,096 tokens, while one with global layers
# grows by their caches (the control: it shows the measure can see an
# allocation that grows with the prompt).  And the blocked prefill
# attention must agree with token-by-token decoding across window and
# tile edges.
cd "$(dirname "$0")/.." || exit 1
make -s tests/bin/npycmp >/dev/null
T=tests/tmp/long
rm -rf $T
mkdir -p $T
ids() { awk -v n=$1 'BEGIN { for (i = 0; i < n; i++) printf "%s%d", i ? "," : "", (i * 7919) % 1000 }'; }
peak() {   # peak memory in KB of a prefill of $2 tokens by model $1
	$T/$1.bin/$1 --tokens "$(ids $2)" -n 0 2>&1 |
		sed -n 's/.*peak memory \([0-9.]*\) MB.*/\1/p' | awk '{ printf "%d", $1 * 1024 }'
}
for m in long_swa long_kda long_global; do
	if ! ./lmcc init tests/configs/$m.json -o $T/$m --seed 3 2>$T/err ||
	   ! ./lmcc build $T/$m -o $T/$m.bin 2>$T/err; then
		echo "FAIL long $m: $(head -c 300 $T/err)"
		continue
	fi
	a=$(peak $m 512) b=$(peak $m 4096)
	if [ -z "$a" ] || [ -z "$b" ]; then
		echo "FAIL long $m: no peak memory reported"
		continue
	fi
	grow=$((b - a))
	if [ $m = long_global ]; then
		# 4 global layers of 8 K/V heads x 64, K and V: 16 KB a token
		want=$((16 * 3584 * 8 / 10))
		if [ $grow -ge $want ]; then
			echo "PASS long $m: peak memory grows with its caches ($a KB at 512 tokens, $b KB at 4096)"
		else
			echo "FAIL long $m: peak memory grew by $grow KB, its caches need $want KB or more"
		fi
	elif [ $grow -lt 2048 ]; then
		echo "PASS long $m: peak memory bounded ($a KB at 512 tokens, $b KB at 4096)"
	else
		echo "FAIL long $m: peak memory grew by $grow KB from 512 to 4096 tokens"
	fi
done
# the blocked prefill (windows of 64 keys, tiles of 128, blocks of 32
# tokens) against one token at a time and against other call sizes
m=long_swa
if [ -x $T/$m.bin/$m ]; then
	$T/$m.bin/$m --tokens "$(ids 600)" --chunk 1 --logits-out $T/one.npy 2>$T/err
	for c in 600 97 256; do
		$T/$m.bin/$m --tokens "$(ids 600)" --chunk $c --logits-out $T/x.npy 2>>$T/err
		if r=$(tests/bin/npycmp $T/x.npy $T/one.npy); then
			echo "PASS long $m --chunk $c matches one token at a time: $r"
		else
			echo "FAIL long $m --chunk $c: $r $(head -c 200 $T/err)"
		fi
	done
fi
# lmcc bench at depth, as llama-bench's -d: a prefill and decoding after
# 512 and 4,096 tokens of context.  Each test's peak memory is its own
# (the caches' pages are given back between depths): the windowed model's
# stays put, the global one's grows by its caches; every row gives its
# time (seconds of a prefill, ms per decoded token) and the table's bound
# of the memory (weights and caches) follows the same rule.
for m in long_swa long_global; do
	[ -d $T/$m ] || continue
	if ! ./lmcc bench $T/$m -p 64 -n 4 -r 1 -t 1 -d 512,4096 -o json >$T/$m.bench 2>$T/err; then
		echo "FAIL long bench $m: $(head -c 300 $T/err)"
		continue
	fi
	got=$(python3 - $T/$m.bench $m 2>&1 <<'PY'
import json, sys
t = {x["test"]: x for x in json.load(open(sys.argv[1]))["tests"]}
want = ["pp64 @ d512", "tg4 @ d512", "pp64 @ d4096", "tg4 @ d4096"]
if sorted(t) != sorted(want):
    sys.exit("tests %s, expected %s" % (sorted(t), want))
for x in t.values():
    n = int(x["test"].split()[0][2:])
    if not (x["tokens_s"] > 0 and x["seconds"] > 0 and x["peak_bytes"] > 0):
        sys.exit("%s: a figure not above 0: %s" % (x["test"], x))
    if abs(x["ms_per_token"] - 1e3 * x["seconds"] / n) > 1e-6 * x["ms_per_token"]:
        sys.exit("%s: %g ms per token, but %g s for %d tokens" % (x["test"], x["ms_per_token"], x["seconds"], n))
out = []
for test in ("pp64", "tg4"):
    a, b = t[test + " @ d512"], t[test + " @ d4096"]
    grow, bound = b["peak_bytes"] - a["peak_bytes"], b["bound_bytes"] - a["bound_bytes"]
    if sys.argv[2] == "long_global":
        # 4 global layers of 8 K/V heads x 64, K and V: 16 KB a token
        need = 16384 * 3584 * 8 // 10
        if grow < need or bound < need:
            sys.exit("%s: peak grew by %d KB and its bound by %d KB from depth 512 to 4096, the caches need %d KB"
                     % (test, grow // 1024, bound // 1024, need // 1024))
    elif grow >= 2 << 20 or bound != 0:
        sys.exit("%s: peak grew by %d KB and its bound by %d KB from depth 512 to 4096"
                 % (test, grow // 1024, bound // 1024))
    out.append("%s %.1f -> %.1f MB" % (test, a["peak_bytes"] / 1e6, b["peak_bytes"] / 1e6))
print(", ".join(out))
PY
) && echo "PASS long bench $m at depth 512 and 4096: $got" || echo "FAIL long bench $m: $got"
done
