#!/bin/sh
# Command-line tests: bad input of every kind DESIGN.md lists must end with
# exit status 2 and one line on stderr naming the file and the field, both
# through `lmcc run` and through a built binary; good input must work.
cd "$(dirname "$0")/.." || exit 1
make -s tests/bin/stedit tests/bin/npycmp >/dev/null || { echo "FAIL cli: helpers do not build"; exit 0; }
T=tests/tmp/cli
rm -rf $T
mkdir -p $T
G=tests/golden/afm7
ST=tests/bin/stedit

# expect NAME WANT1 WANT2 -- command...: exit 2, one stderr line holding
# both strings.
expect() {
	name=$1 w1=$2 w2=$3
	shift 4
	"$@" >$T/out 2>$T/err
	rc=$?
	lines=$(wc -l <$T/err)
	msg=$(head -c 300 $T/err)
	if [ $rc -ne 2 ]; then
		echo "FAIL cli $name: exit $rc, expected 2: $msg"
	elif [ "$lines" -ne 1 ]; then
		echo "FAIL cli $name: $lines lines on stderr, expected 1: $msg"
	elif ! grep -qF -- "$w1" $T/err || ! grep -qF -- "$w2" $T/err; then
		echo "FAIL cli $name: message lacks '$w1' or '$w2': $msg"
	else
		echo "PASS cli $name"
	fi
}

# model DIR EDIT...: a copy of the afm7 case whose checkpoint is damaged
model() {
	d=$T/$1
	shift
	mkdir -p $d
	cp $G/config.json $d/
	$ST $G/model.safetensors $d/model.safetensors "$@" || echo "FAIL cli: stedit $*"
}

# the same bad checkpoint through lmcc run and through a built binary
./lmcc build $G -o $T/bin 2>/dev/null || echo "FAIL cli: cannot build afm7"
both() {
	what=$1 dir=$4
	expect "$what (lmcc run)" "$2" "$3" -- ./lmcc run $dir --tokens 1,2,3
	expect "$what (built binary)" "$2" "$3" -- $T/bin/afm7 --weights $dir --tokens 1,2,3
}

model trunc truncate 100000
both "truncated safetensors" "trunc/model.safetensors" "past the end" $T/trunc
model tiny truncate 5
both "file shorter than its header length" "tiny/model.safetensors" "truncated" $T/tiny
model hlen hlen 99999999
both "header length past the end" "hlen/model.safetensors" "header length" $T/hlen
model offs header '"data_offsets":[0,32768]' '"data_offsets":[0,3276800]'
both "offset past the end" "offs/model.safetensors" "model.embedding.weight" $T/offs
model size header '"data_offsets":[0,32768]' '"data_offsets":[0,32764]'
both "offsets disagree with the shape" "size/model.safetensors" "model.embedding.weight" $T/size
model missing header '"model.output_norm.weight"' '"model.output_norm.weigth"'
both "missing tensor" "missing/model.safetensors" "'model.output_norm.weight' is missing" $T/missing
model shape header '"shape":[128,64]' '"shape":[64,128]'
both "wrong shape" "shape/model.safetensors" "shape [64, 128], expected [128, 64]" $T/shape
model dtype header '"dtype":"F32","shape":[128,64]' '"dtype":"I32","shape":[128,64]'
both "integer dtype" "dtype/model.safetensors" "dtype is not F32, F16 or BF16" $T/dtype
model json header '{"model.embedding.weight"' '["model.embedding.weight"'
both "header not JSON" "json/model.safetensors" "header is not a JSON object" $T/json
model nodt header '"dtype":"F32","shape":[128,64]' '"dtype":"Q7","shape":[128,64]'
both "unknown dtype" "nodt/model.safetensors" "unknown dtype" $T/nodt
mkdir -p $T/empty && cp $G/config.json $T/empty/
both "no checkpoint" "empty" "no model.safetensors" $T/empty

# sharded checkpoints: a shard name may not leave the directory
mkdir -p $T/shard
cp $G/config.json $T/shard/
printf '{"weight_map": {"model.embedding.weight": "../afm7/model.safetensors"}}' \
	>$T/shard/model.safetensors.index.json
both "shard outside the model directory" "model.safetensors.index.json" "weight_map" $T/shard
mkdir -p $T/shard2
cp $G/config.json $T/shard2/
cp $G/model.safetensors $T/shard2/part-1.safetensors
printf '{"metadata": {}, "weight_map": {"model.embedding.weight": "part-1.safetensors"}}' \
	>$T/shard2/model.safetensors.index.json
