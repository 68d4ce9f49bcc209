/* seq.c: the server's worker.  It owns the model and runs jobs one after
 * another: find how much of the prompt the model's state already holds,
 * feed the rest, generate, and hand the text out as it comes.
 *
 * Prompt-cache reuse.  The state holds the tokens of the last job (its
 * prompt and reply).  A new prompt sharing a prefix with them continues
 * from there when the state can be cut back to that prefix (full K/V
 * caches always can; see state.h).  Rings, convolution and recurrent
 * states cannot, so after each prompt (a message boundary: a follow-up
 * turn repeats the prompt and adds to it) the worker keeps a partial
 * snapshot of just those parts, least recently used first out when
 * --cache-bytes is exceeded.  A follow-up restores the snapshot of the
 * longest prompt it starts with, cuts the full caches to it, and feeds only
 * what is new. */
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
	Srv *s;
	const lm_model *m;
	lm_tok *tok;             /* the worker's own (one per thread) */
	int *hist;               /* the tokens the state holds */
	long nhist;
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

/* Bring the state to the longest prefix of ids[0, n) it can reach without
 * feeding (at most n - 1 tokens: the last is fed for its logits); returns
 * its length. */
static long reuse(Seq *q, const int *ids, long n)
{
	lm_state *st = q->m->state;
	long k = common(q->hist, q->nhist, ids, n - 1);
	if (lm_state_cut(st, k))
		return q->nhist = k;
	/* the full caches hold ids[0, k): a snapshot of a prompt within it
	 * gives the rest of the state there */
	Snap *best = NULL;
	for (Snap *x = q->snaps; x; x = x->next)
		if (x->n <= k && (!best || x->n > best->n) && !memcmp(x->ids, ids, x->n * sizeof *ids))
			best = x;
	if (best && lm_state_restore(st, 0, best->blob, best->bytes)) {
		best->used = ++q->clock;
		return q->nhist = best->n;
	}
	lm_state_cut(st, 0);
	return q->nhist = 0;
}

static void remember(Seq *q, const int *ids, long n)
{
	memcpy(q->hist + q->nhist, ids, n * sizeof *ids);
	q->nhist += n;
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

static void run(Seq *q, Job *j)
{
	Srv *s = q->s;
	const lm_model *m = q->m;
	double t0 = lm_now();
	if (s->quit || cancelled(j)) {
		release(s, j);
		return;
	}
	long cached = reuse(q, j->ids, j->n), at = cached;
	if (j->mark > at && j->mark < j->n) {   /* the end of the last message */
		m->forward(j->ids + at, j->mark - at, q->logits, 0);
		remember(q, j->ids + at, j->mark - at);
		snapshot(q, j->ids, j->mark);
		at = j->mark;
	}
	m->forward(j->ids + at, j->n - at, q->logits, 0);
	remember(q, j->ids + at, j->n - at);
	snapshot(q, j->ids, j->n);
	double t1 = lm_now();

	lm_detok *dt = lm_detok_new(q->tok);
	lm_stop stop;
	lm_stop_init(&stop, j->stop, j->nstop);
	size_t len;
	const char *text;
	if (!j->chat)   /* the decoder continues the prompt, whose text is not sent */
		for (long i = 0; i < j->n; i++)
			lm_detok_push(dt, j->ids[i], &len);
	if (j->chat)
		api_delta(j, s->name, NULL, 0);
	uint64_t rng = j->seed * 0x9E3779B97F4A7C15ull + 1;
	const char *finish = "length";
	long g;
	for (g = 0; g < j->max; g++) {
		if (cancelled(j) || s->quit)
			break;
		int id = lm_sample_hist(q->logits, s->choose, &j->samp, q->hist, q->nhist, &rng);
		if (lm_tok_is_eos(q->tok, id, j->chat)) {
			finish = "stop";
			break;
		}
		if (j->return_ids) {
			j->gen = lm_realloc(j->gen, (j->ngen + 1) * sizeof *j->gen);
			j->gen[j->ngen++] = id;
		}
		text = lm_detok_push(dt, id, &len);
		len = lm_stop_push(&stop, text, len, &text);
		api_delta(j, s->name, text, len);
		if (stop.hit) {
			finish = "stop";
			g++;
			break;
		}
		if (g + 1 < j->max && q->nhist < s->ctx) {
			m->forward(&id, 1, q->logits, 0);
			remember(q, &id, 1);
		} else if (g + 1 < j->max) {
			g++;
			break;      /* the context is full: finish "length" */
		}
	}
	if (!stop.hit) {
		text = lm_detok_flush(dt, &len);
		len = lm_stop_push(&stop, text, len, &text);
		api_delta(j, s->name, text, len);
		len = lm_stop_flush(&stop, &text);
	} else {
		len = 0;
		text = "";
	}
	api_finish(j, s->name, text, len, finish, j->n, cached, g);
	lm_stop_free(&stop);
	lm_detok_free(dt);
	double t2 = lm_now();

	pthread_mutex_lock(&s->mu);
	s->prompt_tokens += j->n;
	s->cached_tokens += cached;
	s->cache_hits += cached > 0;
	s->gen_tokens += g;
	s->prompt_s += t1 - t0;
	s->gen_s += t2 - t1;
	s->cache_bytes = (long)q->snap_bytes;
	s->cache_snaps = 0;
	for (Snap *x = q->snaps; x; x = x->next)
		s->cache_snaps++;
	pthread_mutex_unlock(&s->mu);
	release(s, j);
}

void *seq_worker(void *arg)
{
	Srv *s = arg;
	Seq q = {.s = s, .m = s->m};
	q.tok = lm_tok_open(s->o->weights);
	if (s->o->template)
		lm_tok_set_chat_template(q.tok, s->o->template);
	q.hist = lm_alloc((s->ctx + 1) * sizeof(int));
	q.logits = lm_floats(s->m->vocab);
	for (;;) {
		pthread_mutex_lock(&s->mu);
		while (!s->head && !s->quit)
			pthread_cond_wait(&s->cv, &s->mu);
		Job *j = s->head;
		if (j) {
			s->head = j->next;
			if (!s->head)
				s->tail = NULL;
			s->queued--;
		}
		pthread_mutex_unlock(&s->mu);
		if (!j)
			break;
		run(&q, j);
	}
	while (q.snaps)
		drop(&q, &q.snaps);
	free(q.hist);
	free(q.logits);
	lm_tok_free(q.tok);
	return NULL;
}
