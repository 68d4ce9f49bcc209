/* stage.c: a model split into pipeline stages, one per rank of mpirun.
 *
 * The parts of a model are its embedding, its layers and its head (with
 * the final norm).  lm_split cuts them into contiguous stages balanced by
 * the weight bytes each reads per token; rank r runs stage r.  Every rank
 * binds the whole model, but reads only its own parts' data and allocates
 * only their caches (lm_stage_mine); of a sharded checkpoint it opens only
 * the shards the index names for its own tensors (lm_ck_open_part), so a
 * machine needs only those, and the strict checks see every name on
 * every rank through the index.
 *
 * Rank 0 alone reads the input and writes the output: its forward() tells
 * the other ranks to run theirs (CMD_FORWARD), embeds, runs its layers and
 * posts the residual stream to rank 1; each rank receives it from the one
 * before and posts it on; the last runs the head and sends the logits back
 * to rank 0.  Each forward() goes through the input MAXB tokens at a time,
 * so a long prompt is pipelined by itself: while rank 1 runs batch i,
 * rank 0 already runs batch i + 1.  The same kernels see the same inputs
 * as in one process, so the logits are the same, bit for bit.
 *
 * The transport is lm_net_* (mpi.c, or mpi_none.c alone). */
#define _GNU_SOURCE
#include "rt.h"
#include "opt.h"
#include "pcache.h"
#include "serve.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

enum { TAG_CMD = 1, TAG_X = 2, TAG_LOGITS = 3, TAG_CTX = 4 };
enum { CMD_FORWARD = 1, CMD_RESET = 2, CMD_END = 3 };

static int rank, ranks = 1;
static int lo = -1, hi = INT_MAX;        /* this rank's parts, inclusive */
static int binding = LM_STAGE_SHARED;     /* the part create() binds */
static const lm_model *model;            /* the generated one */

int lm_stage_has(int part)
{
	return part >= lo && part <= hi;
}

void lm_stage_bind(int part)
{
	binding = part;
}

int lm_stage_mine(void)
{
	if (binding == LM_STAGE_ENDS)
		return lm_stage_has(-1) || lm_stage_has(model ? model->layers : INT_MAX);
	return binding == LM_STAGE_SHARED || lm_stage_has(binding);
}

int lm_stage_rank(void)
{
	return rank;
}

/* The timeline: when this rank began and ended its work on each batch
 * of the residual stream (the first TL), which lm_stage_end shows under
 * LMCC_TIMELINE=1.  A batch begins when its input has come (on rank 0:
 * when forward() begins or the batch before is posted) and ends when it
 * is posted on (on the last rank: when the next is waited for or the
 * call ends).  Monotonic clocks agree across the ranks of one machine. */
enum { TL = 64 };
static double tl[TL][2], began;
static int ntl, busy;

static void tl_begin(void)
{
	began = lm_now();
	busy = 1;
}

static void tl_end(void)
{
	if (busy && ntl < TL) {
		tl[ntl][0] = began;
		tl[ntl++][1] = lm_now();
	}
	busy = 0;
}

void lm_stage_recv(float *x, long count)
{
	tl_end();
	lm_net_recv(rank - 1, TAG_X, x, count * sizeof(float));
	tl_begin();
}

void lm_stage_send(const float *x, long count)
{
	tl_end();
	lm_net_post(rank + 1, TAG_X, x, count * sizeof(float));
	if (rank == 0)
		tl_begin();
}

/* ---- the split ---- */

