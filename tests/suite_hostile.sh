#!/bin/sh
# Hostile files and runs (issue 15): configs, checkpoints, resources,
# concurrent builds and sampling.  Each case once crashed, hung, wrapped
# or exhausted the machine; now it ends with exit 2 and one line on stderr
# naming the file (or option) and the limit, in bounded time.
cd "$(dirname "$0")/.." || exit 1
T=tests/tmp/hostile
rm -rf $T
mkdir -p $T
G=tests/golden/afm7

# refuse NAME WANT -- command...: exit 2 within 60 s, one stderr line holding WANT
refuse() {
	name=$1 want=$2
	shift 3
	timeout 60 "$@" >$T/out 2>$T/err </dev/null
	rc=$?
	msg=$(head -c 300 $T/err)
	if [ $rc -eq 2 ] && [ "$(wc -l <$T/err)" -eq 1 ] && grep -qF -- "$want" $T/err; then
		echo "PASS hostile $name"
	else
		echo "FAIL hostile $name: exit $rc, expected 2 and '$want': $msg"
	fi
}

# ---- configs ----
cfgdir() {   # NAME: a directory for a config written to stdin
	mkdir -p $T/$1 && cat >$T/$1/config.json
}
sed 's/"model_type": "afm7"/"model_type": "afm7\\u0000junk"/' $G/config.json | cfgdir nul
refuse "config string with a NUL" "field 'model_type': the string contains a NUL character" -- ./lmcc plan $T/nul
{ cat $G/config.json; echo '{"model_type": "llama4"}'; } | cfgdir trailing
refuse "config with data after the object" "config.json: line" -- ./lmcc plan $T/trailing
grep -q "data after the JSON object" $T/err || echo "FAIL hostile trailing data: $(cat $T/err)"
{ cat $G/config.json; printf ' \n\t\n'; } | cfgdir spaces
./lmcc plan $T/spaces >/dev/null 2>$T/err && echo "PASS hostile white space after the config is fine" ||
	echo "FAIL hostile white space after the config: $(cat $T/err)"
# a Llama 4 whose chunked caches take 2^53 bytes per layer, 1024 layers:
# the sum wrapped to -9223372036854775808 bytes
python3 - $T/l4big.json <<'PY' 2>/dev/null && cfgdir l4big <$T/l4big.json
import json, sys
c = json.load(open("tests/llama4/scout_config.json"))
t = c.get("text_config", c)
t.update(hidden_size=64, num_attention_heads=512, num_key_value_heads=512, head_dim=2048,
         attention_chunk_size=1 << 30, num_hidden_layers=1024, intermediate_size=64,
         intermediate_size_mlp=64, num_local_experts=1, vocab_size=100)
t.pop("no_rope_layers", None)
t.pop("moe_layers", None)
json.dump(c, open(sys.argv[1], "w"))
PY
if [ -f $T/l4big/config.json ]; then
	refuse "cache size past 2^50 bytes" "l4big/config.json: the model's cache would take 2^50 bytes or more" -- ./lmcc plan $T/l4big
else
	echo "FAIL hostile cache size past 2^50 bytes: the config was not written (python3?)"
fi

