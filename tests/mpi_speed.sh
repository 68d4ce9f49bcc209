#!/bin/sh
# Prefill over pipeline stages on this one machine (not part of make test;
# about 2 minutes on 2 idle cores):
#   sh tests/mpi_speed.sh [ROUNDS]      (default 2)
# The demo AFM-7 (118 MB, F32) reads a 2048-token prompt, which forward()
# cuts into 8 micro-batches of 256, as one process (1 thread, then every
# core) and as 2 and 4 ranks of one thread each, the runs interleaved
# ROUNDS times.  It prints each run, then each configuration's best with
# its ratio to one process of 1 thread and to one process on every core,
# then, from the 2- and 4-rank runs, the split and how many batches i of
# rank k + 1 ran while rank k ran batch i + 1 (the pipeline at work).
# On one machine the ranks share its cores: 2 ranks can reach 2 x one
# thread times 8 / 9 (8 batches fill 2 stages in 9 steps), 4 ranks no more
# than the cores allow.  The split balances the bytes a token reads (the
# decode cost), not prefill's: a stage of the head alone has almost
# nothing to do in a prefill (the head runs on the last token), and the
# stage with the most attention sets the pace.  Another load on the
# machine lowers every figure: the load average is printed first.
cd "$(dirname "$0")/.." || exit 1
command -v mpirun >/dev/null && [ -f runtime/liblmcc-mpi.a ] \
	|| { echo "mpi_speed: needs Open MPI (make MPI=1)"; exit 1; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_btl_base_warn_component_unused=0
T=tests/tmp/mpi_speed
mkdir -p $T
cores=$(nproc)
echo "mpi_speed: $(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -1), $cores cores;" \
     "load average $(cut -d' ' -f1-3 /proc/loadavg)"
[ -f $T/m/model.safetensors ] || ./lmcc init tests/configs/demo_afm7.json -o $T/m --seed 1 --force 2>/dev/null
./lmcc build $T/m --mpi -o $T/bin 2>/dev/null || { echo "mpi_speed: the build failed"; exit 1; }
toks=$(awk 'BEGIN { for (i = 0; i < 2048; i++) printf "%s%d", i ? "," : "", (i * 7919) % 8000 + 1 }')
mpi() { timeout 300 mpirun --oversubscribe --bind-to none "$@"; }
# run RANKS THREADS: one prefill; its tok/s (empty if it failed)
run() {
	if [ $1 = 1 ]; then
		$T/bin/m --tokens $toks -t $2 2>$T/err >/dev/null
	else
		LMCC_TIMELINE=1 mpi -np $1 $T/bin/m --tokens $toks -t $2 2>$T/err >/dev/null
		cp $T/err $T/timeline.$1
	fi
	sed -n 's/.*prefill 2048 tokens in [0-9.]* s (\([0-9.]*\) tok\/s).*/\1/p' $T/err
}
: >$T/runs
for r in $(seq 1 "${1:-2}"); do
	for cfg in 1:1 1:$cores 2:1 4:1; do
		tps=$(run ${cfg%:*} ${cfg#*:})
		[ -n "$tps" ] || { echo "mpi_speed: $cfg failed: $(head -c 300 $T/err)"; exit 1; }
		echo "round $r: ${cfg%:*} rank(s) of ${cfg#*:} thread(s): $tps tok/s"
		echo "$cfg $tps" >>$T/runs
	done
done
echo "best of each (prefill tok/s), and its ratio to one process:"
awk -v all=1:$cores '{ if ($2 > best[$1]) best[$1] = $2 }
     END { for (c in best) { split(c, p, ":")
             printf "  %d rank(s) of %d thread(s): %7.1f tok/s  %.2f x 1 thread, %.2f x %s threads\n",
                    p[1], p[2], best[c], best[c] / best["1:1"], best[c] / best[all], substr(all, 3) } }' \
	$T/runs | sort
for n in 2 4; do
	echo "the pipeline at work, $n ranks (last round; LMCC_TIMELINE=1 shows each batch):"
	sed -n 's/^lmcc:   \( *[0-9]  .*\)/  split: \1/p; s/^lmcc: timeline: \(rank .* ran batch i .*\)/  \1/p' $T/timeline.$n
done
