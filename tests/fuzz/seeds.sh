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
esac
[ -d tests/fuzz/found/$t ] && cp tests/fuzz/found/$t/* "$out/" 2>/dev/null
exit 0
