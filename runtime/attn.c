/* attn.c: K/V caches and softmax attention over them.
 *
 * Every key carries its absolute position, so one rule decides visibility
 * for every mask the five architectures use (causal, sliding window,
 * attention chunk) and for every cache layout (a full cache, a ring that
 * keeps only what a window or chunk can still see, a cache another layer
 * filled, a latent cache whose values are the start of its keys).  Keys
 * of the current call are read from the caller's buffers
 * before they are appended, so a ring never loses a key that an earlier
 * query of the same call still needs: how the input is chunked cannot
 * change the result. */
#include "vec.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void lm_kv_init(lm_kv *c, int kind, long cap, long kdim, long vdim)
{
	if (kind == LM_KV_LATENT && vdim > kdim)
		lm_bug("latent cache: values of %ld floats in keys of %ld", vdim, kdim);
	if (!lm_stage_mine())
		cap = 0;        /* a layer of another pipeline stage: never filled */
	c->kind = kind;
	c->cap = cap;
	c->kdim = kdim;
	c->vdim = vdim;
	c->k = lm_floats((size_t)cap * kdim);
	c->v = kind == LM_KV_LATENT ? c->k : lm_floats((size_t)cap * vdim);
	c->pos = lm_alloc(cap * sizeof(long));
	lm_kv_reset(c);
}

void lm_kv_reset(lm_kv *c)
{
	c->len = 0;
	for (long i = 0; i < c->cap; i++)
		c->pos[i] = -1;
}

static void kv_append(lm_kv *c, const float *k, const float *v, long n, long pos)
{
	long first = 0;
	if (c->kind == LM_KV_RING && n > c->cap)
		first = n - c->cap;      /* the rest would be overwritten at once */
	for (long t = first; t < n; t++) {
		long p = pos + t;
		long s = c->kind == LM_KV_RING ? p % c->cap : p;
		if (s >= c->cap)
			lm_bug("KV cache overflow: position %ld, capacity %ld", p, c->cap);
		memcpy(c->k + s * c->kdim, k + t * c->kdim, c->kdim * sizeof(float));
		if (c->v != c->k)
			memcpy(c->v + s * c->vdim, v + t * c->vdim, c->vdim * sizeof(float));
		c->pos[s] = p;
	}
	c->len = pos + n;
}

static int visible(long p, long q, lm_mask m)
{
	if (p < 0 || p > q)
		return 0;
	if (m.window > 0 && q - p >= m.window)
		return 0;
	if (m.chunk > 0 && p / m.chunk != q / m.chunk)
		return 0;
	return 1;
}

/* Keys one call sees: the cache's slots, then the call's own keys. */
typedef struct {
	const float *k, *v;
	const long *pos;     /* per key, or NULL: positions pos0, pos0 + 1, ... */
	long pos0, n, kstride, vstride;
} Seg;

static long seg_pos(const Seg *s, long i)
{
	return s->pos ? s->pos[i] : s->pos0 + i;
}

/* ---- attention ---- */

typedef struct {
	float *out;
	const float *q;
	long pos, heads, group, hd, vd;
	float scale;
	lm_mask mask;
	Seg seg[2];
	const lm_vec_fns *v;
} Job;

/* Scores held at once: a query's memory is this tile, however many keys
 * it sees.  The softmax runs online (Milakov and Gimelshein): a running
 * maximum, and the sum and the output rescaled whenever a tile raises it,
 * so the result is the softmax of all the scores in one pass. */
enum { TILE = 256 };

typedef struct {
	float s[TILE];
	const float *v[TILE];
	int n;
	float mx;            /* the largest score so far */
	double sum;          /* of exp(score - mx) so far */
} Tile;

/* Fold the tile's scores into out (vd floats, relative to t->mx). */
static void flush(Tile *t, float *out, long vd, const lm_vec_fns *f)
{
	float m = t->mx;
	for (int i = 0; i < t->n; i++)
		if (t->s[i] > m)
			m = t->s[i];
	if (m > t->mx && t->sum > 0) {
		float r = expf(t->mx - m);
		t->sum *= r;
		for (long c = 0; c < vd; c++)
			out[c] *= r;
	}
	t->mx = m;
	t->sum += f->expsum(t->s, m, t->n);
	for (int i = 0; i < t->n; i++)
		f->axpy(out, t->s[i], t->v[i], vd);
	t->n = 0;
}

/* Queries [u0, u1) of the n * heads (token, head) pairs. */
static void attend_part(void *ctx, long u0, long u1)
{
	const Job *j = ctx;
	Tile t;
	for (long u = u0; u < u1; u++) {
		long h = u % j->heads, g = h / j->group, qp = j->pos + u / j->heads;
		const float *qh = j->q + u * j->hd;
		float *o = j->out + u * j->vd;
		memset(o, 0, j->vd * sizeof(float));
		t.n = 0;
		t.mx = -INFINITY;
		t.sum = 0;
		/* the visible keys, in segment order */
		for (int si = 0; si < 2; si++) {
			const Seg *sg = &j->seg[si];
			for (long i = 0; i < sg->n; i++) {
				if (!visible(seg_pos(sg, i), qp, j->mask))
					continue;
				t.s[t.n] = j->v->dot(qh, sg->k + i * sg->kstride + g * j->hd, j->hd) * j->scale;
				t.v[t.n] = sg->v + i * sg->vstride + g * j->vd;
				if (++t.n == TILE)
					flush(&t, o, j->vd, j->v);
			}
		}
		flush(&t, o, j->vd, j->v);
		float inv = (float)(1 / t.sum);
		for (long c = 0; c < j->vd; c++)
			o[c] *= inv;
	}
}

void lm_attend(float *out, const float *q, long n, long pos, lm_kv *c,
               const float *k, const float *v, long heads, long kv_heads,
               long hd, long vd, float scale, lm_mask mask)
{
	long kvd = kv_heads * hd, kvv = kv_heads * vd;
	long cached = c->kind == LM_KV_RING ? c->cap : c->len;
	if (cached > c->cap)
		cached = c->cap;
	if (c->kind == LM_KV_LATENT)
		kvv = kvd;       /* values are the start of each key row */
	Job j = {out, q, pos, heads, heads / kv_heads, hd, vd, scale, mask, {
		{c->k, c->v, c->pos, 0, cached, kvd, kvv},
		{k, v, NULL, pos, k ? n : 0, kvd, kvv},
	}, lm_vec()};
	lm_parallel(n * heads, 1, attend_part, &j);
	if (k)
		kv_append(c, k, v, n, pos);
}