# ---- checkpoints ----
make -s tests/bin/stedit >/dev/null || echo "FAIL hostile: stedit does not build"
ckdir() {   # NAME: a model directory with the golden config and no weights
	rm -rf $T/$1 && mkdir -p $T/$1 && cp $G/config.json $T/$1/ && echo $T/$1
}
header_only() {   # FILE JSON: a safetensors file of that header and no data
	n=$(printf '%s' "$2" | wc -c)
	python3 -c "import struct,sys; sys.stdout.buffer.write(struct.pack('<Q', $n))" >$1
	printf '%s' "$2" >>$1
}
d=$(ckdir empty); header_only $d/model.safetensors '{}'
refuse "checkpoint header {}" "empty/model.safetensors: the checkpoint holds no tensor" -- ./lmcc run $d --tokens 1
d=$(ckdir meta); header_only $d/model.safetensors '{"__metadata__": {"format": "pt"}}'
refuse "checkpoint of only __metadata__" "meta/model.safetensors: the checkpoint holds no tensor" -- ./lmcc run $d --tokens 1
d=$(ckdir emptymap); echo '{"weight_map": {}}' >$d/model.safetensors.index.json
refuse "index with an empty weight_map" "emptymap/model.safetensors.index.json: the checkpoint holds no tensor" -- ./lmcc run $d --tokens 1
# overlapping tensors: the output norm aliased onto the embedding
off=$(grep -ao '"model.output_norm.weight":{[^}]*}' $G/model.safetensors | grep -o 'data_offsets":\[[0-9]*,[0-9]*\]')
d=$(ckdir overlap); tests/bin/stedit $G/model.safetensors $d/model.safetensors header "$off" 'data_offsets":[0,256]'
refuse "overlapping tensor offsets" "overlap/model.safetensors: tensors" -- ./lmcc run $d --tokens 1
grep -q "overlap (data_offsets" $T/err || echo "FAIL hostile overlapping tensors: $(cat $T/err)"
# (a sparse file long enough to hold the header: the bound, not the size)
d=$(ckdir bighdr); tests/bin/stedit $G/model.safetensors $d/model.safetensors hlen 104857601
truncate -s 200M $d/model.safetensors
refuse "header over 100 MB" "header length 104857601: more than the 100 MB lmcc reads" -- ./lmcc run $d --tokens 1
# FIFOs in place of every file: refused at once, never a blocked open
for f in model.safetensors model.safetensors.index.json config.json; do
	d=$(ckdir fifo_${f%%.*}_$(echo $f | tr -cd . | wc -c))
	[ $f = config.json ] && { rm $d/config.json; ln -s "$PWD/$G/model.safetensors" $d/model.safetensors; }
	mkfifo $d/$f
	refuse "a FIFO as $f (lmcc run)" "$f: not a regular file" -- ./lmcc run $d --tokens 1
done
d=$(ckdir fifo_shard); mkfifo $d/model-00001-of-00001.safetensors
refuse "a FIFO as a shard" "model-00001-of-00001.safetensors: not a regular file" -- ./lmcc run $d --tokens 1
# changed under a running model: WHAT CHANGE WANT, the change a shell
# command on $f one second into a long run, which must end with exit 2
under_run() {
	what=$1 change=$2 want=$3
	d=$(ckdir $what); cp $G/model.safetensors $d/; f=$d/model.safetensors
	( timeout 60 $T/shrinkbin/shrink --weights $d --tokens 1,2,3 -n 100000 --ctx 100010 \
		>/dev/null 2>$T/$what.err; echo $? >$T/$what.rc ) &
	sleep 1
	eval "$change"
	wait
	rc=$(cat $T/$what.rc)
	if [ "$rc" = 2 ] && grep -q "$what/model.safetensors: $want" $T/$what.err; then
		echo "PASS hostile checkpoint $what under a running model: exit 2 naming it"
	else
		echo "FAIL hostile checkpoint $what under a running model: exit $rc, $(head -c 200 $T/$what.err)"
	fi
}
./lmcc build $G -o $T/shrinkbin 2>/dev/null && mv $T/shrinkbin/afm7 $T/shrinkbin/shrink
under_run truncated 'truncate -s 1000 $f' "the file shrank while the model was reading it"
under_run rewritten 'printf x | dd of=$f bs=1 seek=100000 conv=notrunc 2>/dev/null' \
	"the file was rewritten while the model ran"

# A checkpoint or tokenizer that fails to open leaves nothing behind: the
# C API and the server catch the failure and go on.  A failed checkpoint
# once stayed watched, and its next change in place ended the process
# (the fuzz target died so); a failed tokenizer kept all it had read.
make -s tests/bin/test_reopen >/dev/null || echo "FAIL hostile: test_reopen does not build"
d=$(ckdir badtensor); header_only $d/model.safetensors '{"a": {"dtype": "F32"}}'
got=$(timeout 60 tests/bin/test_reopen ck $d 2>$T/err)
[ "$got" = alive ] && echo "PASS hostile a checkpoint that failed to open is no longer watched" ||
	echo "FAIL hostile failed checkpoint open: '$got' $(head -c 200 $T/err)"
