#!/bin/sh
# Pipeline stages over MPI ranks (runtime/stage.c), with mpirun on this
# machine: every golden case (tests/golden and tests/golden-mlx, with its
# adapter where it has one) at 2 and 3 ranks, input whole and one token
# at a time, gives the logits of one process bit for bit, each rank
# holding only its own layers' caches and states; `lmcc plan --ranks`
# shows the split the program makes and the shards each rank opens;
# each rank's peak memory is its share of a checkpoint of a few hundred
# MB; a killed rank, another checkpoint or another program on one rank
# end every rank, never hang.
# Skipped where Open MPI is not installed (make MPI=1 installs it).
cd "$(dirname "$0")/.." || exit 1
if ! command -v mpirun >/dev/null || [ ! -f runtime/liblmcc-mpi.a ]; then
	echo "mpi: skipped: no mpirun or no runtime/liblmcc-mpi.a (make MPI=1 installs Open MPI)"
	exit 0
fi
make -s tests/bin/npycmp >/dev/null || { echo "FAIL mpi: cannot build npycmp"; exit 0; }
T=tests/tmp/mpi
rm -rf $T
mkdir -p $T
# as root mpirun wants these; --oversubscribe: more ranks than cores
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_btl_base_warn_component_unused=0
MPIRUN=$(command -v mpirun)
mpirun() { timeout "${LIMIT:-120}" "$MPIRUN" --oversubscribe --bind-to none "$@"; }

# held ERR: the bytes of caches and states the ranks of ERR hold, summed,
# and how many ranks hold some
held() {
	sed -n 's/.*caches and states by rank (bytes)://p' "$1" | tr ',' '\n' |
		awk -F': ' 'NF == 2 { s += $2; k += $2 > 0 } END { print s + 0, k + 0 }'
}
# maps: lines "rank R maps K of N shards: A, B" with the names sorted
maps() {
	while IFS=: read -r head names; do
		printf '%s:%s\n' "$head" "$(printf '%s\n' $names | tr -d , | sort | tr '\n' ' ')"
	done
}

# ---- golden cases: N ranks give one process's logits, bit for bit ----
# (the float cases, and those mlx-lm saved: quantized, or with an adapter;
# one process is the same program started without mpirun)
py=$(command -v python3)
for dir in tests/golden/*/ tests/golden-mlx/*/; do
	c=$(basename "$dir")
	[ -f "$dir/config.json" ] || continue
	ad=""
	[ -d "$dir/adapter" ] && ad="--adapter $dir/adapter"
	if ! ./lmcc build "$dir" $ad --mpi -o $T/$c 2>$T/err; then
		echo "FAIL mpi golden $c build: $(head -c 300 $T/err)"
		continue
	fi
	for feed in whole 1; do
		opt=""
		[ $feed = whole ] || opt="--chunk 1"
		one=$T/$c.one.$feed.npy
		$T/$c/$c --tokens @"$dir/tokens.npy" --logits-out $one $opt -t 1 2>$T/err
		for n in 2 3; do
			out=$T/$c.$n.$feed.npy
			mpirun -np $n $T/$c/$c --tokens @"$dir/tokens.npy" --logits-out $out $opt -t 1 \
				>/dev/null 2>$T/err
			[ $feed = whole ] && eval "held$n=\"$(held $T/err)\""
			if [ ! -f $out ]; then
				echo "FAIL mpi golden $c $n ranks chunk=$feed: $(grep -v '^lmcc:  ' $T/err | head -c 300)"
			elif ! cmp -s $out $one; then
				echo "FAIL mpi golden $c $n ranks chunk=$feed: logits differ from one process's ($(tests/bin/npycmp $out $one))"
			elif r=$(tests/bin/npycmp $out "$dir/logits.npy"); then
				echo "PASS mpi golden $c $n ranks chunk=$feed: the logits of one process, bit for bit; $r"
			else
				echo "FAIL mpi golden $c $n ranks chunk=$feed: $r"
			fi
		done
	done
	# each rank allocates the caches and states (K/V, Mamba, KDA) of its
	# own layers only: the total is the same over 2 ranks and 3
	if [ -n "$held2" ] && [ "${held2% *}" = "${held3% *}" ] && [ "${held2% *}" -gt 0 ] \
	   && [ "${held3#* }" -ge 2 ]; then
		echo "PASS mpi golden $c caches and states: ${held2% *} bytes over 2 ranks and over 3 (${held3#* } ranks hold some)"
	else
		echo "FAIL mpi golden $c caches and states: over 2 ranks '$held2', over 3 '$held3' (bytes, ranks)"
	fi
	held2= held3=
	# the same checkpoint in 3 shards, which each rank opens only as it
	# needs them (below, with a model of a few hundred MB)
	[ -n "$py" ] && $py tests/stsplit.py "$dir" $T/$c.shards 3 2>$T/err || continue
	out=$T/$c.shards.npy
	mpirun -np 3 $T/$c/$c --weights $T/$c.shards $ad --tokens @"$dir/tokens.npy" --logits-out $out -t 1 \
		>/dev/null 2>$T/err
	if cmp -s $out $T/$c.one.whole.npy; then
		echo "PASS mpi golden $c 3 ranks on 3 shards: the logits of one process, bit for bit; shards by rank:$(sed -n 's/.*: rank \([0-9]\) maps \([0-9]*\) of.*/ \2/p' $T/err | tr -d '\n')"
	else
		echo "FAIL mpi golden $c 3 ranks on 3 shards: $(grep -v '^lmcc:  ' $T/err | head -c 300)"
	fi
	# lmcc plan --ranks 3 names the shards each rank opened
	./lmcc plan $T/$c.shards --ranks 3 2>&1 | grep '^rank [0-9]* maps' | maps >$T/plan.maps
	sed -n 's/^lmcc: [^:]*: \(rank [0-9]* maps .*\)/\1/p' $T/err | maps >$T/run.maps
	if [ -s $T/plan.maps ] && cmp -s $T/plan.maps $T/run.maps; then
		echo "PASS mpi golden $c plan --ranks 3 on 3 shards: the shards each rank opens"
	else
		echo "FAIL mpi golden $c plan --ranks 3 on 3 shards: $(diff $T/plan.maps $T/run.maps | head -c 300)"
	fi
	rm -rf $T/$c.shards
