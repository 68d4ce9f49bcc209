#!/bin/sh
# The server with --parallel N (batched decoding): requests sent at once
# decode together, and each must get what it gets alone.  The same
# requests, mixed (chat and completions, whole and streamed, stop strings,
# penalties, sampling with a seed), go at once to a server with
# --parallel 4 and one by one to a server with --parallel 1; then a
# client leaves mid-stream while others go on; then every architecture
# decodes prompts of different lengths together (crossing windows and
# chunks at different steps) as lmcc run does alone; then a built
# program's --serve --parallel.
cd "$(dirname "$0")/.." || exit 1
T=tests/tmp/serve_parallel
K=tests/tokenizers
rm -rf $T
mkdir -p $T
. tests/serve_lib.sh

# the requests: PATH and BODY on alternate lines
cat >$T/reqs <<'R'
/v1/chat/completions
{"messages":[{"role":"user","content":"Hello there"}],"max_tokens":9,"temperature":0}
/v1/chat/completions
{"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Count to ten, slowly please"}],"max_tokens":14,"temperature":0,"stream":true,"stream_options":{"include_usage":true}}
/v1/completions
{"prompt":"Hello, world. Tell me a story","max_tokens":12}
/v1/completions
{"prompt":"Once upon a time, in a land far away, there lived","max_tokens":10,"stream":true}
/v1/completions
{"prompt":"Hello, world. Tell me a story","max_tokens":12,"stop":["ory","ll"]}
/v1/chat/completions
{"messages":[{"role":"user","content":"A"}],"max_tokens":7,"temperature":0.9,"seed":5}
/v1/completions
{"prompt":"The quick brown fox","max_tokens":11,"presence_penalty":1.5,"frequency_penalty":0.5,"repetition_penalty":1.3}
/v1/chat/completions
{"messages":[{"role":"user","content":"What is the capital of France? Answer in one word."}],"max_tokens":5,"temperature":0,"stream":true}
R
nreq=$(($(wc -l <$T/reqs) / 2))
# what a reply says: its text and its usage, streamed or whole
said() {
	if grep -q '^data: ' "$1"; then
		printf '%s|%s|%s' "$($J --sse choices.0.delta.content "$1")$($J --sse choices.0.text "$1")" \
			"$($J --sse choices.0.finish_reason "$1")" "$($J --sse usage.completion_tokens "$1")"
	else
		printf '%s|%s|%s' "$($J choices.0.message.content "$1")$($J choices.0.text "$1")" \
			"$($J choices.0.finish_reason "$1")" "$($J usage.completion_tokens "$1")"
	fi
}
# send FROM TO TAG: requests FROM..TO, all at once, replies in $T/TAG.I
send() {
	pids=""
	for i in $(seq $1 $2); do
		post "$(sed -n "$((2 * i - 1))p" $T/reqs)" "$(sed -n "$((2 * i))p" $T/reqs)" $T/$3.$i >$T/$3.$i.code &
		pids="$pids $!"
	done
	wait $pids
}

start one $T/afm --api-key $KEY
[ -n "$U" ] || exit 0
for i in $(seq 1 $nreq); do
	send $i $i alone
done
kill $SPID
start four $T/afm --api-key $KEY --parallel 4
[ -n "$U" ] || exit 0
at_once $nreq send 1 $nreq together
ok=0 bad=""
for i in $(seq 1 $nreq); do
	a=$(said $T/alone.$i) b=$(said $T/together.$i)
	if [ "$(cat $T/together.$i.code)" = 200 ] && [ "$a" = "$b" ] && [ "${a#||}" = "$a" ]; then
		ok=$((ok + 1))
	else
		bad="$bad [$i: '$b' alone '$a']"
	fi
done
if [ $ok -eq $nreq ]; then
	echo "PASS serve-parallel $nreq mixed requests at once (--parallel 4) get what each gets alone"
else
	echo "FAIL serve-parallel mixed requests: $ok of $nreq as alone:$bad"