int lm_split(const lm_part *parts, int n, int nr, int *first)
{
	if (nr < 1 || nr > n)
		return 0;
	/* best[r * (n + 1) + j]: the least possible largest stage when parts
	 * 0 .. j - 1 make r stages; from: where the last of them starts */
	long *sum = lm_alloc((n + 1) * sizeof(long));
	long *best = lm_alloc((size_t)(nr + 1) * (n + 1) * sizeof(long));
	int *from = lm_alloc((size_t)(nr + 1) * (n + 1) * sizeof(int));
	for (int j = 0; j < n; j++)
		sum[j + 1] = sum[j] + parts[j].read;
	for (long k = 0; k < (long)(nr + 1) * (n + 1); k++)
		best[k] = LONG_MAX;
	for (int j = 1; j <= n; j++)
		best[n + 1 + j] = sum[j];
	for (int r = 2; r <= nr; r++)
		for (int j = r; j <= n; j++)
			for (int i = r - 1; i < j; i++) {
				long before = best[(r - 1) * (n + 1) + i];
				if (parts[i].joined || before == LONG_MAX)
					continue;
				long worst = before > sum[j] - sum[i] ? before : sum[j] - sum[i];
				if (worst < best[r * (n + 1) + j]) {
					best[r * (n + 1) + j] = worst;
					from[r * (n + 1) + j] = i;
				}
			}
	int ok = best[nr * (n + 1) + n] != LONG_MAX;
	if (ok) {
		first[nr] = n;
		for (int r = nr, j = n; r >= 1; r--)
			j = first[r - 1] = from[r * (n + 1) + j];
	}
	free(sum);
	free(best);
	free(from);
	return ok;
}

const char *lm_bytes_str(char *s, size_t n, long b)
{
	if (b >= 10L << 30)
		snprintf(s, n, "%.1f GiB", b / 1073741824.0);
	else if (b >= 10L << 20)
		snprintf(s, n, "%.1f MiB", b / 1048576.0);
	else if (b >= 10L << 10)
		snprintf(s, n, "%.1f KiB", b / 1024.0);
	else
		snprintf(s, n, "%ld B", b);
	return s;
}

void lm_split_print(FILE *f, const char *pre, const lm_part *parts, int layers, int nr,
                    const int *first, long dim, long vocab)
{
	char w[32], rd[32], c[32], x[32], what[64];
	fprintf(f, "%s%-4s  %-26s %-11s %-11s %-16s %s\n", pre, "rank", "parts", "weights",
	        "read/token", "cache", "sends per token");
	for (int r = 0; r < nr; r++) {
		long wb = 0, rb = 0, cb = 0, fb = 0;
		for (int k = first[r]; k < first[r + 1]; k++) {
			wb += parts[k].weights;
			rb += parts[k].read;
			cb += parts[k].cache;
			fb += parts[k].fixed;
		}
		/* parts k are layers k - 1; 0 the embedding, layers + 1 the head */
		int a = first[r] > 0 ? first[r] - 1 : 0, b = first[r + 1] - 2;
		if (b >= layers)
			b = layers - 1;
		size_t k = 0;
		what[0] = 0;
		if (first[r] == 0)
			k += snprintf(what + k, sizeof what - k, "embedding");
		if (a < b)
			k += snprintf(what + k, sizeof what - k, "%slayers %d-%d", k ? ", " : "", a, b);
		else if (a == b)
			k += snprintf(what + k, sizeof what - k, "%slayer %d", k ? ", " : "", a);
		if (first[r + 1] == layers + 2)
			snprintf(what + k, sizeof what - k, "%shead", k ? ", " : "");
		char cache[40];
		snprintf(cache, sizeof cache, "%s/token", lm_bytes_str(c, sizeof c, cb));
		if (fb) {
			size_t m = strlen(cache);
			snprintf(cache + m, sizeof cache - m, " + %s", lm_bytes_str(x, sizeof x, fb));
		}
		if (r + 1 < nr)
			snprintf(x, sizeof x, "%s to rank %d", lm_bytes_str(w, sizeof w, dim * 4), r + 1);
		else if (nr > 1)
			snprintf(x, sizeof x, "%s to rank 0", lm_bytes_str(w, sizeof w, vocab * 4));
		else
			snprintf(x, sizeof x, "-");
		fprintf(f, "%s%4d  %-26s %-11s %-11s %-16s %s\n", pre, r, what,
		        lm_bytes_str(w, sizeof w, wb), lm_bytes_str(rd, sizeof rd, rb), cache, x);
	}
	if (nr > 1)
		fprintf(f, "%sthe last rank sends logits for the last token of each call (every\n"
		        "%stoken with --logits-out); a rank with several layers sends nothing between them\n",
		        pre, pre);
	/* KV reuse: its readers are joined to the layer that fills the cache */
	for (int k = 1; k < layers + 1; k++) {
		if (!parts[k + 1].joined || parts[k].joined)
			continue;
		int e = k + 1;
		while (e + 1 < layers + 1 && parts[e + 1].joined)
			e++;
		int r = 0;
		while (first[r + 1] <= k)
			r++;
		fprintf(f, "%slayers %d-%d read layer %d's K/V cache: kept in its stage (rank %d), "
		        "nothing of the cache is sent\n", pre, k, e - 1, k - 1, r);
	}
}