done

# a build without MPI is the same program as one process of a build with it
c=afm7
./lmcc build tests/golden/$c -o $T/$c.one 2>$T/err
$T/$c.one/$c --tokens @tests/golden/$c/tokens.npy --logits-out $T/$c.plain.npy -t 1 2>$T/err
if cmp -s $T/$c.plain.npy $T/$c.one.whole.npy; then
	echo "PASS mpi one process: a build with --mpi started alone gives the plain build's logits, bit for bit"
else
	echo "FAIL mpi one process: the plain build's logits differ: $(head -c 300 $T/err)"
fi

# generated ids and the stats come from rank 0 alone
c=afm7
mpirun -np 3 $T/$c/$c --tokens 1,2,3 -n 6 >$T/ids 2>$T/err
$T/$c.one/$c --tokens 1,2,3 -n 6 >$T/ids.one 2>/dev/null
if cmp -s $T/ids $T/ids.one && [ "$(grep -c 'prefill' $T/err)" = 1 ] \
   && grep -q 'peak memory by rank: 0: .*, 1: .*, 2: ' $T/err; then
	echo "PASS mpi generation: 3 ranks generate one process's ids; rank 0 alone prints them and the stats"
else
	echo "FAIL mpi generation: $(cat $T/ids) vs $(cat $T/ids.one); $(head -c 300 $T/err)"
fi

# what runs in one process only is refused over several ranks, at once
for opt in --serve "--prompt-cache $T/pc --tokens 1,2" "--bench p=8"; do
	LIMIT=60 mpirun -np 2 $T/$c/$c $opt >/dev/null 2>$T/err
	rc=$?
	o=${opt%% *}
	if [ $rc = 2 ] && grep -q "^lmcc: $o: in one process only, not over several ranks" $T/err; then
		echo "PASS mpi $o: refused over 2 ranks (exit 2): $(grep -m1 "^lmcc: $o" $T/err | head -c 120)"
	else
		echo "FAIL mpi $o over 2 ranks: status $rc: $(head -c 300 $T/err)"
	fi
done

# ---- lmcc plan --ranks is the split the program makes ----
./lmcc plan tests/golden/afm7 --ranks 2 >$T/plan 2>&1
sed -n '/^rank  parts/,$p' $T/plan >$T/plan.split
mpirun -np 2 $T/afm7/afm7 --tokens 1,2 >/dev/null 2>$T/err
sed -n 's/^lmcc:   //p' $T/err >$T/run.split
if [ -s $T/plan.split ] && cmp -s $T/plan.split $T/run.split \
   && grep -q "read layer .*'s K/V cache: kept in its stage" $T/plan.split; then
	echo "PASS mpi plan --ranks 2: the split the program prints, KV reuse kept in one stage"
