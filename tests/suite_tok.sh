#!/bin/sh
# Tokenizer tests (issue 6): every vectors line encodes to its ids; decoding
# gives the text back where the format is lossless; streamed decoding equals
# whole decoding; chat renderings equal Python jinja2's; the tokenize /
# detokenize command lines; malformed tokenizer files exit 2 naming the file
# and the line or byte.  One line per check: "PASS name" or "FAIL name: why".
cd "$(dirname "$0")/.." || exit 1
mkdir -p tests/tmp
T=tests/tokenizers
B=tests/bin
TMP=tests/tmp/tok
rm -rf $TMP
mkdir -p $TMP

if ! make -s runtime/liblmcc.a $B/test_tok $B/test_tok_stream $B/test_tok_api $B/test_jinja \
	$B/tok_cli $B/mk_hf_bytelevel >$TMP/build.log 2>&1; then
	echo "FAIL build:tok: see $TMP/build.log"
	exit 0
fi

pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; }

# ---- vectors: encode, round trip, stream ----
# test_tok prints its own PASS/FAIL lines; a crash shows as a FAIL here.
vec() {
	$B/test_tok "$@" || fail "$3" "test_tok exited with status $?"
}
vec $T/llama4 $T/llama4/vectors.jsonl llama4
vec $T/kimi_linear $T/kimi_linear/vectors.jsonl kimi_linear
vec $T/llama3 $T/llama3/vectors.jsonl llama3
# Baichuan's config names id 3 "<unk>" where the model has "<SEP>", so the
# text "<SEP>" decodes as "<unk>" (FORMATS.md, section 5).
vec $T/baichuan_m1 $T/baichuan_m1/vectors.jsonl baichuan_m1 --except '<SEP><CLS><EOD>'
# The HF pipeline prepends "▁" to each piece between added tokens, so
# "<s> Hello </s>" comes back with two spaces.
vec $T/afm7_standin_llama2 $T/afm7_standin_llama2/vectors.jsonl afm7_standin_llama2:tokenizer.json \
	--except '<s> Hello </s>'
vec $T/afm7_standin_llama2/tokenizer.model $T/afm7_standin_llama2/vectors_sentencepiece.jsonl \
	afm7_standin_llama2:tokenizer.model
vec $T/plamo2_standin_llmjp $T/plamo2_standin_llmjp/vectors.jsonl plamo2_standin_llmjp:tokenizer.jsonl
vec $T/plamo2_standin_llmjp/llm-jp-tokenizer-100k.ver3.1.model \
	$T/plamo2_standin_llmjp/vectors_sentencepiece.jsonl plamo2_standin_llmjp:llm-jp.model
# AFM's "\n" -> <n>; the piece after <n> gets a "▁" (see afm7_newline/README.md).
vec $T/afm7_newline $T/afm7_newline/vectors.jsonl afm7_newline --except 'Hello
world' --except 'a
b'
# Llama 4 ships a byte-level tokenizer.json (27 MB, not kept here): the same
# path is checked on files converted from the rank files.
for f in llama3 llama4; do
	mkdir -p $TMP/hf_$f
	if $B/mk_hf_bytelevel $T/$f $TMP/hf_$f/tokenizer.json 2>$TMP/hf_$f.err; then
		vec $TMP/hf_$f $T/$f/vectors.jsonl hf-bytelevel:$f
	else
		fail "hf-bytelevel:$f" "conversion failed: $(head -c 300 $TMP/hf_$f.err)"
	fi
done

# ---- crafted streams, the API the run loop uses ----
# (status 1: failures, already printed; anything else: a crash)
$B/test_tok_stream
rc=$?
[ $rc -le 1 ] || fail stream-cases "test_tok_stream exited with status $rc"
$B/test_tok_api
rc=$?
[ $rc -le 1 ] || fail api "test_tok_api exited with status $rc"