# kept_nothing NAME N -- ARGS...: test_reopen ARGS fails N times and keeps
# nothing: LeakSanitizer judges under ASan, resident memory otherwise
kept_nothing() {
	name=$1 n=$2
	shift 3
	got=$(ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=1" timeout 300 tests/bin/test_reopen "$@" 2>$T/err)
	rc=$?
	grew=${got#failed $n grew }
	[ "$LMCC_SANITIZE" = asan ] && [ "$grew" != "$got" ] && grew=0
	if [ $rc -eq 0 ] && [ "$grew" != "$got" ] && [ "$grew" -lt 20 ]; then
		echo "PASS hostile $name kept nothing"
	else
		echo "FAIL hostile $name: exit $rc, '$got' (MB grown after the first) $(head -c 300 $T/err)"
	fi
}
rm -rf $T/badtok && mkdir -p $T/badtok
{ cat tests/tokenizers/llama3/tokenizer.model; echo "IQ== 1"; } >$T/badtok/tokenizer.model
kept_nothing "a tokenizer that failed to open 20 times" 20 -- tok $T/badtok 20
# the server's requests whose chat template raises: each once kept its
# body's JSON and its messages (a megabyte each here)
printf '%s' '{{ raise_exception("no") }}' >$T/raise.jinja
kept_nothing "30 requests whose template raises" 30 -- req tests/tokenizers/afm7_newline $T/raise.jinja 30
# pre-tokenizer steps that fail: the list of steps, a literal's pattern
for pre in '{"type": "Sequence", "pretokenizers": [{"type": "Split", "pattern": {"Regex": "("}, "behavior": "Isolated"}]}' \
    '{"type": "Sequence", "pretokenizers": [{"type": "Split", "pattern": {"String": "\\E("}, "behavior": "Isolated"}]}' \
    '{"type": "Sequence", "pretokenizers": [{"type": "Split", "pattern": {"Regex": "[a"}, "behavior": "Isolated"}]}'; do
	rm -rf $T/badpre && mkdir -p $T/badpre
	python3 -c "import json,sys; json.dump({'model': {'type': 'BPE', 'vocab': {'a': 0}, 'merges': []},
  'pre_tokenizer': json.loads(sys.argv[1])}, sys.stdout)" "$pre" >$T/badpre/tokenizer.json
	kept_nothing "a pre-tokenizer that fails ($pre)" 20 -- tok $T/badpre 20
done
rm -rf $T/twomodels && mkdir -p $T/twomodels
cp tests/tokenizers/baichuan_m1/tokenizer.model $T/twomodels/a.model
cp tests/tokenizers/baichuan_m1/tokenizer.model $T/twomodels/b.model
kept_nothing "a directory of several .model files" 20 -- tok $T/twomodels 20
# shards without an index, the first of them bad
d=$(ckdir badglob)
header_only $d/model-00001-of-00002.safetensors '{"a": {"dtype": "F32"}}'
header_only $d/model-00002-of-00002.safetensors '{"b": {"dtype": "F32"}}'
kept_nothing "shards without an index that fail to open" 20 -- ck $d 20
# an encoding whose pre-tokenizer regex fails midway (PCRE2's match limit)
rm -rf $T/failenc && mkdir -p $T/failenc
python3 -c "import json,sys; json.dump({'model': {'type': 'BPE', 'vocab': {'a': 0, 'b': 1}, 'merges': []},
  'pre_tokenizer': {'type': 'Split', 'pattern': {'Regex': '(a|a)*$'}, 'behavior': 'Isolated'}}, sys.stdout)" >$T/failenc/tokenizer.json
kept_nothing "an encoding whose regex fails" 3 -- enc $T/failenc "b aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab" 3
# a JSON value with text after it (the tokjson fuzzer's leak): the value
# parsed before the refusal was kept
rm -rf $T/trailtok && mkdir -p $T/trailtok
printf '0<' >$T/trailtok/tokenizer.json
kept_nothing "a tokenizer.json with text after its value" 20 -- tok $T/trailtok 20

# adapters that fail to open: a key past the first that is not a module
# path (the keys read before it were kept), a truncated checkpoint
A=tests/golden-mlx/afm7_lora/adapter
rm -rf $T/badkeys $T/noad && mkdir -p $T/badkeys $T/noad
python3 -c "import json,sys; c = json.load(open('$A/adapter_config.json'))
c['lora_parameters']['keys'] = ['self_attn.q_proj', 'not a key!']
json.dump(c, open('$T/badkeys/adapter_config.json', 'w'))"
cp $A/adapters.safetensors $T/badkeys/
cp $A/adapter_config.json $T/noad/
tests/bin/stedit $A/adapters.safetensors $T/noad/adapters.safetensors truncate 1000
kept_nothing "an adapter whose keys fail to read" 20 -- ad $T/badkeys 20
kept_nothing "a truncated adapter" 20 -- ad $T/noad 20

