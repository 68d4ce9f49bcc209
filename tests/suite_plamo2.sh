#!/bin/sh
# PLaMo-2 beyond the golden cases:
#   - the selective scan against its closed form (tests/bin/ssm);
#   - random checkpoints (lmcc init) of other sizes and schedules: the
#     built binary with the input whole must agree within the golden bound
#     with tests/plamo2/oracle.py, an independent float64 forward pass in
#     the reference's closed form, and with itself fed one token at a
#     time, in chunks of 3, and through `lmcc run`;
#   - the layer schedule rule, including num_hidden_layers <= mamba_step / 2
#     and mamba_enabled false;
#   - bad values of PLaMo-2's own fields: exit 2, one line naming
#     config.json and the field;
#   - `lmcc plan` of the released config: 8 Mamba and 8 attention layers,
#     alternating, and their cache bytes.
cd "$(dirname "$0")/.." || exit 1
make -s tests/bin/npycmp tests/bin/ssm >/dev/null || { echo "FAIL plamo2: cannot build test tools"; exit 0; }
tmp=tests/tmp/plamo2
rm -rf "$tmp"
mkdir -p "$tmp"

tests/bin/ssm

# config NAME LAYERS STEP ENABLED TIED: a small config with sizes unlike the
# golden cases' (GQA 6/2, head dim 8, 3 Mamba heads, state 12, 3 conv taps,
# dt_dim 64 > hidden / 16).
config() {
	mkdir -p "$tmp/$1"
	cat > "$tmp/$1/config.json" <<EOF
{
  "model_type": "plamo2",
  "vocab_size": 97,
  "hidden_size": 48,
  "intermediate_size": 40,
  "num_hidden_layers": $2,
  "num_attention_heads": 6,
  "num_key_value_heads": 2,
  "hidden_size_per_head": 8,
  "mamba_num_heads": 3,
  "mamba_d_state": 12,
  "mamba_d_conv": 3,
  "mamba_step": $3,
  "mamba_enabled": $4,
  "rms_norm_eps": 1e-05,
  "attention_window_size": 4,
  "tie_word_embeddings": $5
}
EOF
}

# schedule NAME EXPECTED: the mixer of each layer in `lmcc plan`.
schedule() {
	got=$(./lmcc plan "$tmp/$1" 2>&1 | awk '$1 ~ /^[0-9]+$/ { printf "%s%s", s, $2; s = " " }')
	if [ "$got" = "$2" ]; then
		echo "PASS plamo2 $1 schedule: $got"
	else
		echo "FAIL plamo2 $1 schedule: got '$got', want '$2'"
	fi
}

toks=5,17,3,96,0,42,42,8,61,13,77,2,30,30,30,54,9,88,1,70,23,65,11
# chunks NAME DTYPE: init, build, and compare four ways of running it.
chunks() {
	dir=$tmp/$1
	if ! ./lmcc init "$dir/config.json" -o "$dir" --seed 3 --dtype "$2" 2>"$dir/err" \
	   || ! ./lmcc build "$dir" -o "$dir/bin" 2>"$dir/err"; then
		echo "FAIL plamo2 $1 init/build: $(head -c 300 "$dir/err")"
		return
	fi
	if ! "$dir/bin/$1" --tokens $toks --logits-out "$dir/whole.npy" 2>"$dir/err"; then
		echo "FAIL plamo2 $1 whole: $(head -c 300 "$dir/err")"
		return
	fi
	if ! command -v python3 >/dev/null; then
		echo "plamo2 $1: no python3, oracle skipped"
	elif ! python3 tests/plamo2/oracle.py "$dir" $toks "$dir/oracle.npy" 2>"$dir/err"; then
		echo "FAIL plamo2 $1 oracle: $(head -c 300 "$dir/err")"
	elif r=$(tests/bin/npycmp "$dir/whole.npy" "$dir/oracle.npy"); then
		echo "PASS plamo2 $1 whole vs oracle: $r"
	else
		echo "FAIL plamo2 $1 whole vs oracle: $r"
	fi
	for way in "chunk 1" "chunk 3" "lmcc run"; do
		out="$dir/$(echo "$way" | tr ' ' _).npy"
		case $way in
		chunk*) "$dir/bin/$1" --tokens $toks --logits-out "$out" --$way 2>"$dir/err" ;;
		*) ./lmcc run "$dir" --tokens $toks --logits-out "$out" 2>"$dir/err" ;;
		esac
		if [ ! -f "$out" ]; then
			echo "FAIL plamo2 $1 $way: $(head -c 300 "$dir/err")"
		elif r=$(tests/bin/npycmp "$out" "$dir/whole.npy"); then
			echo "PASS plamo2 $1 $way vs whole: $r"
		else
			echo "FAIL plamo2 $1 $way vs whole: $r"
		fi
	done
}