# ---- chat templates: byte for byte against python3-jinja2 ----
n_ok=0
n_bad=0
for ctx in $T/chat/cases/*.json; do
	base=${ctx%.json}
	case_name=$(basename "$base")
	tpl=$T/templates/${case_name%%.*}.jinja
	case $case_name in synthetic-*)
		tpl=$T/chat/synthetic/${case_name#synthetic-}
		tpl=${tpl%%.*}.jinja ;;
	esac
	if [ -f "$base.out" ]; then
		if $B/test_jinja "$tpl" "$ctx" >$TMP/chat.out 2>$TMP/chat.err && cmp -s $TMP/chat.out "$base.out"; then
			n_ok=$((n_ok + 1))
		else
			n_bad=$((n_bad + 1))
			fail "chat:$case_name" "differs from $base.out ($(head -c 200 $TMP/chat.err))"
		fi
	else
		# the template raises: exit 2 with one line naming the template and line
		$B/test_jinja "$tpl" "$ctx" >/dev/null 2>$TMP/chat.err
		rc=$?
		if [ $rc -eq 2 ] && grep -q "^lmcc: $tpl: line [0-9]*: " $TMP/chat.err; then
			n_ok=$((n_ok + 1))
		else
			n_bad=$((n_bad + 1))
			fail "chat:$case_name" "expected exit 2 with a message, got $rc: $(cat $TMP/chat.err)"
		fi
	fi
done
[ $n_bad -eq 0 ] && pass "chat:renderings ($n_ok cases)"

# A template that uses more than the interpreter knows fails naming it.
jinja_error() {  # name template-text expected-message
	printf '%s' "$2" >$TMP/bad.jinja
	echo '{"messages": [{"role": "user", "content": "hi"}]}' >$TMP/ctx.json
	timeout 60 $B/test_jinja $TMP/bad.jinja $TMP/ctx.json >/dev/null 2>$TMP/jinja.err
	rc=$?
	if [ $rc -eq 2 ] && grep -qF "$3" $TMP/jinja.err; then
		pass "jinja-error:$1"
	else
		fail "jinja-error:$1" "status $rc, stderr: $(cat $TMP/jinja.err)"
	fi
}
jinja_error tag '{% for m in messages %}
{% include "x.jinja" %}{% endfor %}' "bad.jinja: line 2: the tag 'include' is not supported"
jinja_error filter '{{ messages | sort }}' "line 1: the filter 'sort' is not supported"
jinja_error test '{{ messages is frozen }}' "line 1: the test 'frozen' is not supported"
jinja_error method '{{ messages[0].content.zfill(3) }}' "'zfill' (not a str method this interpreter has)"
jinja_error undefined '{{ foo.bar }}' "line 1: 'foo' is undefined"
jinja_error unclosed '{% if true %}x' "missing {% endif %}"
jinja_error syntax '{{ 1 + }}' "line 1: unexpected end of tag"
jinja_error break '{% break %}' "break or continue outside a loop"
jinja_error macro-args '{% macro m(a) %}{% endmacro %}{{ m(1, 2) }}' "macro 'm' takes 1 arguments, 2 given"
jinja_error set-attr '{% set d = {} %}{% set d.x = 1 %}' "cannot set the attribute 'x' of a dict"
jinja_error string '{{ "abc }}' "line 1: unterminated string"
jinja_error not-callable '{{ messages() }}' "a list is not callable"
jinja_error add '{{ "a" + 1 }}' "unsupported operands for +: str and int"

# Hostile templates end with a message naming the template and the limit,
# in bounded time and memory (the render's budget of depth, steps and
# bytes), and integers never wrap or trap.
deep() { python3 -c "import sys; print(sys.argv[1] * int(sys.argv[3]) + sys.argv[2] * int(sys.argv[3]))" "$@"; }
if command -v python3 >/dev/null 2>&1; then
	jinja_error nest-parse "{{ $(deep '(' ')' 100000) }}" "bad.jinja: line 1: nested more than 200 levels deep"
	jinja_error nest-blocks "$(deep '{% if 1 %}' '{% endif %}' 100000)" "bad.jinja: line 1: nested more than 200 levels deep"
	jinja_error nest-eval "{{ 1$(deep '+1' '' 100000) }}" "bad.jinja: the render needs more than 1000 levels of recursion"
fi
jinja_error macro-recursion '{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}' "bad.jinja: the render needs more than 1000 levels of recursion"
jinja_error self-cycle-json '{% set d = {} %}{% set _ = d.update({"a": d}) %}{{ d | tojson }}' "tojson: circular reference"
jinja_error cycles-equal '{% set a = [] %}{% set b = [] %}{% set _ = a.append(a) %}{% set _ = b.append(b) %}{{ a == b }}' "levels of recursion"
jinja_error floordiv-min '{{ (-9223372036854775807 - 1) // -1 }}' "integer overflow: -9223372036854775808 // -1 does not fit in 64 bits"
jinja_error add-overflow '{{ 9223372036854775807 + 1 }}' "integer overflow: 9223372036854775807 + 1"
jinja_error sub-overflow '{{ -9223372036854775807 - 2 }}' "integer overflow: -9223372036854775807 - 2"
jinja_error mul-overflow '{{ 4294967296 * 4294967296 }}' "integer overflow: 4294967296 * 4294967296"
jinja_error neg-overflow '{{ -(-9223372036854775807 - 1) }}' "integer overflow: 0 - -9223372036854775808"
jinja_error pow-overflow '{{ 3 ** 40 }}' "integer too large in **"
jinja_error abs-overflow '{{ (-9223372036854775807 - 1) | abs }}' "abs(-9223372036854775808) does not fit"
jinja_error int-overflow '{{ 1e300 | int }}' "int: 1e+300 does not fit in 64 bits"
jinja_error literal '{{ 99999999999999999999 }}' "integer 99999999999999999999 does not fit in 64 bits"
jinja_error repeat "{{ 'x' * 10**12 }}" "bad.jinja: the render needs more than 536870912 bytes"
jinja_error nested-range '{% for i in range(1000000) %}{% for j in range(1000000) %}{% endfor %}{% endfor %}' "(the limit of one render)"
jinja_error doubling '{% set l = [1] %}{% for i in range(100) %}{% set _ = l.extend(l) %}{% endfor %}' "bad.jinja: the render needs more than 536870912 bytes"
jinja_error output '{% set s = "x" * 1000000 %}{% for i in range(1000000) %}{{ s }}{% endfor %}' "bad.jinja: the render needs more than 536870912 bytes"
jinja_error replace '{{ ("x" * 100000).replace("", "y" * 100000) }}' "bad.jinja: the render needs more than 536870912 bytes"

# Memory is capped at 1 GB where it can be (sanitizers reserve terabytes
# of address space, and LMCC_SANITIZE says so).
MEMCAP="ulimit -v 1000000;"
[ -n "$LMCC_SANITIZE" ] && MEMCAP=
jinja_out() {  # name template-text expected-output
	printf '%s' "$2" >$TMP/ok.jinja
	echo '{"messages": []}' >$TMP/ctx.json
	got=$(sh -c "$MEMCAP exec timeout 60 $B/test_jinja $TMP/ok.jinja $TMP/ctx.json" 2>$TMP/jinja.err)
	if [ $? -eq 0 ] && [ "$got" = "$3" ]; then
		pass "jinja-hostile:$1"
	else
		fail "jinja-hostile:$1" "got '$got' want '$3' $(head -c 200 $TMP/jinja.err)"
	fi
}
jinja_out self-list '{% set l = [1] %}{% set _ = l.append(l) %}{{ l }}' '[1, [...]]'
jinja_out self-dict '{% set d = {} %}{% set _ = d.update({"a": d}) %}{{ d }}' "{'a': {...}}"
jinja_out self-equal '{% set a = [] %}{% set _ = a.append(a) %}{{ a == a }}' 'True'
jinja_out mod-min '{{ (-9223372036854775807 - 1) % -1 }} {{ 7 % -2 }} {{ -7 // 2 }}' '0 -1 -4'
jinja_out divisible-min '{{ (-9223372036854775807 - 1) is divisibleby(-1) }}' 'True'
jinja_out slice-huge-step '{{ [1,2,3][1::9223372036854775807] }}{{ [1,2,3][::-9223372036854775807] }}{{ "abc"[::-2] }}{{ "abcdef"[-9223372036854775807:9223372036854775807:2] }}' "[2][3]caace"
jinja_out range-extremes '{{ range(-9223372036854775807 - 1, 9223372036854775807, 4611686018427387904) }}' \
	'[-9223372036854775808, -4611686018427387904, 0, 4611686018427387904]'
# a million empty turns of a loop cost no memory per turn
jinja_out long-loop '{% for i in range(1000000) %}{% endfor %}{{ range(2000000) | length }}' 2000000

# A failed render frees all it had, since the server and the C API catch
# the failure and go on: 100 renders that fail inside a macro's block,
# each after building megabytes, leave the process as large as the first
# did (under ASan, whose quarantine keeps freed memory, LeakSanitizer
# judges instead).
printf '%s' '{% macro m() %}{% set s %}{{ "x" * 1000000 }}{% endset %}{{ s }}{{ raise_exception("no") }}{% endmacro %}{{ m() }}' >$TMP/fail.jinja
echo '{"messages": []}' >$TMP/ctx.json
got=$(ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=1" timeout 120 $B/test_jinja -r 100 $TMP/fail.jinja $TMP/ctx.json 2>$TMP/jinja.err)
rc=$?
grew=${got#failed 100 grew }
[ "$LMCC_SANITIZE" = asan ] && [ "$grew" != "$got" ] && grew=0
if [ $rc -eq 0 ] && [ "$grew" != "$got" ] && [ "$grew" -lt 50 ]; then
	pass "jinja-hostile:failed-renders-free"
else
	fail "jinja-hostile:failed-renders-free" "status $rc, '$got' (MB grown after the first render) $(head -c 300 $TMP/jinja.err)"
fi

# ---- the command lines ----
CLI=$B/tok_cli
check_out() {  # name expected-stdout command...
	name=$1
	want=$2
	shift 2
	got=$("$@" 2>$TMP/cli.err)
	rc=$?
	if [ $rc -eq 0 ] && [ "$got" = "$want" ]; then
		pass "cli:$name"
	else
		fail "cli:$name" "status $rc, got '$got' want '$want' $(cat $TMP/cli.err)"
	fi
}
check_fail() {  # name expected-stderr-text command...
	name=$1
	want=$2
	shift 2
	"$@" >/dev/null 2>$TMP/cli.err </dev/null
	rc=$?
	if [ $rc -eq 2 ] && grep -qF "$want" $TMP/cli.err && [ "$(wc -l <$TMP/cli.err)" -le 6 ]; then
		pass "cli:$name"
	else
		fail "cli:$name" "status $rc (want 2), stderr: $(head -c 300 $TMP/cli.err)"
	fi
}
check_out tokenize 19873,3817 $CLI tokenize $T/llama4 "Hello world"
check_out tokenize-bos 200000,19873,3817 $CLI tokenize $T/llama4 "Hello world" --bos
check_out tokenize-file 15043,3186 $CLI tokenize $T/afm7_standin_llama2/tokenizer.model "Hello world"
printf '{"text": "Hello world"}\n\n{"text": "<|eot|>x"}\n' >$TMP/in.jsonl
check_out tokenize-stdin "[19873, 3817]
[200008, 100]" sh -c "$CLI tokenize $T/llama4 <$TMP/in.jsonl"
check_out detokenize "Hello world<|eot|>" $CLI detokenize $T/llama4 "19873, 3817,200008"
$CLI detokenize $T/kimi_linear "$($CLI tokenize $T/kimi_linear 'Grüße, 世界! 😀 <|im_end|>')" >$TMP/rt.txt
printf 'Grüße, 世界! 😀 <|im_end|>' | cmp -s - $TMP/rt.txt && pass cli:round-trip ||
	fail cli:round-trip "got '$(cat $TMP/rt.txt)'"
check_out detokenize-newline "Hello
 world" $CLI detokenize $T/afm7_newline 15043,32000,3186
$CLI tokenize --help >$TMP/help.txt 2>&1 && grep -q "^usage: lmcc tokenize DIR \[TEXT\]" $TMP/help.txt &&
	pass cli:tokenize-help || fail cli:tokenize-help "$(head -2 $TMP/help.txt)"
$CLI detokenize --help >$TMP/help.txt 2>&1 && grep -q "^usage: lmcc detokenize DIR IDS" $TMP/help.txt &&
	pass cli:detokenize-help || fail cli:detokenize-help "$(head -2 $TMP/help.txt)"
check_fail no-args "usage: lmcc tokenize" $CLI tokenize
check_fail detokenize-no-ids "usage: lmcc detokenize" $CLI detokenize $T/llama4
check_fail bad-id "lmcc: detokenize: 'x' is not a token id" $CLI detokenize $T/llama4 19873,x
check_fail id-range "'202048' is not a token id in [0, 202048)" $CLI detokenize $T/llama4 202048
check_fail negative-id "'-1' is not a token id" $CLI detokenize $T/llama4 -1
check_fail option "unknown option --frob" $CLI tokenize $T/llama4 x --frob
check_fail no-tokenizer "lmcc: $TMP: no tokenizer here" $CLI tokenize $TMP x
printf '{"text": "ok"}\n{"txt": "no"}\n' >$TMP/bad_in.jsonl
check_fail stdin-line 'lmcc: stdin: line 2: expected a JSON object' sh -c "$CLI tokenize $T/llama4 <$TMP/bad_in.jsonl"

# ---- malformed tokenizer files: exit 2, one line naming file and place ----
bad() {  # name dir expected-text
	$CLI tokenize "$2" "text" >/dev/null 2>$TMP/bad.err </dev/null
	rc=$?
	if [ $rc -eq 2 ] && grep -qF "$3" $TMP/bad.err && [ "$(wc -l <$TMP/bad.err)" -eq 1 ]; then
		pass "malformed:$1"
	else
		fail "malformed:$1" "status $rc (want 2), stderr: $(head -c 300 $TMP/bad.err)"
	fi
}
mk() { rm -rf "$TMP/$1" && mkdir -p "$TMP/$1" && echo "$TMP/$1"; }

d=$(mk rank_base64); sed '5s/.*/!!!! 4/' $T/llama3/tokenizer.model >$d/tokenizer.model
bad rank-base64 $d "$d/tokenizer.model: line 5: token is not base64"
d=$(mk rank_norank); sed '3s/ .*//' $T/llama3/tokenizer.model >$d/tokenizer.model
bad rank-no-rank $d "$d/tokenizer.model: line 3: expected \"base64 rank\""
d=$(mk rank_badrank); sed '7s/ .*/ 12x/' $T/llama3/tokenizer.model >$d/tokenizer.model
bad rank-bad-number $d "$d/tokenizer.model: line 7: rank is not a number"
d=$(mk rank_dup); { cat $T/llama3/tokenizer.model; echo "SGVsbG9Xb3JsZFph 0"; } >$d/tokenizer.model
bad rank-duplicate $d "$d/tokenizer.model: line 128001: rank 0 given twice"
d=$(mk rank_huge); sed '5s/ .*/ 9999999/' $T/llama3/tokenizer.model >$d/tokenizer.model
bad rank-beyond-lines $d "$d/tokenizer.model: line 5: rank 9999999, but a file of 128000 lines holds ranks below 128000"
d=$(mk rank_short); head -n 100 $T/llama3/tokenizer.model >$d/tokenizer.model
bad rank-missing-byte $d "$d/tokenizer.model: no rank for the single byte"
d=$(mk empty); : >$d/tokenizer.model
bad empty-file $d "$d/tokenizer.model: empty file"