/* ---- starting together ---- */

/* Every rank computed `bad` alike: rank 0 says why, and all end. */
static void all_fail(int bad, const char *where, const char *msg)
{
	if (!bad)
		return;
	if (rank == 0)
		fprintf(stderr, "lmcc: %s%s%s\n", where ? where : "", where ? ": " : "", msg);
	lm_net_end();     /* rank 0 has spoken before any rank ends */
	exit(2);
}

/* What identifies the program: lmcc's version, the model's name, config
 * and parts. */
static uint64_t program_fp(const lm_model *m)
{
	uint64_t h = lm_hash(0xcbf29ce484222325ull, lm_version(), strlen(lm_version()) + 1);
	h = lm_hash(h, m->name, strlen(m->name) + 1);
	h = lm_hash(h, m->arch, strlen(m->arch) + 1);
	for (const char *const *c = m->config; *c; c += 3)
		for (int i = 0; i < 3; i++)
			h = c[i] ? lm_hash(h, c[i], strlen(c[i]) + 1) : lm_hash(h, "", 1);
	h = lm_hash(h, m->parts, (m->layers + 2) * sizeof *m->parts);
	return lm_hash(h, &m->vocab, sizeof m->vocab);
}

int lm_stage_start(const lm_model *m)
{
	model = m;
	ranks = lm_net_init(&rank);
	if (ranks == 1)
		return 1;
	uint64_t mine = program_fp(m), *all = lm_alloc(ranks * sizeof *all);
	lm_net_gather(&mine, all, sizeof mine);
	int other = 0;
	while (other < ranks && all[other] == all[0])
		other++;
	char msg[300];
	snprintf(msg, sizeof msg, "rank %d runs another program than rank 0 (%s, %s): every rank "
	         "must run the same build of the same model", other, m->name, lm_version());
	all_fail(other < ranks, "mpirun", msg);
	free(all);

	int n = m->layers + 2, *first = lm_alloc((ranks + 1) * sizeof(int));
	int cuts = 0;
	for (int k = 1; k < n; k++)
		cuts += !m->parts[k].joined;
	snprintf(msg, sizeof msg, "%d ranks: %s can be cut in at most %d stages (its embedding, "
	         "%d layers and head, layers reading another's K/V with it)", ranks, m->name,
	         cuts + 1, m->layers);
	all_fail(!lm_split(m->parts, n, ranks, first), "mpirun", msg);
	lo = first[rank] - 1;
	hi = first[rank + 1] - 2;
	if (rank == 0) {
		fprintf(stderr, "lmcc: %s: %d pipeline stages\n", m->name, ranks);
		lm_split_print(stderr, "lmcc:   ", m->parts, m->layers, ranks, first, m->dim, m->vocab);
	}
	free(first);
	/* the ranks of one machine share its cores */
	const char *local = getenv("OMPI_COMM_WORLD_LOCAL_SIZE");
	long cores = sysconf(_SC_NPROCESSORS_ONLN), per = local ? atol(local) : 1;
	lm_set_threads((int)(per > 0 && cores / per > 1 ? cores / per : 1));
	return ranks;
}

/* Rank 0 knows the context (from the input); the others are told. */
void lm_stage_setup(const lm_model *m, long *ctx)
{
	if (ranks == 1)
		return;
	if (rank == 0)
		for (int r = 1; r < ranks; r++)
			lm_net_send(r, TAG_CTX, ctx, sizeof *ctx);
	else
		lm_net_recv(0, TAG_CTX, ctx, sizeof *ctx);
}

lm_ckpt *lm_stage_open(const char *dir)
{
	return ranks > 1 ? lm_ck_open_part(dir) : lm_ck_open(dir);
}

/* After create(): every rank holds the same config, index (or single
 * file) and adapter, and each shard is the same on every rank that opened
 * it; rank 0 says which shards each maps. */
