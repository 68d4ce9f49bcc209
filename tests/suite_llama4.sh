#!/bin/sh
# Llama 4 beyond the golden cases:
#   - models made by `lmcc init` with other dimensions and schedules, run
#     through `lmcc build` and `lmcc run`: the logits of the input fed
#     whole, one token at a time and in chunks of 3 must agree, and agree
#     with tests/llama4/oracle.py, an independent float64 forward pass
#     (skipped without python3); greedy generation must not depend on
#     the chunking either;
#   - config errors in Llama 4's own fields: exit 2, one line naming
#     config.json and the field;
#   - `lmcc plan` of the released Scout config and of other schedules.
cd "$(dirname "$0")/.." || exit 1
make -s tests/bin/npycmp >/dev/null || { echo "FAIL llama4: cannot build npycmp"; exit 0; }
tmp=tests/tmp/llama4
rm -rf "$tmp"
mkdir -p "$tmp"

# A small Llama 4 text config, one field a line: "name json".  It has a
# bias, a head_dim other than hidden / heads, llama3 RoPE with all three
# bands, temperature tuning as the reference's int, and the fixed NoPE
# rule (7 layers: layer 3 is NoPE) with MoE every 3rd layer.
DEFAULTS='vocab_size 101
hidden_size 48
num_hidden_layers 7
num_attention_heads 6
num_key_value_heads 2
head_dim 12
intermediate_size 24
intermediate_size_mlp 40
num_local_experts 5
num_experts_per_tok 1
interleave_moe_layer_step 3
attention_chunk_size 5
attention_bias true
use_qk_norm true
rms_norm_eps 1e-5
rope_theta 500.0
rope_scaling {"rope_type": "llama3", "factor": 4.0, "low_freq_factor": 1.0, "high_freq_factor": 2.0, "original_max_position_embeddings": 32}
attn_temperature_tuning 4
floor_scale 3
attn_scale 0.3
max_position_embeddings 4096
model_type "llama4_text"'
export DEFAULTS

# config FILE [NAME=JSON | NAME=]...: DEFAULTS with NAME set to JSON (or
# removed), nested in text_config as the released configs are.
config() {
	f=$1
	shift
	mkdir -p "$(dirname "$f")"
	printf '%s\n' "$@" | awk '
		{ i = index($0, "="); if (!i) next; k = substr($0, 1, i - 1)
		  over[k] = substr($0, i + 1); order[++n] = k }
		END {
			printf "{\"model_type\": \"llama4\", \"tie_word_embeddings\": false,\n \"text_config\": {"
			m = split(ENVIRON["DEFAULTS"], lines, "\n")
			sep = ""
			for (j = 1; j <= m; j++) {
				sp = index(lines[j], " ")
				k = substr(lines[j], 1, sp - 1)
				v = (k in over) ? over[k] : substr(lines[j], sp + 1)
				done[k] = 1
				if (v != "") { printf "%s\n  \"%s\": %s", sep, k, v; sep = "," }
			}
			for (j = 1; j <= n; j++)
				if (!(order[j] in done) && over[order[j]] != "") {
					printf "%s\n  \"%s\": %s", sep, order[j], over[order[j]]
					sep = ","
				}
			printf "},\n \"vision_config\": {\"model_type\": \"llama4_vision_model\"}}\n"
		}' > "$f"
}

tokens() {   # tokens N V: N ids below V, comma separated
	awk -v n="$1" -v v="$2" 'BEGIN { for (i = 0; i < n; i++)
		printf "%s%d", i ? "," : "", (i * 37 + 11 * (i % 5) + 3) % v; print "" }'
}