d=$(mk spm_trunc); head -c 1000000 $T/baichuan_m1/tokenizer.model >$d/tokenizer.model
bad spm-truncated $d "$d/tokenizer.model: byte 1000000: truncated varint (the file ends inside it)"
d=$(mk spm_varint); printf '\n\377\377\377\377\377\377\377\377\377\377\377' >$d/tokenizer.model
bad spm-varint $d "$d/tokenizer.model: byte 1: varint longer than 10 bytes"
d=$(mk spm_type); printf '\n\005\n\001a\030\011' >$d/tokenizer.model
bad spm-piece-type $d "$d/tokenizer.model: byte 5: piece type is not 1..6"
d=$(mk spm_nounk); printf '\n\003\n\001a' >$d/tokenizer.model
bad spm-no-unk $d "$d/tokenizer.model: no UNKNOWN piece"
d=$(mk spm_charsmap); { printf '\n\003\n\001a\032\010\n\004nfkc\022\000'; } >$d/tokenizer.model
bad spm-charsmap-empty-is-fine $d "$d/tokenizer.model: no UNKNOWN piece"
d=$(mk spm_charsmap2); { printf '\n\003\n\001a\032\011\n\004nfkc\022\001x'; } >$d/tokenizer.model
bad spm-charsmap $d "$d/tokenizer.model: normalizer 'nfkc' uses a precompiled character map"
UNK='\n\011\n\005<unk>\030\002'
d=$(mk spm_dup); printf "$UNK"'\n\003\n\001a\n\003\n\001a' >$d/tokenizer.model
bad spm-duplicate $d "$d/tokenizer.model: piece 2 ('a') is defined twice"
d=$(mk spm_badbyte); printf "$UNK"'\n\012\n\006<0xZZ>\030\006' >$d/tokenizer.model
bad spm-byte-piece $d "$d/tokenizer.model: byte 13: BYTE piece is not <0xXX>"
d=$(mk spm_nofallback); printf "$UNK"'\n\012\n\006<0x41>\030\006' >$d/tokenizer.model
bad spm-byte-no-fallback $d "$d/tokenizer.model: piece 1 is a BYTE piece but byte_fallback is off"
d=$(mk spm_bytes); printf "$UNK"'\n\012\n\006<0x41>\030\006\022\003\230\002\001' >$d/tokenizer.model
bad spm-missing-bytes $d "$d/tokenizer.model: byte_fallback is on but there is no piece <0x00>"
d=$(mk spm_word); printf "$UNK"'\022\002\030\003' >$d/tokenizer.model
bad spm-model-type $d "$d/tokenizer.model: byte 13: model_type is not UNIGRAM or BPE"
# Truncated at many places, the reader must always say where, never crash.
n=0
bad_offsets=""
for off in 1 2 3 5 8 13 100 1000 4097 12345 54321 99999 150001 250000 333333 400000 499000 499722; do
	head -c $off $T/afm7_standin_llama2/tokenizer.model >$TMP/spm_cut.model
	$CLI tokenize $TMP/spm_cut.model x >/dev/null 2>$TMP/cut.err
	rc=$?
	if [ $rc -eq 2 ] && grep -q "^lmcc: $TMP/spm_cut.model: " $TMP/cut.err; then
		n=$((n + 1))
	else
		bad_offsets="$bad_offsets $off(status $rc: $(head -c 100 $TMP/cut.err))"
	fi
