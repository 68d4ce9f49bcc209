#!/usr/bin/env bash
# cpu.sh SECONDS TARGET...: runs each libFuzzer target of fuzz_target.c
# until the fuzzer process has used SECONDS of CPU time (user + system,
# from /proc/PID/stat), not wall time: on a loaded machine wall time says
# little about how much fuzzing was done.  FUZZ_JOBS targets at once
# (default 2), under nice.  A crash stops libFuzzer; the target is then
# restarted on its corpus (at most 5 times) until its CPU time is spent,
# so one finding does not end its fuzzing.  Per target: the log in
# tests/tmp/libfuzzer/TARGET.log, findings in TARGET.out/, and one summary
# line: CPU seconds, executions, coverage, findings.  FUZZ_LEAKS=1 turns
# on LeakSanitizer: a leak is then a finding like a crash (libFuzzer stops
# at the first, so the default leaves it off to cover more ground).
cpu=$1; shift
leaks=${FUZZ_LEAKS:-0}
jobs=${FUZZ_JOBS:-2}
D=tests/tmp/libfuzzer
hz=$(getconf CLK_TCK)

ticks() {   # utime + stime + cutime + cstime of process $1, or nothing
	[ -r /proc/$1/stat ] && sed 's/.*) //' /proc/$1/stat | awk '{print $12 + $13 + $14 + $15}'
}

one() {   # one target, to its CPU budget
	t=$1 used=0 runs=0
	sh tests/fuzz/seeds.sh $t $D/$t.seeds
	mkdir -p $D/$t.corpus $D/$t.out
	: >$D/$t.log
	while [ $used -lt $((cpu * hz)) ] && [ $runs -lt 5 ]; do
		runs=$((runs + 1))
		ASAN_OPTIONS=detect_leaks=$leaks nice -n 10 $D/$t -detect_leaks=$leaks \
			-rss_limit_mb=3072 -max_len=65536 -timeout=${FUZZ_TIMEOUT:-60} \
			-artifact_prefix=$D/$t.out/ -print_final_stats=1 \
			$D/$t.corpus $D/$t.seeds >>$D/$t.log 2>&1 &
		pid=$!
		last=0
		while n=$(ticks $pid) && [ -n "$n" ]; do
			last=$n
			[ $((used + n)) -ge $((cpu * hz)) ] && { kill -INT $pid; break; }
			sleep 2
		done
		wait $pid
		used=$((used + last))
	done
	execs=$(grep '^stat::number_of_executed_units' $D/$t.log | awk '{s += $2} END {print s + 0}')
	cov=$(grep -o 'cov: [0-9]*' $D/$t.log | tail -1 | cut -d' ' -f2)
	found=$(ls $D/$t.out | wc -l)
	echo "fuzz $t: $((used / hz)) CPU-s, $runs run(s), $execs executions, cov $cov, $found finding(s)"
}

running=0
for t in "$@"; do
	one $t &
	running=$((running + 1))
	if [ $running -ge $jobs ]; then wait -n; running=$((running - 1)); fi
done
wait
