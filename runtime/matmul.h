/* matmul.h: what matmul.c shares with the streaming kernels of each
 * instruction set (matmul_c.c, matmul_avx2.c, matmul_512.c). */
#ifndef LM_MATMUL_H
#define LM_MATMUL_H

#include "rt.h"

enum {
	FEW = 8,         /* up to this many tokens a product streams its weights
	                  * (decoding); past it, the prefill products take it */
	GROUP = 4,       /* tokens a streaming pass multiplies at once */
	PREFETCH = 1024, /* bytes ahead a streaming kernel asks for */
};

/* y[t, r] for r in [r0, r1) and t < n <= GROUP: x is [n, W->cols], y is
 * [n, W->rows].  For BF16 weights stored [out, in], x2 is x with each
 * block of `pair` columns reordered as [even columns | odd columns] (the
 * columns past the last whole block stay in x): the order in which a
 * shift and a mask widen a vector of bf16 pairs, so no lane shuffle is
 * needed.  x2 is NULL when the kernels' pair is 0. */
typedef void lm_stream_fn(const lm_mat *W, long n, const float *x, const float *x2,
                          float *y, long r0, long r1);
/* dst[k] = element i + k of a weight stored in dtype, as float, k < n. */
typedef void lm_widen_fn(float *dst, const void *p, int dtype, size_t i, long n);

typedef struct {
	lm_stream_fn *rows, *cols;   /* W stored [out, in]; [in, out] */
	lm_widen_fn *widen;
	long pair;                   /* x2's block of columns for BF16 rows, or 0 */
} lm_stream;

extern const lm_stream lm_stream_c, lm_stream_avx2, lm_stream_512;

/* Which [in, out] kernel the AVX-512 path takes: -1 as measured for the
 * CPU (matmul_512.c's wide()), 0 the 8-lane one, 1 the 16-lane one, so
 * that the tests run both on any AVX-512 machine. */
extern int lm_cols_wide;

/* y[i] = x[i] W[i]^T for i < k, one token each, as k calls of lm_matmul
 * would compute them, but float weights (stored [out, in], or [in, out]
 * with at most 256 inputs) share one job of the pool: lm_moe's decoding,
 * where a token's experts are many products of tens of microseconds, and
 * each job ends with one thread waiting for the other's last range. */
void lm_matmul_each(long k, float *const *y, const float *const *x, const lm_mat *W);

/* Bytes per element of a weight's dtype. */
static inline size_t lm_esize(int dtype)
{
	return dtype == LM_F32 ? 4 : 2;
}

/* Element i of a float dtype as float32, inlined into the kernels' tails
 * (lm_load_f32 is the out-of-line one). */
static inline float lm_widen1(const void *p, int dtype, size_t i)
{
	if (dtype == LM_F32)
		return ((const float *)p)[i];
	uint16_t h = ((const uint16_t *)p)[i];
	return dtype == LM_BF16 ? lm_bf16_to_f32(h) : lm_f16_to_f32(h);
}

#endif