# model NAME N V INIT-OPTS -- CONFIG-OVERRIDES...: init, build and run the
# model, compare the schedules of feeding it.
model() {
	name=$1 n=$2 vocab=$3 opts=$4
	shift 5
	dir=$tmp/$name
	config "$dir/config.json" vocab_size="$vocab" "$@"
	if ! ./lmcc init "$dir/config.json" -o "$dir" $opts 2>"$dir.err"; then
		echo "FAIL llama4 $name init: $(head -c 300 "$dir.err")"
		return
	fi
	if ! ./lmcc build "$dir" -o "$dir/out" 2>"$dir.err"; then
		echo "FAIL llama4 $name build: $(head -c 300 "$dir.err")"
		return
	fi
	toks=$(tokens "$n" "$vocab")
	bin=$dir/out/$name
	"$bin" --tokens "$toks" --logits-out "$dir/whole.npy" 2>"$dir.err"
	"$bin" --tokens "$toks" --logits-out "$dir/c1.npy" --chunk 1 2>>"$dir.err"
	"$bin" --tokens "$toks" --logits-out "$dir/c3.npy" --chunk 3 2>>"$dir.err"
	./lmcc run "$dir" --tokens "$toks" --logits-out "$dir/jit.npy" --chunk 7 2>>"$dir.err"
	gen_whole=$("$bin" --tokens "$toks" -n 6 2>>"$dir.err")
	gen_c1=$(./lmcc run "$dir" --tokens "$toks" -n 6 --chunk 1 2>>"$dir.err")
	if [ -n "$gen_whole" ] && [ "$gen_whole" = "$gen_c1" ]; then
		echo "PASS llama4 $name generation: $gen_whole"
	else
		echo "FAIL llama4 $name generation: '$gen_whole' (whole, build) vs '$gen_c1' (one by one, run)"
	fi
	for run in c1 c3 jit; do
		what="llama4 $name $run vs whole"
		if [ ! -f "$dir/$run.npy" ] || [ ! -f "$dir/whole.npy" ]; then
			echo "FAIL $what: $(head -c 300 "$dir.err")"
		elif r=$(tests/bin/npycmp "$dir/$run.npy" "$dir/whole.npy"); then
			echo "PASS $what: $r"
		else
			echo "FAIL $what: $r"
		fi
	done
	if ! command -v python3 >/dev/null; then
		echo "llama4 $name: no python3, oracle skipped"
	elif ! python3 tests/llama4/oracle.py "$dir" "$toks" "$dir/oracle.npy" 2>"$dir.err"; then
		echo "FAIL llama4 $name oracle: $(head -c 300 "$dir.err")"
	elif r=$(tests/bin/npycmp "$dir/whole.npy" "$dir/oracle.npy"); then
		echo "PASS llama4 $name vs oracle: $r"
	else
		echo "FAIL llama4 $name vs oracle: $r"
	fi
}

# ---- (a) models at other sizes and schedules --------------------------

# DEFAULTS as they are, in BF16 (the experts' in-place views widened from
# bf16): 37 tokens over chunks of 5, NoPE layer 3, MoE layers 2 and 5.
model mixed 37 101 "--seed 5 --dtype bf16" --

# Lists: NoPE where no_rope_layers says (layer 0 among them), MoE where
# moe_layers says; no q/k norm, no temperature tuning, linear RoPE, head
# dim from hidden / heads, no GQA.
model lists 29 64 "--seed 9" -- num_hidden_layers=5 no_rope_layers="[0, 1, 1, 0, 1]" \
	moe_layers="[0, 3]" use_qk_norm=false attn_temperature_tuning=false \
	rope_scaling='{"type": "linear", "factor": 2.0}' head_dim=null num_attention_heads=4 \
	num_key_value_heads=4 attention_bias=false attention_chunk_size=4

# A chunk longer than the whole context: the chunked layers' ring is as
# long as the context, and they attend causally.
model long_chunk 23 80 "--seed 11" -- num_hidden_layers=4 attention_chunk_size=64

