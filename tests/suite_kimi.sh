#!/bin/sh
# Kimi-Linear beyond the golden cases.
#  - Configs of other sizes and schedules (tests/kimi/*.json: KDA and MLA
#    mixed with softmax routing over 3 groups, a tied head and MoE every
#    other layer; MLA only, without k_pe; in F32 and BF16): lmcc init,
#    lmcc build and lmcc run; the input whole, one token at a time and in
#    chunks of 3 must agree, and agree with tests/kimi_ref.py, a float64
#    Python model written apart from the C (it expands MLA's keys and values
#    where lmcc absorbs them into the query).
#  - BF16 checkpoints keep A_log, dt_bias and the correction bias in F32.
#  - A tied head ignores a stale lm_head.weight and model.mtp.* tensors.
#  - Bad config fields: exit 2, one line naming config.json and the field.
#  - `lmcc plan` of the released config prints the released schedule.
cd "$(dirname "$0")/.." || exit 1
make -s tests/bin/npycmp >/dev/null || { echo "FAIL kimi: cannot build npycmp"; exit 0; }
tmp=tests/tmp/kimi
rm -rf "$tmp"
mkdir -p "$tmp"
tok=3,17,60,0,41,41,41,8,52,23,5,60,12,63,33,2,11,44,19,38,6,50,63,29,11,59,38,1,7
py=1
command -v python3 >/dev/null || { py=0; echo "note: no python3: comparisons with tests/kimi_ref.py skipped"; }

# same NAME GOT REF: the two logits agree within DESIGN.md's bound
same() {
	if r=$(tests/bin/npycmp "$2" "$3" 2>&1); then
		echo "PASS $1: $r"
	else
		echo "FAIL $1: $r"
	fi
}

# model NAME CONFIG DTYPE: a random checkpoint, run five ways
model() {
	name=$1
	d=$tmp/$name
	if ! ./lmcc init "$2" -o "$d" --seed 11 --dtype "$3" 2>"$d.err" \
	   || ! ./lmcc build "$d" -o "$d.bin" 2>"$d.err"; then
		echo "FAIL kimi $name init/build: $(head -c 300 "$d.err")"
		return
	fi
	"$d.bin/$name" --tokens $tok --logits-out "$d.whole.npy" 2>"$d.err"
	"$d.bin/$name" --tokens $tok --logits-out "$d.c1.npy" --chunk 1 2>"$d.err"
	"$d.bin/$name" --tokens $tok --logits-out "$d.c3.npy" --chunk 3 2>"$d.err"
	./lmcc run "$d" --tokens $tok --logits-out "$d.jit.npy" --chunk 3 2>"$d.err"
	same "kimi $name chunk=1 vs whole" "$d.c1.npy" "$d.whole.npy"
	same "kimi $name chunk=3 vs whole" "$d.c3.npy" "$d.whole.npy"
	same "kimi $name lmcc run chunk=3 vs build whole" "$d.jit.npy" "$d.whole.npy"
	if [ $py = 1 ]; then
		python3 tests/kimi_ref.py "$d" $tok "$d.ref.npy"
		same "kimi $name vs tests/kimi_ref.py" "$d.whole.npy" "$d.ref.npy"
	fi
}

model mixed tests/kimi/mixed.json f32
model mixed_bf16 tests/kimi/mixed.json bf16
model all_mla tests/kimi/all_mla.json f32

# BF16 releases keep these small tensors in F32 (the reference never casts them)
st=$tmp/mixed_bf16/model.safetensors
ok=1
for t in "model.layers.0.self_attn.A_log\":{\"dtype\":\"F32" \
         "model.layers.0.self_attn.dt_bias\":{\"dtype\":\"F32" \
         "model.layers.0.block_sparse_moe.gate.e_score_correction_bias\":{\"dtype\":\"F32" \
         "model.layers.0.self_attn.q_proj.weight\":{\"dtype\":\"BF16"; do
	grep -aqF "\"$t\"" "$st" || { ok=0; echo "FAIL kimi bf16 dtypes: no $t in $st"; }
done
[ $ok = 1 ] && echo "PASS kimi bf16: A_log, dt_bias, correction bias F32; weights BF16"

# Tied head: the same checkpoint plus a stale lm_head.weight (and, with
# python3, a model.mtp tensor) must give the tied model's logits, and the
# stale head must change them once the config unties it (or this proves nothing).
d=$tmp/stale
sed 's/"tie_word_embeddings": true/"tie_word_embeddings": false/' tests/kimi/mixed.json > "$tmp/untied.json"
./lmcc init "$tmp/untied.json" -o "$d" --seed 11 2>"$d.err"
./lmcc run "$d" --tokens $tok --logits-out "$d.untied.npy" 2>"$d.err"
cp tests/kimi/mixed.json "$d/config.json"
if [ $py = 1 ]; then
	python3 - "$d/model.safetensors" <<'PY'
import json, struct, sys
p = sys.argv[1]
b = open(p, "rb").read()
n = struct.unpack("<Q", b[:8])[0]
h = json.loads(b[8:8 + n])
data = b[8 + n:]
h["model.mtp.0.eh_proj.weight"] = {"dtype": "F32", "shape": [2, 2], "data_offsets": [len(data), len(data) + 16]}
t = json.dumps(h).encode()
t += b" " * (-len(t) % 8)
open(p, "wb").write(struct.pack("<Q", len(t)) + t + data + struct.pack("<4f", 1, 2, 3, 4))
PY
fi
./lmcc run "$d" --tokens $tok --logits-out "$d.tied.npy" 2>"$d.err"
same "kimi tied head ignores lm_head.weight and model.mtp.*" "$d.tied.npy" "$tmp/mixed.whole.npy"
if [ -f "$d.untied.npy" ] && ! tests/bin/npycmp "$d.untied.npy" "$tmp/mixed.whole.npy" >/dev/null; then
	echo "PASS kimi untied, the same file's lm_head.weight changes the logits"
