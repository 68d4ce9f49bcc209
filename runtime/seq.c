/* seq.c: the server's worker.  It owns the model and runs up to
 * --parallel jobs at once, each in a slot: a sequence with its own bank of
 * caches (bank.c) and the tokens they hold.  A new job takes a free slot,
 * finds how much of its prompt that slot's state already holds, and feeds
 * the rest alone (prefill); then every slot that is generating feeds its
 * last token in one batched step (lm_model.step: one pass over the weights
 * for all of them), samples from its own logits and hands the text out as
 * it comes.  Admissions and steps alternate, so a new prompt waits for at
 * most one step and running streams for at most one prefill.
 *
 * Prompt-cache reuse.  A slot's state holds the tokens of its last job
 * (its prompt and reply), and a new job goes to the free slot sharing the
 * longest prefix with its prompt.  It continues from there when the state
 * can be cut back to that prefix (full K/V caches always can; see
 * state.h).  Rings, convolution and recurrent states cannot, so after each
 * prompt (a message boundary: a follow-up turn repeats the prompt and adds
 * to it) the worker keeps a partial snapshot of just those parts, for
 * every slot to use, least recently used first out when --cache-bytes is
 * exceeded.  A follow-up restores the snapshot of the longest prompt it
 * starts with, cuts the full caches to it, and feeds only what is new. */
#include "rt.h"
#include "srv.h"
#include "state.h"
#include "stop.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct Snap {
	int *ids;                /* the prompt it is the state after */
	long n;
	void *blob;
	size_t bytes;
	unsigned long used;      /* for LRU */
	struct Snap *next;
} Snap;

typedef struct {
	lm_bank *bank;           /* its caches (0 with --parallel 1: the model's own) */
	int *hist;               /* the tokens its state holds */
	long nhist;
	float *logits;           /* after its last token */
	Job *j;                  /* the job it runs, or 0: free */
	/* the job's decoding */
	lm_detok *dt;
	lm_stop stop;
	uint64_t rng;
	long g, cached;          /* tokens generated, prompt tokens reused */
	int id;                  /* the token the next step feeds */
	double t0;
} Slot;

typedef struct {
	Srv *s;
	const lm_model *m;
	lm_tok *tok;             /* the worker's own (one per thread) */
	Slot *slot;
	int nslot;
	lm_bank **banks;
	lm_bank **rows;          /* a step's sequences, tokens, logits */
	int *ids;
	Slot **who;
	float *logits;
	Snap *snaps;
	size_t snap_bytes;
	unsigned long clock;
} Seq;

static long common(const int *a, long na, const int *b, long nb)
{
	long k = 0;
	while (k < na && k < nb && a[k] == b[k])
		k++;
	return k;
}

static void drop(Seq *q, Snap **at)
{
	Snap *x = *at;
	*at = x->next;
	q->snap_bytes -= x->bytes;
	free(x->ids);
	free(x->blob);
	free(x);
}

/* Keep the state after prompt ids[0, n) within --cache-bytes. */
static void snapshot(Seq *q, const int *ids, long n)
{
	lm_state *st = q->m->state;
	size_t bytes = lm_state_bytes(st, 0);
	if (!lm_state_fixed(st) || bytes > (size_t)q->s->o->cache_bytes)
		return;
	for (Snap **p = &q->snaps; *p;)
		if ((*p)->n == n && !memcmp((*p)->ids, ids, n * sizeof *ids))
			drop(q, p);
		else
			p = &(*p)->next;
	while (q->snap_bytes + bytes > (size_t)q->s->o->cache_bytes) {
		Snap **lru = &q->snaps;
		for (Snap **p = &q->snaps; *p; p = &(*p)->next)
			if ((*p)->used < (*lru)->used)
				lru = p;
		drop(q, lru);
	}
	Snap *x = lm_alloc(sizeof *x);
	x->ids = lm_alloc(n * sizeof *ids);
	memcpy(x->ids, ids, n * sizeof *ids);
	x->n = n;
	x->blob = lm_alloc(bytes);
	x->bytes = bytes;
	lm_state_save(st, 0, x->blob);
	x->used = ++q->clock;
	x->next = q->snaps;
	q->snaps = x;
	q->snap_bytes += bytes;
}

/* Bring slot x's state (the current bank) to the longest prefix of
 * ids[0, n) it can reach without feeding (at most n - 1 tokens: the last
 * is fed for its logits); returns its length. */
