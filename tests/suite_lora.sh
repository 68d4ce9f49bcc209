#!/bin/sh
# LoRA/DoRA adapters (mlx-lm's), beyond the golden-mlx cases that
# suite_golden.sh runs: the adapter reader's errors (exit 2, one line naming
# the adapter's file and the field or tensor, nothing run); a zero lora_b
# gives the base's logits exactly; num_layers and explicit keys select what
# they say; DoRA against a float64 fusion (tests/lora/tool.py) of the
# adapter into the weights; `lmcc fuse` against the unfused run; a built
# program refusing an adapter of another structure.
cd "$(dirname "$0")/.." || exit 1
make -s tests/bin/npycmp tests/bin/stedit >/dev/null || { echo "FAIL lora: helpers do not build"; exit 0; }
T=tests/tmp/lora
rm -rf "$T"
mkdir -p "$T"
G=tests/golden-mlx
ST=tests/bin/stedit
CMP=tests/bin/npycmp
py=1
command -v python3 >/dev/null || { py=0; echo "note: no python3: the adapter variants are not made, their checks skipped"; }
tool() { python3 tests/lora/tool.py "$@" || echo "FAIL lora: tool.py $*"; }
qpy=
for p in python3 /usr/bin/python3; do
	if command -v $p >/dev/null && $p -c 'import numpy' 2>/dev/null; then qpy=$p; break; fi
done

# logits of CASE's tokens: run DIR [ADAPTER] OUT
run() {
	_d=$1 _a=$2 _o=$3 _c=$4
	./lmcc run "$_d" ${_a:+--adapter "$_a"} --tokens @$G/$_c/tokens.npy --logits-out "$_o" 2>"$_o.err"
}