# The C API (lmcc_api.h), as a host that goes on after each failure uses
# it.  A model directory that fails to compile (lmcc emit refuses it, or
# tcc the C a stand-in lmcc wrote) leaves no directory in $TMPDIR.
jit_kept_nothing() {   # NAME N LMCC DIR
	rm -rf $T/jittmp && mkdir -p $T/jittmp
	TMPDIR=$PWD/$T/jittmp LMCC=$3 kept_nothing "$1" $2 -- jit $4 $2
	[ -z "$(ls $T/jittmp)" ] && echo "PASS hostile $1 leaves nothing in TMPDIR" ||
		echo "FAIL hostile $1 left $(ls $T/jittmp | head -3) in TMPDIR"
}
jit_kept_nothing "lm_open_dir of a config lmcc refuses" 10 ./lmcc $T/nul
mkdir -p $T/fakelmcc
printf '#!/bin/sh\nprintf "int x = ;" >"$4/model.c"\n' >$T/fakelmcc/lmcc && chmod +x $T/fakelmcc/lmcc
jit_kept_nothing "lm_open_dir of C that tcc refuses" 10 $T/fakelmcc/lmcc $G
# sessions that fail to open: no checkpoint there, another model's
# config, a checkpoint whose last layer lacks a tensor (create() fails
# after binding the first layers and their caches), a context past the
# memory (create() fails at a cache); and sessions opened and freed
session_kept_nothing() {   # NAME MODEL WEIGHTS CTX N FAILS
	LMCC=./lmcc kept_nothing "$1" $6 -- session $2 $3 $4 $5
}
session_kept_nothing "a session on a directory with no checkpoint" tests/golden/llama4 $T/nothere 64 10 10
session_kept_nothing "a session on another model's checkpoint" tests/golden/llama4 tests/golden/llama4_3layers 64 10 10
d=$(ckdir lastlayer)
tests/bin/stedit $G/model.safetensors $d/model.safetensors header \
	'"model.kv_reuse_layers.1.mlp.down_proj.weight"' '"model.kv_reuse_layers.1.mlp.down_proj.weighx"'
session_kept_nothing "a session whose create() fails at the last layer" $G $d 4096 20 20
./lmcc init tests/configs/demo_afm7.json -o $T/demoapi --dtype bf16 >/dev/null 2>&1
session_kept_nothing "a session whose caches exceed the memory" $T/demoapi - 16777216 10 10
session_kept_nothing "sessions opened and freed" $G - 4096 20 0

# ---- tokenizer files and other text (item 3's time bounds) ----
# tokjson DIR PRE MERGES: a tokenizer.json of vocabulary a, b, ab, with the
# pre-tokenizer PRE (JSON) and MERGES copies of the merge "a b"
tokjson() {
	mkdir -p $1 && python3 -c "import json,sys; json.dump({'model': {'type': 'BPE', 'vocab': {'a': 0, 'b': 1, 'ab': 2},
  'merges': ['a b'] * int(sys.argv[2])}, 'pre_tokenizer': json.loads(sys.argv[1])}, sys.stdout)" "$2" "$3" >$1/tokenizer.json
}
# a merges list of two million: read in bounded time, and it tokenizes
tokjson $T/merges null 2000000
got=$(timeout 60 ./lmcc tokenize $T/merges abab 2>$T/err)
[ "$got" = "2,2" ] && echo "PASS hostile two million merges read in bounded time" ||
	echo "FAIL hostile two million merges: '$got' $(head -c 200 $T/err)"
# a regex that backtracks exponentially: PCRE2's match limit, then exit 2
tokjson $T/backtrack '{"type": "Split", "pattern": {"Regex": "(a|a)*$"}, "behavior": "Isolated"}' 1
refuse "a pre-tokenizer regex that backtracks forever" "pre-tokenizer regex on a piece of" -- \
	./lmcc tokenize $T/backtrack aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab
