# Shared by the server suites (sourced, not run): the checks every one
# needs, its test model, and starting and talking to a server.  The suite
# sets T (its scratch directory) and K (the tokenizers) first.
command -v curl >/dev/null || { echo "FAIL serve: curl is missing"; exit 0; }
make -s tests/bin/jget >/dev/null 2>&1 || { echo "FAIL serve: cannot build jget"; exit 0; }
J=tests/bin/jget
PIDS=""
trap 'for p in $PIDS; do kill $p 2>/dev/null; done' EXIT INT TERM

./lmcc init tests/configs/text_afm7.json -o $T/afm --seed 3 >/dev/null 2>&1 || echo "FAIL serve: init"
cp $K/afm7_standin_llama2/tokenizer.json $T/afm/
cp $K/templates/afm7.jinja $T/afm/chat_template.jinja

# start NAME DIR OPTIONS...: a server; sets U (its base URL) and SPID
# (start_built NAME PROGRAM OPTIONS...: a built program's --serve)
start() {
	name=$1
	shift
	: >$T/$name.log
	./lmcc serve "$@" --port 0 >$T/$name.log 2>&1 &
	SPID=$!
	listening
}
start_built() {
	name=$1 bin=$2
	shift 2
	: >$T/$name.log
	$bin --serve "$@" --port 0 >$T/$name.log 2>&1 &
	SPID=$!
	listening
}
listening() {
	PIDS="$PIDS $SPID"
	U=
	for i in $(seq 1 300); do
		port=$(sed -n 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' $T/$name.log)
		[ -n "$port" ] && break
		kill -0 $SPID 2>/dev/null || break
		sleep 0.1
	done
	[ -n "$port" ] && U=http://127.0.0.1:$port
	[ -n "$U" ] || echo "FAIL serve $name: no server: $(head -c 300 $T/$name.log)"
}

KEY=sesame
AUTH="Authorization: Bearer $KEY"
# post PATH BODY OUT: the status code on stdout, the body in OUT (within
# a minute, or five under a sanitizer, which is slower by as much)
TMO=60
[ -n "$LMCC_SANITIZE" ] && TMO=300
post() {
	curl -s -m $TMO -o "$3" -w '%{http_code}' -H "$AUTH" -H 'Content-Type: application/json' \
		--data-binary "$2" "$U$1"
}
chat() {   # chat PROMPT EXTRA: a one-turn chat body
	printf '{"messages":[{"role":"user","content":"%s"}],"max_tokens":8,"temperature":0%s}' "$1" "$2"
}


# npyids F.npy: the ids of a 1-D int32 .npy, comma separated
npyids() {
	hl=$(od -An -t u2 -j 8 -N 2 "$1" | tr -d ' ')
	od -An -v -t d4 -j $((10 + hl)) "$1" | tr -s ' \n' ',,' | sed 's/^,//; s/,$//'
}

# stream_away: a stream of 3000 tokens into $T/gone, in the background
# (its curl is GONE), returning once its first event has come (at most
# 10 s): the tiny test models stream thousands of tokens a second on an
# idle machine, so a fixed sleep before the client leaves could outlast
# the whole stream; wait_idle: until /metrics ($T/metrics) says no
# request is in flight, at most 10 s; IDLE is 1 if so
stream_away() {
	rm -f $T/gone
	curl -s -N -m 60 -o $T/gone -H "$AUTH" -d '{"prompt":"Tell me everything","max_tokens":3000,"stream":true}' \
		$U/v1/completions &
	GONE=$!
	for i in $(seq 1 200); do
		grep -q '^data: ' $T/gone 2>/dev/null && break
		sleep 0.05
	done
}
# at_once N CMD...: run CMD with the server stopped until the kernel holds N
# requests for it, so that they reach it together however slowly the
# clients start (a tiny model finishes a request before the next curl
# has started)
at_once() {
	n=$1
	shift
	kill -STOP $SPID
	"$@" &
	hp=$!
	for i in $(seq 1 200); do
		if command -v ss >/dev/null; then
			[ "$(ss -Htn state established "( sport = :$port )" | awk '$1 > 0' | wc -l)" -ge "$n" ] && break
		else
			[ $i -ge 20 ] && break
		fi
		sleep 0.05
	done
	kill -CONT $SPID
	wait $hp
}
wait_idle() {
	IDLE=
	for i in $(seq 1 100); do
		curl -s -m 5 -H "$AUTH" $U/metrics >$T/metrics
		grep -q '^lmcc_requests_in_flight 0$' $T/metrics && IDLE=1 && break
		sleep 0.1
	done
}