# The Scout schedule (48 layers, every 4th NoPE, every layer MoE with 16
# experts; llama3 RoPE with equal band factors) at toy size.
scout_small="num_hidden_layers=48 interleave_moe_layer_step=1 no_rope_layers=[] \
	num_local_experts=16 hidden_size=32 num_attention_heads=4 num_key_value_heads=2 head_dim=8 \
	intermediate_size=16 intermediate_size_mlp=32 attention_chunk_size=4 attention_bias=false \
	attn_temperature_tuning=true floor_scale=4 attn_scale=0.1 rope_theta=500000.0 \
	rope_scaling={\"rope_type\":\"llama3\",\"factor\":16.0,\"low_freq_factor\":1.0,\"high_freq_factor\":1.0,\"original_max_position_embeddings\":16}"
set -f     # split $scout_small into words, but expand no [] as a pattern
model scout_small 26 64 "--seed 3" -- $scout_small
set +f

# ---- (b) config errors -----------------------------------------------------

# bad NAME FIELD [NAME=JSON...]: the config must be refused with exit 2
# and one line naming config.json and FIELD.
bad() {
	name=$1 field=$2
	shift 2
	f=$tmp/bad/$name/config.json
	config "$f" "$@"
	./lmcc plan "$f" >/dev/null 2>"$tmp/bad/$name.err"
	st=$?
	lines=$(wc -l < "$tmp/bad/$name.err")
	if [ $st -eq 2 ] && [ "$lines" -eq 1 ] && grep -q "config.json: field '$field'" "$tmp/bad/$name.err"; then
		echo "PASS llama4 config error $name: $(cat "$tmp/bad/$name.err")"
	else
		echo "FAIL llama4 config error $name: status $st, $lines lines: $(head -c 300 "$tmp/bad/$name.err")"
	fi
}
bad top2 text_config.num_experts_per_tok num_experts_per_tok=2
bad nope_len text_config.no_rope_layers no_rope_layers="[1, 0]"
bad nope_value text_config.no_rope_layers no_rope_layers="[1, 1, 2, 1, 1, 1, 1]"
bad moe_index text_config.moe_layers moe_layers="[2, 7]"
bad moe_step text_config.interleave_moe_layer_step interleave_moe_layer_step=0
bad moe_step_missing text_config.interleave_moe_layer_step interleave_moe_layer_step=
bad chunk text_config.attention_chunk_size attention_chunk_size=0
bad floor_scale text_config.floor_scale floor_scale=0
bad temp_tuning text_config.attn_temperature_tuning attn_temperature_tuning='"yes"'
bad rope_type text_config.rope_scaling.rope_type rope_scaling='{"rope_type": "yarn", "factor": 2.0}'
bad rope_factor text_config.rope_scaling.factor rope_scaling='{"rope_type": "llama3"}'
bad rope_odd text_config.head_dim head_dim=7
bad kv_heads text_config.num_key_value_heads num_key_value_heads=4
bad heads text_config.num_attention_heads head_dim= num_attention_heads=5 num_key_value_heads=1
bad qk_norm text_config.use_qk_norm use_qk_norm=
bad bias text_config.attention_bias attention_bias=2
mkdir -p "$tmp/bad/flat"
echo '{"model_type": "llama4", "hidden_size": 64}' > "$tmp/bad/flat/config.json"
./lmcc plan "$tmp/bad/flat" >/dev/null 2>"$tmp/bad/flat.err"
if [ $? -eq 2 ] && grep -q "config.json: field 'text_config': missing" "$tmp/bad/flat.err"; then
	echo "PASS llama4 config error text_config missing"
else
	echo "FAIL llama4 config error text_config missing: $(head -c 300 "$tmp/bad/flat.err")"
fi

# ---- (c) schedules `lmcc plan` prints ----------------------------------------

# layers PLAN-OUTPUT: one line per layer, "i rope|nope chunk|causal moe|mlp".
layers() {
	awk '$1 ~ /^[0-9]+$/ && NF > 4 { print $1, (/ nope/ ? "nope" : "rope"),
		(/ chunk / ? "chunk" : "causal"), (/ moe / ? "moe" : "mlp") }' "$1"
}
check() {   # check NAME CONDITION-TEXT: PASS when the condition (shell) holds
	if eval "$2"; then echo "PASS llama4 plan $1"; else echo "FAIL llama4 plan $1: $2"; fi
}

