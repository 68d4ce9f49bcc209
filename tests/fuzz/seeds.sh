#!/bin/sh
# seeds.sh TARGET DIR: a seed corpus for a fuzz target of fuzz_target.c,
# from the repository's own files (cut to the first 64 KB: libFuzzer's
# -max_len), and the crashing inputs found before (tests/fuzz/found/TARGET).
t=$1 out=$2
rm -rf "$out" && mkdir -p "$out"
K=tests/tokenizers
i=0
seed() { for f in "$@"; do [ -f "$f" ] && head -c 65536 "$f" >"$out/seed$i" && i=$((i + 1)); done; }
case $t in
jinja) seed $K/templates/*.jinja ;;
config) seed tests/configs/*.json tests/golden/*/config.json tests/golden-mlx/*/config.json tests/llama4/*.json ;;
st) seed tests/golden/afm7/model.safetensors tests/golden-mlx/*/model.safetensors ;;
index) printf '{"metadata": {}, "weight_map": {"a": "s1.safetensors"}}' >"$out/seed0" ;;
tokjson) seed $K/*/tokenizer.json ;;
tokrank) seed $K/llama3/tokenizer.model $K/llama4/tokenizer.model $K/kimi_linear/tiktoken.model ;;
tokspm) seed $K/baichuan_m1/tokenizer.model $K/afm7_standin_llama2/tokenizer.model $K/plamo2_standin_llmjp/*.model ;;
tokjsonl) seed $K/plamo2_standin_llmjp/tokenizer.jsonl ;;
adapter)   # byte 0 picks the base plan (fuzz_target.c), then config NUL header
	k=0
	for c in afm7 baichuan kimi llama4 plamo2; do
		a=tests/golden-mlx/${c}_lora/adapter
		[ -f $a/adapters.safetensors ] || continue
		hlen=$(od -An -tu8 -N8 $a/adapters.safetensors | tr -d ' ')
		{ printf "\\$(printf %o $k)"; cat $a/adapter_config.json; printf '\0'
		  tail -c +9 $a/adapters.safetensors | head -c "$hlen"; } >"$out/seed$k"
		k=$((k + 1))
	done ;;
http)      # byte 0: odd for /v1/chat/completions, even for /v1/completions
	for b in '1{"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4, "temperature": 0.5, "stop": ["x"], "logit_bias": {"5": -1}, "stream": true}' \
	    '1{"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": [{"type": "text", "text": "x"}]}, {"role": "assistant", "content": "y"}]}' \
	    '1{"messages":[{"role":"user","content":"x"}],"max_tokens":1e300,"logit_bias":{"-5":1}}' \
	    '1{"messages":[{"role":"assistant","content":"x"}], "return_token_ids": true, "stream_options": {"include_usage": true}}' \
	    '0{"prompt": "Hello", "max_tokens": 3, "top_p": 0.9, "top_k": 5, "min_p": 0.1, "seed": 7, "repetition_penalty": 1.1}' \
	    '0{"prompt": [1, 2, 3], "presence_penalty": 0.5, "frequency_penalty": 0.5, "stop": "a"}' \
	    '0{"prompt":"\ud800 \u00ff","max_tokens":2}'; do
		printf '%s' "$b" >"$out/seed$i"; i=$((i + 1))
	done ;;
esac
[ -d tests/fuzz/found/$t ] && cp tests/fuzz/found/$t/* "$out/" 2>/dev/null
exit 0
