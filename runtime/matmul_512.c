/* matmul_512.c: the streaming kernels with AVX-512 (see matmul.c), the
 * design of matmul_avx2.c at 16 floats a vector: a few long runs of
 * consecutive rows streaming at once, enough independent sums to hide
 * the FMA latency, each run asking for its data RUN_AHEAD bytes ahead.
 * The columns past the last whole block of 32 are summed one by one,
 * fused, as in matmul_avx2.c. */
#include "matmul.h"

#include <immintrin.h>
#include <string.h>

#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,fma,f16c")))
#define INLINE512 AVX512 static inline __attribute__((always_inline))

/* Bytes ahead a run asks for: measured on the Intel Xeon (family 6 model
 * 167), one thread, CPU time: 256 to 2048 bytes within 5%, 1024 best
 * for BF16. */
enum { RUN_AHEAD = 1024 };

/* 16 weights from p + i as float32, in order; m masks a short tail. */
INLINE512 __m512 load16(const void *p, int dtype, size_t i, __mmask16 m)
{
	if (dtype == LM_F32)
		return _mm512_maskz_loadu_ps(m, (const float *)p + i);
	__m256i h = _mm256_maskz_loadu_epi16(m, (const uint16_t *)p + i);
	if (dtype == LM_BF16)
		return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
	return _mm512_cvtph_ps(h);
}

/* 32 weights from p + i as two vectors a and b, in order, for x[0, 16)
 * and x[16, 32).  BF16 too: its even and odd weights from one 64-byte
 * load by a shift and a mask (matmul_avx2.c's way, pair 32) read 0.88 of
 * this way's rate on the Intel Xeon (family 6 model 167, 6656x2048, one
 * thread, CPU time), so no reordered x (pair 0). */
INLINE512 void load32(const void *p, int dtype, size_t i, __m512 *a, __m512 *b)
{
	*a = load16(p, dtype, i, 0xffff);
	*b = load16(p, dtype, i + 16, 0xffff);
}

/* The lanes of a vector at n elements from the end. */
INLINE512 __mmask16 tail(long n)
{
	return n >= 16 ? 0xffff : (__mmask16)((1u << n) - 1);
}

/* Asks for the line `ahead` bytes past element i once per 64 bytes of a
 * step of 32 elements (two lines of F32). */
INLINE512 void ask(const char *d, size_t i, size_t es, long ahead)
{
	_mm_prefetch(d + i * es + ahead, _MM_HINT_T0);
	if (es == 4)
		_mm_prefetch(d + i * es + ahead + 64, _MM_HINT_T0);
}

/* ---- W stored [out, in] ---- */

/* y[t, r[i]] for R rows and N tokens: per block of 32 columns, each row's
 * two vectors meet each token's two, into two sums per row and token
 * (R * N * 2 <= 16 of the 32 registers).  Every row of a call with N
 * tokens is summed in this order, in a group of R or alone, so its bits
 * do not depend on where a thread's range began. */