# JSON nested 100,000 deep: json-c's depth limit in every reader
mkdir -p $T/deeptok $T/deepcfg
python3 -c "print('[' * 100000)" >$T/deeptok/tokenizer.json
refuse "a tokenizer.json nested 100000 deep" "deeptok/tokenizer.json: line 1: bad JSON (nesting too deep)" -- \
	./lmcc tokenize $T/deeptok a
python3 -c "print('{\"a\":' * 100000)" >$T/deepcfg/config.json
refuse "a config.json nested 100000 deep" "deepcfg/config.json: line 1: not valid JSON: nesting too deep" -- \
	./lmcc plan $T/deepcfg
# text files past 128 MiB: refused before a byte is read (sparse files)
mkdir -p $T/bigtok $T/bigcfg
truncate -s 129M $T/bigtok/tokenizer.json $T/bigcfg/config.json
refuse "a tokenizer.json of 129 MiB" "bigtok/tokenizer.json: 135266304 bytes, more than the 128 MiB" -- \
	./lmcc tokenize $T/bigtok a
refuse "a config.json of 129 MiB" "bigcfg/config.json: 135266304 bytes, more than the 128 MiB" -- \
	./lmcc plan $T/bigcfg

# ---- resources ----
# lmcc init of a 0.6 PB checkpoint: refused before the first byte
sed 's/"hidden_dim": 512/"hidden_dim": 65536/; s/"num_layers": 8/"num_layers": 1024/; s/"num_heads": 8/"num_heads": 64/' \
	tests/configs/demo_afm7.json >$T/huge.json
refuse "lmcc init past the free space" "needs" -- ./lmcc init $T/huge.json -o $T/huge
grep -q "bytes of weights, and the file system has" $T/err && [ ! -e $T/huge/model.safetensors ] ||
	echo "FAIL hostile init past the free space: $(cat $T/err; ls $T/huge)"
# a context of 2^24 tokens at 5 KB a token: 86 GB of cache, refused with the
# bytes; a smaller one costs memory only as it fills
./lmcc init tests/configs/demo_afm7.json -o $T/demo --dtype bf16 >/dev/null 2>&1
refuse "--ctx 2^24 past the memory" "lmcc: memory: the model's caches and buffers need" -- \
	./lmcc run $T/demo --tokens 1,2,3 --ctx 16777216 --allow-long-ctx
refuse "-n 2^24 past the memory" "lmcc: memory: the model's caches and buffers need" -- \
	./lmcc run $T/demo --tokens 1,2,3 -n 16777216 --allow-long-ctx
mem=$(./lmcc run $G --tokens 1,2,3 -n 2 --ctx 4000000 --allow-long-ctx 2>&1 | sed -n 's/.*peak memory \([0-9]*\).*/\1/p')
[ -n "$mem" ] && [ "$mem" -lt 1000 ] && echo "PASS hostile a cache for 4M tokens costs memory only as it fills ($mem MB)" ||
	echo "FAIL hostile a cache for 4M tokens: peak memory '$mem' MB"

# The generated code of a config at plan's maxima (1024 layers, 4096
# experts) stays small enough for gcc to build in bounded time: a layer
# more costs a few lines (its state, its bind and reset calls, its call
# in forward and step), never a copy of a layer's code, and experts cost
# none.  Before create() was one call per layer, afm7 at 1024 layers was
# 19,323 lines (19 a layer) and kept gcc busy for minutes.
python3 - $T/size <<'PY' >$T/size.out 2>&1
import json, os, subprocess, sys
out = sys.argv[1]
def lines(name, edit):
    c = json.load(open("tests/golden/%s/config.json" % name))
    edit(c)
    d = "%s/%s_%d" % (out, name, len(os.listdir(out)) if os.path.isdir(out) else 0)
    os.makedirs(d)
    json.dump(c, open(d + "/config.json", "w"))
    r = subprocess.run(["./lmcc", "emit", d, "-o", d + "/out"], capture_output=True, text=True)
    if r.returncode:
        sys.exit("%s: lmcc emit: %s" % (name, r.stderr.strip()))
    return sum(1 for _ in open(d + "/out/model.c"))
def layers(key, n, more=None):
    def edit(c):
        t = c.get("text_config", c)
        t[key] = n
        if more:
            more(t, n)
    return edit
