#!/bin/sh
# Prefill over pipeline stages on this machine: the demo AFM-7 (118 MB,
# F32) on a 2048-token prompt (8 micro-batches), as one process and as 2
# and 4 ranks of one thread each, interleaved for ROUNDS rounds (default
# 3); prints every run and each configuration's best, with its ratio to
# one process of one thread.  Not part of make test.
#   sh tests/mpi_speed.sh [ROUNDS]
cd "$(dirname "$0")/.." || exit 1
command -v mpirun >/dev/null && [ -f runtime/liblmcc-mpi.a ] \
	|| { echo "mpi_speed: needs Open MPI (make MPI=1)"; exit 1; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
T=tests/tmp/mpi_speed
mkdir -p $T
[ -f $T/m/model.safetensors ] || ./lmcc init tests/configs/demo_afm7.json -o $T/m --seed 1 --force
./lmcc build $T/m --mpi -o $T/bin 2>/dev/null || exit 1
toks=$(awk 'BEGIN { for (i = 0; i < 2048; i++) printf "%s%d", i ? "," : "", (i * 7919) % 8000 + 1 }')
: >$T/runs
for r in $(seq 1 "${1:-3}"); do
	for cfg in 1:1 1:2 2:1 4:1; do
		np=${cfg%:*} th=${cfg#*:}
		if [ $np = 1 ]; then
			$T/bin/m --tokens $toks -t $th 2>$T/err >/dev/null
		else
			timeout 600 mpirun --oversubscribe --bind-to none -np $np $T/bin/m --tokens $toks \
				-t $th 2>$T/err >/dev/null
		fi
		tps=$(sed -n 's/.*prefill 2048 tokens in [0-9.]* s (\([0-9.]*\) tok\/s).*/\1/p' $T/err)
		echo "round $r: $np rank(s), $th thread(s): $tps tok/s"
		echo "$cfg $tps" >>$T/runs
	done
done
awk '{ if ($2 > best[$1]) best[$1] = $2 }
     END { for (c in best) printf "best %s (ranks:threads): %.1f tok/s, %.2f x one process of one thread\n",
                                   c, best[c], best[c] / best["1:1"] }' $T/runs | sort
