#!/bin/sh
# No silently wrong model (mlx-lm's strict loading): a program runs only
# the checkpoint of the model it was built for.  A config that differs in
# a field the program baked in, a tensor the model does not account for
# (other than what the architecture's reference itself drops), and a
# context past the config's position limit are refused, naming the field,
# the tensor or the flag.
cd "$(dirname "$0")/.." || exit 1
T=tests/tmp/strict
rm -rf $T
mkdir -p $T
G=tests/golden/afm7

expect() {   # NAME WANT1 WANT2 -- command...: exit 2, one line with both
	name=$1 w1=$2 w2=$3
	shift 4
	"$@" >$T/out 2>$T/err
	rc=$?
	msg=$(head -c 300 $T/err)
	if [ $rc -ne 2 ] || [ "$(wc -l <$T/err)" -ne 1 ]; then
		echo "FAIL strict $name: exit $rc, $(wc -l <$T/err) lines, expected 2 and 1: $msg"
	elif ! grep -qF -- "$w1" $T/err || ! grep -qF -- "$w2" $T/err; then
		echo "FAIL strict $name: message lacks '$w1' or '$w2': $msg"
	else
		echo "PASS strict $name"
	fi
}

./lmcc build $G -o $T/bin 2>/dev/null || echo "FAIL strict: cannot build afm7"

# the same tensors beside another rope_theta and rms_norm_eps: lmcc run
# gives other logits, so the built program must not run them as its own
mkdir -p $T/theta
ln -sf "$(pwd)/$G/model.safetensors" $T/theta/model.safetensors
sed 's/"rope_theta": 50000.0/"rope_theta": 10000.0/; s/"rms_norm_eps": 1e-05/"rms_norm_eps": 1e-06/' \
	$G/config.json >$T/theta/config.json
expect "another rope_theta beside the same tensors (built)" "theta/config.json" "'rope_theta'" \
	-- $T/bin/afm7 --weights $T/theta --tokens 1,2,3
expect "another rope_theta beside the same tensors (lmcc run --weights)" "theta/config.json" "'rope_theta'" \
	-- ./lmcc run $G --weights $T/theta --tokens 1,2,3
# the same value written otherwise is the same model
sed 's/"rope_theta": 50000.0/"rope_theta": 5e4/' $G/config.json >$T/theta/config.json
if $T/bin/afm7 --weights $T/theta --tokens 1,2,3 >/dev/null 2>$T/err; then
	echo "PASS strict the same value written otherwise (5e4) is accepted"
else
	echo "FAIL strict 5e4 for 50000.0: $(head -c 200 $T/err)"
fi
rm $T/theta/config.json
expect "a checkpoint without config.json" "theta" "config.json" \
	-- $T/bin/afm7 --weights $T/theta --tokens 1,2,3

# a nested field: Llama 4's text_config.rope_scaling
mkdir -p $T/l4
ln -sf "$(pwd)/tests/golden/llama4/model.safetensors" $T/l4/model.safetensors
sed 's/"factor": 8.0/"factor": 16.0/' tests/golden/llama4/config.json >$T/l4/config.json
expect "a nested field that differs" "l4/config.json" "'text_config.rope_scaling.factor' is 16.0 here, 8.0" \
	-- ./lmcc run tests/golden/llama4 --weights $T/l4 --tokens 1,2

# a 4-layer program and a 6-layer checkpoint
sed 's/"num_layers": 4/"num_layers": 6/' $G/config.json >$T/six.json
./lmcc init $T/six.json -o $T/six --seed 1 >/dev/null 2>&1 || echo "FAIL strict: init six"
expect "a 4-layer program, a 6-layer checkpoint" "six/config.json" "'num_layers'" \
	-- $T/bin/afm7 --weights $T/six --tokens 1,2,3
