/* state.c: saving, restoring and cutting back a model's state (see
 * state.h).
 *
 * A snapshot is a flat record: the position and the count of parts, then
 * per K/V cache its kind, sizes and length followed by what it holds (a
 * full or latent cache its first len rows, only in a whole snapshot; a ring
 * all its slots and their positions), then per float state its size and
 * floats.  Every size is checked against the model's own on restore, so a
 * snapshot of another model, or a damaged one, is refused. */
#include "rt.h"
#include "state.h"

#include <stdlib.h>
#include <string.h>

void lm_state_kv(lm_state *s, lm_kv *c)
{
	s->kv = lm_realloc(s->kv, (s->nkv + 1) * sizeof *s->kv);
	s->kv[s->nkv++] = c;
}

void lm_state_floats(lm_state *s, float **f, long n)
{
	if (!lm_stage_mine())
		n = 0;          /* a layer of another pipeline stage: never run */
	*f = lm_floats(n);
	s->f = lm_realloc(s->f, (s->nf + 1) * sizeof *s->f);
	s->n = lm_realloc(s->n, (s->nf + 1) * sizeof *s->n);
	s->f[s->nf] = f;
	s->n[s->nf++] = n;
}

void *lm_state_own(lm_state *s, void *p)
{
	s->own = lm_realloc(s->own, (s->nown + 1) * sizeof *s->own);
	return s->own[s->nown++] = p;
}

void lm_state_free(lm_state *s)
{
	for (int i = 0; i < s->nkv; i++) {
		lm_kv *c = s->kv[i];
		if (c->v != c->k)
			free(c->v);
		free(c->k);
		free(c->pos);
		*c = (lm_kv){0};
	}
	for (int i = 0; i < s->nf; i++) {
		free(*s->f[i]);
		*s->f[i] = NULL;
	}
	for (long i = 0; i < s->nown; i++)
		free(s->own[i]);
	free(s->kv);
	free(s->f);
	free(s->n);
	free(s->own);
	s->kv = NULL;
	s->f = NULL;
	s->n = NULL;
	s->own = NULL;
	s->nkv = s->nf = 0;
	s->nown = 0;
}

void lm_state_reset(lm_state *s)
{
	*s->pos = 0;
	for (int i = 0; i < s->nkv; i++)
		lm_kv_reset(s->kv[i]);
	for (int i = 0; i < s->nf; i++)
		memset(*s->f[i], 0, s->n[i] * sizeof(float));
}

/* One pass writes (w != 0) or measures (w == 0, *at counts). */
typedef struct { char *p; size_t at; } Out;

static void put(Out *o, const void *x, size_t n)
{
	if (o->p)
		memcpy(o->p + o->at, x, n);
	o->at += n;
}

static void put_long(Out *o, long v)
{
	int64_t x = v;
	put(o, &x, sizeof x);
}

/* Rows kept of a cache: a ring's every slot, else its first len. */
static long rows(const lm_kv *c)
{
	return c->kind == LM_KV_RING ? c->cap : c->len;
}

static void record(const lm_state *s, int whole, Out *o)
{
	put_long(o, *s->pos);
	put_long(o, s->nkv);
	put_long(o, s->nf);
	for (int i = 0; i < s->nkv; i++) {
		const lm_kv *c = s->kv[i];
		put_long(o, c->kind);
		put_long(o, c->cap);
		put_long(o, c->kdim);
		put_long(o, c->vdim);
		put_long(o, c->len);
		if (c->kind != LM_KV_RING && !whole)
			continue;
		long r = rows(c);
		put(o, c->k, r * c->kdim * sizeof(float));
		if (c->v != c->k)
			put(o, c->v, r * c->vdim * sizeof(float));
		put(o, c->pos, r * sizeof(long));
	}
	for (int i = 0; i < s->nf; i++) {
		put_long(o, s->n[i]);
		put(o, *s->f[i], s->n[i] * sizeof(float));
	}
}

size_t lm_state_bytes(const lm_state *s, int whole)
{
	Out o = {0};
	record(s, whole, &o);
	return o.at;
}

void lm_state_save(const lm_state *s, int whole, void *buf)
{
	Out o = {buf, 0};
	record(s, whole, &o);
}

typedef struct { const char *p; size_t at, n; int ok; } In;

static const void *take(In *in, size_t n)
{
	if (!in->ok || n > in->n - in->at) {
		in->ok = 0;
		return NULL;
	}
	in->at += n;
	return in->p + in->at - n;
}

