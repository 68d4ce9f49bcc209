#!/bin/sh
# Quantized checkpoints (MLX's affine format) and mlx-lm's layout:
#   - the HF <-> mlx-lm name mapping (tests/unit/test_layout.c);
#   - malformed quantized checkpoints end with exit 2 and one line naming
#     the file, the tensor and the field, through `lmcc run` and a built
#     binary;
#   - `lmcc plan` shows each layer's formats and the bytes a token reads;
#   - round trips (with python3 and numpy): checkpoints packed by the rule
#     of the format (tests/qgen.py: every bit width, group sizes 32, 64 and
#     128, mixed per-module recipes, BF16 scales, expert stacks, MLA
#     heads, tied heads, shards without an index) give the logits of their
#     dequantized float twins.
# The golden cases in tests/golden-mlx run in suite_golden.sh.
cd "$(dirname "$0")/.." || exit 1
make -s tests/bin/stedit tests/bin/npycmp tests/bin/test_layout >/dev/null \
	|| { echo "FAIL quant: helpers do not build"; exit 0; }
T=tests/tmp/quant
rm -rf $T
mkdir -p $T
G=tests/golden-mlx/afm7_q4g64
ST=tests/bin/stedit

tests/bin/test_layout

expect() {
	name=$1 w1=$2 w2=$3 w3=$4
	shift 5
	"$@" >$T/out 2>$T/err
	rc=$?
	lines=$(wc -l <$T/err)
	msg=$(head -c 400 $T/err)
	if [ $rc -ne 2 ]; then
		echo "FAIL quant $name: exit $rc, expected 2: $msg"
	elif [ "$lines" -ne 1 ]; then
		echo "FAIL quant $name: $lines lines on stderr, expected 1: $msg"
	elif ! grep -qF -- "$w1" $T/err || ! grep -qF -- "$w2" $T/err || ! grep -qF -- "$w3" $T/err; then
		echo "FAIL quant $name: message lacks '$w1', '$w2' or '$w3': $msg"
	else
		echo "PASS quant $name"
	fi
}

