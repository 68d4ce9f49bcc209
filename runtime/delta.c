/* delta.c: the gated delta rule, a linear-attention recurrence, and the
 * elementwise steps that make its inputs (see lmcc.h).
 *
 * A head's state S is a [dv, dk] matrix used as an associative memory:
 * S k is the value it recalls for key k.  Each token first lets S fade,
 * channel by channel of the key space (the gate g), then writes its value
 * v at its key k by the delta rule: it adds beta * (v - S k) k^T, the
 * correction that moves the recall for k towards v (beta = 1 with a unit
 * k would make the recall exact).  The output is the recall for the query,
 * S q.  The state is all a layer keeps between calls, whatever the length.
 *
 * Row j of S only ever meets v[j]: each row is updated on its own, in two
 * passes over dk floats (vec.h's decay_dot and write_dot, in the chosen
 * instruction set), summing in float; with AVX-512 a row of up to 128
 * floats stays in registers for the whole call instead. */
#include "vec.h"

#include <immintrin.h>
#include <math.h>

void lm_decay(float *a, long n, long heads, long dim, const float *a_log,
              const float *bias)
{
	for (long t = 0; t < n; t++)
		for (long h = 0; h < heads; h++) {
			double rate = exp((double)a_log[h]);
			float *ah = a + (t * heads + h) * dim;
			const float *bh = bias + h * dim;
			for (long i = 0; i < dim; i++)
				ah[i] = (float)exp(-rate * lm_softplus((double)ah[i] + bh[i]));
		}
}

void lm_sigmoid(float *x, long count)
{
	for (long i = 0; i < count; i++)
		x[i] = (float)(1.0 / (1.0 + exp(-(double)x[i])));
}

void lm_scale(float *x, long count, float s)
{
	for (long i = 0; i < count; i++)
		x[i] *= s;
}

void lm_mul(float *y, const float *x, const float *a, long count)
{
	for (long i = 0; i < count; i++)
		y[i] = x[i] * a[i];
}

typedef struct {
	float *out, *state;
	const float *q, *k, *v, *g, *beta;
	long n, heads, dk, dv;
	const lm_vec_fns *vf;
} Delta;

/* Rows [u0, u1) of all the heads' states (row u is row u % dv of head
 * u / dv), through every token: rows never meet, so threads take rows. */
static void delta_rows(void *ctx, long u0, long u1)
{
	const Delta *d = ctx;
	long H = d->heads, dk = d->dk, dv = d->dv;
	for (long u = u0; u < u1; u++) {
		long h = u / dv, j = u % dv;
		float *s = d->state + u * dk;
		for (long t = 0; t < d->n; t++) {
			long at = t * H + h;
			const float *qh = d->q + at * dk, *kh = d->k + at * dk, *gh = d->g + at * dk;
			float recall = d->vf->decay_dot(s, gh, kh, dk);     /* (S k)[j], decayed */
			float delta = (d->v[at * dv + j] - recall) * d->beta[at];
			d->out[at * dv + j] = d->vf->write_dot(s, delta, kh, qh, dk);   /* (S q)[j] */
		}
	}
}

/* The same with the row held in (at most eight) AVX-512 registers for
 * the whole call, dk <= 128: the sums run in float, sixteen lanes wide. */
__attribute__((target("avx512f")))
static void delta_rows_512(void *ctx, long u0, long u1)
{
	const Delta *d = ctx;
	long H = d->heads, dk = d->dk, dv = d->dv, nv = (dk + 15) / 16;
	__mmask16 m[8];
	for (long i = 0; i < 8; i++) {
		long left = dk - 16 * i;
		m[i] = left >= 16 ? 0xffff : left > 0 ? (__mmask16)((1u << left) - 1) : 0;
	}
	for (long u = u0; u < u1; u++) {
		long h = u / dv, j = u % dv;
		float *srow = d->state + u * dk;
		__m512 s[8];
		for (long i = 0; i < nv; i++)
			s[i] = _mm512_maskz_loadu_ps(m[i], srow + 16 * i);
		for (long t = 0; t < d->n; t++) {
			long at = t * H + h;
			const float *qh = d->q + at * dk, *kh = d->k + at * dk, *gh = d->g + at * dk;
			__m512 r = _mm512_setzero_ps(), kv[8];
			for (long i = 0; i < nv; i++) {
				kv[i] = _mm512_maskz_loadu_ps(m[i], kh + 16 * i);
				s[i] = _mm512_mul_ps(s[i], _mm512_maskz_loadu_ps(m[i], gh + 16 * i));
				r = _mm512_fmadd_ps(s[i], kv[i], r);
			}
			float delta = (d->v[at * dv + j] - _mm512_reduce_add_ps(r)) * d->beta[at];
			__m512 dl = _mm512_set1_ps(delta), o = _mm512_setzero_ps();
			for (long i = 0; i < nv; i++) {
				s[i] = _mm512_fmadd_ps(kv[i], dl, s[i]);
				o = _mm512_fmadd_ps(s[i], _mm512_maskz_loadu_ps(m[i], qh + 16 * i), o);
			}
			d->out[at * dv + j] = _mm512_reduce_add_ps(o);
		}
		for (long i = 0; i < nv; i++)
			_mm512_mask_storeu_ps(srow + 16 * i, m[i], s[i]);
	}
}

void lm_gated_delta_tokens(float *out, const float *q, const float *k, const float *v,
                           const float *g, const float *beta, long n, long heads, long dk,
                           long dv, float *state)
{
	int avx512 = lm_isa() == LM_ISA_AVX512;
	Delta d = {out, state, q, k, v, g, beta, n, heads, dk, dv, lm_vec()};
	lm_parallel(heads * dv, 8, avx512 && dk <= 128 ? delta_rows_512 : delta_rows, &d);
}

/* From 16 tokens on, the chunked form (kda_chunk.c) took 0.4 to 0.8 of
 * the recurrence's CPU time at Kimi Linear's shapes on Zen 3 with AVX2
 * (tests/unit/bench_kda.c).  The AVX-512 recurrence, rows held in
 * registers, has not been measured against it: it keeps its own. */
void lm_gated_delta(float *out, const float *q, const float *k, const float *v,
                    const float *g, const float *beta, long n, long heads,
                    long dk, long dv, float *state)
{
	if (n >= 16 && !(lm_isa() == LM_ISA_AVX512 && dk <= 128))
		lm_gated_delta_chunked(out, q, k, v, g, beta, n, heads, dk, dv, 32, state);
	else
		lm_gated_delta_tokens(out, q, k, v, g, beta, n, heads, dk, dv, state);
}
