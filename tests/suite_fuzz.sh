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