INLINE512 void run(const lm_mat *W, const float *x, float *y, const long *r,
                   const int R, const int N, const int dtype)
{
	long cols = W->cols, full = cols & ~31L;
	size_t es = lm_esize(dtype), b[4];
	const char *d = W->data;
	__m512 s[4][GROUP][2];
#pragma GCC unroll 4
	for (int i = 0; i < R; i++) {
		b[i] = (size_t)r[i] * W->ld;
#pragma GCC unroll 4
		for (int t = 0; t < N; t++)
			s[i][t][0] = s[i][t][1] = _mm512_setzero_ps();
	}
	for (long c = 0; c < full; c += 32) {
		__m512 wa[4], wb[4];
#pragma GCC unroll 4
		for (int i = 0; i < R; i++) {
			ask(d, b[i] + c, es, RUN_AHEAD);
			load32(d, dtype, b[i] + c, &wa[i], &wb[i]);
		}
#pragma GCC unroll 4
		for (int t = 0; t < N; t++) {
			__m512 xa = _mm512_loadu_ps(x + t * cols + c), xb = _mm512_loadu_ps(x + t * cols + c + 16);
#pragma GCC unroll 4
			for (int i = 0; i < R; i++) {
				s[i][t][0] = _mm512_fmadd_ps(wa[i], xa, s[i][t][0]);
				s[i][t][1] = _mm512_fmadd_ps(wb[i], xb, s[i][t][1]);
			}
		}
	}
#pragma GCC unroll 4
	for (int i = 0; i < R; i++)
#pragma GCC unroll 4
		for (int t = 0; t < N; t++) {
			float u = _mm512_reduce_add_ps(_mm512_add_ps(s[i][t][0], s[i][t][1]));
			for (long c = full; c < cols; c++)
				u = __builtin_fmaf(lm_widen1(d, dtype, b[i] + c), x[t * cols + c], u);
			y[t * W->rows + r[i]] = u;
		}
}

/* N tokens, R rows at a time from R runs far apart: the range's rows cut
 * in R parts, run k taking the rows of part k in order, so that each run
 * is one long stream (matmul_avx2.c says why); four runs for one token,
 * two for more, where each input vector loaded serves both. */
INLINE512 void rows_k(const lm_mat *W, const float *x, float *y, long r0, long r1,
                      const int dtype, const int N)
{
	const int R = N == 1 ? 4 : 2;
	long q = (r1 - r0) / R;
	for (long i = 0; i < q; i++) {
		long r[4];
#pragma GCC unroll 4
		for (int k = 0; k < R; k++)
			r[k] = r0 + k * q + i;
		run(W, x, y, r, R, N, dtype);
	}
	for (long r = r0 + R * q; r < r1; r++)
		run(W, x, y, &r, 1, N, dtype);
}

/* Each token count a constant, so every branch above on it and on the
 * dtype is decided at compile time. */
INLINE512 void rows_n(const lm_mat *W, long n, const float *x, float *y, long r0, long r1,
                      const int dtype)
{
	if (n == 1)
		rows_k(W, x, y, r0, r1, dtype, 1);
	else if (n == 2)
		rows_k(W, x, y, r0, r1, dtype, 2);
	else if (n == 3)
		rows_k(W, x, y, r0, r1, dtype, 3);
	else
		rows_k(W, x, y, r0, r1, dtype, 4);
}

/* ---- prefill: widening a run ---- */

AVX512 static void widen_run_512(float *dst, const void *p, int dtype, size_t i, long n)
{
	for (long k = 0; k < n; k += 16) {
		__mmask16 m = tail(n - k);
		_mm512_mask_storeu_ps(dst + k, m, load16(p, dtype, i + k, m));
	}
}

/* ---- W stored [in, out] ----
 *
 * matmul_avx2.c's cols_k at 16 lanes: y holds the sums; a pass adds four
 * input rows for one token (four runs streaming at once, each sum loaded
 * and stored once per four rows), or one input row for up to four
 * tokens.  The outputs past the last whole vector take a masked vector
 * too, so every output is summed in the same order wherever a range
 * ends.  Which of the two kernels is faster depends on the CPU (wide()
 * below). */