fi
steps=$(curl -s -m 5 -H "$AUTH" $U/metrics | sed -n 's/^lmcc_batched_steps_total //p')
rows=$(curl -s -m 5 -H "$AUTH" $U/metrics | sed -n 's/^lmcc_batched_rows_total //p')
if [ -n "$steps" ] && [ "$steps" -gt 0 ] && [ "$rows" -gt $((2 * steps)) ]; then
	echo "PASS serve-parallel they decoded together: $steps batched steps of $rows rows in all"
else
	echo "FAIL serve-parallel no batched steps: steps '$steps' rows '$rows'"
fi

# a client leaves mid-stream; the others finish as they would alone
stream_away
send 1 3 mid &
mid=$!
sleep 0.1
kill $GONE 2>/dev/null
wait $mid
wait_idle
ok=0
for i in 1 2 3; do
	[ "$(said $T/mid.$i)" = "$(said $T/alone.$i)" ] && ok=$((ok + 1))
done
if [ -n "$IDLE" ] && [ $ok -eq 3 ] && [ "$(grep -c '^data: ' $T/gone)" -lt 3000 ]; then
	echo "PASS serve-parallel a client gone mid-stream stops alone; the 3 beside it answered as alone"
else
	echo "FAIL serve-parallel disconnect: idle '$IDLE', $ok of 3 as alone, $(grep -c '^data: ' $T/gone) events sent"
fi
kill $SPID

# every architecture: three prompts of different lengths decoding together
# (sequences cross windows and chunks of 6 and 8 at different steps)
for c in afm7 baichuan_tied_swa kimi_linear llama4 plamo2; do
	d=$T/g_$c
	mkdir -p $d
	cp tests/golden/$c/config.json tests/golden/$c/model.safetensors $d/
	cp $K/afm7_standin_llama2/tokenizer.json $d/
	ids=$(npyids tests/golden/$c/tokens.npy)
	start $c $d --parallel 3
	[ -n "$U" ] || continue
	pids=""
	for k in 5 13 22; do
		p=$(echo "$ids" | cut -d, -f1-$k)
		post /v1/completions "{\"prompt\":[$p],\"max_tokens\":12,\"return_token_ids\":true}" $T/$c.$k >/dev/null &
		pids="$pids $!"
	done
	wait $pids
	kill $SPID
	ok=0 bad=""
	for k in 5 13 22; do
		want=$(./lmcc run $d --tokens "$(echo "$ids" | cut -d, -f1-$k)" -n 12 2>/dev/null)
		got=$($J choices.0.token_ids $T/$c.$k | tr -d '[]')
		# the server stops at an end-of-text id, lmcc run --tokens does not
		if [ -n "$want" ] && { [ "$got" = "$want" ] || { [ "${want#"$got"}" != "$want" -o -z "$got" ] \
		   && [ "$($J choices.0.finish_reason $T/$c.$k)" = stop ]; }; }; then
			ok=$((ok + 1))
		else
			bad="$bad [$k: '$got' alone '$want']"
		fi
	done
	if [ $ok -eq 3 ]; then
		echo "PASS serve-parallel $c: prompts of 5, 13 and 22 tokens decoded together generate what lmcc run does alone"
	else
		echo "FAIL serve-parallel $c:$bad"
	fi
done

# a built program's --serve --parallel
./lmcc build $T/afm -o $T/afm.bin >/dev/null 2>&1 || echo "FAIL serve-parallel: build afm"
start_built built $T/afm.bin/afm --parallel 2 --api-key $KEY
send 1 2 built
kill $SPID
if [ "$(said $T/built.1)" = "$(said $T/alone.1)" ] && [ "$(said $T/built.2)" = "$(said $T/alone.2)" ]; then
	echo "PASS serve-parallel a built program's --serve --parallel 2 answers two at once as alone"
else
	echo "FAIL serve-parallel built: '$(said $T/built.1)' '$(said $T/built.2)': $(tail -c 200 $T/built.log)"
fi

# --parallel past what a step takes is refused
if ./lmcc serve $T/afm --parallel 65 --port 0 >$T/big.log 2>&1 || ! grep -q "parallel" $T/big.log; then
	echo "FAIL serve-parallel --parallel 65: $(head -c 200 $T/big.log)"
else
	echo "PASS serve-parallel --parallel past its limit is refused: $(head -c 100 $T/big.log)"
fi
