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
 * passes over dk floats per token (the recall, then the write and the
 * answer), summing in float.  A few tokens at a time, every row of a head
 * runs through them: with AVX2 (on AVX-512 machines too) four rows at
 * once, sharing the loads of the token's vectors; otherwise row by row
 * through vec.h's decay_dot and write_dot. */
#include "vec.h"

#include <immintrin.h>
#include <math.h>
#include <string.h>

/* The operands of an elementwise step, for lm_each's ranges. */
typedef struct {
	float *y;
	const float *x, *a, *a_log, *bias;
	long heads, dim;
	float s;
} Each;

static void decay_range(void *c, long lo, long hi)
{
	const Each *e = c;
	for (long r = lo; r < hi; r++) {     /* row r: token r / heads, head r % heads */
		long h = r % e->heads;
		lm_vec()->decay(e->y + r * e->dim, e->bias + h * e->dim, (float)exp((double)e->a_log[h]),
		                e->dim);
	}
}

void lm_decay(float *a, long n, long heads, long dim, const float *a_log,
              const float *bias)
{
	Each e = {.y = a, .a_log = a_log, .bias = bias, .heads = heads, .dim = dim};
	/* two exps and a log an element */
	lm_each(n * heads, 1, 8 * n * heads * dim, decay_range, &e);
}

static void sigmoid_range(void *c, long lo, long hi)
{
	lm_vec()->sigmoid(((const Each *)c)->y + lo, hi - lo);
}

void lm_sigmoid(float *x, long count)
{
	lm_each(count, LM_LINE, 4 * count, sigmoid_range, &(Each){.y = x});
}

static void scale_range(void *c, long lo, long hi)
{
	const Each *e = c;
	for (long i = lo; i < hi; i++)
		e->y[i] *= e->s;
}

void lm_scale(float *x, long count, float s)
{
	lm_each(count, LM_LINE, count, scale_range, &(Each){.y = x, .s = s});
}

static void mul_range(void *c, long lo, long hi)
{
	const Each *e = c;
	for (long i = lo; i < hi; i++)
		e->y[i] = e->x[i] * e->a[i];
}

void lm_mul(float *y, const float *x, const float *a, long count)
{
	lm_each(count, LM_LINE, count, mul_range, &(Each){.y = y, .x = x, .a = a});
}

typedef struct {
	float *out, *state;
	const float *q, *k, *v, *g, *beta;
	long n, heads, dk, dv;
	const lm_vec_fns *vf;
} Delta;

/* Tokens are taken TB at a time, and their q, k and g of one head copied
 * side by side: every row of the head then reads them from L1, where in
 * place they sit heads * dk floats apart (16 KB in Kimi Linear, so they
 * share cache sets) and a long call would read them once per row. */
enum { TB = 8 };

/* Rows j0..j1 of head h through the block's nt tokens from t0; x holds
 * token t's q, k, g at x + 3 t dk. */
static void rows_vec(const Delta *d, long h, long j0, long j1, long t0, long nt, const float *x)
{
	long H = d->heads, dk = d->dk, dv = d->dv;
	for (long j = j0; j < j1; j++) {
		float *s = d->state + (h * dv + j) * dk;
		for (long t = 0; t < nt; t++) {
			const float *q = x + 3 * t * dk, *k = q + dk, *g = k + dk;
			long at = (t0 + t) * H + h;
			float recall = d->vf->decay_dot(s, g, k, dk);     /* (S k)[j], decayed */
			float delta = (d->v[at * dv + j] - recall) * d->beta[at];
			d->out[at * dv + j] = d->vf->write_dot(s, delta, k, q, dk);   /* (S q)[j] */
		}
	}
}

#define AVX2 __attribute__((target("avx2,fma")))

/* The sums of the lanes of a, b, c and d, in that order.  Each comes
 * from its own vector's lanes alone, added in the same order whatever
 * the other three hold. */
AVX2 static inline __m128 sum4(__m256 a, __m256 b, __m256 c, __m256 d)
{
	__m256 t = _mm256_hadd_ps(_mm256_hadd_ps(a, b), _mm256_hadd_ps(c, d));
	return _mm_add_ps(_mm256_castps256_ps128(t), _mm256_extractf128_ps(t, 1));
}

/* nr (1 to 4) rows from j of head h through the block, dk a multiple of
 * 8: the rows share each load of g, k and q, and the decayed row is not
 * stored between the recall and the write but made again (the same
 * product).  One row's sums do not depend on the rows beside it, so the
 * result does not depend on how threads split the rows. */
AVX2 static inline __attribute__((always_inline)) void
rows_avx2(const Delta *d, long h, long j, int nr, long t0, long nt, const float *x)
{
	long H = d->heads, dk = d->dk, dv = d->dv;
	float *s = d->state + (h * dv + j) * dk;
	for (long t = 0; t < nt; t++) {
		const float *q = x + 3 * t * dk, *k = q + dk, *g = k + dk;
		long at = (t0 + t) * H + h;
		__m256 r[4], dl[4], z = _mm256_setzero_ps();
#pragma GCC unroll 4
		for (int i = 0; i < nr; i++)
			r[i] = z;
		for (long c = 0; c < dk; c += 8) {
			__m256 gc = _mm256_loadu_ps(g + c), kc = _mm256_loadu_ps(k + c);
#pragma GCC unroll 4
			for (int i = 0; i < nr; i++)
				r[i] = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_loadu_ps(s + i * dk + c), gc), kc, r[i]);
		}
		float sum[4];
		_mm_storeu_ps(sum, sum4(r[0], nr > 1 ? r[1] : z, nr > 2 ? r[2] : z, nr > 3 ? r[3] : z));