void lm_stage_agree(const lm_model *m, const char *dir, lm_ckpt *ck, lm_ckpt *ad)
{
	if (ranks == 1)
		return;
	lm_fp mine = lm_fingerprint(dir, ck, ad), *all = lm_alloc(ranks * sizeof *all);
	lm_net_gather(&mine, all, sizeof mine);
	int r = 0;
	while (r < ranks && !memcmp(&all[r], &all[0], sizeof mine))
		r++;
	char msg[300];
	if (r < ranks)
		snprintf(msg, sizeof msg, "rank %d's checkpoint differs from rank 0's (its %s): every "
		         "rank must hold the same files", r,
		         all[r].config != all[0].config ? "config.json"
		         : all[r].weights != all[0].weights
		         ? (lm_ck_shards(ck) ? "model.safetensors.index.json" : "weights") : "adapter");
	all_fail(r < ranks, dir, msg);
	free(all);

	int n = lm_ck_shards(ck), bad = -1, from = 0, to = 0;
	if (!n)
		return;
	uint64_t *fp = lm_alloc(n * sizeof *fp), *fps = lm_alloc((size_t)ranks * n * sizeof *fps);
	for (int i = 0; i < n; i++)
		lm_ck_shard(ck, i, &fp[i]);
	lm_net_gather(fp, fps, n * sizeof *fp);
	for (int i = 0; i < n && bad < 0; i++) {
		int a = 0;
		while (a < ranks && !fps[(size_t)a * n + i])
			a++;
		for (int b = a + 1; b < ranks && bad < 0; b++)
			if (fps[(size_t)b * n + i] && fps[(size_t)b * n + i] != fps[(size_t)a * n + i])
				bad = i, from = a, to = b;
	}
	snprintf(msg, sizeof msg, "rank %d's copy differs from rank %d's: every rank must hold "
	         "the same files", to, from);
	uint64_t unused;
	all_fail(bad >= 0, bad >= 0 ? lm_ck_shard(ck, bad, &unused) : NULL, msg);
	for (int q = 0; q < ranks && rank == 0; q++) {
		int k = 0, shown = 0;
		for (int i = 0; i < n; i++)
			k += fps[(size_t)q * n + i] != 0;
		fprintf(stderr, "lmcc: %s: rank %d maps %d of %d shards:", m->name, q, k, n);
		for (int i = 0; i < n; i++) {
			if (!fps[(size_t)q * n + i])
				continue;
			const char *p = lm_ck_shard(ck, i, &unused), *base = strrchr(p, '/');
			if (shown++ < 4)
				fprintf(stderr, "%s %s", shown > 1 ? "," : "", base ? base + 1 : p);
		}
		fprintf(stderr, "%s\n", shown > 4 ? ", ..." : "");
	}
	free(fp);
	free(fps);
}

/* ---- rank 0 drives ---- */

static void send_all(long op, long n, long all)
{
	long cmd[3] = {op, n, all};
	for (int r = 1; r < ranks; r++)
		lm_net_send(r, TAG_CMD, cmd, sizeof cmd);
}

static void drive_forward(const int *tok, long n, float *logits, int all)
{
	send_all(CMD_FORWARD, n, all);
	tl_begin();
	model->forward(tok, n, logits, all);
	busy = 0;                    /* what follows the last batch posted */
	lm_net_recv(ranks - 1, TAG_LOGITS, logits, (size_t)(all ? n : 1) * model->vocab * sizeof(float));
}

static void drive_reset(void)
{
	send_all(CMD_RESET, 0, 0);
	model->reset();
}

const lm_model *lm_stage_driver(const lm_model *m)
{
	static lm_model d;
	if (ranks == 1)
		return m;
	d = *m;
	d.forward = drive_forward;
	d.reset = drive_reset;
	return &d;
}

/* ---- the other ranks follow ---- */

