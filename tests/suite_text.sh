#!/bin/sh
# Text in, text out, end to end: models made by lmcc init with the
# vocabulary of a real tokenizer, driven by --prompt and by --chat (one
# turn, and a conversation on a terminal), built and JIT-run.  The
# streamed text must equal the detokenized ids of the same greedy run.
cd "$(dirname "$0")/.." || exit 1
T=tests/tmp/text
K=tests/tokenizers
rm -rf $T
mkdir -p $T

mk() {   # NAME CONFIG TOKENIZER_FILES... : a model directory with them
	name=$1 cfg=$2
	shift 2
	./lmcc init tests/configs/$cfg.json -o $T/$name --seed 3 >/dev/null 2>&1 \
		|| echo "FAIL text: init $name"
	cp "$@" $T/$name/
}
mk afm text_afm7 $K/afm7_standin_llama2/tokenizer.json
cp $K/templates/afm7.jinja $T/afm/chat_template.jinja
mk plamo text_plamo2 $K/plamo2_standin_llmjp/tokenizer.jsonl
./lmcc build $T/afm -o $T/afm.bin 2>/dev/null || echo "FAIL text: build afm"

# same: the text --prompt streams is what the ids of the same greedy run
# add to the prompt's text, detokenized together
same() {   # NAME DIR PROMPT RUNNER...
	name=$1 dir=$2 prompt=$3
	shift 3
	ids=$(./lmcc tokenize $dir "$prompt" --bos)
	gen=$("$@" --tokens $ids -n 12 2>/dev/null)
	before=$(./lmcc detokenize $dir $ids)
	all=$(./lmcc detokenize $dir $ids,$gen)
	want=${all#"$before"}
	got=$("$@" --prompt "$prompt" -n 12 2>$T/err)
	if [ -n "$gen" ] && [ "$all" != "$want" ] && [ "$got" = "$want" ]; then
		echo "PASS text $name: --prompt streams the text of the ids ($(echo "$gen" | tr , ' ' | wc -w) tokens)"
	else
		echo "FAIL text $name: --prompt gave '$got', ids $gen decode to '$want' $(head -c 200 $T/err)"
	fi
}
same "afm7 + Llama 2 tokenizer.json, lmcc run" $T/afm "Hello, world. Tell me a story" ./lmcc run $T/afm
same "afm7 + Llama 2 tokenizer.json, built" $T/afm "Hello, world. Tell me a story" $T/afm.bin/afm
same "plamo2 + PLaMo jsonl, multibyte text" $T/plamo "こんにちは、世界。日本語の文章です" ./lmcc run $T/plamo

# an embedding larger than the tokenizer (PLaMo pads its vocabulary): at a
# high temperature 300 draws would reach the padding ids ~99% of the time
if ./lmcc run $T/plamo --prompt "テスト" -n 300 --temp 50 --seed 4 >/dev/null 2>$T/err; then
	echo "PASS text an embedding padded past the tokenizer never yields an id it cannot print"
else
	echo "FAIL text padded vocabulary: $(head -c 200 $T/err)"
fi

# one chat turn, with a system turn
out=$(./lmcc run $T/afm --chat --system "Be brief." --prompt "Hi" -n 8 --temp 1 --seed 2 2>$T/err)
if [ $? -eq 0 ] && [ -n "$out" ] && grep -q "prefill" $T/err; then
	echo "PASS text --chat --system --prompt streams a reply and the stats line"
else
	echo "FAIL text --chat: '$out' $(head -c 200 $T/err)"
fi

# the prompt from a file (-f) and from stdin (-p -) is the --prompt text
printf 'Hello, world. Tell me a story' >$T/prompt.txt
a=$(./lmcc run $T/afm --prompt "Hello, world. Tell me a story" -n 6 2>/dev/null)
b=$(./lmcc run $T/afm -f $T/prompt.txt -n 6 2>/dev/null)
c=$($T/afm.bin/afm -p - -n6 <$T/prompt.txt 2>/dev/null)
if [ -n "$a" ] && [ "$a" = "$b" ] && [ "$a" = "$c" ]; then
	echo "PASS text -f FILE and -p - read the prompt"
else
	echo "FAIL text -f / -p -: '$a' '$b' '$c'"
fi

# --chat-template FILE replaces the model's template: this one renders
# the user's text alone, so the prompt fed is exactly its tokens
printf '{%% for m in messages %%}{{ m.content }}{%% endfor %%}' >$T/bare.jinja
n=$(./lmcc tokenize $T/afm "Hi there" | tr , '\n' | wc -l)
./lmcc run $T/afm --chat --chat-template $T/bare.jinja -p "Hi there" -n 2 >/dev/null 2>$T/err
if grep -q "prefill $n tokens" $T/err; then
	echo "PASS text --chat-template FILE overrides the model's template ($n tokens)"
else
	echo "FAIL text --chat-template: expected prefill $n tokens: $(head -c 200 $T/err)"
fi

# generation_config.json's eos_token_id replaces config.json's (mlx-lm's
# load_config): the fourth id of a sampled run becomes the stop
P="Hello, world. Tell me a story"
g=$(./lmcc run $T/afm --tokens $(./lmcc tokenize $T/afm "$P" --bos) -n 8 --temp 50 --seed 5 2>/dev/null)
stop=$(echo "$g" | cut -d, -f4)
first=$(echo "$g" | cut -d, -f1-3)
full=$(./lmcc run $T/afm -p "$P" -n 8 --temp 50 --seed 5 2>/dev/null)
printf '{"eos_token_id": [%s]}' "$stop" >$T/afm/generation_config.json
cut3=$(./lmcc run $T/afm -p "$P" -n 8 --temp 50 --seed 5 2>$T/err)
rm $T/afm/generation_config.json
want=" $(./lmcc detokenize $T/afm "$first")"
if [ -n "$stop" ] && [ "$cut3" = "$want" ] && [ "$full" != "$cut3" ]; then
	echo "PASS text generation_config.json's eos_token_id stops generation ('$cut3')"
else
	echo "FAIL text generation_config.json eos $stop: '$cut3', expected '$want' (without: '$full') $(head -c 200 $T/err)"
fi

# a conversation on a terminal: two turns keep the cache between them
if command -v script >/dev/null 2>&1; then
	printf 'Hi there\n' | script -q -c "./lmcc run $T/afm --chat -n 6" /dev/null >$T/one 2>&1
	printf 'Hi there\nAnd again\n\n' | script -q -c "./lmcc run $T/afm --chat -n 6" /dev/null >$T/two 2>&1
	p1=$(sed -n 's/.*prefill \([0-9]*\) tokens.*/\1/p' $T/one)
	p2=$(sed -n 's/.*prefill \([0-9]*\) tokens.*/\1/p' $T/two)
	turns=$(grep -c '^> ' $T/two)
	# without reuse the second turn would feed the first again: p2 > 2 p1
	if [ -n "$p1" ] && [ -n "$p2" ] && [ "$p2" -gt "$p1" ] && [ "$p2" -lt $((2 * p1)) ]; then
		echo "PASS text interactive --chat: two turns, the cache kept ($p1 then $p2 tokens fed)"
	else
		echo "FAIL text interactive --chat: fed $p1 then $p2 tokens: $(head -c 300 $T/two)"
	fi
else
	echo "text: no 'script' command here; the terminal conversation is not tested"
fi

# errors
expect() {
	name=$1 want=$2
	shift 2
	"$@" >/dev/null 2>$T/err
	rc=$?
	if [ $rc -eq 2 ] && [ "$(wc -l <$T/err)" -eq 1 ] && grep -qF -- "$want" $T/err; then
		echo "PASS text $name"
	else
		echo "FAIL text $name: exit $rc: $(head -c 200 $T/err)"
	fi
}
mkdir -p $T/notok
cp tests/golden/afm7/config.json tests/golden/afm7/model.safetensors $T/notok/
expect "--prompt without a tokenizer" "no tokenizer" ./lmcc run $T/notok --prompt hi
expect "--chat without a template" "no chat template" ./lmcc run $T/plamo --chat --prompt hi
expect "--system without --chat" "--system" ./lmcc run $T/afm --prompt hi --system x
expect "--chat-template that does not exist" "nothere.jinja" ./lmcc run $T/afm --chat -p hi --chat-template $T/nothere.jinja
expect "-f that does not exist" "nothere.txt" ./lmcc run $T/afm -f $T/nothere.txt
expect "--tokens with --prompt" "not both" ./lmcc run $T/afm --prompt hi --tokens 1
expect "a prompt longer than --ctx" "--ctx" ./lmcc run $T/afm --prompt "a b c d e f g h i j" --ctx 4