config mixed 5 3 true false
schedule mixed "mamba2 attention mamba2 mamba2 attention"
chunks mixed f32
config short 2 6 true true
schedule short "mamba2 attention"
chunks short bf16
config one 1 2 true true
schedule one "attention"
# wide: hidden 1040 makes dt's input 1040 / 16 = 65 wide, not 64; a 1-tap
# convolution (no state to carry); mamba_step 4.
config wide 3 4 true false
sed -i 's/"hidden_size": 48/"hidden_size": 1040/; s/"mamba_d_conv": 3/"mamba_d_conv": 1/' \
	"$tmp/wide/config.json"
schedule wide "mamba2 mamba2 attention"
chunks wide f32
config off 3 2 false true
schedule off "attention attention attention"
chunks off f32

# bad FIELD SED-EXPRESSION: the mixed config edited must be refused.
bad() {
	mkdir -p "$tmp/bad"
	sed "$2" "$tmp/mixed/config.json" > "$tmp/bad/config.json"
	msg=$(./lmcc plan "$tmp/bad" 2>&1 >/dev/null)
	rc=$?
	lines=$(printf '%s\n' "$msg" | wc -l)
	case "$msg" in
	*config.json*"'$1'"*)
		if [ $rc -eq 2 ] && [ "$lines" -eq 1 ]; then
			echo "PASS plamo2 config error $1: $msg"
			return
		fi ;;
	esac
	echo "FAIL plamo2 config error $1 ($2): status $rc, $lines lines: $msg"
}
bad mamba_step 's/"mamba_step": 3/"mamba_step": 1/'
bad mamba_enabled 's/"mamba_enabled": true/"mamba_enabled": "yes"/'
bad mamba_num_heads '/"mamba_num_heads"/d'
bad mamba_d_state 's/"mamba_d_state": 12/"mamba_d_state": 0/'
bad mamba_d_state 's/"mamba_d_state": 12/"mamba_d_state": 60000/; s/"mamba_num_heads": 3/"mamba_num_heads": 1000/'
bad mamba_d_conv 's/"mamba_d_conv": 3/"mamba_d_conv": 1000/'
bad hidden_size_per_head 's/"hidden_size_per_head": 8/"hidden_size_per_head": 7/'
bad num_key_value_heads 's/"num_key_value_heads": 2/"num_key_value_heads": 4/'
bad rms_norm_eps 's/"rms_norm_eps": 1e-05/"rms_norm_eps": -1/'

# The released config: tests/configs/plamo2_released.json is a copy of
# shared/configs/plamo2/config.json.
plan=$(./lmcc plan tests/configs/plamo2_released.json 2>&1)
m=$(printf '%s\n' "$plan" | grep -cE '^ +([02468]|1[024]) +mamba2 .* 1072\.0 KiB fixed$')
a=$(printf '%s\n' "$plan" | grep -cE '^ +([13579]|1[135]) +attention +causal +16/1 x 128 .* 1024 B/token$')
if [ "$m" -eq 8 ] && [ "$a" -eq 8 ] && printf '%s\n' "$plan" | grep -q "16 layers" \
   && printf '%s\n' "$plan" | grep -q "8192 bytes per token, 8781824 bytes whatever the length"; then
	echo "PASS plamo2 plan of the released config: 8 Mamba, 8 attention, 8781824 state bytes"
else
	echo "FAIL plamo2 plan of the released config ($m Mamba, $a attention lines): $plan"
fi
