#!/bin/sh
# The server (lmcc serve): a text model made by lmcc init with a real
# tokenizer and AFM's chat template, driven with curl (and with the
# official OpenAI client under node, where node and npm are present).
# Every server binds 127.0.0.1 on a port the system picks (--port 0; the
# address is read from its log), every wait is bounded, and every server
# is killed when the suite ends.
cd "$(dirname "$0")/.." || exit 1
T=tests/tmp/serve
K=tests/tokenizers
rm -rf $T
mkdir -p $T
. tests/serve_lib.sh

start main $T/afm --api-key $KEY
[ -n "$U" ] || exit 0
if [ "$(curl -s -m 5 $U/health)" = '{"status":"ok"}' ]; then
	echo "PASS serve /health answers, without the API key"
else
	echo "FAIL serve /health"
fi
code=$(curl -s -m 5 -o $T/models -w '%{http_code}' -H "$AUTH" $U/v1/models)
if [ "$code" = 200 ] && [ "$($J data.0.id $T/models)" = afm ]; then
	echo "PASS serve /v1/models lists the model"
else
	echo "FAIL serve /v1/models: $code $(head -c 200 $T/models)"
fi

# the same reply streamed and whole, and by lmcc run --chat
want=$(./lmcc run $T/afm --chat --prompt "Hello there" -n 8 2>$T/run.err)
pt=$(sed -n 's/.*prefill \([0-9]*\) tokens.*/\1/p' $T/run.err)
c1=$(post /v1/chat/completions "$(chat 'Hello there')" $T/whole)
c2=$(post /v1/chat/completions "$(chat 'Hello there' ',"stream":true,"stream_options":{"include_usage":true}')" $T/sse)
whole=$($J choices.0.message.content $T/whole)
streamed=$($J --sse choices.0.delta.content $T/sse)
if [ "$c1$c2" = 200200 ] && [ -n "$want" ] && [ "$whole" = "$want" ] && [ "$streamed" = "$want" ]; then
	echo "PASS serve chat at temperature 0: whole and streamed replies equal lmcc run --chat ('$want')"
else
	echo "FAIL serve chat: $c1/$c2 whole '$whole' streamed '$streamed' run '$want'"
fi
u="$($J usage.prompt_tokens $T/whole) $($J usage.completion_tokens $T/whole) $($J usage.total_tokens $T/whole)"
su="$($J --sse usage.prompt_tokens $T/sse) $($J --sse usage.completion_tokens $T/sse)"
if [ "$u" = "$pt 8 $((pt + 8))" ] && [ "$su" = "$pt 8" ] && $J usage.prompt_tokens_details.cached_tokens $T/whole >/dev/null; then
	echo "PASS serve usage: $pt prompt tokens (as lmcc run feeds), 8 completion, total, cached_tokens"
else
	echo "FAIL serve usage: '$u' streamed '$su', lmcc run fed $pt"