#pragma GCC unroll 4
		for (int i = 0; i < nr; i++) {
			dl[i] = _mm256_set1_ps((d->v[at * dv + j + i] - sum[i]) * d->beta[at]);
			r[i] = z;
		}
		for (long c = 0; c < dk; c += 8) {
			__m256 gc = _mm256_loadu_ps(g + c), kc = _mm256_loadu_ps(k + c);
			__m256 qc = _mm256_loadu_ps(q + c);
#pragma GCC unroll 4
			for (int i = 0; i < nr; i++) {
				float *si = s + i * dk + c;
				__m256 w = _mm256_fmadd_ps(dl[i], kc, _mm256_mul_ps(_mm256_loadu_ps(si), gc));
				_mm256_storeu_ps(si, w);
				r[i] = _mm256_fmadd_ps(w, qc, r[i]);
			}
		}
		_mm_storeu_ps(sum, sum4(r[0], nr > 1 ? r[1] : z, nr > 2 ? r[2] : z, nr > 3 ? r[3] : z));
#pragma GCC unroll 4
		for (int i = 0; i < nr; i++)
			d->out[at * dv + j + i] = sum[i];
	}
}

AVX2 static void rows_4(const Delta *d, long h, long j0, long j1, long t0, long nt, const float *x)
{
	long j = j0;
	for (; j + 4 <= j1; j += 4)
		rows_avx2(d, h, j, 4, t0, nt, x);
	for (; j < j1; j++)
		rows_avx2(d, h, j, 1, t0, nt, x);
}

/* Rows [u0, u1) of all the heads' states (row u is row u % dv of head
 * u / dv), through every token: rows never meet, so threads take rows. */
static void delta_rows(void *ctx, long u0, long u1)
{
	const Delta *d = ctx;
	long H = d->heads, dk = d->dk, dv = d->dv;
	void (*rows)(const Delta *, long, long, long, long, long, const float *) =
		lm_isa() >= LM_ISA_AVX2 && dk % 8 == 0 ? rows_4 : rows_vec;
	float *x = lm_scratch(3 * TB * dk);
	for (long u = u0; u < u1;) {
		long h = u / dv, j0 = u % dv, j1 = j0 + (u1 - u) < dv ? j0 + (u1 - u) : dv;
		for (long t0 = 0; t0 < d->n; t0 += TB) {
			long nt = d->n - t0 < TB ? d->n - t0 : TB;
			for (long t = 0; t < nt; t++) {
				long at = (t0 + t) * H + h;
				memcpy(x + 3 * t * dk, d->q + at * dk, dk * sizeof(float));
				memcpy(x + (3 * t + 1) * dk, d->k + at * dk, dk * sizeof(float));
				memcpy(x + (3 * t + 2) * dk, d->g + at * dk, dk * sizeof(float));
			}
			rows(d, h, j0, j1, t0, nt, x);
		}
		u += j1 - j0;
	}
}

void lm_gated_delta_tokens(float *out, const float *q, const float *k, const float *v,
                           const float *g, const float *beta, long n, long heads, long dk,
                           long dv, float *state)
{
	Delta d = {out, state, q, k, v, g, beta, n, heads, dk, dv, lm_vec()};
	lm_parallel(heads * dv, 8, delta_rows, &d);
}

/* Which form, measured at Kimi Linear's shapes (32 heads of 128), one
 * thread, CPU time (tests/unit/bench_kda.c, calls of 256 tokens): with
 * AVX2 the recurrence, four rows at once, took 0.56 to 0.63 of the
 * chunked form's time from 16 to 64 tokens and about half at 512 and
 * 4,096 (Zen 3), 0.73 to 0.81 from 8 to 512 tokens (Intel Xeon family 6
 * model 167), so it is used at every length, on AVX-512 machines too; the
 * portable recurrence took 1.5 to 2.1 times the chunked form's from 16
 * tokens on (Zen 3).  An AVX-512 recurrence that held each row in
 * registers through the whole call, one row at a time, took 4.7 times
 * the AVX2 one's time at 512 tokens (Intel Xeon): each token's recall
 * waited on the last, and every row read the tokens' vectors again. */
void lm_gated_delta(float *out, const float *q, const float *k, const float *v,
                    const float *g, const float *beta, long n, long heads,
                    long dk, long dv, float *state)
{
	int isa = lm_isa();
	if (n >= 16 && isa == LM_ISA_PORTABLE)
		lm_gated_delta_chunked(out, q, k, v, g, beta, n, heads, dk, dv, 32, state);
	else
		lm_gated_delta_tokens(out, q, k, v, g, beta, n, heads, dk, dv, state);
}
