/* kern.c: the small kernels, one loop each, math in plain sight; the
 * loops that decoding repeats for every layer go through vec.h's version
 * for this CPU.
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

void lm_add(float *y, const float *x, const float *a, long count)
{
	for (long i = 0; i < count; i++)
		y[i] = x[i] + a[i];
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

static float silu(float x)
{
	return x / (1.0f + expf(-x));
}

void lm_swiglu(float *h, const float *g, const float *u, long count)
{
	for (long i = 0; i < count; i++)
		h[i] = silu(g[i]) * u[i];
}

void lm_split_rows(float *a, float *b, const float *src, long rows, long na,
                   long nb)
{
	for (long r = 0; r < rows; r++) {
		memcpy(a + r * na, src + r * (na + nb), na * sizeof(float));
		memcpy(b + r * nb, src + r * (na + nb) + na, nb * sizeof(float));
	}
}

void lm_rmsnorm(float *y, const float *x, long rows, long dim,
                const float *w, long wrows, float eps)
{
	const lm_vec_fns *v = lm_vec();
	for (long r = 0; r < rows; r++) {
		double ss = v->sumsq(x + r * dim, dim);
		float inv = (float)(1.0 / sqrt(ss / dim + eps));
		v->scale(y + r * dim, x + r * dim, inv, w ? w + (r % wrows) * dim : NULL, dim);
	}
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

void lm_causal_conv(float *y, const float *u, long n, long ch,
                    const float *w, long taps, float *state, int silu_out)
{
	static float *next;
	static long cap;
	long k = taps - 1;
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
	/* Last time step first, so that in place each y[t] is written after
	 * every output that still reads u[t]. */
	for (long t = n - 1; t >= 0; t--)
		for (long c = 0; c < ch; c++) {
			float s = 0;
			for (long j = 0; j < taps; j++) {
				long i = t - k + j;      /* input time, < 0: from state */
				float in = i < 0 ? state[(k + i) * ch + c] : u[i * ch + c];
				s += w[c * taps + j] * in;
			}
			y[t * ch + c] = silu_out ? silu(s) : s;
		}
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