done
[ -z "$bad_offsets" ] && pass "malformed:spm-truncated-anywhere ($n cuts)" ||
	fail malformed:spm-truncated-anywhere "$bad_offsets"

d=$(mk jsonl_pair); sed '10s/.*/["a", 1.0]/' $T/plamo2_standin_llmjp/tokenizer.jsonl >$d/tokenizer.jsonl
bad jsonl-not-triple $d "$d/tokenizer.jsonl: line 10: expected [piece, score, type]"
d=$(mk jsonl_json); sed '20s/.*/["a", 1.0, "NORMAL"/' $T/plamo2_standin_llmjp/tokenizer.jsonl >$d/tokenizer.jsonl
bad jsonl-bad-json $d "$d/tokenizer.jsonl: line 20: expected [piece, score, type]"
d=$(mk jsonl_type); sed '30s/.*/["zz", 1.0, "WEIRD"]/' $T/plamo2_standin_llmjp/tokenizer.jsonl >$d/tokenizer.jsonl
bad jsonl-type $d "$d/tokenizer.jsonl: line 30: unknown type 'WEIRD'"
d=$(mk jsonl_byte); grep -v '"<0x41>"' $T/plamo2_standin_llmjp/tokenizer.jsonl >$d/tokenizer.jsonl
bad jsonl-missing-byte $d "$d/tokenizer.jsonl: no BYTE row <0x41>"

