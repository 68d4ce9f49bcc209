#!/bin/sh
# Aggregate decoding speed of the server with batched decoding: 1, 2, 4
# and 8 clients at once, each asking for G tokens from its own short
# prompt (token ids, temperature 0), against one `lmcc serve --parallel 8`.
# Prints a markdown table: clients, tokens generated, wall seconds,
# aggregate tokens/s and its ratio to one client, then the same per second
# of the server's CPU time (steadier on a loaded machine).  SERVE_OPTS
# adds options to the server's command line (-t 1).  Not part of make
# test: the bench models are large (tests/bench.sh says where they come
# from).
#   sh tests/serve_bench.sh MODEL_DIR [G [CLIENTS...]]
cd "$(dirname "$0")/.." || exit 1
[ -f "$1/config.json" ] || { echo "usage: sh tests/serve_bench.sh MODEL_DIR [G [CLIENTS...]]"; exit 2; }
model=$(cd "$1" && pwd)
G=${2:-24}
shift 2 2>/dev/null
clients=${*:-1 2 4 8}
T=tests/tmp/serve_bench
K=tests/tokenizers
rm -rf $T
mkdir -p $T/m
# the server wants a tokenizer; the prompts are ids, so any will do
ln -s "$model"/* $T/m/
[ -e $T/m/tokenizer.json ] || cp $K/afm7_standin_llama2/tokenizer.json $T/m/
make -s tests/bin/jget >/dev/null 2>&1 || exit 1
J=tests/bin/jget
most=0
for n in $clients; do [ $n -gt $most ] && most=$n; done
./lmcc serve $T/m --parallel $most --ctx 512 --port 0 $SERVE_OPTS >$T/log 2>&1 &
SPID=$!
trap 'kill $SPID 2>/dev/null' EXIT INT TERM
for i in $(seq 1 3000); do
	port=$(sed -n 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' $T/log)
	[ -n "$port" ] && break
	kill -0 $SPID 2>/dev/null || { cat $T/log; exit 1; }
	sleep 0.1
done
U=http://127.0.0.1:$port
now() { date +%s.%N; }
# the server's CPU seconds so far (user + system)
cpu() { awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) / hz }' /proc/$SPID/stat; }
echo "| clients | tokens | seconds | tokens/s | vs 1 client | CPU s | tokens per CPU s | vs 1 client |"
echo "|---|---|---|---|---|---|---|---|"
one= onec=
for n in $clients; do
	pids=""
	t0=$(now) c0=$(cpu)
	for c in $(seq 1 $n); do
		# a different 6-token prompt per client
		p="$((c * 7 + 11)),$((c * 13 + 5)),$((c * 3 + 100)),$((c + 200)),$((c * 17 + 300)),$((c * 5 + 400))"
		curl -s -m 1200 -o $T/r.$n.$c -d "{\"prompt\":[$p],\"max_tokens\":$G,\"temperature\":0,\"logit_bias\":{\"2\":-100}}" \
			$U/v1/completions &
		pids="$pids $!"
	done
	wait $pids
	t1=$(now) c1=$(cpu)
	tok=0
	for c in $(seq 1 $n); do
		tok=$((tok + $($J usage.completion_tokens $T/r.$n.$c)))
	done
	rate=$(echo "$tok / ($t1 - $t0)" | bc -l)
	crate=$(echo "$tok / ($c1 - $c0)" | bc -l)
	[ -n "$one" ] || one=$rate onec=$crate
	printf '| %d | %d | %.1f | %.2f | %.2f | %.1f | %.2f | %.2f |\n' $n $tok \
		"$(echo "$t1 - $t0" | bc -l)" "$rate" "$(echo "$rate / $one" | bc -l)" \
		"$(echo "$c1 - $c0" | bc -l)" "$crate" "$(echo "$crate / $onec" | bc -l)"
done