else
	echo "FAIL kimi untied: lm_head.weight made no difference"
fi

# bad FIELD SED [BASE]: the edited config must stop lmcc plan with exit 2
# and one line naming config.json and the field
n=0
bad() {
	n=$((n + 1))
	d=$tmp/bad$n
	mkdir -p "$d"
	sed "$2" "${3:-tests/kimi/mixed.json}" > "$d/config.json"
	./lmcc plan "$d" >/dev/null 2>"$d.err"
	rc=$?
	if [ $rc = 2 ] && [ "$(wc -l < "$d.err")" = 1 ] && grep -q "config.json: field '$1'" "$d.err"; then
		echo "PASS kimi config error $1: $(cat "$d.err")"
	else
		echo "FAIL kimi config error $1 ($2): exit $rc: $(head -c 300 "$d.err")"
	fi
}
bad linear_attn_config 's/"linear_attn_config"/"linear_config"/'
bad linear_attn_config 's/"linear_attn_config": {/"linear_attn_config": 3, "x": {/'
bad linear_attn_config.kda_layers 's/"kda_layers"/"kda"/'
bad linear_attn_config.kda_layers 's/"kda_layers": \[1, 3, 4\]/"kda_layers": [1, 3, 6]/'
bad linear_attn_config.kda_layers 's/"kda_layers": \[1, 3, 4\]/"kda_layers": [0, 3, 4]/'
bad linear_attn_config.full_attn_layers 's/"full_attn_layers": \[2, 5\]/"full_attn_layers": [2, 4, 5]/'
bad linear_attn_config.full_attn_layers 's/"full_attn_layers": \[2, 5\]/"full_attn_layers": [2]/'
bad linear_attn_config.num_heads 's/"num_heads": 3/"num_heads": 0/'
bad linear_attn_config.head_dim 's/"head_dim": 8/"head_dim": 65536/'
bad linear_attn_config.short_conv_kernel_size 's/"short_conv_kernel_size": 3/"short_conv_kernel_size": 1/'
bad num_experts 's/"num_experts": 6/"num_experts": -1/'
bad num_experts_per_token 's/"num_experts_per_token": 3/"num_experts_per_token": 7/'
bad num_expert_group 's/"num_expert_group": 3/"num_expert_group": 4/'
bad num_expert_group 's/"num_expert_group": 3/"num_expert_group": 6/'
bad topk_group 's/"topk_group": 2/"topk_group": 4/'
bad moe_router_activation_func 's/"softmax"/"relu"/'
bad moe_layer_freq 's/"moe_layer_freq": 2/"moe_layer_freq": 0/'
bad moe_intermediate_size 's/"moe_intermediate_size"/"moe_width"/'
bad routed_scaling_factor 's/"routed_scaling_factor": 1.5/"routed_scaling_factor": "big"/'
bad intermediate_size 's/"intermediate_size": 56/"intermediate_size": 0/'
bad kv_lora_rank 's/"kv_lora_rank"/"kv_rank"/'
bad num_attention_heads 's/"num_attention_heads": 3/"num_attention_heads": 0/'
bad qk_nope_head_dim 's/"qk_nope_head_dim"/"nope"/; s/"head_dim": 10/"hd": 10/'
bad rms_norm_eps 's/"rms_norm_eps": 1e-06/"rms_norm_eps": -1/'

# What a layout does not use, it does not need: all KDA and no experts
# want no MLA, MoE or head_dim fields
if ./lmcc plan tests/kimi/all_kda.json > "$tmp/all_kda.plan" 2>&1 \
   && [ "$(grep -c ' kda ' "$tmp/all_kda.plan")" = 2 ]; then
	echo "PASS kimi all-KDA config without MLA or MoE fields"
else
	echo "FAIL kimi all-KDA config: $(head -c 300 "$tmp/all_kda.plan")"
fi

# The released config (copied from ../shared/configs/kimi_linear)
p=$tmp/released.plan
./lmcc plan tests/kimi/released.json > "$p" 2>&1
rows() { awk -v k="$1" '$1 ~ /^[0-9]+$/ && $2 == k { printf "%s%s", s, $1; s = "," }' "$p"; }
want_mla=3,7,11,15,19,23,26
want_kda=0,1,2,4,5,6,8,9,10,12,13,14,16,17,18,20,21,22,24,25
if grep -q "27 layers" "$p" && [ "$(rows mla)" = $want_mla ] && [ "$(rows kda)" = $want_kda ] \
   && [ "$(awk '$1 == 0' "$p" | grep -c 'swiglu 9216')" = 1 ] \
   && [ "$(grep -c 'moe 8 of 256 +shared' "$p")" = 26 ] \
   && grep -q "16128 bytes per token" "$p"; then
	echo "PASS kimi released plan: 27 layers, KDA at $want_kda, MLA at $want_mla, layer 0 dense, $(grep 'bytes per token' "$p")"
else
	echo "FAIL kimi released plan: $(head -c 600 "$p")"
fi