./lmcc run $T/shard2 --tokens @$G/tokens.npy --logits-out $T/shard.npy 2>$T/err
if tests/bin/npycmp $T/shard.npy $G/logits.npy >/dev/null; then
	echo "PASS cli sharded checkpoint gives the golden logits"
else
	echo "FAIL cli sharded checkpoint: $(head -c 200 $T/err)"
fi

# configs
cfg() {
	d=$T/$1
	mkdir -p $d
	ln -sf "$(pwd)/$G/model.safetensors" $d/model.safetensors
	sed "$2" $G/config.json >$d/config.json
}
cfg ctype 's/"hidden_dim": 64/"hidden_dim": "64"/'
expect "config field of the wrong type" "ctype/config.json" "field 'hidden_dim'" -- ./lmcc plan $T/ctype
expect "config field of the wrong type (build)" "ctype/config.json" "field 'hidden_dim'" -- ./lmcc build $T/ctype -o $T/x
cfg cneg 's/"num_heads": 4/"num_heads": -4/'
expect "config field out of range" "cneg/config.json" "field 'num_heads'" -- ./lmcc run $T/cneg --tokens 1
cfg cdiv 's/"num_heads": 4/"num_heads": 5/'
expect "heads not dividing the hidden size" "cdiv/config.json" "field 'num_heads'" -- ./lmcc plan $T/cdiv
cfg cmiss 's/"num_layers": 4,//'
expect "missing config field" "cmiss/config.json" "field 'num_layers': missing" -- ./lmcc plan $T/cmiss
cfg ctype2 's/"model_type": "afm7"/"model_type": "gpt9"/'
expect "unknown model_type" "ctype2/config.json" "field 'model_type'" -- ./lmcc run $T/ctype2 --tokens 1
cfg creuse 's/"num_kv_reuse_layers": 2/"num_kv_reuse_layers": 4/'
expect "every layer a KV-reuse layer" "creuse/config.json" "num_kv_reuse_layers" -- ./lmcc plan $T/creuse
cfg cjson 's/"vocab_size": 128,/"vocab_size": 128/'
expect "config not JSON" "cjson/config.json" "not valid JSON" -- ./lmcc plan $T/cjson
expect "no config" "nothing" "cannot open" -- ./lmcc plan $T/nothing

# run options
expect "token id past the vocabulary" "--tokens" "id 128 is not below vocab_size 128" -- ./lmcc run $G --tokens 1,128
expect "token id past the vocabulary (built)" "--tokens" "id 999 is not below" -- $T/bin/afm7 --tokens 5,999
expect "token id in a .npy past the vocabulary" "tokens.npy" "not below vocab_size" -- $T/bin/afm7 --tokens @tests/golden/baichuan_m1/tokens.npy
expect "input longer than --ctx" "--ctx" "longer than the context of 3" -- ./lmcc run $G --tokens 1,2,3,4 --ctx 3
expect "input plus generation longer than --ctx (built)" "--ctx" "longer than the context" -- $T/bin/afm7 --tokens 1,2,3 -n 2 --ctx 4
expect "bad token list" "--tokens" "comma-separated" -- $T/bin/afm7 --tokens 1,x
expect "negative -n" "-n" "not an integer" -- $T/bin/afm7 --tokens 1 -n -1
expect "unknown option" "--frobnicate" "unknown option" -- $T/bin/afm7 --frobnicate
expect "option without its value" "--chunk" "needs a value" -- $T/bin/afm7 --tokens 1 --chunk
expect "token file not .npy" "config.json" "not a .npy" -- $T/bin/afm7 --tokens @$G/config.json
expect "token file of floats" "logits.npy" "1-D int32 or int64" -- $T/bin/afm7 --tokens @$G/logits.npy