# bad NAME SED EDIT...: a copy of the afm7 case, its config edited by SED
# and its checkpoint by stedit EDIT (none: copied)
bad() {
	d=$T/$1 s=$2
	shift 2
	mkdir -p $d
	sed "$s" $G/config.json >$d/config.json
	cp $G/model.safetensors.index.json $d/
	if [ $# -gt 0 ]; then
		$ST $G/model.safetensors $d/model.safetensors "$@" || echo "FAIL quant: stedit $*"
	else
		cp $G/model.safetensors $d/
	fi
}

./lmcc build $G -o $T/bin 2>/dev/null || echo "FAIL quant: cannot build afm7_q4g64"
# both NAME W1 W2 W3 DIR: through lmcc run, and the built binary with
# --weights (the checks are the runtime's too)
both() {
	expect "$1 (lmcc run)" "$2" "$3" "$4" -- ./lmcc run $5 --tokens 1,2,3
	[ -n "$6" ] && expect "$1 (built binary)" "$2" "$3" "$4" -- $T/bin/afm7_q4g64 --weights $5 --tokens 1,2,3
}

D=model.layers.0.mlp.down_proj
bad scales '' header "\"shape\":[128,6]},\"$D.weight\"" "\"shape\":[64,12]},\"$D.weight\""
both "scales of the wrong shape" "scales/model.safetensors" "'$D.scales'" "shape [64, 12], expected [128, 6]" $T/scales bin
bad width '11s/"bits": 4/"bits": 8/'
both "packed width not matching bits" "width/model.safetensors" "weight'" "shape[-1] is 16 words per row, but 128 inputs at 8 bits take 32: packed at 4 bits (config.json: affine, 8 bits, group 64, from field 'quantization')" $T/width
bad bits7 '11s/"bits": 4/"bits": 7/'
both "bits 7" "bits7/config.json" "field 'quantization.bits': 7 (module 'model.embedding')" "2, 3, 4, 5, 6 or 8 bits" $T/bits7
bad group48 '10s/"group_size": 64/"group_size": 48/'
both "group size 48" "group48/config.json" "field 'quantization.group_size': 48" "groups of 32, 64 or 128" $T/group48
Q=model.layers.0.self_attn.qkv_proj
bad noscales '' header "\"$Q.scales\"" "\"$Q.scalez\""
both "a module the config quantizes without scales" "noscales/model.safetensors" "tensor '$Q.scales' is missing" "field 'quantization.$Q'" $T/noscales
O=model.layers.0.self_attn.out_proj
bad noscales2 '' header "\"$O.scales\"" "\"$O.scalez\""
both "packed weight without scales" "noscales2/model.safetensors" "'$O.weight'" "dtype U32 (packed quantized)" $T/noscales2
expect "packed weight without scales (built binary)" "noscales2/model.safetensors" "'$O.scales' is missing" "is quantized (affine, 4 bits, group 64)" -- $T/bin/afm7_q4g64 --weights $T/noscales2 --tokens 1,2,3
N=model.layers.0.mlp.gate_proj.biases
bad dtype '' header "\"dtype\":\"U32\",\"shape\":[128,48]},\"$N\"" "\"dtype\":\"I32\",\"shape\":[128,48]},\"$N\""
both "quantized weight not uint32" "dtype/model.safetensors" "'$D.weight'" "a quantized module's weight is U32" $T/dtype bin
bad mode 's/"mode": "affine"/"mode": "mxfp5"/'
both "an unknown quantization mode" "mode/config.json" "field 'quantization.mode'" "affine, mxfp4, nvfp4 and mxfp8" $T/mode
# MLX's FP modes: their fixed bits and group sizes, no biases, U8 scales;
# AFM-7's fused projection is affine only in mlx-lm
bad mxg '12s/"affine"/"mxfp4"/'
both "mxfp4 with group 64" "mxg/config.json" "field 'quantization.group_size': 64 (module 'model.embedding')" "mode mxfp4 has groups of 32" $T/mxg
bad nvb '10s/64/16/;11s/4/8/;12s/"affine"/"nvfp4"/'
both "nvfp4 with 8 bits" "nvb/config.json" "field 'quantization.bits': 8" "mode nvfp4 has 4 bits" $T/nvb
bad mxbias "12a\\        \"$O\": {\"group_size\": 32, \"bits\": 4, \"mode\": \"mxfp4\"},"
both "biases in mode mxfp4" "mxbias/model.safetensors" "'$O.biases'" "mode mxfp4 has no biases" $T/mxbias
bad mxqkv "15s/\"bits\": 4/\"bits\": 4, \"mode\": \"mxfp8\"/"
both "AFM-7's qkv_proj in mode mxfp8" "mxqkv/config.json" "module 'model.layers.0.self_attn.qkv_proj'" "affine only" $T/mxqkv
bad off "12a\\        \"$O\": false,"
both "a quantized module the config calls unquantized" "off/model.safetensors" "'$O.scales'" "field 'quantization.$O' is false" $T/off

# lmcc plan: formats and bytes per layer
./lmcc plan tests/golden-mlx/kimi_q4g64_bf16 >$T/plan 2>&1
if awk '$1 == 1' $T/plan | grep -q 'q4/64 q8/64' && grep -q 'weights a token reads' $T/plan; then
	echo "PASS quant plan: $(awk '$1 == 1 { print $2, $(NF-4), $(NF-3), $(NF-2), $(NF-1) }' $T/plan)"
else
	echo "FAIL quant plan: $(head -c 600 $T/plan)"
fi

# round trips against the dequantized float twin
py=
for p in python3 /usr/bin/python3; do
	if command -v $p >/dev/null && $p -c 'import numpy' 2>/dev/null; then py=$p; break; fi
done
if [ -z "$py" ]; then
	echo "note: no python3 with numpy: quantized round trips skipped"
	exit 0
fi
# trip NAME SRC QGEN-OPTIONS...
trip() {
	name=$1 src=$2
	shift 2
	q=$T/$name.q f=$T/$name.f
	if ! $py tests/qgen.py $src $q $f "$@" 2>$T/err; then
		echo "FAIL quant round trip $name: qgen: $(head -c 300 $T/err)"
		return
	fi
	tok=@$src/tokens.npy
	# the twin fed the same way: afm7's fake 8-bit K/V can round a value
	# the other way after a float32 reordering (prefill's sgemm against
	# the streaming kernels), which moves later logits by about 1e-3
	for chunk in 100 1 5; do
		./lmcc run $f --tokens $tok --chunk $chunk --logits-out $T/$name.f.npy 2>$T/err \
			|| { echo "FAIL quant round trip $name float: $(head -c 300 $T/err)"; return; }
		rm -f $T/$name.q.npy
		if ./lmcc run $q --tokens $tok --chunk $chunk --logits-out $T/$name.q.npy 2>$T/err \
		   && r=$(tests/bin/npycmp $T/$name.q.npy $T/$name.f.npy); then
			echo "PASS quant round trip $name chunk=$chunk: $r"
		else
			echo "FAIL quant round trip $name chunk=$chunk: $r $(head -c 300 $T/err)"
		fi
	done
}
# Kimi's kv_b_proj quantized in the Hugging Face layout: the reference
# re-quantizes it per head; lmcc refuses it, naming it
if $py tests/qgen.py tests/golden/kimi_linear $T/kimi_hf.q $T/kimi_hf.f --bits 4 --group 32 2>$T/err; then
	expect "Kimi's kv_b_proj quantized in the HF layout" "kimi_hf.q/model.safetensors" \
		"'model.layers.2.self_attn.kv_b_proj.weight'" "embed_q and unembed_out" -- ./lmcc run $T/kimi_hf.q --tokens 1,2
else
	echo "FAIL quant: qgen kimi_linear: $(head -c 300 $T/err)"
fi
trip afm7_b2g32 tests/golden/afm7 --bits 2 --group 32
# AFM-7 rounds K/V to 8 bits: a value within a float's error of a rounding
# boundary moves the logits by ~1e-3 whichever way the order of a sum tips
# it (seeds 1 and 2 have one at 3 bits), so this case takes a seed clear of
# them, as the golden cases were drawn.
trip afm7_b3g64_bf16 tests/golden/afm7 --bits 3 --group 64 --bf16 --seed 3
trip plamo2_b5g32 tests/golden/plamo2 --bits 5 --group 32
trip plamo2_mixed_shards tests/golden/plamo2 --bits 4 --group 32 --mixed --shards 3
trip baichuan_b6g32 tests/golden/baichuan_m1 --bits 6 --group 32 --skip lm_head
trip llama4_b8g32 tests/golden/llama4 --bits 8 --group 32
trip kimi_mixed_bf16 tests/golden-mlx/kimi_bf16_saved --bits 3 --group 32 --mixed --bf16
trip kimi_b6g32 tests/golden-mlx/kimi_bf16_saved --bits 6 --group 32
# wider: inputs of 128 and 256 take groups of 128 (o_proj's 64 stays float)
w=$T/llama4_wide
mkdir -p $w
sed 's/"hidden_size": 64/"hidden_size": 128/; s/"intermediate_size": 48/"intermediate_size": 128/;
     s/"intermediate_size_mlp": 96/"intermediate_size_mlp": 256/' tests/golden/llama4/config.json >$w/config.json
cp tests/golden/llama4/tokens.npy $w/
./lmcc init $w/config.json -o $w --seed 3 >/dev/null 2>&1 || echo "FAIL quant: lmcc init $w"
trip llama4_g128 $w --bits 4 --group 128
trip llama4_mlx_mixed $w --bits 4 --group 32 --mixed --mlx-experts
