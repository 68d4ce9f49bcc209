# Shared by the suites that run golden cases (sourced, not run).

# golden_feed build|run DIR BIN OUT [OPTION...]: DIR's tokens through the
# built binary BIN or through `lmcc run DIR`; logits to OUT, stderr to
# OUT.err.
golden_feed() {
	g_how=$1 g_dir=$2 g_bin=$3 g_out=$4
	shift 4
	rm -f "$g_out"
	if [ "$g_how" = build ]; then
		"$g_bin" --tokens @"$g_dir/tokens.npy" --logits-out "$g_out" "$@" 2>"$g_out.err"
	else
		./lmcc run "$g_dir" --tokens @"$g_dir/tokens.npy" --logits-out "$g_out" "$@" 2>"$g_out.err"
	fi
}

# golden_check NAME OUT DIR: one PASS or FAIL line for OUT against DIR's
# logits (the bound npycmp checks).
golden_check() {
	if [ ! -f "$2" ]; then
		echo "FAIL $1: $(head -c 300 "$2.err")"
	elif r=$(tests/bin/npycmp "$2" "$3/logits.npy"); then
		echo "PASS $1: $r"
	else
		echo "FAIL $1: $r"
	fi
}