else
	echo "FAIL mpi plan --ranks 2: $(diff $T/plan.split $T/run.split | head -c 400)"
fi
./lmcc plan tests/golden/afm7 --ranks 3 >$T/plan3 2>&1
if [ "$(sed -n '/^rank  parts/,/^the last/p' $T/plan3 | grep -c '^ *[0-9] ')" = 3 ] \
   && grep -q '^ *0  embedding' $T/plan3 && grep -q '^ *2  .*head' $T/plan3; then
	echo "PASS mpi plan --ranks 3: three stages, the embedding first, the head last"
else
	echo "FAIL mpi plan --ranks 3: $(head -c 400 $T/plan3)"
fi
./lmcc plan tests/golden/afm7 --ranks 9 >/dev/null 2>$T/err
rc=$?
mpirun -np 9 $T/afm7/afm7 --tokens 1 >/dev/null 2>$T/err2
rc2=$?
if [ $rc = 2 ] && grep -q 'too many' $T/err && [ $rc2 != 0 ] && grep -q 'at most .* stages' $T/err2; then
	echo "PASS mpi too many ranks: plan and mpirun refuse them (exit 2)"
else
	echo "FAIL mpi too many ranks: plan $rc $(head -c 200 $T/err); mpirun $rc2 $(head -c 200 $T/err2)"
fi

# ---- each rank holds its share of the weights ----
# memory NAME ERR: the peaks by rank in ERR against the shares (w0, w1
# MiB, from the plan) and one process's peak (one MB for all MB)
memory() {
	p0=$(sed -n 's/.*peak memory by rank: 0: \([0-9.]*\) MB.*/\1/p' $2)
	p1=$(sed -n 's/.*peak memory by rank: .*, 1: \([0-9.]*\) MB.*/\1/p' $2)
	# a rank's peak is its share plus what one process has beside its
	# weights (code, buffers, caches) and Open MPI's libraries (<= 40 MB)
	if awk -v w0="$w0" -v w1="$w1" -v all="$all" -v one="$one" -v p0="$p0" -v p1="$p1" \
	     'BEGIN { base = one - all; ok = p0 != "" && p1 != "" && w0 > 0 && w1 > 0;
	              ok = ok && p0 <= w0 + base + 40 && p1 <= w1 + base + 40;
	              ok = ok && p0 < 0.75 * one && p1 < 0.75 * one; exit !ok }'; then
		echo "PASS mpi $1: peaks of ${p0} and ${p1} MB for shares of ${w0} and ${w1} MiB; one process ${one} MB for ${all} MB"
	else
		echo "FAIL mpi $1: rank peaks '${p0}' '${p1}' MB for shares '${w0}' '${w1}' MiB; one process '${one}' MB for '${all}' MB"
	fi
}
M=$T/rss
toks=1,2,3,4,5,6,7,8
if ./lmcc init tests/configs/mpi_rss_afm7.json -o $M --seed 3 --dtype bf16 2>$T/err \
   && ./lmcc build $M --mpi -o $M/bin 2>$T/err; then
	$M/bin/rss --tokens $toks -n 4 --logits-out $T/rss.one.npy -t 1 >/dev/null 2>$T/one.err
	mpirun -np 2 $M/bin/rss --tokens $toks -n 4 >/dev/null 2>$T/two.err
	./lmcc plan $M --ranks 2 >$T/rss.plan
	# in MiB: each rank's weights (plan), the whole checkpoint, the peaks
	mib='{ for (i = 2; i < NF; i++) if ($i ~ /^[0-9.]+$/ && $(i + 1) ~ /^(B|KiB|MiB|GiB)$/) {
	         u = $(i + 1); print $i * (u == "GiB" ? 1024 : u == "MiB" ? 1 : u == "KiB" ? 1 / 1024 : 1 / 1048576); exit } }'
	w0=$(sed -n '/^rank  parts/,$p' $T/rss.plan | awk '$1 == 0' | awk "$mib")
	w1=$(sed -n '/^rank  parts/,$p' $T/rss.plan | awk '$1 == 1' | awk "$mib")
	all=$(du -m $M/model.safetensors | cut -f1)
	one=$(sed -n 's/.*peak memory \([0-9.]*\) MB.*/\1/p' $T/one.err)
	memory memory $T/two.err
else
	echo "FAIL mpi memory: $(head -c 300 $T/err)"
fi