# a 4-layer config beside 6-layer weights: the extra tensors are refused
mkdir -p $T/lie
cp $G/config.json $T/lie/
ln -sf "$(pwd)/$T/six/model.safetensors" $T/lie/model.safetensors
expect "a 4-layer config beside 6-layer weights (lmcc run)" "lie/model.safetensors" "is not part of lie" \
	-- ./lmcc run $T/lie --tokens 1,2,3
./lmcc build $T/lie -o $T/liebin 2>/dev/null
expect "a 4-layer config beside 6-layer weights (built)" "lie/model.safetensors" "is not part of lie" \
	-- $T/liebin/lie --tokens 1,2,3

# what the reference drops is dropped (Llama 4's vision tower, Kimi's
# multi-token-prediction head); anything else beside them is not
make -s tests/bin/stedit tests/bin/npycmp >/dev/null
extra() {   # CASE DIR TENSOR: the case with one more (empty) tensor;
	# an empty one, since tensors that share bytes are refused
	mkdir -p $2
	cp tests/golden/$1/config.json $2/
	tests/bin/stedit tests/golden/$1/model.safetensors $2/model.safetensors header '{' \
		"{\"$3\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}," \
		|| echo "FAIL strict: stedit $1"
}
dropped() {   # NAME CASE TENSOR
	extra $2 $T/d_$2 "$3"
	./lmcc run $T/d_$2 --tokens @tests/golden/$2/tokens.npy --logits-out $T/d.npy 2>$T/err
	if r=$(tests/bin/npycmp $T/d.npy tests/golden/$2/logits.npy); then
		echo "PASS strict $1 is dropped as the reference drops it: $r"
	else
		echo "FAIL strict $1 is dropped: $r $(head -c 200 $T/err)"
	fi
}
dropped "Llama 4's vision tower" llama4 vision_model.patch_embedding.weight
dropped "Llama 4's multi-modal projector" llama4 multi_modal_projector.linear_1.weight
dropped "Kimi's MTP head" kimi_linear model.mtp.0.enorm.weight
extra llama4 $T/x_llama4 language_model.model.layers.0.extra.weight
expect "a tensor Llama 4 does not account for" "model.safetensors" "language_model.model.layers.0.extra.weight" \
	-- ./lmcc run $T/x_llama4 --tokens 1,2
extra afm7 $T/x_afm7 vision_model.patch_embedding.weight
expect "a vision tower where AFM-7 has none" "model.safetensors" "vision_model.patch_embedding.weight" \
	-- ./lmcc run $T/x_afm7 --tokens 1,2
if ./lmcc plan $T/d_llama4 | grep -q "multi_modal_projector.linear_1.weight"; then
	echo "PASS strict lmcc plan names the checkpoint's tensors the model drops"
else
	echo "FAIL strict lmcc plan does not name the dropped tensors"
fi

# a context past the config's position limit, unless asked for
mkdir -p $T/short
ln -sf "$(pwd)/tests/golden/baichuan_m1/model.safetensors" $T/short/model.safetensors
sed 's/"max_position_embeddings": [0-9]*/"max_position_embeddings": 8/' \
	tests/golden/baichuan_m1/config.json >$T/short/config.json
grep -q '"max_position_embeddings": 8' $T/short/config.json || echo "FAIL strict: no max_position_embeddings to edit"
expect "a context past max_position_embeddings" "max_position_embeddings" "--allow-long-ctx" \
	-- ./lmcc run $T/short --tokens 1,2,3 -n 6 --ctx 9
expect "input plus generation past max_position_embeddings" "8" "--allow-long-ctx" \
	-- ./lmcc run $T/short --tokens 1,2,3,4,5,6 -n 3
if ./lmcc run $T/short --tokens 1,2,3,4,5,6 -n 3 --allow-long-ctx >/dev/null 2>$T/err; then
	echo "PASS strict --allow-long-ctx runs past max_position_embeddings"
else
	echo "FAIL strict --allow-long-ctx: $(head -c 200 $T/err)"
fi