scout=$tmp/scout.plan
./lmcc plan tests/llama4/scout_config.json > "$scout" 2>&1
layers "$scout" > "$tmp/scout.layers"
nope=$(awk '$2 == "nope" { printf "%s ", $1 }' "$tmp/scout.layers")
check "scout header" 'grep -q "^Llama 4 (llama4): vocab 202048, hidden 5120, 48 layers$" "$scout"'
check "scout 48 layers" '[ "$(wc -l < "$tmp/scout.layers")" -eq 48 ]'
check "scout NoPE every 4th" '[ "$nope" = "3 7 11 15 19 23 27 31 35 39 43 47 " ]'
check "scout NoPE global, tuned" '[ "$(grep -c "attention nope temp    causal" "$scout")" -eq 12 ]'
check "scout chunked 8192" '[ "$(grep -c "attention              chunk 8192" "$scout")" -eq 36 ]'
check "scout all MoE" '[ "$(grep -c "moe 1 of 16 +shared" "$scout")" -eq 48 ]'
# per layer: q, o 5120^2; k, v 5120 x 1024; router 16 x 5120; 16 experts
# of 3 x 5120 x 8192; the shared expert 3 x 5120 x 8192; two norms; then
# the embedding and head 202048 x 5120 and the final norm
check "scout parameters" 'grep -q "^parameters: $(( 48 * (2*5120*5120 + 2*5120*1024 + 16*5120 + 17*3*5120*8192 + 2*5120) + 2*202048*5120 + 5120 )) (read per token: " "$scout"'
check "scout drops vision" 'grep -q "^the reference drops: the vision tower (\*vision_model\*); the multi-modal projector (\*multi_modal_projector\*)$" "$scout"'
check "scout cache" 'grep -q "^cache (float32): $((12 * 8 * 256 * 4)) bytes per token, $((36 * 8192 * 8 * 256 * 4)) bytes whatever the length$" "$scout"'

# The toy model above has the Scout's schedule, layer for layer.
./lmcc plan "$tmp/scout_small" 2>&1 | layers /dev/stdin > "$tmp/scout_small.layers"
check "toy scout schedule = scout" 'cmp -s "$tmp/scout.layers" "$tmp/scout_small.layers"'

# Fewer than 4 layers and no list: no NoPE layer at all.
config "$tmp/three/config.json" num_hidden_layers=3 interleave_moe_layer_step=1
./lmcc plan "$tmp/three" > "$tmp/three.plan" 2>&1
check "3 layers: all chunked RoPE" '[ "$(layers "$tmp/three.plan" | tr "\n" ";")" = "0 rope chunk moe;1 rope chunk moe;2 rope chunk moe;" ]'

# moe_layers present but empty overrides interleave_moe_layer_step: no MoE.
config "$tmp/dense/config.json" moe_layers="[]" interleave_moe_layer_step=1
./lmcc plan "$tmp/dense" > "$tmp/dense.plan" 2>&1
check "moe_layers [] = all dense" '[ "$(layers "$tmp/dense.plan" | grep -c mlp)" -eq 7 ] && grep -q "swiglu 40" "$tmp/dense.plan"'

# Temperature tuning is on when the config does not mention it (the
# reference's default, 4), off when it says 0.
config "$tmp/tdef/config.json" attn_temperature_tuning= floor_scale= attn_scale=
config "$tmp/toff/config.json" attn_temperature_tuning=0
./lmcc plan "$tmp/tdef" > "$tmp/tdef.plan" 2>&1
./lmcc plan "$tmp/toff" > "$tmp/toff.plan" 2>&1
check "temperature tuning by default" 'grep -q "   3  attention nope temp " "$tmp/tdef.plan"'
check "temperature tuning 0 = off" 'grep -q "   3  attention nope      " "$tmp/toff.plan"'
