/* matmul_c.c: the streaming kernels in plain C (see matmul.c), for a CPU
 * with neither AVX2 nor AVX-512, written for gcc's vectoriser at -O2
 * whatever -march the runtime is built with: restrict pointers; inner
 * loops of LANES iterations over independent sums, unrolled so that the
 * sums stay in registers (gcc vectorises those without reassociating a
 * float sum, which it may not do); widening without branches. */
#include "matmul.h"

#include <string.h>

enum {
	LANES = 16,      /* independent sums of one product */
	BLOCK = 4096,    /* outputs of a transposed weight summed together */
};

static inline float bits_f32(uint32_t u)
{
	float f;
	memcpy(&f, &u, 4);
	return f;
}

/* IEEE half to float with integer operations and one multiply: the
 * exponent and mantissa moved into place are the value times 2^-112
 * (subnormals included); infinities and NaNs get the all-ones exponent
 * back. */
static inline float f16_f32(uint16_t h)
{
	uint32_t m = h & 0x7fffu, s = (uint32_t)(h & 0x8000u) << 16, u;
	float f = bits_f32(m << 13) * 0x1p112f;
	memcpy(&u, &f, 4);
	uint32_t big = -(uint32_t)(m >= 0x7c00u);
	u = (u & ~big) | (((m << 13) | 0x7f800000u) & big);
	return bits_f32(u | s);
}

/* Element i of a weight stored in dtype, as float. */
static inline __attribute__((always_inline))
float wt(const void *restrict p, size_t i, const int dtype)
{
	if (dtype == LM_F32)
		return ((const float *)p)[i];
	uint16_t h = ((const uint16_t *)p)[i];
	return dtype == LM_BF16 ? bits_f32((uint32_t)h << 16) : f16_f32(h);
}

/* sum_c w[c] x[c], c < n. */
static inline __attribute__((always_inline))
float dot(const void *restrict w, size_t i, const float *restrict x, long n, const int dtype)
{
	float acc[LANES] = {0};
	long full = n - n % LANES;
	for (long c = 0; c < full; c += LANES) {
#pragma GCC unroll 16
		for (int k = 0; k < LANES; k++)
			acc[k] += wt(w, i + c + k, dtype) * x[c + k];
	}
	float s = 0;
	for (int k = 0; k < LANES; k++)
		s += acc[k];
	for (long c = full; c < n; c++)
		s += wt(w, i + c, dtype) * x[c];
	return s;
}

/* a[k] += w[k] xv, k < n.  A block's weights are read before its sums
 * are written: once inlined, gcc no longer trusts restrict, and float
 * weights read between stores to float sums kept it from vectorising. */
static inline __attribute__((always_inline))
void axpy(float *restrict a, const void *restrict w, size_t i, float xv, long n,
          const int dtype)
{
	long full = n - n % LANES;
	for (long k = 0; k < full; k += LANES) {
		float v[LANES];
#pragma GCC unroll 16
		for (int l = 0; l < LANES; l++)
			v[l] = wt(w, i + k + l, dtype);
#pragma GCC unroll 16
		for (int l = 0; l < LANES; l++)
			a[k + l] += v[l] * xv;
	}
	for (long k = full; k < n; k++)
		a[k] += wt(w, i + k, dtype) * xv;
}

/* W stored [out, in]: a row is read from memory for the first token and
 * from the cache for the others. */
static inline __attribute__((always_inline))
void rows_k(const lm_mat *W, long n, const float *x, float *y, long r0, long r1,
            const int dtype)
{
	for (long r = r0; r < r1; r++)
		for (long t = 0; t < n; t++)
			y[t * W->rows + r] = dot(W->data, (size_t)r * W->ld, x + t * W->cols,
			                         W->cols, dtype);
}

/* W stored [in, out]: each input row adds x[t, c] times its run to the
 * sums of a block of outputs; runs of BLOCK outputs are long enough to
 * stream from memory. */
static inline __attribute__((always_inline))
void cols_k(const lm_mat *W, long n, const float *x, float *y, long r0, long r1,
            const int dtype)
{
	static __thread float acc[GROUP][BLOCK];
	for (long b = r0; b < r1; b += BLOCK) {
		long len = r1 - b < BLOCK ? r1 - b : BLOCK;
		for (long t = 0; t < n; t++)
			memset(acc[t], 0, len * sizeof(float));
		for (long c = 0; c < W->cols; c++)
			for (long t = 0; t < n; t++)
				axpy(acc[t], W->data, (size_t)c * W->ld + b, x[t * W->cols + c], len, dtype);
		for (long t = 0; t < n; t++)
			memcpy(y + t * W->rows + b, acc[t], len * sizeof(float));
	}
}

/* One instance per dtype, so that the branches on it are decided at
 * compile time. */
#define KERNELS(dtype, rows, cols)                                                  \
	static void rows(const lm_mat *W, long n, const float *x, float *y, long r0, long r1) \
	{                                                                               \
		rows_k(W, n, x, y, r0, r1, dtype);                                          \
	}                                                                               \
	static void cols(const lm_mat *W, long n, const float *x, float *y, long r0, long r1) \
	{                                                                               \
		cols_k(W, n, x, y, r0, r1, dtype);                                          \
	}
KERNELS(LM_F32, rows_f32, cols_f32)
KERNELS(LM_F16, rows_f16, cols_f16)
KERNELS(LM_BF16, rows_bf16, cols_bf16)

static void rows_c(const lm_mat *W, long n, const float *x, const float *x2,
                   float *y, long r0, long r1)
{
	(W->dtype == LM_F32 ? rows_f32 : W->dtype == LM_F16 ? rows_f16 : rows_bf16)(
		W, n, x, y, r0, r1);
}

static void cols_c(const lm_mat *W, long n, const float *x, const float *x2,
                   float *y, long r0, long r1)
{
	(W->dtype == LM_F32 ? cols_f32 : W->dtype == LM_F16 ? cols_f16 : cols_bf16)(
		W, n, x, y, r0, r1);
}

static inline __attribute__((always_inline))
void widen_k(float *restrict dst, const void *restrict p, size_t i, long n, const int dtype)
{
	long full = n - n % LANES;
	for (long k = 0; k < full; k += LANES) {
#pragma GCC unroll 16
		for (int l = 0; l < LANES; l++)
			dst[k + l] = wt(p, i + k + l, dtype);
	}
	for (long k = full; k < n; k++)
		dst[k] = wt(p, i + k, dtype);
}

static void widen_c(float *dst, const void *p, int dtype, size_t i, long n)
{
	if (dtype == LM_BF16)
		widen_k(dst, p, i, n, LM_BF16);
	else if (dtype == LM_F16)
		widen_k(dst, p, i, n, LM_F16);
	else
		memcpy(dst, (const float *)p + i, n * sizeof(float));
}

const lm_stream lm_stream_c = {rows_c, cols_c, widen_c, 0};