int lm_stage_worker(const lm_model *m, const char *weights, const char *adapter)
{
	long ctx = 0, cmd[3], cap = 0;
	lm_stage_setup(m, &ctx);
	lm_loaded w;
	lm_load(&w, m, weights, adapter, ctx);
	int last = rank == ranks - 1;
	float *out = NULL;
	for (;;) {
		lm_net_recv(0, TAG_CMD, cmd, sizeof cmd);
		if (cmd[0] == CMD_END)
			break;
		if (cmd[0] == CMD_RESET) {
			m->reset();
			continue;
		}
		long rows = cmd[2] ? cmd[1] : 1;
		if (last && rows > cap) {
			free(out);
			out = lm_floats((size_t)rows * m->vocab);
			cap = rows;
		}
		m->forward(NULL, cmd[1], out, (int)cmd[2]);
		tl_end();
		if (last)
			lm_net_send(0, TAG_LOGITS, out, (size_t)rows * m->vocab * sizeof(float));
	}
	lm_stage_end(m);
	free(out);
	lm_unload(&w);
	return 0;
}

/* Under LMCC_TIMELINE=1, rank 0 prints every rank's batches, and for
 * each pair of neighbours how many batches i of rank r + 1 ran while
 * rank r ran batch i + 1: the pipeline at work. */
static void timeline(void)
{
	double (*all)[TL][2] = lm_alloc(ranks * sizeof *all);
	int *n = lm_alloc(ranks * sizeof *n);
	lm_net_gather(tl, all, sizeof tl);
	lm_net_gather(&ntl, n, sizeof ntl);
	const char *want = getenv("LMCC_TIMELINE");
	if (rank == 0 && want && !strcmp(want, "1")) {
		double t0 = all[0][0][0];
		for (int r = 0; r < ranks; r++) {
			fprintf(stderr, "lmcc: timeline: rank %d:", r);
			for (int i = 0; i < n[r]; i++)
				fprintf(stderr, " %d [%.3f, %.3f]", i, all[r][i][0] - t0, all[r][i][1] - t0);
			fprintf(stderr, "\n");
		}
		for (int r = 0; r + 1 < ranks; r++) {
			int pairs = 0, both = 0;
			double shared = 0, work = 0;
			for (int i = 0; i + 1 < n[r] && i < n[r + 1]; i++) {
				double a = all[r + 1][i][0], b = all[r + 1][i][1];
				double c = all[r][i + 1][0], d = all[r][i + 1][1];
				double o = (b < d ? b : d) - (a > c ? a : c);
				pairs++;
				both += o > 0;
				shared += o > 0 ? o : 0;
				work += b - a;
			}
			fprintf(stderr, "lmcc: timeline: rank %d ran batch i while rank %d ran batch i + 1 "
			        "for %d of %d batches (%.0f%% of rank %d's time on them)\n", r + 1, r, both,
			        pairs, work > 0 ? 100 * shared / work : 0.0, r + 1);
		}
	}
	free(all);
	free(n);
}

/* Every rank's peak memory, shown by rank 0; then the transport ends. */
/* The bytes of the caches and states this rank allocated: its own
 * layers' alone. */
static long held(const lm_state *s)
{
	long b = 0;
	for (int i = 0; i < s->nkv; i++) {
		const lm_kv *c = s->kv[i];
		b += c->cap * (c->kdim + (c->kind == LM_KV_LATENT ? 0 : c->vdim)) * (long)sizeof(float);
	}
	for (int i = 0; i < s->nf; i++)
		b += s->n[i] * (long)sizeof(float);
	return b;
}

void lm_stage_end(const lm_model *m)
{
	if (ranks == 1)
		return;
	if (rank == 0)
		send_all(CMD_END, 0, 0);
	timeline();
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	long mine[2] = {ru.ru_maxrss, held(m->state)}, *all = lm_alloc(ranks * sizeof mine);
	lm_net_gather(mine, all, sizeof mine);
	if (rank == 0) {
		fprintf(stderr, "lmcc: %s: peak memory by rank:", m->name);
		for (int r = 0; r < ranks; r++)
			fprintf(stderr, "%s %d: %.1f MB", r ? "," : "", r, all[2 * r] / 1024.0);
		fprintf(stderr, "\nlmcc: %s: caches and states by rank (bytes):", m->name);
		for (int r = 0; r < ranks; r++)
			fprintf(stderr, "%s %d: %ld", r ? "," : "", r, all[2 * r + 1]);
		fprintf(stderr, "\n");
	}
	free(all);
	lm_net_end();
}