static long take_long(In *in)
{
	int64_t x = 0;
	const void *p = take(in, sizeof x);
	if (p)
		memcpy(&x, p, sizeof x);
	return (long)x;
}

/* Checks a snapshot against the model (apply == 0), or restores it. */
static int replay(lm_state *s, int whole, In in, int apply)
{
	long pos = take_long(&in);
	if (take_long(&in) != s->nkv || take_long(&in) != s->nf || pos < 0)
		return 0;
	for (int i = 0; i < s->nkv && in.ok; i++) {
		lm_kv *c = s->kv[i];
		long kind = take_long(&in), cap = take_long(&in), kdim = take_long(&in);
		long vdim = take_long(&in), len = take_long(&in);
		/* the capacity follows the context, which may differ from run to
		 * run: what matters is that the model's cache can hold what
		 * the snapshot holds */
		if (kind != c->kind || kdim != c->kdim || vdim != c->vdim || cap < 1
		    || len < 0 || len > pos || (kind != LM_KV_RING && len > c->cap))
			return 0;
		if (kind != LM_KV_RING && !whole) {
			if (len > c->len)
				return 0;
			if (apply) {
				for (long r = len; r < c->len; r++)
					c->pos[r] = -1;
				c->len = len;
			}
			continue;
		}
		long r = kind == LM_KV_RING ? cap : len;
		const void *k = take(&in, r * kdim * sizeof(float));
		const void *v = c->v != c->k ? take(&in, r * vdim * sizeof(float)) : NULL;
		const long *p = take(&in, r * sizeof(long));
		if (!in.ok)
			return 0;
		for (long j = 0; j < r; j++) {
			long q;
			memcpy(&q, p + j, sizeof q);
			if (q < -1 || q >= len || (kind == LM_KV_RING ? q >= 0 && q % cap != j : q != j))
				return 0;
		}
		if (!apply)
			continue;
		/* row by row, to the slot of its position: a ring's capacity
		 * may differ (it is the context's when that is shorter) */
		lm_kv_reset(c);
		for (long j = 0; j < r; j++) {
			long q;
			memcpy(&q, p + j, sizeof q);
			long to = kind == LM_KV_RING ? q % c->cap : q;
			if (q < 0 || (kind == LM_KV_RING && q < len - c->cap))
				continue;
			memcpy(c->k + to * kdim, (const float *)k + j * kdim, kdim * sizeof(float));
			if (v)
				memcpy(c->v + to * vdim, (const float *)v + j * vdim, vdim * sizeof(float));
			c->pos[to] = q;
		}
		c->len = len;
	}
	for (int i = 0; i < s->nf && in.ok; i++) {
		if (take_long(&in) != s->n[i])
			return 0;
		const void *f = take(&in, s->n[i] * sizeof(float));
		if (f && apply)
			memcpy(*s->f[i], f, s->n[i] * sizeof(float));
	}
	if (!in.ok || in.at != in.n)
		return 0;
	if (apply)
		*s->pos = pos;
	return 1;
}

int lm_state_restore(lm_state *s, int whole, const void *buf, size_t n)
{
	In in = {buf, 0, n, 1};
	if (!replay(s, whole, in, 0))
		return 0;
	replay(s, whole, in, 1);
	return 1;
}

/* A ring can be cut to p while it still holds every position of
 * [p - cap, p) it held: it has dropped only positions below p - cap. */
static int ring_keeps(const lm_kv *c, long p)
{
	return c->len <= c->cap || c->len <= p;
}

static void cut_kv(lm_kv *c, long p)
{
	for (long r = 0; r < c->cap; r++)
		if (c->pos[r] >= p)
			c->pos[r] = -1;
	if (c->len > p)
		c->len = p;
}

int lm_state_cut(lm_state *s, long p)
{
	if (p < 0 || p > *s->pos)
		return 0;
	if (p < *s->pos && p > 0) {
		if (s->nf)
			return 0;
		for (int i = 0; i < s->nkv; i++)
			if (s->kv[i]->kind == LM_KV_RING && !ring_keeps(s->kv[i], p))
				return 0;
	}
	for (int i = 0; i < s->nkv; i++)
		cut_kv(s->kv[i], p);
	if (p == 0)
		for (int i = 0; i < s->nf; i++)
			memset(*s->f[i], 0, s->n[i] * sizeof(float));
	*s->pos = p;
	return 1;
}

int lm_state_fixed(const lm_state *s)
{
	if (s->nf)
		return 1;
	for (int i = 0; i < s->nkv; i++)
		if (s->kv[i]->kind == LM_KV_RING)
			return 1;
	return 0;
}