# ---- the prefill pipeline: rank 1 runs batch i while rank 0 runs i + 1 ----
# 768 tokens are 3 micro-batches of 256; the timeline is each rank's
long=$(awk 'BEGIN { for (i = 0; i < 768; i++) printf "%s%d", i ? "," : "", (i * 7919) % 8000 + 1 }')
LMCC_TIMELINE=1 mpirun -np 2 $M/bin/rss --tokens $long -t 1 >/dev/null 2>$T/tl.err
got=$(sed -n 's/^lmcc: timeline: rank 1 ran batch i while rank 0 ran batch i + 1 for \([0-9]*\) of \([0-9]*\) batches.*/\1 \2/p' $T/tl.err)
if [ "$got" = "2 2" ]; then
	echo "PASS mpi pipeline: $(grep -o 'rank 1 ran batch i while.*' $T/tl.err)"
else
	echo "FAIL mpi pipeline: '$got': $(grep timeline $T/tl.err | head -c 400)"
fi

# ---- a sharded checkpoint: each rank opens only the shards it needs ----
# The rss model in 4 shards: run on one directory, each rank says which
# shards it maps; then each rank gets a directory of only those (the
# others missing, as on a machine they were not copied to), and the
# logits are still one process's, bit for bit, each peak its share.
S=$T/rss.shards
if [ -z "$py" ]; then
	echo "note: no python3: the sharded checkpoint tests skipped"
elif ! $py tests/stsplit.py $M $S 4 2>$T/err; then
	echo "FAIL mpi shards: stsplit: $(head -c 300 $T/err)"
else
	mpirun -np 2 $M/bin/rss --weights $S --tokens $toks -n 4 --logits-out $T/rss.sh.npy -t 1 \
		>/dev/null 2>$T/sh.err
	for r in 0 1; do
		mkdir -p $T/rank$r
		cp $S/config.json $S/model.safetensors.index.json $T/rank$r/
		for f in $(sed -n "s/.*: rank $r maps [0-9]* of 4 shards://p" $T/sh.err | tr -d ,); do
			ln -sf ../rss.shards/$f $T/rank$r/$f
		done
	done
	n0=$(ls $T/rank0 | grep -c '^model-') n1=$(ls $T/rank1 | grep -c '^model-')
	mpirun -np 1 $M/bin/rss --weights $T/rank0 --tokens $toks -n 4 --logits-out $T/rss.own.npy -t 1 : \
		-np 1 $M/bin/rss --weights $T/rank1 --tokens $toks -n 4 -t 1 >/dev/null 2>$T/own.err
	if ! cmp -s $T/rss.sh.npy $T/rss.one.npy; then
		echo "FAIL mpi shards: 2 ranks on 4 shards: logits differ from one process's: $(head -c 300 $T/sh.err)"
	elif [ "$n0" -lt 1 ] || [ "$n1" -lt 1 ] || [ "$n0" -ge 4 ] || [ "$n1" -ge 4 ]; then
		echo "FAIL mpi shards: ranks map $n0 and $n1 of 4 shards: $(grep maps $T/sh.err)"
	elif ! cmp -s $T/rss.own.npy $T/rss.one.npy; then
		echo "FAIL mpi shards: each rank with only its shards: $(grep -v '^lmcc:  ' $T/own.err | head -c 300)"
	else
		echo "PASS mpi shards: rank 0 maps $n0 of 4 shards, rank 1 $n1; with only those in its directory, one process's logits, bit for bit"
	fi
	memory "memory, shards" $T/own.err
	# a shard a rank needs but lacks: that rank's message, every rank ends
	rm $T/rank1/$(ls $T/rank1 | grep '^model-' | tail -1)
	LIMIT=60 mpirun -np 1 $M/bin/rss --weights $T/rank0 --tokens 1 : \
		-np 1 $M/bin/rss --weights $T/rank1 --tokens 1 >/dev/null 2>$T/err
	rc=$?
	if [ $rc = 2 ] && grep -q "$T/rank1/model-0000.-of-00004.safetensors: cannot open" $T/err; then
		echo "PASS mpi missing shard: the rank lacking it names it, exit 2"
	else
		echo "FAIL mpi missing shard: status $rc: $(head -c 300 $T/err)"
	fi
	# another copy, on rank 1, of a shard both ranks map (the tied
	# embedding, which the head reads): refused at start-up
	l0=" $(sed -n "s/.*: rank 0 maps [0-9]* of 4 shards://p" $T/sh.err | tr -d ,) "
	both=""
	for f in $(sed -n "s/.*: rank 1 maps [0-9]* of 4 shards://p" $T/sh.err | tr -d ,); do
		case "$l0" in *" $f "*) both=$f ;; esac
	done
	rm -rf $T/other $T/other.shards $T/rank1x
	./lmcc init tests/configs/mpi_rss_afm7.json -o $T/other --seed 4 --dtype bf16 2>/dev/null
	$py tests/stsplit.py $T/other $T/other.shards 4
	mkdir -p $T/rank1x
	cp $S/config.json $S/model.safetensors.index.json $T/rank1x/
	for f in $(ls $S | grep '^model-'); do ln -sf ../rss.shards/$f $T/rank1x/$f; done
	[ -n "$both" ] && ln -sf ../other.shards/$both $T/rank1x/$both
	LIMIT=60 mpirun -np 1 $M/bin/rss --weights $S --tokens 1 : \
		-np 1 $M/bin/rss --weights $T/rank1x --tokens 1 >/dev/null 2>$T/err
	rc=$?
	if [ -n "$both" ] && [ $rc = 2 ] && grep -q "$both: rank 1's copy differs from rank 0's" $T/err; then
		echo "PASS mpi another shard: $both, which both ranks map, another on rank 1: refused at start-up (exit 2)"
	else
		echo "FAIL mpi another shard: shared shard '$both', status $rc: $(head -c 300 $T/err)"
	fi
	rm -rf $T/other $T/other.shards $T/rank1x $S
