#!/bin/sh
# Runs every suite (tests/suite_*.sh), or those named: run.sh tok serve.  A suite prints one line per check:
# "PASS name" or "FAIL name: why"; other lines are commentary.  The last
# line of this script is "N passed, N failed"; its status is 0 iff none
# failed.
cd "$(dirname "$0")/.." || exit 1
mkdir -p tests/tmp
log=tests/tmp/results.txt
: > "$log"
suites=tests/suite_*.sh
[ $# -gt 0 ] && suites=$(for n in "$@"; do echo tests/suite_$n.sh; done)
for s in $suites; do
	echo "== $s"
	sh "$s" 2>&1 | tee -a "$log" | grep -v '^PASS '
done
pass=$(grep -c '^PASS ' "$log")
fail=$(grep -c '^FAIL ' "$log")
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
