/* kern.c: the small kernels, one loop each, math in plain sight; the
 * loops that decoding repeats for every layer go through vec.h's version
 * for this CPU.  The steps a prompt's tokens take together split their
 * elements across the pool (lm_each): one thread alone on them while the
 * other waited was a tenth of Kimi's prefill.
 *
 * Sums that decide a result's scale (norms) accumulate in double: the
 * golden logits come from a float64 reference, and the cost is nothing next
 * to the matrix products. */
#include "rt.h"
#include "vec.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void lm_embed(float *x, lm_mat E, const int *tok, long n)
{
	for (long t = 0; t < n; t++)
		if (E.dtype == LM_Q)
			lm_qrow(x + t * E.cols, &E, tok[t]);
		else
			for (long i = 0; i < E.cols; i++)
				x[t * E.cols + i] = lm_load_f32(E.data, E.dtype,
				                                (size_t)tok[t] * E.ld + i);
	if (E.lora)
		lm_lora_lookup(x, tok, n, E.lora);
}

/* The operands of an elementwise step, for lm_each's ranges. */
typedef struct {
	float *y;
	const float *x, *a, *w, *state;
	long n, dim, wrows, taps;
	float eps;
	int act;         /* lm_causal_conv's silu */
} Each;

static void add_range(void *c, long lo, long hi)
{
	const Each *e = c;
	for (long i = lo; i < hi; i++)
		e->y[i] = e->x[i] + e->a[i];
}

void lm_add(float *y, const float *x, const float *a, long count)
{
	lm_each(count, LM_LINE, count, add_range, &(Each){.y = y, .x = x, .a = a});
}

void lm_add_bias(float *x, const float *b, long n, long dim)
{
	for (long t = 0; t < n; t++)
		for (long i = 0; i < dim; i++)
			x[t * dim + i] += b[i];
}

void lm_scale_cols(float *x, long n, long dim, const float *s)
{
	for (long t = 0; t < n; t++)
		for (long j = 0; j < dim; j++)
			x[t * dim + j] *= s[j];
}

static void swiglu_range(void *c, long lo, long hi)
{
	const Each *e = c;
	lm_vec()->swiglu(e->y + lo, e->x + lo, e->a + lo, hi - lo);
}

void lm_swiglu(float *h, const float *g, const float *u, long count)
{
	/* an exp and a division an element */
	lm_each(count, LM_LINE, 4 * count, swiglu_range, &(Each){.y = h, .x = g, .a = u});
}

void lm_split_rows(float *a, float *b, const float *src, long rows, long na,
                   long nb)
{
	for (long r = 0; r < rows; r++) {
		memcpy(a + r * na, src + r * (na + nb), na * sizeof(float));
		memcpy(b + r * nb, src + r * (na + nb) + na, nb * sizeof(float));
	}
}

static void rmsnorm_range(void *c, long lo, long hi)
{
	const Each *e = c;
	const lm_vec_fns *v = lm_vec();
	long dim = e->dim;
	for (long r = lo; r < hi; r++) {
		double ss = v->sumsq(e->x + r * dim, dim);
		float inv = (float)(1.0 / sqrt(ss / dim + e->eps));
		v->scale(e->y + r * dim, e->x + r * dim, inv, e->w ? e->w + (r % e->wrows) * dim : NULL,
		         dim);
	}
}

void lm_rmsnorm(float *y, const float *x, long rows, long dim,
                const float *w, long wrows, float eps)
{
	Each e = {.y = y, .x = x, .w = w, .dim = dim, .wrows = wrows, .eps = eps};
	lm_each(rows, 1, rows * dim, rmsnorm_range, &e);
}

void lm_rope(float *x, long n, long heads, long hd, long dims, long pos,
             const double *inv_freq, int style)
{
	const lm_vec_fns *v = lm_vec();
	long half = dims / 2;
	float cs[1024], sn[1024];      /* dims <= 2048: checked by the compiler */
	for (long t = 0; t < n; t++) {
		for (long j = 0; j < half; j++) {
			double a = (double)(pos + t) * inv_freq[j];
			cs[j] = (float)cos(a);
			sn[j] = (float)sin(a);
		}
		for (long h = 0; h < heads; h++)
			v->rope(x + (t * heads + h) * hd, cs, sn, half, style == LM_ROPE_HALF);
	}
}