static long reuse(Seq *q, Slot *x, const int *ids, long n)
{
	lm_state *st = q->m->state;
	long k = common(x->hist, x->nhist, ids, n - 1);
	if (lm_state_cut(st, k))
		return x->nhist = k;
	/* the full caches hold ids[0, k): a snapshot of a prompt within it
	 * gives the rest of the state there */
	Snap *best = NULL;
	for (Snap *p = q->snaps; p; p = p->next)
		if (p->n <= k && (!best || p->n > best->n) && !memcmp(p->ids, ids, p->n * sizeof *ids))
			best = p;
	if (best && lm_state_restore(st, 0, best->blob, best->bytes)) {
		best->used = ++q->clock;
		return x->nhist = best->n;
	}
	lm_state_cut(st, 0);
	return x->nhist = 0;
}

static void remember(Slot *x, const int *ids, long n)
{
	memcpy(x->hist + x->nhist, ids, n * sizeof *ids);
	x->nhist += n;
}

static int cancelled(Job *j)
{
	pthread_mutex_lock(&j->mu);
	int c = j->cancelled;
	pthread_mutex_unlock(&j->mu);
	return c;
}

/* The job is over for the worker: wake its sender, drop the worker's
 * reference. */
static void release(Srv *s, Job *j)
{
	pthread_mutex_lock(&s->mu);
	s->in_flight--;
	pthread_mutex_unlock(&s->mu);
	pthread_mutex_lock(&j->mu);
	j->done = 1;
	pthread_cond_broadcast(&j->cv);
	int last = --j->refs == 0;
	pthread_mutex_unlock(&j->mu);
	if (last)
		job_free(j);
}

static void finish(Seq *q, Slot *x, const char *why)
{
	Srv *s = q->s;
	Job *j = x->j;
	size_t len;
	const char *text;
	if (!x->stop.hit) {
		text = lm_detok_flush(x->dt, &len);
		len = lm_stop_push(&x->stop, text, len, &text);
		api_delta(j, s->name, text, len);
		len = lm_stop_flush(&x->stop, &text);
	} else {
		len = 0;
		text = "";
	}
	api_finish(j, s->name, text, len, why, j->n, x->cached, x->g);
	lm_stop_free(&x->stop);
	lm_detok_free(x->dt);
	pthread_mutex_lock(&s->mu);
	s->gen_tokens += x->g;
	pthread_mutex_unlock(&s->mu);
	x->j = NULL;
	release(s, j);
}

/* Sample slot x's next token from its logits and hand out its text: 1
 * when the token is to be fed (the job goes on), 0 when the job is over. */
static int advance(Seq *q, Slot *x)
{
	Srv *s = q->s;
	Job *j = x->j;
	if (x->g >= j->max || cancelled(j) || s->quit) {
		finish(q, x, "length");
		return 0;
	}
	int id = lm_sample_hist(x->logits, s->choose, &j->samp, x->hist, x->nhist, &x->rng);
	if (lm_tok_is_eos(q->tok, id, j->chat)) {
		finish(q, x, "stop");
		return 0;
	}
	if (j->return_ids) {
		j->gen = lm_realloc(j->gen, (j->ngen + 1) * sizeof *j->gen);
		j->gen[j->ngen++] = id;
	}
	size_t len;
	const char *text = lm_detok_push(x->dt, id, &len);
	len = lm_stop_push(&x->stop, text, len, &text);
	api_delta(j, s->name, text, len);
	x->g++;
	if (x->stop.hit) {
		finish(q, x, "stop");
		return 0;
	}
	if (x->g < j->max && x->nhist < s->ctx) {
		x->id = id;
		remember(x, &id, 1);
		return 1;
	}
	finish(q, x, "length");   /* the most tokens, or the context is full */
	return 0;
}

/* Start job j in slot x: reuse what its state holds of the prompt, feed
 * the rest, and take the first token. */
static void start(Seq *q, Slot *x, Job *j)
{
	Srv *s = q->s;
	const lm_model *m = q->m;
	double t0 = lm_now();
	if (s->quit || cancelled(j)) {
		release(s, j);
		return;
	}
	if (x->bank)
		lm_bank_use(m->state, x->bank);
	long cached = reuse(q, x, j->ids, j->n), at = cached;
	if (j->mark > at && j->mark < j->n) {   /* the end of the last message */
		m->forward(j->ids + at, j->mark - at, x->logits, 0);
		remember(x, j->ids + at, j->mark - at);
		snapshot(q, j->ids, j->mark);
		at = j->mark;
	}
	m->forward(j->ids + at, j->n - at, x->logits, 0);
	remember(x, j->ids + at, j->n - at);
	snapshot(q, j->ids, j->n);

	x->j = j;
	x->g = 0;
	x->cached = cached;
	x->dt = lm_detok_new(q->tok);
	lm_stop_init(&x->stop, j->stop, j->nstop);
	x->rng = j->seed * 0x9E3779B97F4A7C15ull + 1;
	size_t len;
	if (!j->chat)   /* the decoder continues the prompt, whose text is not sent */
		for (long i = 0; i < j->n; i++)
			lm_detok_push(x->dt, j->ids[i], &len);
	if (j->chat)
		api_delta(j, s->name, NULL, 0);
	pthread_mutex_lock(&s->mu);
	s->prompt_tokens += j->n;
	s->cached_tokens += cached;
	s->cache_hits += cached > 0;
	s->prompt_s += lm_now() - t0;
	s->cache_bytes = (long)q->snap_bytes;
	s->cache_snaps = 0;
	for (Snap *p = q->snaps; p; p = p->next)
		s->cache_snaps++;
	pthread_mutex_unlock(&s->mu);
	double t1 = lm_now();
	advance(q, x);
	pthread_mutex_lock(&s->mu);
	s->gen_s += lm_now() - t1;
	pthread_mutex_unlock(&s->mu);
}

