#!/bin/sh
# Untrusted configs: mutated golden configs never crash the compiler, and
# what it emits compiles; damaged checkpoints never crash a model
# (tests/fuzz/fuzz.py).
cd "$(dirname "$0")/.." || exit 1
if command -v python3 >/dev/null 2>&1; then
	python3 tests/fuzz/fuzz.py 7
else
	echo "fuzz: no python3 here; the config fuzz is not run"
fi

# The inputs the fuzzers found (tests/fuzz/found/TARGET/), replayed through
# their targets: none may crash, hang or, under ASan, leak
for d in tests/fuzz/found/*/; do
	t=$(basename "$d")
	got=$(ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=1" timeout 300 tests/bin/replay_$t "$d"* 2>tests/tmp/replay.err)
	rc=$?
	n=$(ls "$d" | wc -l)
	if [ $rc -eq 0 ] && [ "$got" = "replayed $n" ]; then
		echo "PASS fuzz found/$t: $n input(s) replayed"
	else
		echo "FAIL fuzz found/$t: exit $rc, '$got' $(grep -m3 -E 'ERROR|SUMMARY|#[0-9] ' tests/tmp/replay.err | tr '\n' ' ' | head -c 400)"
	fi
done