d=$(mk json_trunc); head -c 5000 $T/afm7_standin_llama2/tokenizer.json >$d/tokenizer.json
bad json-truncated $d "$d/tokenizer.json: line"
d=$(mk json_model); echo '{"model": {"type": "WordPiece", "vocab": {}}}' >$d/tokenizer.json
bad json-model-type $d "$d/tokenizer.json: model.type 'WordPiece' is not supported"
d=$(mk json_merge); echo '{"model": {"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": ["a c"]}}' >$d/tokenizer.json
bad json-merge $d "$d/tokenizer.json: model.merges[0]: a token of the merge is not in the vocabulary"
d=$(mk json_pre); echo '{"pre_tokenizer": {"type": "Whitespace"}, "model": {"type": "BPE", "vocab": {"a": 0}}}' >$d/tokenizer.json
bad json-pre-tokenizer $d "$d/tokenizer.json: pre_tokenizer 'Whitespace' is not supported"
d=$(mk json_vocab); echo '{"model": {"type": "BPE", "vocab": {"a": -4}}}' >$d/tokenizer.json
bad json-vocab-id $d "$d/tokenizer.json: model.vocab[\"a\"]: expected an id"

d=$(mk json_norm); echo '{"normalizer": {"type": "NFKC"}, "model": {"type": "BPE", "vocab": {"a": 0}}}' >$d/tokenizer.json
bad json-normalizer $d "$d/tokenizer.json: normalizer 'NFKC' is not supported"
d=$(mk json_split); echo '{"pre_tokenizer": {"type": "Split", "pattern": {"Regex": "a"}, "behavior": "Removed"}, "model": {"type": "BPE", "vocab": {"a": 0}}}' >$d/tokenizer.json
bad json-split $d "$d/tokenizer.json: pre_tokenizer Split: only behavior Isolated"
d=$(mk json_regex); echo '{"pre_tokenizer": {"type": "Split", "pattern": {"Regex": "a(b"}, "behavior": "Isolated"}, "model": {"type": "BPE", "vocab": {"a": 0}}}' >$d/tokenizer.json
bad json-regex $d "$d/tokenizer.json: pre-tokenizer regex: missing closing parenthesis at offset 3"
d=$(mk json_inter); echo '{"pre_tokenizer": {"type": "Split", "pattern": {"Regex": "[a&&b]"}, "behavior": "Isolated"}, "model": {"type": "BPE", "vocab": {"a": 0}}}' >$d/tokenizer.json
bad json-intersection $d "$d/tokenizer.json: pre-tokenizer regex: only [X&&[^Y]] intersections are supported"
d=$(mk json_dec); echo '{"decoder": {"type": "CTC"}, "model": {"type": "BPE", "vocab": {"a": 0}}}' >$d/tokenizer.json
bad json-decoder $d "$d/tokenizer.json: decoder 'CTC' is not supported"
d=$(mk json_strip); echo '{"decoder": {"type": "Sequence", "decoders": [{"type": "Strip", "content": " ", "start": 1, "stop": 0}, {"type": "Fuse"}]}, "model": {"type": "BPE", "vocab": {"a": 0}}}' >$d/tokenizer.json
bad json-strip $d "$d/tokenizer.json: decoder Strip: only Strip(' ', N, 0) after Fuse is supported"
d=$(mk json_added); echo '{"added_tokens": [{"content": "x"}], "model": {"type": "BPE", "vocab": {"a": 0}}}' >$d/tokenizer.json
bad json-added $d "$d/tokenizer.json: added_tokens[0]: expected {id, content}"
# ids past the table, and a pattern that is not UTF-8: refused, never a
# wild write or a read of uninitialised memory
d=$(mk json_added_id); echo '{"added_tokens": [{"id": 2147483647, "content": "<x>"}], "model": {"type": "BPE", "vocab": {"a": 0}}}' >$d/tokenizer.json
bad json-added-id $d "$d/tokenizer.json: added_tokens[0]: id 2147483647 is not in [0, 2^24)"
d=$(mk json_added_big); echo '{"added_tokens": [{"id": 1099511627776, "content": "<x>"}], "model": {"type": "BPE", "vocab": {"a": 0}}}' >$d/tokenizer.json
bad json-added-id-2^40 $d "$d/tokenizer.json: added_tokens[0]: id 1099511627776 is not in [0, 2^24)"
d=$(mk json_vocab_big); echo '{"model": {"type": "BPE", "vocab": {"a": 4294967296}}}' >$d/tokenizer.json
bad json-vocab-id-2^32 $d "$d/tokenizer.json: model.vocab[\"a\"]: expected an id below 2^24"
d=$(mk json_regex_utf8); printf '{"pre_tokenizer": {"type": "Split", "pattern": {"Regex": "a\377\300(b"}, "behavior": "Isolated"}, "model": {"type": "BPE", "vocab": {"a": 0}}}\n' >$d/tokenizer.json
bad json-regex-utf8 $d "$d/tokenizer.json: pre-tokenizer regex is not valid UTF-8"
d=$(mk special_id); ln -s "$PWD/$T/llama3/tokenizer.model" $d/tokenizer.model
echo '{"tokens": {"<x>": 2147483647}}' >$d/special_tokens.json
bad special-tokens-id $d "$d/special_tokens.json: tokens[\"<x>\"]: expected an id below 2^24"
d=$(mk config_eos_id); ln -s "$PWD/$T/llama3/tokenizer.model" $d/tokenizer.model
echo '{"eos_token_id": [1, 2147483648]}' >$d/config.json
bad config-eos-id $d "$d/config.json: eos_token_id[1]: 2147483648 is not a token id"
d=$(mk json_unk); echo '{"model": {"type": "BPE", "unk_token": "<unk>", "vocab": {"a": 0}}}' >$d/tokenizer.json
bad json-unk $d "$d/tokenizer.json: model.unk_token '<unk>' is not in the vocabulary"
d=$(mk config_added); ln -s "$PWD/$T/llama3/tokenizer.model" $d/tokenizer.model
echo '{"added_tokens_decoder": {"x1": {"content": "<x>"}}}' >$d/tokenizer_config.json
bad config-added $d "$d/tokenizer_config.json: added_tokens_decoder: key 'x1' is not an id"
d=$(mk special_tokens); ln -s "$PWD/$T/llama3/tokenizer.model" $d/tokenizer.model
echo '{"tokens": {"<x>": "7"}}' >$d/special_tokens.json
bad special-tokens $d "$d/special_tokens.json: tokens[\"<x>\"]: expected an id"
d=$(mk config_eos); ln -s "$PWD/$T/llama3/tokenizer.model" $d/tokenizer.model
echo '{"eos_token_id": "x"}' >$d/config.json
bad config-eos $d "$d/config.json: eos_token_id: expected an int or a list of ints"
d=$(mk config_json); ln -s "$PWD/$T/llama3/tokenizer.model" $d/tokenizer.model
printf '{"add_bos_token": true,\n "bos_token": }\n' >$d/tokenizer_config.json
bad config-bad-json $d "$d/tokenizer_config.json: line 2: bad JSON"
d=$(mk config_family); ln -s "$PWD/$T/llama3/tokenizer.model" $d/tiktoken2.model
head -n 1000 $T/llama3/tokenizer.model >$d/tokenizer.model
bad rank-unknown-family $d "$d/tokenizer.model: a tiktoken rank file of 1000 ranks"
exit 0