/* Feed every generating slot's token in one step, then take each one's
 * next token. */
static void step(Seq *q)
{
	const lm_model *m = q->m;
	long V = m->vocab, b = 0;
	double t0 = lm_now();
	for (int i = 0; i < q->nslot; i++)
		if (q->slot[i].j) {
			q->who[b] = &q->slot[i];
			q->rows[b] = q->slot[i].bank;
			q->ids[b++] = q->slot[i].id;
		}
	if (b == 0)
		return;
	if (b == 1) {   /* alone, exactly as with --parallel 1 */
		if (q->who[0]->bank)
			lm_bank_use(m->state, q->who[0]->bank);
		m->forward(q->ids, 1, q->who[0]->logits, 0);
	} else {
		m->step(q->rows, q->ids, b, q->logits);
		for (long r = 0; r < b; r++)
			memcpy(q->who[r]->logits, q->logits + r * V, V * sizeof(float));
	}
	for (long r = 0; r < b; r++)
		advance(q, q->who[r]);
	pthread_mutex_lock(&q->s->mu);
	q->s->gen_s += lm_now() - t0;
	q->s->steps += b > 1;
	q->s->step_rows += b > 1 ? b : 0;
	pthread_mutex_unlock(&q->s->mu);
}

/* A free slot for ids[0, n): the one whose state shares the longest
 * prefix with it, or 0 when every slot is busy. */
static Slot *free_slot(Seq *q, const int *ids, long n)
{
	Slot *best = NULL;
	long most = -1;
	for (int i = 0; i < q->nslot; i++) {
		Slot *x = &q->slot[i];
		long k = x->j ? -1 : common(x->hist, x->nhist, ids, n);
		if (k > most) {
			most = k;
			best = x;
		}
	}
	return best;
}

static int busy(const Seq *q)
{
	for (int i = 0; i < q->nslot; i++)
		if (q->slot[i].j)
			return 1;
	return 0;
}

void *seq_worker(void *arg)
{
	Srv *s = arg;
	const lm_model *m = s->m;
	int n = s->o->parallel > 1 ? s->o->parallel : 1;
	Seq q = {.s = s, .m = m, .nslot = n};
	q.tok = lm_tok_open(s->o->weights);
	if (s->o->template)
		lm_tok_set_chat_template(q.tok, s->o->template);
	q.slot = lm_alloc(n * sizeof *q.slot);
	if (n > 1)
		q.banks = lm_banks(m->state, n);
	for (int i = 0; i < n; i++) {
		q.slot[i].bank = q.banks ? q.banks[i] : NULL;
		q.slot[i].hist = lm_alloc((s->ctx + 1) * sizeof(int));
		q.slot[i].logits = lm_floats(m->vocab);
	}
	q.rows = lm_alloc(n * sizeof *q.rows);
	q.ids = lm_alloc(n * sizeof *q.ids);
	q.who = lm_alloc(n * sizeof *q.who);
	q.logits = lm_floats((size_t)n * m->vocab);
	for (;;) {
		pthread_mutex_lock(&s->mu);
		while (!s->quit && !busy(&q) && !s->head)
			pthread_cond_wait(&s->cv, &s->mu);
		Job *j = s->head;
		Slot *x = j ? free_slot(&q, j->ids, j->n) : NULL;
		if (x) {
			s->head = j->next;
			if (!s->head)
				s->tail = NULL;
			s->queued--;
		}
		pthread_mutex_unlock(&s->mu);
		if (!x && !busy(&q) && s->quit)
			break;
		if (x)
			start(&q, x, j);
		step(&q);
	}
	while (q.snaps)
		drop(&q, &q.snaps);
	for (int i = 0; i < n; i++) {
		free(q.slot[i].hist);
		free(q.slot[i].logits);
	}
	if (q.banks)
		lm_banks_free(m->state, q.banks, n);
	free(q.slot);
	free(q.rows);
	free(q.ids);
	free(q.who);
	free(q.logits);
	lm_tok_free(q.tok);
	return NULL;
}