/* Channels [lo, hi) of the convolution (of dim, over n time steps): each
 * channel is a sequence of its own.  cb channels at a time, their taps
 * laid out [taps][cb] (at most WT floats), so that the sums over a row of channels are one
 * loop over contiguous floats (a loop over each channel's taps, reading
 * rows ch floats apart, was a thirtieth of Kimi's prefill).  Each sum
 * adds its taps in order, as one channel at a time would. */
enum { CB = 64, WT = 4096 };

static void conv_range(void *c, long lo, long hi)
{
	const Each *e = c;
	float *y = e->y;
	const float *u = e->x, *w = e->w, *state = e->state;
	long ch = e->dim, taps = e->taps, k = taps - 1;
	long cb = WT / taps < CB ? WT / taps : CB;
	float wt[WT], s[CB], one[CB];
	for (long i = 0; i < CB; i++)
		one[i] = 1;
	for (long c0 = lo; c0 < hi; c0 += cb) {
		long nc = hi - c0 < cb ? hi - c0 : cb;
		for (long j = 0; j < taps; j++)
			for (long i = 0; i < nc; i++)
				wt[j * cb + i] = w[(c0 + i) * taps + j];
		/* Last time step first, so that in place each y[t] is written
		 * after every output that still reads u[t]. */
		for (long t = e->n - 1; t >= 0; t--) {
			for (long i = 0; i < nc; i++)
				s[i] = 0;
			for (long j = 0; j < taps; j++) {
				long ti = t - k + j;     /* input time, < 0: from state */
				const float *in = (ti < 0 ? state + (k + ti) * ch : u + ti * ch) + c0;
				for (long i = 0; i < nc; i++)
					s[i] += wt[j * cb + i] * in[i];
			}
			float *yt = y + t * ch + c0;
			if (e->act)
				lm_vec()->swiglu(yt, s, one, nc);   /* silu(s) 1 */
			else
				memcpy(yt, s, nc * sizeof(float));
		}
	}
}

void lm_causal_conv(float *y, const float *u, long n, long ch,
                    const float *w, long taps, float *state, int silu_out)
{
	static __thread float *next;
	static __thread long cap;
	long k = taps - 1;
	if (taps < 1 || taps > WT)    /* the compiler allows at most 256 */
		lm_bug("lm_causal_conv: %ld taps", taps);
	if (k * ch > cap) {
		free(next);
		next = lm_floats(k * ch);
		cap = k * ch;
	}
	/* The next state is the last k rows of (state ++ u), taken before y
	 * overwrites u.  A 1-tap convolution has none (and no buffers). */
	if (k > 0 && n >= k) {
		memcpy(next, u + (n - k) * ch, k * ch * sizeof(float));
	} else if (k > 0) {
		memcpy(next, state + n * ch, (k - n) * ch * sizeof(float));
		memcpy(next + (k - n) * ch, u, n * ch * sizeof(float));
	}
	Each e = {.y = y, .x = u, .w = w, .state = state, .n = n, .dim = ch, .taps = taps,
	          .act = silu_out};
	lm_each(ch, LM_LINE, n * ch * taps, conv_range, &e);
	if (k > 0)
		memcpy(state, next, k * ch * sizeof(float));
}

void lm_fake8(float *x, long count, float scale)
{
	for (long i = 0; i < count; i++) {
		double q = nearbyint((double)x[i] / scale);   /* half to even */
		q = q < -128 ? -128 : q > 127 ? 127 : q;
		x[i] = (float)(q * scale);
	}
}

float *lm_floats(unsigned long n)
{
	return lm_alloc_aligned(n * sizeof(float));
}

void lm_zero(float *x, long n)
{
	memset(x, 0, n * sizeof(float));
}

float *lm_repeat_rows(const float *w, long rows, long cols, long times)
{
	float *r = lm_floats(rows * times * cols);
	for (long i = 0; i < rows * times; i++)
		memcpy(r + i * cols, w + (i / times) * cols, cols * sizeof(float));
	return r;
}