kda = lambda t, n: t["linear_attn_config"].update(kda_layers=list(range(1, n + 1)), full_attn_layers=[])
cases = [("afm7", "num_layers", lambda t, n: t.update(num_kv_reuse_layers=0)),
         ("baichuan_m1", "num_hidden_layers", lambda t, n: t.update(sliding_window_layers=[])),
         ("plamo2", "num_hidden_layers", None),
         ("kimi_all_kda", "num_hidden_layers", kda),
         ("llama4", "num_hidden_layers", lambda t, n: t.update(no_rope_layers=[1, 1, 1, 0] * (n // 4)))]
bad = 0
for name, key, more in cases:
    a, b = lines(name, layers(key, 4, more)), lines(name, layers(key, 1024, more))
    per = (b - a) / 1020
    print("%s: %d lines at 4 layers, %d at 1024: %.1f a layer" % (name, a, b, per))
    bad += per > 12
def experts(n):
    return lambda c: c.update(num_experts=n)
a, b = lines("kimi_linear", experts(8)), lines("kimi_linear", experts(4096))
print("kimi_linear: %d lines at 8 experts, %d at 4096" % (a, b))
bad += b != a
sys.exit(bad)
PY
if [ $? -eq 0 ]; then
	echo "PASS hostile generated code grows by at most 12 lines a layer, none an expert"
else
	echo "FAIL hostile generated code size: $(tr '\n' ';' <$T/size.out)"
fi

# ---- two builds into one directory ----
# They shared model.c: one could compile the other's model and both exit 0.
B2=tests/golden/baichuan_m1
want_a=$(./lmcc run $G --tokens 1,2,3 -n 4 2>/dev/null)
want_b=$(./lmcc run $B2 --tokens 1,2,3 -n 4 2>/dev/null)
bad=""
for round in 1 2 3; do
	rm -rf $T/shared
	./lmcc build $G -o $T/shared 2>$T/b1 & p1=$!
	./lmcc build $B2 -o $T/shared 2>$T/b2 & p2=$!
	wait $p1 || bad="$bad round $round: afm7 build failed $(cat $T/b1);"
	wait $p2 || bad="$bad round $round: baichuan build failed $(cat $T/b2);"
	[ "$($T/shared/afm7 --tokens 1,2,3 -n 4 2>/dev/null)" = "$want_a" ] || bad="$bad round $round: afm7 binary is not afm7;"
	[ "$($T/shared/baichuan_m1 --tokens 1,2,3 -n 4 2>/dev/null)" = "$want_b" ] || bad="$bad round $round: baichuan_m1 binary is not baichuan_m1;"
	[ -z "$(ls $T/shared | grep -v '^afm7$\|^baichuan_m1$\|^model.c$')" ] || bad="$bad round $round: left $(ls $T/shared);"
done
[ -z "$bad" ] && echo "PASS hostile two concurrent builds into one directory each build their own model" ||
	echo "FAIL hostile concurrent builds:$bad"

# ---- sampling ----
# --top-p 0 read before the candidates; as in mlx-lm it is off, like 1
a=$(./lmcc run $G --tokens 1,2,3 -n 8 --temp 0.8 --top-p 0 --seed 5 2>$T/err)
b=$(./lmcc run $G --tokens 1,2,3 -n 8 --temp 0.8 --top-p 1 --seed 5 2>>$T/err)
[ -n "$a" ] && [ "$a" = "$b" ] && echo "PASS hostile --top-p 0 with a temperature samples as --top-p 1" ||
	echo "FAIL hostile --top-p 0: '$a' vs '$b' $(head -c 200 $T/err)"
# NaN weights: every byte of the data 0xFF, a NaN in BF16 and F32 alike
mkdir -p $T/nan && cp $G/config.json $T/nan/
hl=$(od -An -tu8 -N8 $G/model.safetensors | tr -d ' ')
size=$(wc -c <$G/model.safetensors)
{ head -c $((8 + hl)) $G/model.safetensors; head -c $((size - 8 - hl)) /dev/zero | tr '\0' '\377'; } >$T/nan/model.safetensors
refuse "NaN weights, greedy" "lmcc: logits: token 0 has a logit of NaN" -- ./lmcc run $T/nan --tokens 1,2,3 -n 4
refuse "NaN weights, sampling" "the weights hold NaN or infinity" -- ./lmcc run $T/nan --tokens 1,2,3 -n 4 --temp 0.7
exit 0