INLINE512 void cols_k(const lm_mat *W, long n, const float *x, float *y,
                      long r0, long r1, const int dtype)
{
	long in = W->cols, len = r1 - r0;
	size_t ld = W->ld, es = lm_esize(dtype);
	const char *d = W->data;
	/* prefetch once per 64 bytes: every vector of F32, every other one of
	 * 16-bit weights */
	const long every = dtype == LM_F32 ? 15 : 31;
	for (long t = 0; t < n; t++)
		memset(y + t * W->rows + r0, 0, len * sizeof *y);
	long c = 0;
	float *acc = y + r0;
	for (; n == 1 && c + 4 <= in; c += 4) {
		size_t p[4];
		__m512 xc[4];
#pragma GCC unroll 4
		for (int j = 0; j < 4; j++) {
			p[j] = (size_t)(c + j) * ld + r0;
			xc[j] = _mm512_set1_ps(x[c + j]);
		}
		for (long k = 0; k < len; k += 16) {
			__mmask16 m = tail(len - k);
			/* past its end, a run's line ahead is in the run four
			 * input rows on, which the next pass reads */
			long pk = k + PREFETCH / (long)es;
			size_t o = pk < len ? (size_t)pk : 4 * ld + pk - len;
			__m512 s = _mm512_maskz_loadu_ps(m, acc + k);
#pragma GCC unroll 4
			for (int j = 0; j < 4; j++) {
				if (!(k & every))
					_mm_prefetch(d + (p[j] + o) * es, _MM_HINT_T0);
				s = _mm512_fmadd_ps(load16(d, dtype, p[j] + k, m), xc[j], s);
			}
			_mm512_mask_storeu_ps(acc + k, m, s);
		}
	}
	for (; c < in; c++) {     /* several tokens, or the last input rows */
		const char *w0 = d + ((size_t)c * ld + r0) * es;
		for (long k = 0; k < len; k += 16) {
			__mmask16 m = tail(len - k);
			if (!(k & every))
				_mm_prefetch(w0 + k * es + PREFETCH, _MM_HINT_T0);
			__m512 w = load16(w0, dtype, k, m);
#pragma GCC unroll 4
			for (long t = 0; t < GROUP; t++) {
				float *yt = y + t * W->rows + r0 + k;
				if (t < n)
					_mm512_mask_storeu_ps(yt, m, _mm512_fmadd_ps(w, _mm512_set1_ps(x[t * in + c]),
					                                             _mm512_maskz_loadu_ps(m, yt)));
			}
		}
	}
}

/* Whether the [in, out] products take cols_k here over matmul_avx2.c's
 * 8-lane kernel.  On Zen 5 (AMD family 26), whose 512-bit units are full
 * width, the 8-lane kernel read only 55 to 70 GB/s from the L2 cache on
 * one core, under twice the 33 GB/s a core must stream for the bound, and
 * 16 lanes, which halve the loads, stores and FMAs per byte, read
 * 16384x5120 at 1.15 to 1.25 times its rate (one thread, CPU time).  On
 * the Intel Xeon (family 6 model 167) the 16 lanes read 0.91 to 0.98 of
 * the 8-lane rate (one thread, CPU time), so it and every CPU not
 * measured (Zen 4's 512-bit ops take two passes of 256-bit units) keep
 * the 8-lane kernel. */
int lm_cols_wide = -1;

static int wide(void)
{
	return lm_cols_wide >= 0 ? lm_cols_wide : lm_cpu_has("amd_zen5");
}

/* Each dtype a constant in its own instance, as the token counts are. */
AVX512 static void rows_512(const lm_mat *W, long n, const float *x, const float *x2,
                            float *y, long r0, long r1)
{
	if (W->dtype == LM_F32)
		rows_n(W, n, x, y, r0, r1, LM_F32);
	else if (W->dtype == LM_F16)
		rows_n(W, n, x, y, r0, r1, LM_F16);
	else
		rows_n(W, n, x, y, r0, r1, LM_BF16);
}

AVX512 static void cols_512(const lm_mat *W, long n, const float *x, const float *x2,
                            float *y, long r0, long r1)
{
	if (!wide())
		lm_stream_avx2.cols(W, n, x, x2, y, r0, r1);
	else if (W->dtype == LM_F32)
		cols_k(W, n, x, y, r0, r1, LM_F32);
	else if (W->dtype == LM_F16)
		cols_k(W, n, x, y, r0, r1, LM_F16);
	else
		cols_k(W, n, x, y, r0, r1, LM_BF16);
}

const lm_stream lm_stream_512 = {rows_512, cols_512, widen_run_512, 0};