fi
first=$(grep -m1 '^data: ' $T/sse)
last=$(grep '^data: ' $T/sse | tail -1)
fin=$(grep '"finish_reason":"length"' $T/sse | wc -l)
if [ "$($J choices.0.delta.role "${first#data: }" 2>/dev/null; echo "${first#data: }" | $J choices.0.delta.role)" != "" ] \
   && [ "$last" = "data: [DONE]" ] && [ "$fin" -eq 1 ] && grep -q '"object":"chat.completion.chunk"' $T/sse; then
	echo "PASS serve SSE as OpenAI sends it: role first, one finish_reason, usage, data: [DONE]"
else
	echo "FAIL serve SSE framing: $(head -c 400 $T/sse)"
fi

# /v1/completions: text, and the same prompt as token ids
p="Hello, world. Tell me a story"
ids=$(./lmcc tokenize $T/afm "$p" --bos)
gen=$(./lmcc run $T/afm --tokens $ids -n 12 2>/dev/null)
before=$(./lmcc detokenize $T/afm $ids)
all=$(./lmcc detokenize $T/afm $ids,$gen)
full=${all#"$before"}
post /v1/completions "{\"prompt\":\"$p\",\"max_tokens\":12}" $T/c1 >/dev/null
post /v1/completions "{\"prompt\":[$ids],\"max_tokens\":12}" $T/c2 >/dev/null
if [ -n "$full" ] && [ "$($J choices.0.text $T/c1)" = "$full" ] && [ "$($J choices.0.text $T/c2)" = "$full" ]; then
	echo "PASS serve /v1/completions, prompt as text and as ids: '$full'"
else
	echo "FAIL serve /v1/completions: '$($J choices.0.text $T/c1)' / '$($J choices.0.text $T/c2)', want '$full'"
fi

# a stop string across a token boundary: never sent, whole or streamed
g3=$(echo "$gen" | cut -d, -f1-3)
t3=$(./lmcc detokenize $T/afm $ids,$g3)
t3=${t3#"$before"}
rest=${full#"$t3"}
stop="$(printf %s "$t3" | tail -c 2)$(printf %s "$rest" | head -c 2)"
swant=${full%%"$stop"*}
post /v1/completions "{\"prompt\":[$ids],\"max_tokens\":12,\"stop\":[\"zzz\",\"$stop\"]}" $T/s1 >/dev/null
post /v1/completions "{\"prompt\":[$ids],\"max_tokens\":12,\"stop\":\"$stop\",\"stream\":true}" $T/s2 >/dev/null
got1=$($J choices.0.text $T/s1)
got2=$($J --sse choices.0.text $T/s2)
if [ ${#stop} -eq 4 ] && [ "$got1" = "$swant" ] && [ "$got2" = "$swant" ] && [ "$($J choices.0.finish_reason $T/s1)" = stop ]; then
	echo "PASS serve stop '$stop' across tokens: the text ends before it, whole and streamed"
else
	echo "FAIL serve stop '$stop': '$got1' / '$got2', want '$swant'"
fi

# errors: an OpenAI error object with the right status
err() {   # NAME STATUS CURL-ARGS...
	ename=$1 estatus=$2
	shift 2
	code=$(curl -s -m 10 -o $T/err -w '%{http_code}' "$@")
	if [ "$code" = "$estatus" ] && $J error.message $T/err >/dev/null && $J error.type $T/err >/dev/null; then
		echo "PASS serve $estatus for $ename"
	else
		echo "FAIL serve $ename: status $code, want $estatus: $(head -c 200 $T/err)"
	fi
}
CH=$U/v1/chat/completions
err "malformed JSON" 400 -H "$AUTH" -d '{"messages": [' $CH
err "a wrong type" 400 -H "$AUTH" -d '{"messages":[{"role":"user","content":"hi"}],"temperature":"hot"}' $CH
err "an unknown role" 400 -H "$AUTH" -d '{"messages":[{"role":"wizard","content":"hi"}]}' $CH
err "no messages" 400 -H "$AUTH" -d '{"model":"afm"}' $CH
err "token ids out of range" 400 -H "$AUTH" -d '{"prompt":[1,2,99999999]}' $U/v1/completions
long=$(seq 1 5000 | tr '\n' , | sed 's/,$//')
err "a prompt longer than the context" 400 -H "$AUTH" -d "{\"prompt\":[$long]}" $U/v1/completions
err "no API key" 401 -d "$(chat hi)" $CH
err "a wrong API key" 401 -H "Authorization: Bearer nope" -d "$(chat hi)" $CH
err "an unknown path" 404 -H "$AUTH" $U/v1/nothing
head -c 9000000 /dev/zero | tr '\0' ' ' >$T/big
err "a 9 MB body" 413 -H "$AUTH" --data-binary @$T/big $CH

# 16 clients at once, each answered as lmcc run answers alone
clients=""
for i in $(seq 1 16); do
	post /v1/chat/completions "$(chat "Count to $i")" $T/par$i >$T/par$i.code &
	clients="$clients $!"
done
for i in $(seq 1 16); do
	./lmcc run $T/afm --chat --prompt "Count to $i" -n 8 >$T/want$i 2>/dev/null
done
wait $clients
ok=0
for i in $(seq 1 16); do
	[ "$(cat $T/par$i.code)" = 200 ] && [ "$($J choices.0.message.content $T/par$i)" = "$(cat $T/want$i)" ] && ok=$((ok + 1))
done
if [ $ok -eq 16 ]; then
	echo "PASS serve 16 concurrent clients, each answered as lmcc run answers alone"
else
	echo "FAIL serve 16 concurrent clients: $ok of 16 right"
fi

# a follow-up turn re-processes only what is new
post /v1/chat/completions '{"messages":[{"role":"user","content":"Hi there"}],"max_tokens":6}' $T/t1 >/dev/null
r1=$($J choices.0.message.content $T/t1)
p1=$($J usage.prompt_tokens $T/t1)
body=$(printf '{"messages":[{"role":"user","content":"Hi there"},{"role":"assistant","content":"%s"},{"role":"user","content":"And again"}],"max_tokens":6}' "$r1")
post /v1/chat/completions "$body" $T/t2 >/dev/null
c2=$($J usage.prompt_tokens_details.cached_tokens $T/t2)
# (the generation prompt's last tokens may merge with the reply's text:
# the follow-up starts from the end of the last whole message)
if [ -n "$p1" ] && [ -n "$c2" ] && [ "$c2" -ge $((p1 - 8)) ]; then
	echo "PASS serve a follow-up turn: $c2 of $($J usage.prompt_tokens $T/t2) prompt tokens from the cache (turn 1 had $p1)"
else
	echo "FAIL serve follow-up: cached $c2, turn 1 prompt $p1: $(head -c 300 $T/t2)"
fi

# a client that goes away mid-stream stops its generation
stream_away
kill $GONE 2>/dev/null
wait_idle
gentot=$(sed -n 's/^lmcc_generated_tokens_total //p' $T/metrics)
if [ -n "$IDLE" ] && grep -q '^data: ' $T/gone && [ "$(grep -c '^data: ' $T/gone)" -lt 3000 ]; then
	echo "PASS serve a client gone mid-stream stops its generation ($(grep -c '^data: ' $T/gone) events sent)"
else
	echo "FAIL serve disconnect: idle '$IDLE', $(grep -c '^data: ' $T/gone) events sent: $(grep in_flight $T/metrics | tail -1)"
fi

# a burst of malformed requests leaves the server healthy
for i in $(seq 1 10); do
	curl -s -m 5 -o /dev/null -H "$AUTH" -d "$(head -c 300 /dev/urandom | tr -d '\0')" $CH
	curl -s -m 5 -o /dev/null -H "$AUTH" -d '{"messages":[{"role":"user","content":["x"]}]}' $CH
	curl -s -m 5 -o /dev/null -H "$AUTH" -d "$(printf '%.0s[' $(seq 1 2000))" $CH
	curl -s -m 5 -o /dev/null -H "$AUTH" -d '{"messages":[{"role":"user","content":"x"}],"max_tokens":1e300,"logit_bias":{"-5":1}}' $CH
	curl -s -m 5 -o /dev/null -H "$AUTH" -X DELETE $CH
	curl -s -m 5 -o /dev/null -H "$AUTH" -d '{"prompt":"\ud800 \xff","max_tokens":2}' $U/v1/completions
	printf 'POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"pro' \
		| timeout 2 curl -s -m 2 -o /dev/null telnet://127.0.0.1:$port 2>/dev/null
done
c=$(post /v1/chat/completions "$(chat 'Hello there')" $T/after)
if [ "$(curl -s -m 5 $U/health)" = '{"status":"ok"}' ] && [ "$c" = 200 ] && [ "$($J choices.0.message.content $T/after)" = "$want" ]; then
	echo "PASS serve healthy after 70 malformed requests, and answering as before"
else
	echo "FAIL serve after malformed requests: $c $(head -c 200 $T/after)"
fi

# metrics in Prometheus text
if grep -q '^# TYPE lmcc_prompt_tokens_total counter$' $T/metrics && grep -q '^lmcc_generated_tokens_per_second [0-9.]*$' $T/metrics \
   && grep -q '^lmcc_cache_hits_total [1-9]' $T/metrics; then
	echo "PASS serve /metrics: Prometheus text with token counts, speed, cache hits"
else
	echo "FAIL serve /metrics: $(head -c 300 $T/metrics)"
fi

# the official OpenAI client for JavaScript
N=tests/tmp/node
if command -v node >/dev/null && command -v npm >/dev/null; then
	[ -d $N/node_modules/openai ] || (mkdir -p $N && cd $N && timeout 300 npm install --no-audit --no-fund --silent openai@4 >npm.log 2>&1)
	if [ -d $N/node_modules/openai ]; then
		cat >$N/client.mjs <<'JS'
import OpenAI from "openai";
const client = new OpenAI({ baseURL: process.argv[2] + "/v1", apiKey: process.argv[3] });
const messages = [{ role: "user", content: "Hello there" }];
const whole = await client.chat.completions.create({ model: "afm", messages, max_tokens: 8, temperature: 0 });
let streamed = "";
const stream = await client.chat.completions.create({ model: "afm", messages, max_tokens: 8, temperature: 0, stream: true });
for await (const chunk of stream) streamed += chunk.choices[0]?.delta?.content ?? "";
const text = await client.completions.create({ model: "afm", prompt: "Hello, world. Tell me a story", max_tokens: 12 });
let status = 0;
try { await client.chat.completions.create({ model: "afm", messages: [{ role: "wizard", content: "x" }] }); }
catch (e) { status = e.status; }
console.log(JSON.stringify({ whole: whole.choices[0].message.content, streamed, text: text.choices[0].text,
                             cached: whole.usage.prompt_tokens_details.cached_tokens, status }));
JS
		timeout 60 node $N/client.mjs $U $KEY >$T/node.out 2>$T/node.err
		if [ "$($J whole $T/node.out)" = "$want" ] && [ "$($J streamed $T/node.out)" = "$want" ] \
		   && [ "$($J text $T/node.out)" = "$full" ] && [ "$($J status $T/node.out)" = 400 ]; then
			echo "PASS serve the openai npm client: chat whole and streamed, completions, a 400 as an APIError"
		else
			echo "FAIL serve openai client: $(head -c 300 $T/node.out) $(head -c 300 $T/node.err)"
		fi
	else
		echo "serve: npm could not install the openai package; the JavaScript client is not tested ($(tail -c 200 $N/npm.log))"
	fi
else
	echo "serve: no node or npm here; the JavaScript client is not tested"
fi

# a built program serves the same with --serve
./lmcc build $T/afm -o $T/afm.bin >/dev/null 2>&1 || echo "FAIL serve: build afm"
main_u=$U main_pid=$SPID
start_built built $T/afm.bin/afm --api-key $KEY
code=$(curl -s -m 30 -o $T/built -w '%{http_code}' -H "$AUTH" -d "$(chat 'Hello there')" $U/v1/chat/completions)
kill $SPID
U=$main_u SPID=$main_pid
if [ "$code" = 200 ] && [ "$($J choices.0.message.content $T/built)" = "$want" ]; then
	echo "PASS serve a built program's --serve answers as lmcc serve does"
else
	echo "FAIL serve built --serve: $code $(head -c 200 $T/built) $(head -c 200 $T/built.log)"
fi

# a chat template that raises ends the request with a 400, not the server
main_u=$U main_pid=$SPID
printf '%s' '{% if messages[0].role == "assistant" %}{{ raise_exception("roles must start with user") }}{% endif %}{% for m in messages %}{{ m.content }}{% endfor %}' >$T/raise.jinja
start raise $T/afm --chat-template $T/raise.jinja
if [ -n "$U" ]; then
	code=$(curl -s -m 10 -o $T/raise -w '%{http_code}' -d '{"messages":[{"role":"assistant","content":"x"}]}' $U/v1/chat/completions)
	code2=$(curl -s -m 10 -o /dev/null -w '%{http_code}' -d '{"messages":[{"role":"user","content":"x"}],"max_tokens":2}' $U/v1/chat/completions)
	if [ "$code$code2" = 400200 ] && grep -q "roles must start with user" $T/raise; then
		echo "PASS serve a template's raise_exception is a 400 and the server goes on"
	else
		echo "FAIL serve raising template: $code $code2 $(head -c 200 $T/raise) $(tail -c 200 $T/raise.log)"
	fi
	kill $SPID
fi
U=$main_u SPID=$main_pid

# SIGINT stops it cleanly
kill -INT $SPID
for i in $(seq 1 50); do
	kill -0 $SPID 2>/dev/null || break
	sleep 0.1
done
if kill -0 $SPID 2>/dev/null; then
	echo "FAIL serve SIGINT: still running after 5 s"
elif wait $SPID && grep -q "SIGINT: stopping" $T/main.log && grep -q "served [0-9]* requests" $T/main.log; then
	echo "PASS serve SIGINT stops the server cleanly (exit 0)"
else
	echo "FAIL serve SIGINT: $(tail -c 300 $T/main.log)"
fi

# every architecture: a follow-up whose prompt extends the last one's
# starts from the cache (a snapshot of the rings, convolution and
# recurrent states at the end of that prompt, or the full caches cut
# back), past the windows and chunks of 6 and 8, and generates the ids
# lmcc run generates from the whole prompt uncached
for c in afm7 baichuan_tied_swa kimi_linear kimi_all_kda llama4_3layers plamo2_3layers_step6; do
	d=$T/g_$c
	mkdir -p $d
	cp tests/golden/$c/config.json tests/golden/$c/model.safetensors $d/
	cp $K/afm7_standin_llama2/tokenizer.json $d/
	ids=$(npyids tests/golden/$c/tokens.npy)
	head=$(echo "$ids" | cut -d, -f1-19)
	start $c $d
	[ -n "$U" ] || continue
	post /v1/completions "{\"prompt\":[$head],\"max_tokens\":3}" $T/$c.1 >/dev/null
	post /v1/completions "{\"prompt\":[$ids],\"max_tokens\":6,\"return_token_ids\":true}" $T/$c.2 >/dev/null
	kill $SPID
	want=$(./lmcc run $d --tokens $ids -n 6 2>/dev/null)
	got=$($J choices.0.token_ids $T/$c.2 | tr -d '[]')
	cached=$($J usage.prompt_tokens_details.cached_tokens $T/$c.2)
	# the server stops at an end-of-text id, lmcc run --tokens does not
	if [ -n "$cached" ] && [ "$cached" -ge 19 ] && [ -n "$want" ] && [ "${want#"$got"}" != "$want" -o -z "$got" ] \
	   && { [ "$got" = "$want" ] || [ "$($J choices.0.finish_reason $T/$c.2)" = stop ]; }; then
		echo "PASS serve $c: a follow-up takes $cached prompt tokens from the cache and generates $got as lmcc run does"
	else
		echo "FAIL serve $c follow-up: cached '$cached', ids '$got', lmcc run '$want': $(head -c 200 $T/$c.2)"
	fi
done