fi

# ---- faults: a killed rank, another checkpoint, another program ----
# rank 1 is killed while the three generate; mpirun must end at once,
# every rank with it, with a message and a failing status
tag=lmcc_mpi_$$
start=$(date +%s)
LIMIT=60 mpirun -np 3 -x LMCC_TEST_TAG=$tag $M/bin/rss --tokens 1,2,3 -n 100000 >/dev/null 2>$T/kill.err &
job=$!
victim=""
for i in $(seq 1 100); do
	for e in $(grep -las "LMCC_TEST_TAG=$tag" /proc/[0-9]*/environ); do
		if tr '\0' '\n' 2>/dev/null <"$e" | grep -qx 'OMPI_COMM_WORLD_RANK=1'; then
			victim=${e#/proc/}
			victim=${victim%/environ}
		fi
	done
	[ -n "$victim" ] && grep -q 'pipeline stages' $T/kill.err && break
	sleep 0.2
done
sleep 1
[ -n "$victim" ] && kill -9 "$victim"
wait $job
rc=$?
took=$(($(date +%s) - start))
if [ -n "$victim" ] && [ $rc != 0 ] && [ $rc != 124 ] && grep -q 'another rank ended\|exited on signal 9' $T/kill.err; then
	echo "PASS mpi killed rank: every rank ended (status $rc, ${took} s): $(grep -m1 'another rank ended\|signal 9' $T/kill.err | head -c 160)"
else
	echo "FAIL mpi killed rank: victim '$victim', status $rc after ${took} s: $(head -c 300 $T/kill.err)"
fi

# the same program on another checkpoint (another seed): refused at start
./lmcc init tests/configs/mpi_rss_afm7.json -o $T/other --seed 4 --dtype bf16 2>/dev/null
LIMIT=60 mpirun -np 1 $M/bin/rss --tokens 1 : -np 1 $M/bin/rss --weights $T/other --tokens 1 \
	>/dev/null 2>$T/err
rc=$?
if [ $rc = 2 ] && grep -q "rank 1's checkpoint differs from rank 0's (its weights)" $T/err; then
	echo "PASS mpi another checkpoint: refused at start-up (exit 2)"
else
	echo "FAIL mpi another checkpoint: status $rc: $(head -c 300 $T/err)"
fi
LIMIT=60 mpirun -np 1 $M/bin/rss --tokens 1 : -np 1 $T/afm7/afm7 --tokens 1 >/dev/null 2>$T/err
rc=$?
if [ $rc = 2 ] && grep -q "rank 1 runs another program than rank 0" $T/err; then
	echo "PASS mpi another program: refused at start-up (exit 2)"
else
	echo "FAIL mpi another program: status $rc: $(head -c 300 $T/err)"
fi
# a rank that fails at start-up (no checkpoint there) ends the others
LIMIT=60 mpirun -np 1 $M/bin/rss --tokens 1 : -np 1 $M/bin/rss --weights $T/none --tokens 1 \
	>/dev/null 2>$T/err
rc=$?
if [ $rc = 2 ] && grep -q "$T/none/config.json: cannot open" $T/err && grep -q 'another rank ended' $T/err; then
	echo "PASS mpi failing rank: its message, rank 0's, exit 2"
else
	echo "FAIL mpi failing rank: status $rc: $(head -c 300 $T/err)"
fi
rm -rf $M/model.safetensors $T/other