# an adapter that must be refused: bad NAME CASE ADAPTER WANT (WANT: text
# the one error line must contain besides the exit status 2)
bad() {
	name=$1 _c=$2 _a=$3 want=$4
	case $_c in */*) ;; *) _c=$G/$_c ;; esac
	./lmcc plan $_c --adapter "$_a" >/dev/null 2>"$T/err"
	rc=$?
	lines=$(wc -l <"$T/err")
	if [ $rc -eq 2 ] && [ "$lines" -eq 1 ] && grep -q -- "$want" "$T/err"; then
		echo "PASS lora error $name"
	else
		echo "FAIL lora error $name: exit $rc, $(head -c 300 "$T/err")"
	fi
}

A=$G/afm7_lora/adapter
K=$G/kimi_lora/adapter
L=$G/llama4_lora/adapter
B=$G/baichuan_lora/adapter

# ---- the reader's errors ----
mkdir -p "$T/noconfig" && cp $A/adapters.safetensors "$T/noconfig/"
bad "no adapter_config.json" afm7_lora "$T/noconfig" "adapter_config.json"
mkdir -p "$T/nofile" && cp $A/adapter_config.json "$T/nofile/"
bad "no adapters.safetensors" afm7_lora "$T/nofile" "adapters.safetensors"
mkdir -p "$T/trunc" && cp $A/adapter_config.json "$T/trunc/"
$ST $A/adapters.safetensors "$T/trunc/adapters.safetensors" truncate 4000
bad "truncated adapters.safetensors" afm7_lora "$T/trunc" "adapters.safetensors"
# one tensor renamed in the header: an unknown leaf, a module the model does
# not have, a fused module's pair without its part, a dtype lmcc refuses
edit_header() {   # DIR ADAPTER OLD NEW
	mkdir -p "$1" && cp "$2/adapter_config.json" "$1/"
	$ST "$2/adapters.safetensors" "$1/adapters.safetensors" header "$3" "$4"
}
edit_header "$T/leaf" $A '"model.layers.0.mlp.down_proj.lora_a"' '"model.layers.0.mlp.down_proj.lora_c"'
bad "unknown leaf" afm7_lora "$T/leaf" "adapters.safetensors: tensor 'model.layers.0.mlp.down_proj.lora_c': not an adapter parameter"
edit_header "$T/nomod" $A '"model.layers.0.mlp.down_proj.lora_a"' '"model.layers.7.mlp.down_proj.lora_a"'
bad "module not in the model" afm7_lora "$T/nomod" "tensor 'model.layers.7.mlp.down_proj.lora_a': this model has no linear module"
edit_header "$T/nopart" $A "layers.1.self_attn.qkv_proj.lora_a.0" "layers.1.self_attn.qkv_proj.lora_a"
bad "fused qkv pair without its part" afm7_lora "$T/nopart" "qkv_proj.lora_a': the adapter on 'model.layers.1.self_attn.qkv_proj' has one lora_a.N"
edit_header "$T/dtype" $A '"dtype":"F32"' '"dtype":"I32"'
bad "integer tensor" afm7_lora "$T/dtype" "dtype is not F32"
edit_header "$T/f64" $A '"dtype":"F32","shape":[64,8]' '"dtype":"F64","shape":[64,4]'
bad "F64 tensor" afm7_lora "$T/f64" "dtype is not F32"
edit_header "$T/u8" $A '"dtype":"F32","shape":[64,8]' '"dtype":"U8","shape":[64,32]'
bad "U8 tensor" afm7_lora "$T/u8" "dtype is not F32"
edit_header "$T/dim3" $A '"dtype":"F32","shape":[64,8]' '"dtype":"F32","shape":[64,8,1]'
bad "3-D where a Linear's pair is 2-D" afm7_lora "$T/dim3" "shape \[64, 8, 1\], but the model's module wants \[64, 8\]"
edit_header "$T/huge" $A '"dtype":"F32","shape":[64,8]' '"dtype":"F32","shape":[68719476736,8]'
bad "shape larger than the file" afm7_lora "$T/huge" "adapters.safetensors: tensor .*bytes for 549755813888 elements"

# an adapter_config.json or tensor set edited by tool.py, refused:
# bad_edit NAME CASE WANT EDITS...
bad_edit() {
	name=$1 _c=$2 want=$3
	shift 3
	n=$((n + 1))
	tool edit $G/$_c/adapter "$T/edit$n" "$@"
	bad "$name" $_c "$T/edit$n" "$want"
}
if [ $py = 1 ]; then
	n=0
	bad_edit "full fine-tune" afm7_lora "field 'fine_tune_type'" --set 'fine_tune_type="full"'
	bad_edit "unknown fine_tune_type" afm7_lora "field 'fine_tune_type'" --set 'fine_tune_type="qlora"'
	bad_edit "rank 0" afm7_lora "field 'lora_parameters.rank'" --set 'lora_parameters.rank=0'
	bad_edit "scale not a number" afm7_lora "field 'lora_parameters.scale'" --set 'lora_parameters.scale="x"'
	bad_edit "keys not a list" afm7_lora "field 'lora_parameters.keys'" --set 'lora_parameters.keys="mlp"'
	bad_edit "key with code in it" afm7_lora "field 'lora_parameters.keys\[0\]'" \
		--set 'lora_parameters.keys=["mlp.up_proj\"); x("]'
	bad_edit "num_layers missing" afm7_lora "field 'num_layers'" --set 'num_layers=null'
	bad_edit "rank that does not match the tensors" afm7_lora "but the model's module wants .* (rank 4)" \
		--set 'lora_parameters.rank=4'
	bad_edit "tensors of blocks num_layers leaves out" llama4_lora "gets no adapter under .*(the last 2 of 4 blocks" \
		--set 'num_layers=2'
	bad_edit "rank past the limit" afm7_lora "field 'lora_parameters.rank': .* \[1, 65536\]" \
		--set 'lora_parameters.rank=100000000'
	bad_edit "rank the tensors do not have" afm7_lora "but the model's module wants .* (rank 65536)" \
		--set 'lora_parameters.rank=65536'
	bad_edit "scale not finite" afm7_lora "field 'lora_parameters.scale'" --set 'lora_parameters.scale=1e400'
	bad_edit "keys naming no module of the model" afm7_lora "gets no adapter under .*(all 4 blocks, its keys)" \
		--set 'lora_parameters.keys=["self_attn.nope"]'
	bad_edit "DoRA's m in a LoRA adapter" afm7_lora \
		"tensor 'model.layers.0.mlp.up_proj.m': the adapter on 'model.layers.0.mlp.up_proj' has lora_a and lora_b" \
		--copy model.layers.0.mlp.up_proj.lora_b=model.layers.0.mlp.up_proj.m
	bad_edit "a module with lora_a but no lora_b" afm7_lora \
		"tensor 'model.layers.2.mlp.up_proj.lora_b' is missing" --drop model.layers.2.mlp.up_proj.lora_b
	bad_edit "DoRA on a stack of experts" kimi_lora "DoRA on model.layers.1.mlp.switch_mlp" \
		--set 'fine_tune_type="dora"'
	bad_edit "DoRA on AFM-7's fused qkv" afm7_lora "fused qkv_proj" --set 'fine_tune_type="dora"'
	bad_edit "keys that leave out a module of the file" baichuan_lora "gets no adapter under .*adapter_config.json" \
		--set 'lora_parameters.keys=["self_attn.o_proj"]'
fi

# ---- semantics ----
if [ $py = 1 ]; then
	# lora_b zero: exactly the base's logits (AFM-7's fused parts, Llama 4's experts)
	for c in afm7_lora llama4_lora; do
		tool edit $G/$c/adapter "$T/zero_$c" --zero lora_b
		run $G/$c "" "$T/$c.base.npy" $c
		run $G/$c "$T/zero_$c" "$T/$c.zero.npy" $c
		if cmp -s "$T/$c.base.npy" "$T/$c.zero.npy"; then
			echo "PASS lora zero lora_b is the base $c"
		else
			echo "FAIL lora zero lora_b is the base $c: $($CMP "$T/$c.zero.npy" "$T/$c.base.npy") $(head -c 200 "$T/$c.zero.npy.err")"
		fi
	done
	# num_layers past the model, or negative: every block, as the
	# reference's layers[-max(n, 0):] takes them
	for nl in 100 -5; do
		tool edit $A "$T/nl$nl" --set "num_layers=$nl"
		run $G/afm7_lora "$T/nl$nl" "$T/nl$nl.npy" afm7_lora
		if r=$($CMP "$T/nl$nl.npy" $G/afm7_lora/logits.npy); then
			echo "PASS lora num_layers $nl of 4: $r"
		else
			echo "FAIL lora num_layers $nl of 4: $r $(head -c 200 "$T/nl$nl.npy.err")"
		fi
	done
	# num_layers 2 of 4 with the first two blocks' tensors gone, against
	# num_layers 4 with those blocks' lora_b zero: the same products
	tool edit $L "$T/last2" --set 'num_layers=2' \
		--keep language_model.model.layers.2.,language_model.model.layers.3.
	tool edit $L "$T/first2zero" --zero "" --keep language_model.model.layers.0.,language_model.model.layers.1.
	python3 - "$L" "$T/first2zero" "$T/last2z" <<'PY' || echo "FAIL lora: merging adapters"
import os, sys
sys.path.insert(0, "tests/lora")
import tool
full, _ = tool.read(os.path.join(sys.argv[1], "adapters.safetensors"))
zero, meta = tool.read(os.path.join(sys.argv[2], "adapters.safetensors"))
full.update(zero)
os.makedirs(sys.argv[3], exist_ok=True)
tool.write(os.path.join(sys.argv[3], "adapters.safetensors"), full, meta)
import shutil
shutil.copy(os.path.join(sys.argv[1], "adapter_config.json"), sys.argv[3])
PY
	run $G/llama4_lora "$T/last2" "$T/last2.npy" llama4_lora
	run $G/llama4_lora "$T/last2z" "$T/last2z.npy" llama4_lora
	if cmp -s "$T/last2.npy" "$T/last2z.npy" && ! cmp -s "$T/last2.npy" "$T/llama4_lora.base.npy"; then
		echo "PASS lora num_layers 2 of 4"
	else
		echo "FAIL lora num_layers 2 of 4: $($CMP "$T/last2.npy" "$T/last2z.npy")"
	fi
	# explicit keys: only o_proj and down_proj, against the float64 fusion
	tool edit $B "$T/keys2" --set 'lora_parameters.keys=["self_attn.o_proj","mlp.down_proj"]' \
		--keep model.layers.2.self_attn.o_proj,model.layers.3.self_attn.o_proj,model.layers.2.mlp.down_proj,model.layers.3.mlp.down_proj
	tool fuse $G/baichuan_lora "$T/keys2" "$T/keys2_fused"
	run $G/baichuan_lora "$T/keys2" "$T/keys2.npy" baichuan_lora
	run "$T/keys2_fused" "" "$T/keys2_oracle.npy" baichuan_lora
	if r=$($CMP "$T/keys2.npy" "$T/keys2_oracle.npy") && ! $CMP "$T/keys2.npy" $G/baichuan_lora/logits.npy >/dev/null; then
		echo "PASS lora explicit keys: $r"
	else
		echo "FAIL lora explicit keys: $r $(head -c 200 "$T/keys2.npy.err")"
	fi
	# other ranks and scales (negative too): the golden adapters cut to rank
	# 1 or 3, against the float64 fusion, or where it has no stacks of
	# experts (Llama 4, Kimi) against lmcc fuse and a built program in chunks.
	# AFM-7 rounds its keys and values to 8 bits, so a K/V element within
	# float32 rounding of a half step rounds either way, and the logits after
	# it move by one step (3.6e-4 here).  At scale -2.5 one element of this
	# case lies there: the fused and the unfused sums, and OpenBLAS's SkylakeX
	# and Haswell kernels, round it differently.  -2.25 has none.
	for rs in "afm7_lora 3 -2.25" "plamo2_lora 1 0.5" "llama4_lora 3 -2.5" "kimi_lora 1 7"; do
		set -- $rs
		rn=rank$2.$1
		tool edit $G/$1/adapter "$T/$rn" --rank $2 --set "lora_parameters.scale=$3"
		run $G/$1 "$T/$rn" "$T/$rn.npy" $1
		case $1 in
		llama4_lora|kimi_lora)
			./lmcc fuse $G/$1 --adapter "$T/$rn" -o "$T/$rn.fused" 2>/dev/null
			run "$T/$rn.fused" "" "$T/$rn.ref.npy" $1
			./lmcc build $G/$1 --adapter "$T/$rn" -o "$T/$rn.bin" 2>/dev/null
			"$T/$rn.bin/$1" --tokens @$G/$1/tokens.npy --chunk 5 --logits-out "$T/$rn.built.npy" 2>/dev/null
			r2=$($CMP "$T/$rn.built.npy" "$T/$rn.npy") || r2="FAIL built: $r2" ;;
		*)
			tool fuse $G/$1 "$T/$rn" "$T/$rn.oracle"
			run "$T/$rn.oracle" "" "$T/$rn.ref.npy" $1
			r2= ;;
		esac
		if r=$($CMP "$T/$rn.npy" "$T/$rn.ref.npy") && [ "${r2#FAIL}" = "$r2" ] \
		   && ! $CMP "$T/$rn.npy" $G/$1/logits.npy >/dev/null; then
			echo "PASS lora rank $2 scale $3 $1: $r${r2:+; built, chunks of 5: $r2}"
		else
			echo "FAIL lora rank $2 scale $3 $1: $r $r2 $(head -c 200 "$T/$rn.npy.err")"
		fi
	done
	# num_layers 0 is every block (layers[-0:]); a key that is a full module
	# path wraps that module outside the last num_layers blocks too (the
	# reference's second pass over model.named_modules())
	tool edit $A "$T/nl0" --set num_layers=0
	run $G/afm7_lora "$T/nl0" "$T/nl0.npy" afm7_lora
	if r=$($CMP "$T/nl0.npy" $G/afm7_lora/logits.npy); then
		echo "PASS lora num_layers 0 is all blocks: $r"
	else
		echo "FAIL lora num_layers 0 is all blocks: $r"
	fi
	tool edit $A "$T/fullkey" --set num_layers=1 --set 'lora_parameters.keys=["mlp.down_proj","model.layers.0.mlp.up_proj"]' \
		--keep model.kv_reuse_layers.0.mlp.down_proj,model.layers.0.mlp.up_proj
	./lmcc plan $G/afm7_lora --adapter "$T/fullkey" >"$T/fullkey.plan" 2>&1
	tool fuse $G/afm7_lora "$T/fullkey" "$T/fullkey.oracle"
	run $G/afm7_lora "$T/fullkey" "$T/fullkey.npy" afm7_lora
	run "$T/fullkey.oracle" "" "$T/fullkey.ref.npy" afm7_lora
	if r=$($CMP "$T/fullkey.npy" "$T/fullkey.ref.npy") && grep -q "layer   0: mlp.up_proj$" "$T/fullkey.plan" \
	   && grep -q "layer   3: mlp.down_proj$" "$T/fullkey.plan" && [ "$(grep -c '^  layer' "$T/fullkey.plan")" = 2 ]; then
		echo "PASS lora full-path key outside num_layers: $r"
	else
		echo "FAIL lora full-path key outside num_layers: $r $(grep '^  layer' "$T/fullkey.plan" | head -3)"
	fi
	# DoRA (Baichuan-M1, PLaMo-2's Mamba and attention) against the float64 fusion
	for c in baichuan_lora plamo2_lora; do
		tool dora $G/$c $G/$c/adapter "$T/dora_$c" 7
		tool fuse $G/$c "$T/dora_$c" "$T/dora_${c}_fused"
		for path in run build; do
			out="$T/dora_$c.$path.npy"
			if [ $path = run ]; then
				run $G/$c "$T/dora_$c" "$out" $c
			else
				./lmcc build $G/$c --adapter "$T/dora_$c" -o "$T/dora_${c}_bin" 2>/dev/null
				"$T/dora_${c}_bin/$c" --tokens @$G/$c/tokens.npy --chunk 5 --logits-out "$out" 2>"$out.err"
			fi
			run "$T/dora_${c}_fused" "" "$T/dora_$c.oracle.npy" $c
			if r=$($CMP "$out" "$T/dora_$c.oracle.npy") && ! $CMP "$out" $G/$c/logits.npy >/dev/null; then
				echo "PASS lora DoRA $c $path: $r"
			else
				echo "FAIL lora DoRA $c $path: $r $(head -c 200 "$out.err")"
			fi
		done
	done
fi

# ---- embeddings and heads: mlx-lm wraps an embedding (LoRAEmbedding) only
# when a key names it; a tied head is its as_linear, the same pair
# transposed.  Against the float64 fusion, run, built and fused ----
if [ $py = 1 ]; then
	# emb NAME CASE MODULE VOCAB DIMS [dora]
	emb() {
		en=$1 ec=$2 em=$3
		tool edit $G/$ec/adapter "$T/$en.0" --keep "$em" --set "lora_parameters.keys=[\"$em\"]" \
			${6:+--set 'fine_tune_type="dora"'}
		tool add "$T/$en.0" "$T/$en" "$em" $4 8 $5 3
		tool fuse $G/$ec "$T/$en" "$T/$en.oracle"
		run "$T/$en.oracle" "" "$T/$en.oracle.npy" $ec
		run $G/$ec "$T/$en" "$T/$en.run.npy" $ec
		./lmcc build $G/$ec --adapter "$T/$en" -o "$T/$en.bin" 2>/dev/null
		"$T/$en.bin/$ec" --tokens @$G/$ec/tokens.npy --chunk 5 --logits-out "$T/$en.built.npy" 2>/dev/null
		./lmcc fuse $G/$ec --adapter "$T/$en" -o "$T/$en.fused" 2>/dev/null
		run "$T/$en.fused" "" "$T/$en.fused.npy" $ec
		for w in run built fused; do
			if r=$($CMP "$T/$en.$w.npy" "$T/$en.oracle.npy") && ! $CMP "$T/$en.$w.npy" $G/$ec/logits.npy >/dev/null; then
				echo "PASS lora embedding $en $w: $r"
			else
				echo "FAIL lora embedding $en $w: $r"
			fi
		done
	}
	emb afm7_tied afm7_lora model.embedding 160 64
	emb afm7_tied_dora afm7_lora model.embedding 160 64 dora
	emb llama4_untied llama4_lora language_model.model.embed_tokens 192 64
	./lmcc plan $G/afm7_lora --adapter "$T/afm7_tied" >"$T/plan_emb.txt" 2>&1
	if grep -q "embedding: model.embedding" "$T/plan_emb.txt" && grep -q "head: .*(tied: its pair transposed)" "$T/plan_emb.txt"; then
		echo "PASS lora plan embedding and tied head"
	else
		echo "FAIL lora plan embedding and tied head: $(tail -c 300 "$T/plan_emb.txt")"
	fi
	# a tied Baichuan-M1 has no head in the reference: refused
	mkdir -p "$T/baichuan_tied"
	cp $G/baichuan_lora/model.safetensors "$T/baichuan_tied/"
	sed 's/"tie_word_embeddings": false/"tie_word_embeddings": true/' $G/baichuan_lora/config.json >"$T/baichuan_tied/config.json"
	tool edit $B "$T/bemb.0" --keep model.embed_tokens --set 'lora_parameters.keys=["model.embed_tokens"]'
	tool add "$T/bemb.0" "$T/bemb" model.embed_tokens 192 6 64 5
	./lmcc plan "$T/baichuan_tied" --adapter "$T/bemb" >/dev/null 2>"$T/err"
	if [ $? -eq 2 ] && grep -q "tied Baichuan-M1, which the reference cannot run" "$T/err"; then
		echo "PASS lora error embedding of a tied Baichuan-M1"
	else
		echo "FAIL lora error embedding of a tied Baichuan-M1: $(head -c 300 "$T/err")"
	fi

	# Baichuan-M1's head, its rows L2-normalised at load: the update is added
	# after the normalisation (the logits move by scale * (x A) B: in the row
	# space of lora_b); DoRA's norm is of the normalised row (lora_b zero:
	# each logit times m); lmcc fuse refuses a float one, which the
	# reference's loader would normalise again
	tool edit $B "$T/bhead.0" --keep lm_head --set 'lora_parameters.keys=["lm_head"]'
	tool add "$T/bhead.0" "$T/bhead" lm_head 64 6 192 5
	tool edit "$T/bhead.0" "$T/bheadd.0" --set 'fine_tune_type="dora"'
	tool add "$T/bheadd.0" "$T/bheadd.1" lm_head 64 6 192 5
	tool edit "$T/bheadd.1" "$T/bheadd" --zero lora_b
	run $G/baichuan_lora "" "$T/bhead.base.npy" baichuan_lora
	run $G/baichuan_lora "$T/bhead" "$T/bhead.npy" baichuan_lora
	run $G/baichuan_lora "$T/bheadd" "$T/bheadd.npy" baichuan_lora
	if [ -z "$qpy" ]; then
		echo "note: no python3 with numpy: Baichuan-M1's adapted normalised head not checked"
	else
		if r=$($qpy tests/lora/qfuse.py lowrank "$T/bhead.npy" "$T/bhead.base.npy" "$T/bhead" lm_head); then
			echo "PASS lora normalised head: $r"
		else
			echo "FAIL lora normalised head: $r"
		fi
		if r=$($qpy tests/lora/qfuse.py rows "$T/bheadd.npy" "$T/bhead.base.npy" "$T/bheadd" lm_head); then
			echo "PASS lora normalised head DoRA: $r"
		else
			echo "FAIL lora normalised head DoRA: $r"
		fi
	fi
	./lmcc fuse $G/baichuan_lora --adapter "$T/bhead" -o "$T/bhead.fused" 2>"$T/err"
	if [ $? -eq 2 ] && grep -q "cannot be fused into a float head" "$T/err"; then
		echo "PASS lora fuse normalised head refused"
	else
		echo "FAIL lora fuse normalised head refused: $(head -c 300 "$T/err")"
	fi
fi

# ---- quantized bases: the products are MLX's affine groups, the adapter
# the same; against the dequantized float twin (tests/qgen.py, numpy) ----
if [ -z "$qpy" ]; then
	echo "note: no python3 with numpy: adapters on quantized bases not checked"
else
	# qtrip NAME CASE ADAPTER QGEN-OPTIONS...
	qtrip() {
		qn=$1 qc=$2 qa=$3
		shift 3
		if ! $qpy tests/qgen.py $G/$qc "$T/$qn.q" "$T/$qn.f" "$@" >/dev/null 2>"$T/err"; then
			echo "FAIL lora quantized base $qn: qgen: $(head -c 300 "$T/err")"
			return
		fi
		run "$T/$qn.f" "$qa" "$T/$qn.f.npy" $qc
		run "$T/$qn.q" "" "$T/$qn.q0.npy" $qc
		./lmcc run "$T/$qn.q" --adapter "$qa" --tokens @$G/$qc/tokens.npy --chunk 5 \
			--logits-out "$T/$qn.q.npy" 2>"$T/err"
		if r=$($CMP "$T/$qn.q.npy" "$T/$qn.f.npy") && ! $CMP "$T/$qn.q.npy" "$T/$qn.q0.npy" >/dev/null; then
			echo "PASS lora quantized base $qn: $r"
		else
			echo "FAIL lora quantized base $qn: $r $(head -c 300 "$T/err")"
		fi
	}
	qtrip afm7_q4g32 afm7_lora $A --bits 4 --group 32
	qtrip llama4_q8g32 llama4_lora $L --bits 8 --group 32
	[ $py = 1 ] && qtrip baichuan_dora_q3g32 baichuan_lora "$T/dora_baichuan_lora" --bits 3 --group 32 --skip lm_head
	qtrip llama4_q4g64_bf16 llama4_lora $L --bits 4 --group 64 --bf16 --mlx-experts

	# lmcc fuse on a quantized base: each adapted module dequantized, merged
	# and quantized again with its own bits and group size, bit for bit as
	# MLX's rule gives it (tests/lora/qfuse.py), the others as they were;
	# and --dequantize: float, against the unfused run on the float twin
	# (where the scales are float32: BF16 scales dequantize to BF16)
	qfuse() {   # NAME CASE ADAPTER [deq]
		qn=$1 qc=$2 qa=$3
		if ! ./lmcc fuse "$T/$qn.q" --adapter "$qa" -o "$T/$qn.fused" 2>"$T/err"; then
			echo "FAIL lora fuse quantized $qn: $(head -c 300 "$T/err")"
			return
		fi
		if r=$($qpy tests/lora/qfuse.py check "$T/$qn.q" "$qa" "$T/$qn.fused"); then
			echo "PASS lora fuse quantized $qn: $r"
		else
			echo "FAIL lora fuse quantized $qn: $r"
		fi
		[ "$4" = deq ] || return
		./lmcc fuse "$T/$qn.q" --adapter "$qa" -o "$T/$qn.deq" --dequantize 2>"$T/err"
		run "$T/$qn.deq" "" "$T/$qn.deq.npy" $qc
		if r=$($CMP "$T/$qn.deq.npy" "$T/$qn.f.npy") && ! grep -q quantization "$T/$qn.deq/config.json" \
		   && ! grep -q '"U32"' "$T/$qn.deq/model.safetensors"; then
			echo "PASS lora fuse --dequantize $qn: $r"
		else
			echo "FAIL lora fuse --dequantize $qn: $r $(head -c 300 "$T/err")"
		fi
	}
	qfuse afm7_q4g32 afm7_lora $A deq
	if [ $py = 1 ]; then
		# the tied embedding quantized (QuantizedEmbedding): its adapter on
		# the lookup and on as_linear, against the float twin; fused and
		# quantized again; DoRA there refused (the reference cannot run it)
		qe=afm7_q4g32_emb
		ln -s "$(pwd)/$T/afm7_q4g32.q" "$T/$qe.q"
		run "$T/afm7_q4g32.q" "$T/afm7_tied" "$T/$qe.q.npy" afm7_lora
		run "$T/afm7_q4g32.f" "$T/afm7_tied" "$T/$qe.f.npy" afm7_lora
		if r=$($CMP "$T/$qe.q.npy" "$T/$qe.f.npy"); then
			echo "PASS lora quantized embedding: $r"
		else
			echo "FAIL lora quantized embedding: $r"
		fi
		qfuse $qe afm7_lora "$T/afm7_tied"
		bad "DoRA on a quantized embedding" "$T/afm7_q4g32.q" "$T/afm7_tied_dora" "DoRA on the quantized embedding"
	fi
	qfuse llama4_q4g64_bf16 llama4_lora $L
	if [ $py = 1 ]; then
		# DoRA on BF16 scales: the norm in bfloat16, step by step; and
		# --dequantize, bit for bit
		qn=plamo2_dora_q4g32_bf16
		qtrip $qn plamo2_lora "$T/dora_plamo2_lora" --bits 4 --group 32 --bf16
		qfuse $qn plamo2_lora "$T/dora_plamo2_lora"
		./lmcc fuse "$T/$qn.q" --adapter "$T/dora_plamo2_lora" -o "$T/$qn.deq" --dequantize 2>"$T/err"
		if r=$($qpy tests/lora/qfuse.py check "$T/$qn.q" "$T/dora_plamo2_lora" "$T/$qn.deq" deq); then
			echo "PASS lora fuse --dequantize $qn: $r"
		else
			echo "FAIL lora fuse --dequantize $qn: $r $(head -c 300 "$T/err")"
		fi
	fi
	[ $py = 1 ] && qfuse baichuan_dora_q3g32 baichuan_lora "$T/dora_baichuan_lora" deq

	# a base quantized by lmcc quantize (MLX's quantizer): the fused model's
	# logits against the unfused run's, within twice the error of
	# quantizing once (the unfused run against the float base's)
	for qs in "afm7_lora $A 4 32" "llama4_lora $L 8 64"; do
		set -- $qs
		qn=$1.lq$3g$4
		./lmcc quantize $G/$1 -o "$T/$qn.q" --bits $3 --group-size $4 >/dev/null 2>&1
		./lmcc fuse "$T/$qn.q" --adapter $2 -o "$T/$qn.fused" 2>"$T/err"
		run "$T/$qn.q" $2 "$T/$qn.q.npy" $1
		run "$T/$qn.fused" "" "$T/$qn.fused.npy" $1
		fused=$($qpy tests/lora/qfuse.py agree "$T/$qn.fused.npy" "$T/$qn.q.npy")
		once=$($qpy tests/lora/qfuse.py agree "$T/$qn.q.npy" $G/$1/logits.npy)
		bits=$($qpy tests/lora/qfuse.py check "$T/$qn.q" $2 "$T/$qn.fused")
		if [ $? = 0 ] && awk -v a="${fused##* }" -v b="${once##* }" 'BEGIN { exit !(a <= 2 * b) }'; then
			echo "PASS lora fuse quantized $qn: $fused (quantizing once: $once); $bits"
		else
			echo "FAIL lora fuse quantized $qn: $fused, against quantizing once: $once; $bits"
		fi
	done
fi

# ---- MLX's FP modes (mxfp4, nvfp4, mxfp8: lmcc quantize --q-mode, MLX's
# rule; AFM-7's qkv stays affine, as FusedQuantizedLinear takes no mode).
# The adapter on the unfused base against the float twin (--dequantized)
# within the bound; lmcc fuse as the reference's: the module dequantized
# as mx.dequantize returns it for uint8 scales, in bfloat16, the update
# cast to bfloat16 and added there, quantized again in the mode from that
# (DoRA: float32), bit for bit (qfuse.py); --dequantize writes that float
# weight.  Neither can meet the bound against the unfused run: the
# reference rounds the merged weight to bfloat16, and quantizing it again
# is not idempotent (a zero adapter moves the logits) ----
if [ -n "$qpy" ] && [ $py = 1 ]; then
	# fpcase CASE ADAPTER MODE REF: REF the float base's logits with the adapter
	fpcase() {
		fc=$1 fa=$2 fm=$3 fr=$4
		fn=fp.$fc.$fm.$(basename "$fa")
		./lmcc quantize $G/$fc -o "$T/$fn.q" --q-mode $fm --dequantized "$T/$fn.tw" --no-report \
			>/dev/null 2>"$T/err" || { echo "FAIL lora $fm $fn: quantize: $(head -c 300 "$T/err")"; return; }
		./lmcc run "$T/$fn.q" --adapter "$fa" --tokens @$G/$fc/tokens.npy --chunk 5 \
			--logits-out "$T/$fn.q.npy" 2>"$T/err"
		run "$T/$fn.tw" "$fa" "$T/$fn.tw.npy" $fc
		run "$T/$fn.q" "" "$T/$fn.q0.npy" $fc
		if r=$($CMP "$T/$fn.q.npy" "$T/$fn.tw.npy") && ! $CMP "$T/$fn.q.npy" "$T/$fn.q0.npy" >/dev/null; then
			echo "PASS lora $fm base $fn: $r"
		else
			echo "FAIL lora $fm base $fn: $r $(head -c 300 "$T/err")"
		fi
		once=$($qpy tests/lora/qfuse.py agree "$T/$fn.q.npy" "$fr")
		for d in "" --dequantize; do
			./lmcc fuse "$T/$fn.q" --adapter "$fa" -o "$T/$fn.f$d" $d 2>"$T/err" \
				|| { echo "FAIL lora $fm fuse$d $fn: $(head -c 300 "$T/err")"; continue; }
			run "$T/$fn.f$d" "" "$T/$fn.f$d.npy" $fc
			got=$($qpy tests/lora/qfuse.py agree "$T/$fn.f$d.npy" "$T/$fn.q.npy")
			bits=$($qpy tests/lora/qfuse.py check "$T/$fn.q" "$fa" "$T/$fn.f$d" ${d:+deq})
			ok=$?
			# --dequantize: only the update's rounding to bfloat16 moves it,
			# far less than the quantization; requantized: at most twice it
			lim=2
			[ -n "$d" ] && lim=0.1
			if [ -n "$d" ] && { grep -q quantization "$T/$fn.f$d/config.json" \
			                    || grep -q '"U8"\|"U32"' "$T/$fn.f$d/model.safetensors"; }; then
				echo "FAIL lora $fm fuse$d $fn: quantization kept"
			elif [ $ok = 0 ] && awk -v a="${got##* }" -v b="${once##* }" -v l=$lim 'BEGIN { exit !(a <= l * b) }'; then
				echo "PASS lora $fm fuse$d $fn: $got against the unfused (quantizing once: $once); $bits"
			else
				echo "FAIL lora $fm fuse$d $fn: $got, against quantizing once: $once; $bits"
			fi
		done
	}
	for fm in mxfp4 nvfp4 mxfp8; do
		fpcase afm7_lora $A $fm $G/afm7_lora/logits.npy
		# an expert stack and the tied embedding's adapter are one path in
		# every mode: nvfp4 (E4M3 scales) alone
		if [ $fm = nvfp4 ]; then
			fpcase llama4_lora $L $fm $G/llama4_lora/logits.npy
			fpcase afm7_lora "$T/afm7_tied" $fm "$T/afm7_tied.oracle.npy"
		fi
		fpcase plamo2_lora "$T/dora_plamo2_lora" $fm "$T/dora_plamo2_lora.oracle.npy"
		# a zero update: --dequantize gives the base exactly (an FP code
		# times its scale is exact in bfloat16); quantizing again changes it
		fn=fp.afm7_lora.$fm.adapter
		./lmcc fuse "$T/$fn.q" --adapter "$T/zero_afm7_lora" -o "$T/$fn.z" 2>/dev/null
		./lmcc fuse "$T/$fn.q" --adapter "$T/zero_afm7_lora" -o "$T/$fn.zd" --dequantize 2>/dev/null
		run "$T/$fn.z" "" "$T/$fn.z.npy" afm7_lora
		run "$T/$fn.zd" "" "$T/$fn.zd.npy" afm7_lora
		moved=$($qpy tests/lora/qfuse.py agree "$T/$fn.z.npy" "$T/$fn.q0.npy")
		if r=$($CMP "$T/$fn.zd.npy" "$T/$fn.q0.npy") \
		   && bits=$($qpy tests/lora/qfuse.py check "$T/$fn.q" "$T/zero_afm7_lora" "$T/$fn.z"); then
			echo "PASS lora $fm fuse zero update: --dequantize is the base: $r; requantized: $bits, the logits moved: $moved"
		else
			echo "FAIL lora $fm fuse zero update: $r; $bits"
		fi
	done
	# hostile adapters on an FP-mode base: lora_a with the packed width, or
	# transposed; DoRA on an FP-mode embedding (the reference cannot run it)
	P=fp.plamo2_lora.mxfp8.dora_plamo2_lora.q
	ia=$(head -c 65536 $G/plamo2_lora/adapter/adapters.safetensors \
	     | grep -ao '"model.layers.layers.0.mixer.in_proj.lora_a":{[^}]*}')
	edit_header "$T/fp_packed" $G/plamo2_lora/adapter "$ia" "$(echo "$ia" | sed 's/\[64,8\]/[16,32]/')"
	bad "mxfp8 base, lora_a of the packed width" "$T/$P" "$T/fp_packed" \
		"tensor 'model.layers.layers.0.mixer.in_proj.lora_a': shape \[16, 32\], but the model's module wants \[64, 8\]"
	edit_header "$T/fp_trans" $G/plamo2_lora/adapter '"shape":[8,128]' '"shape":[128,8]'
	bad "mxfp8 base, lora_b transposed" "$T/$P" "$T/fp_trans" "lora_b': shape \[128, 8\], but the model's module wants \[8, 128\]"
	bad "DoRA on an mxfp4 embedding" "$T/fp.afm7_lora.mxfp4.adapter.q" "$T/afm7_tied_dora" "DoRA on the quantized embedding"
	./lmcc plan "$T/$P" --adapter "$T/dora_plamo2_lora" >"$T/plan_fp.txt" 2>&1
	if grep -q "adapter: DoRA, rank 8, scale 16" "$T/plan_fp.txt" && grep -q "mxfp8" "$T/plan_fp.txt"; then
		echo "PASS lora plan of DoRA on an mxfp8 base"
	else
		echo "FAIL lora plan of DoRA on an mxfp8 base: $(head -c 300 "$T/plan_fp.txt")"
	fi
fi

# ---- lmcc fuse: the fused checkpoint's logits are the unfused run's ----
for c in afm7_lora llama4_lora kimi_lora plamo2_lora baichuan_lora; do
	if ! ./lmcc fuse $G/$c --adapter $G/$c/adapter -o "$T/fused_$c" 2>"$T/fuse.err"; then
		echo "FAIL lora fuse $c: $(head -c 300 "$T/fuse.err")"
		continue
	fi
	run "$T/fused_$c" "" "$T/fused_$c.npy" $c
	if r=$($CMP "$T/fused_$c.npy" $G/$c/logits.npy); then
		echo "PASS lora fuse $c: $r"
	else
		echo "FAIL lora fuse $c: $r"
	fi
done
if [ $py = 1 ]; then
	./lmcc fuse $G/baichuan_lora --adapter "$T/dora_baichuan_lora" -o "$T/fused_dora" 2>/dev/null
	run "$T/fused_dora" "" "$T/fused_dora.npy" baichuan_lora
	if r=$($CMP "$T/fused_dora.npy" "$T/dora_baichuan_lora.oracle.npy"); then
		echo "PASS lora fuse DoRA: $r"
	else
		echo "FAIL lora fuse DoRA: $r"
	fi
fi

# ---- a built program and the adapters it takes ----
c=afm7_lora
./lmcc build $G/$c --adapter $A -o "$T/bin" 2>/dev/null
./lmcc build $G/$c -o "$T/bin_plain" 2>/dev/null
refused() {   # NAME WANT PROGRAM ARGS...
	name=$1 want=$2
	shift 2
	rm -f "$T/x.npy"
	"$@" --tokens @$G/$c/tokens.npy --logits-out "$T/x.npy" >/dev/null 2>"$T/err"
	rc=$?
	if [ $rc -eq 2 ] && [ ! -f "$T/x.npy" ] && grep -q -- "$want" "$T/err"; then
		echo "PASS lora built $name"
	else
		echo "FAIL lora built $name: exit $rc, $(head -c 300 "$T/err")"
	fi
}
refused "without an adapter, given one" "built without an adapter" "$T/bin_plain/$c" --adapter $A
if [ $py = 1 ]; then
	tool edit $A "$T/s10" --set 'lora_parameters.scale=10'
	refused "given another scale" "field 'lora_parameters.scale': 10" "$T/bin/$c" --adapter "$T/s10"
	tool edit $A "$T/nl3" --set 'num_layers=3' --keep model.layers.1.,model.layers.2.,model.kv_reuse_layers.
	refused "given another num_layers" "field 'num_layers': 3" "$T/bin/$c" --adapter "$T/nl3"
	tool edit $A "$T/fewer" --drop model.layers.0.mlp.up_proj.lora_a
	refused "given fewer tensors" "51 tensors" "$T/bin/$c" --adapter "$T/fewer"
	# an adapter of the same structure, other values: taken, and it is applied
	tool edit $A "$T/zeroA" --zero lora_b
	"$T/bin/$c" --weights $G/$c --adapter "$T/zeroA" --tokens @$G/$c/tokens.npy --logits-out "$T/zeroA.npy" 2>/dev/null
	if cmp -s "$T/zeroA.npy" "$T/afm7_lora.base.npy"; then
		echo "PASS lora built program takes another adapter of its structure"
	else
		echo "FAIL lora built program takes another adapter of its structure"
	fi
fi
# plan: the adapted modules with rank and scale, and the bytes per token
./lmcc plan $G/kimi_lora --adapter $K >"$T/plan.txt" 2>&1
if grep -q "layer   1: .*mlp.switch_mlp.gate_proj (experts)" "$T/plan.txt" \
   && grep -q "adapter: LoRA, rank 4, scale 10" "$T/plan.txt" \
   && grep -q "adapter bytes per token: [1-9]" "$T/plan.txt" && ! grep -q "layer   0:" "$T/plan.txt"; then
	echo "PASS lora plan"
else
	echo "FAIL lora plan: $(head -c 400 "$T/plan.txt")"
fi
