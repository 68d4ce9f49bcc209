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

void lm_kv_append(lm_kv *c, const float *k, const float *v, long n, long pos)
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
	long pos, ntok, heads, group, hd, vd;
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

/* ---- prefill: blocks of queries as matrix products ----
 *
 * The query heads of one K/V head at a few neighbouring tokens see nearly
 * the same keys, so they go together as the R rows of a block: for a tile
 * of TK keys their scores are one product S = Q K^T ([R, hd] x [hd, TK]),
 * the softmax runs online per row as above, and the values come in as
 * O += P V ([R, TK] x [TK, vd]).  Each key is read once for the block
 * instead of once per query, and the products run at the matrix rate
 * instead of a dot product's: at long prompts, where the keys outgrow
 * the caches, that is most of attention's time.  A key a row must not see
 * gets a score of -inf, which the tile's exp turns into exactly 0. */
enum { TK = 128, ROWS = 32 };   /* keys per tile; query rows per block */

typedef struct {
	const Job *j;
	long kvh, nh, bt;      /* K/V heads; query heads and tokens per block */
	long hblocks, tblocks;
} Grid;

/* Block w: its first token, K/V head and first query head.  Token blocks
 * are taken from both ends in turn, so that the shares lm_parallel cuts
 * hold about as many causal keys each. */
static void block_of(const Grid *gr, long w, long *t0, long *g, long *h0)
{
	long per = gr->kvh * gr->hblocks, i = w / per, r = w % per;
	long tb = i % 2 == 0 ? i / 2 : gr->tblocks - 1 - i / 2;
	*t0 = tb * gr->bt;
	*g = r / gr->hblocks;
	*h0 = *g * gr->j->group + (r % gr->hblocks) * gr->nh;
}

static void attend_blocks(void *ctx, long w0, long w1)
{
	const Grid *gr = ctx;
	const Job *j = gr->j;
	long hd = j->hd, vd = j->vd;
	float *Q = lm_scratch(ROWS * (hd + vd + TK)), *O = Q + ROWS * hd, *S = O + ROWS * vd;
	float mx[ROWS];
	double sum[ROWS];
	unsigned char vis[ROWS][TK];
	for (long w = w0; w < w1; w++) {
		long t0, g, h0;
		block_of(gr, w, &t0, &g, &h0);
		long bt = j->ntok - t0 < gr->bt ? j->ntok - t0 : gr->bt;
		long nh = j->group - (h0 - g * j->group) < gr->nh ? j->group - (h0 - g * j->group) : gr->nh;
		long R = bt * nh, last = j->pos + t0 + bt - 1;   /* the block's last query position */
		for (long b = 0; b < bt; b++)                    /* row b * nh + h: token t0 + b, head h0 + h */
			memcpy(Q + b * nh * hd, j->q + ((t0 + b) * j->heads + h0) * hd, nh * hd * sizeof(float));
		memset(O, 0, R * vd * sizeof(float));
		for (long r = 0; r < R; r++) {
			mx[r] = -INFINITY;
			sum[r] = 0;
		}
		for (int si = 0; si < 2; si++) {
			const Seg *sg = &j->seg[si];
			long len = sg->n;
			if (!sg->pos && len > last - sg->pos0 + 1)
				len = last - sg->pos0 + 1;    /* the call's later keys: never visible */
			for (long i0 = 0; i0 < len; i0 += TK) {
				long nk = len - i0 < TK ? len - i0 : TK, seen = 0;
				for (long b = 0; b < bt; b++)
					for (long i = 0; i < nk; i++)
						seen += vis[b][i] = (unsigned char)visible(seg_pos(sg, i0 + i),
						                                           j->pos + t0 + b, j->mask);
				if (!seen)
					continue;
				lm_sgemm(0, 1, R, nk, hd, j->scale, Q, hd,
				         sg->k + i0 * sg->kstride + g * hd, sg->kstride, 0.0f, S, TK);
				for (long r = 0; r < R; r++) {
					float *s = S + r * TK, m = mx[r];
					const unsigned char *vr = vis[r / nh];
					for (long i = 0; i < nk; i++) {
						if (!vr[i])
							s[i] = -INFINITY;
						else if (s[i] > m)
							m = s[i];
					}
					if (m == -INFINITY) {         /* nothing this row sees yet */
						memset(s, 0, nk * sizeof(float));
						continue;
					}
					if (m > mx[r] && sum[r] > 0) {
						float f = expf(mx[r] - m);
						sum[r] *= f;
						for (long c = 0; c < vd; c++)
							O[r * vd + c] *= f;
					}
					mx[r] = m;
					sum[r] += j->v->expsum(s, m, nk);
				}
				lm_sgemm(0, 0, R, vd, nk, 1.0f, S, TK,
				         sg->v + i0 * sg->vstride + g * vd, sg->vstride, 1.0f, O, vd);
			}
		}
		for (long b = 0; b < bt; b++)
			for (long h = 0; h < nh; h++) {
				float inv = (float)(1 / sum[b * nh + h]), *o = j->out + ((t0 + b) * j->heads + h0 + h) * vd;
				for (long c = 0; c < vd; c++)
					o[c] = O[(b * nh + h) * vd + c] * inv;
			}
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
	Job j = {out, q, pos, n, heads, heads / kv_heads, hd, vd, scale, mask, {
		{c->k, c->v, c->pos, 0, cached, kvd, kvv},
		{k, v, NULL, pos, k ? n : 0, kvd, kvv},
	}, lm_vec()};
	if (n > 1) {
		/* prefill: blocks of up to ROWS queries, the group's heads first */
		long nh = j.group < ROWS ? j.group : ROWS, bt = ROWS / nh;
		Grid gr = {&j, kv_heads, nh, bt, (j.group + nh - 1) / nh, (n + bt - 1) / bt};
		lm_parallel(gr.tblocks * kv_heads * gr.hblocks, 1, attend_blocks, &gr);
	} else {
		lm_parallel(n * heads, 1, attend_part, &j);
	}
	if (k)
		lm_kv_append(c, k, v, n, pos);
}