# the command line as people type it: --opt=value, -n5, options before
# MODEL_DIR, the names of mlx-lm and llama.cpp
same_ids() {
	name=$1
	shift
	got=$("$@" 2>$T/err)
	want=$($T/bin/afm7 --tokens 1,2,3 -n 5 2>/dev/null)
	if [ -n "$want" ] && [ "$got" = "$want" ]; then
		echo "PASS cli $name"
	else
		echo "FAIL cli $name: '$got', expected '$want': $(head -c 200 $T/err)"
	fi
}
same_ids "--opt=value, -n5 and options before MODEL_DIR (lmcc run)" ./lmcc run --tokens=1,2,3 -n5 $G
same_ids "aliases -m, --max-tokens, -c, -s, -t (built)" $T/bin/afm7 -m $G --tokens 1,2,3 --max-tokens 5 -c 64 -s 1 -t 1
same_ids "aliases --model, --ctx-size, --n-predict, --seed= (lmcc run)" ./lmcc run $G --model=$G --tokens 1,2,3 --n-predict=5 --ctx-size 9 --seed=3
expect "misspelt option suggests the closest" "--tokns" "did you mean --tokens?" -- ./lmcc run $G --tokns 1
expect "misspelt option suggests the closest (built)" "--temprature" "did you mean --temperature?" -- $T/bin/afm7 --tokens 1 --temprature 1
expect "misspelt subcommand option" "--outptu" "did you mean --output?" -- ./lmcc build $G --outptu x
expect "misspelt command" "bulid" "did you mean build?" -- ./lmcc bulid $G
expect "flag given a value" "--chat" "takes no value" -- ./lmcc run $G --chat=yes
expect "stray argument to a built binary" "$G" "unexpected argument" -- $T/bin/afm7 $G --tokens 1
expect "two model directories" "run" "unexpected argument" -- ./lmcc run $G $G --tokens 1
v=$(./lmcc --version)
vb=$($T/bin/afm7 --version)
if echo "$v" | grep -Eq '^lmcc [0-9]+\.[0-9]+\.[0-9]+ \(commit [0-9a-f]{7,}' && echo "$vb" | grep -qF "$v" \
   && echo "$vb" | grep -q "golden/afm7"; then
	echo "PASS cli --version names the version, the commit and a binary's model ($v)"
else
	echo "FAIL cli --version: '$v' / '$vb'"
fi

# good input
if ./lmcc run $G --help | grep -q -- "--logits-out"; then echo "PASS cli lmcc run --help lists the run options"; else echo "FAIL cli lmcc run --help"; fi
for c in plan emit build run init; do
	if ./lmcc $c --help | grep -q "usage: lmcc $c"; then echo "PASS cli lmcc $c --help"; else echo "FAIL cli lmcc $c --help"; fi
done
ids=$($T/bin/afm7 --tokens @$G/tokens.npy -n 5 2>$T/err)
ids2=$(./lmcc run $G --tokens @$G/tokens.npy -n 5 --chunk 3 2>/dev/null)
if echo "$ids" | grep -Eq '^[0-9]+(,[0-9]+){4}$' && [ "$ids" = "$ids2" ] && grep -q "decode" $T/err; then
	echo "PASS cli greedy generation is the same built and JIT, chunked or not ($ids)"
else
	echo "FAIL cli greedy generation: '$ids' vs '$ids2': $(cat $T/err)"
fi
s1=$($T/bin/afm7 --tokens 1,2,3 -n 8 --temp 0.8 --top-p 0.9 --top-k 20 --seed 7 2>/dev/null)
s2=$($T/bin/afm7 --tokens 1,2,3 -n 8 --temp 0.8 --top-p 0.9 --top-k 20 --seed 7 2>/dev/null)
s3=$($T/bin/afm7 --tokens 1,2,3 -n 8 --temp 0.8 --seed 8 2>/dev/null)
if [ -n "$s1" ] && [ "$s1" = "$s2" ] && [ "$s1" != "$s3" ]; then
	echo "PASS cli seeded sampling repeats, and another seed differs"
else
	echo "FAIL cli seeded sampling: '$s1' '$s2' '$s3'"
fi

# lmcc run: generate, compile in memory and reach the first logits in
# well under a second (issue 2 asks for one second); under a sanitizer
# (make test-asan, test-ubsan), LMCC_SLOW seconds.
slow=${LMCC_SLOW:-1}
t0=$(date +%s%N)
./lmcc run $G --tokens @$G/tokens.npy -n 1 >/dev/null 2>&1
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
if [ $ms -lt $((1000 * slow)) ]; then
	echo "PASS cli lmcc run reaches its first logits within $slow s (${ms} ms)"
else
	echo "FAIL cli lmcc run took ${ms} ms to its first logits (the bound: $slow s)"
fi
