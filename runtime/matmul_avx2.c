/* matmul_avx2.c: the streaming kernels with AVX2, FMA and F16C (see
 * matmul.c), the design of matmul_512.c at 8 floats a vector.
 *
 * Decoding is bound by the bytes read, so each kernel keeps several long
 * runs of the weight streaming at once, enough independent sums to hide
 * the FMA latency, and asks for each run's data some bytes ahead.  Without masked loads
 * for 16-bit elements, the columns past the last whole vector are summed
 * one by one: few, since the widths of real models are multiples of 16.
 * The loops over a pass's rows or tokens are unrolled by pragma: left as
 * loops, gcc keeps their sums in memory, a store and a load around every
 * FMA, which halved the rate at which a core could multiply. */
#include "matmul.h"
#include "load_avx2.h"

#include <immintrin.h>

/* 16 weights from p + i as two vectors a and b that meet x[0, 8) and
 * x[8, 16) of the kernels' x layout: in order for F32 and F16; for BF16,
 * a 32-byte load's 32-bit lanes hold (weight 2k, weight 2k + 1) in their
 * (low, high) halves, so a shift gives the even weights and a mask the
 * odd ones, and x2 holds the inputs in that order. */
AVX2 INLINE void load16(const void *p, int dtype, size_t i, __m256 *a, __m256 *b)
{
	if (dtype == LM_BF16) {
		__m256i v = _mm256_loadu_si256((const __m256i *)((const uint16_t *)p + i));
		*a = _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
		*b = _mm256_castsi256_ps(_mm256_and_si256(v, _mm256_set1_epi32((int)0xffff0000)));
	} else {
		*a = load8(p, dtype, i);
		*b = load8(p, dtype, i + 8);
	}
}

AVX2 INLINE float hsum(__m256 v)
{
	__m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
	s = _mm_add_ps(s, _mm_movehl_ps(s, s));
	s = _mm_add_ss(s, _mm_movehdup_ps(s));
	return _mm_cvtss_f32(s);
}

AVX2 INLINE void prefetch(const lm_mat *W, size_t i)
{
	_mm_prefetch((const char *)W->data + i * lm_esize(W->dtype) + PREFETCH, _MM_HINT_T0);
}

/* ---- W stored [out, in] ---- */

/* One token, four rows at a time from four runs far apart: a range's
 * rows are cut in quarters and run k takes the rows of quarter k in
 * order, so that each is one long stream of consecutive rows, as the
 * bound's read loop reads (bound.c).  Four adjacent rows at once instead,
 * streams 4 KB long in a 2048-wide half-precision weight, read at 0.65 of
 * the bound where these runs read at 0.9 (Zen 3, one thread): the
 * hardware prefetcher follows a few long streams, not many short ones.
 * Each run asks for its data ONE_AHEAD bytes ahead, which past a row's
 * end is the next row of the run; eight sums (an a and a b per row) keep
 * the FMA pipeline busy.  The distance and the hint (into the L2 cache)
 * by measurement on the Intel Xeon (family 6 model 167, one thread, CPU
 * time, bound 19.3 GB/s): against RUN_AHEAD into L1, 6656x2048 read
 * 17.3, 16.6 and 16.8 GB/s in F32, F16 and BF16 where it read 16.8, 16.4
 * and 16.5, and 2048x6656 18.7, 18.2 and 18.5 where 17.3, 18.3 and 17.7
 * (1024 bytes into L2: as fast in 16 bits, 16.8 and 18.3 in F32; 4096:
 * slower).  The runs of 2 to 4 tokens (rowsn) keep RUN_AHEAD. */
enum { RUN_AHEAD = 512, ONE_AHEAD = 2048 };

AVX2 INLINE float row1(const lm_mat *W, const float *x, const float *xs, size_t b,
                       const int dtype)
{
	long cols = W->cols, full = cols & ~15L;
	__m256 a = _mm256_setzero_ps(), c2 = a;
	for (long c = 0; c < full; c += 16) {
		__m256 wa, wb;
		load16(W->data, dtype, b + c, &wa, &wb);
		a = _mm256_fmadd_ps(wa, _mm256_loadu_ps(xs + c), a);
		c2 = _mm256_fmadd_ps(wb, _mm256_loadu_ps(xs + c + 8), c2);
	}
	float t = hsum(_mm256_add_ps(a, c2));
	for (long c = full; c < cols; c++)   /* fused explicitly, as in rows1 */
		t = __builtin_fmaf(lm_widen1(W->data, dtype, b + c), x[c], t);
	return t;
}

AVX2 INLINE void rows1(const lm_mat *W, const float *x, const float *xs, float *y,
                       long r0, long r1, const int dtype)
{
	long cols = W->cols, full = cols & ~15L, q = (r1 - r0) / 4;
	size_t ld = W->ld, es = lm_esize(dtype);
	const char *d = W->data;
	for (long i = 0; i < q; i++) {
		long r[4];
		__m256 a[4], c2[4];
#pragma GCC unroll 4
		for (int k = 0; k < 4; k++) {
			r[k] = r0 + k * q + i;
			a[k] = c2[k] = _mm256_setzero_ps();
		}
		for (long c = 0; c < full; c += 16) {
			__m256 xa = _mm256_loadu_ps(xs + c), xb = _mm256_loadu_ps(xs + c + 8);
#pragma GCC unroll 4
			for (int k = 0; k < 4; k++) {
				__m256 wa, wb;
				size_t o = (size_t)r[k] * ld + c;
				if (dtype == LM_F32 || !(c & 31))   /* once per 64 bytes */
					_mm_prefetch(d + o * es + ONE_AHEAD, _MM_HINT_T1);
				load16(d, dtype, o, &wa, &wb);
				a[k] = _mm256_fmadd_ps(wa, xa, a[k]);
				c2[k] = _mm256_fmadd_ps(wb, xb, c2[k]);
			}
		}
#pragma GCC unroll 4
		for (int k = 0; k < 4; k++) {
			float t = hsum(_mm256_add_ps(a[k], c2[k]));
			for (long c = full; c < cols; c++)   /* fused explicitly: a row
				 * must sum the same in a run or alone (row1), whatever
				 * the thread count */
				t = __builtin_fmaf(lm_widen1(d, dtype, (size_t)r[k] * ld + c), x[c], t);
			y[r[k]] = t;
		}
	}
	for (long r = r0 + 4 * q; r < r1; r++)
		y[r] = row1(W, x, xs, (size_t)r * ld, dtype);
}

/* N tokens (2 to 4), two rows at a time, from the two halves of the
 * range (long streams, as in rows1): each input vector loaded serves
 * both rows, which halves the loads of x (from the L2 cache once x is
 * larger than L1).  A row's even and odd weights add to one sum per token
 * (8 sums), so that the two rows' weights and the inputs fit the 16
 * registers beside them. */
AVX2 INLINE void rowsn(const lm_mat *W, const float *x, const float *xs, float *y,
                       long r0, long r1, const int dtype, const int N)
{
	long cols = W->cols, full = cols & ~15L, h = (r1 - r0) / 2;
	size_t ld = W->ld, es = lm_esize(dtype);
	const char *d = W->data;
	for (long i = 0; i < h; i++) {
		long r = r0 + i, rh = r + h;
		size_t b0 = (size_t)r * ld, b1 = (size_t)rh * ld;
		__m256 s0[GROUP], s1[GROUP];
#pragma GCC unroll 4
		for (int t = 0; t < N; t++)
			s0[t] = s1[t] = _mm256_setzero_ps();
		for (long c = 0; c < full; c += 16) {
			__m256 wa0, wb0, wa1, wb1;
			if (dtype == LM_F32 || !(c & 31)) {   /* once per 64 bytes */
				_mm_prefetch(d + (b0 + c) * es + RUN_AHEAD, _MM_HINT_T0);
				_mm_prefetch(d + (b1 + c) * es + RUN_AHEAD, _MM_HINT_T0);
			}
			load16(d, dtype, b0 + c, &wa0, &wb0);
			load16(d, dtype, b1 + c, &wa1, &wb1);
#pragma GCC unroll 4
			for (int t = 0; t < N; t++) {
				/* one load of each input vector for both rows: the empty
				 * asm keeps it in a register, where gcc would otherwise
				 * fold a second load into the second row's FMA */
				__m256 xa = _mm256_loadu_ps(xs + t * cols + c);
				__asm__("" : "+x"(xa));
				s0[t] = _mm256_fmadd_ps(wa0, xa, s0[t]);
				s1[t] = _mm256_fmadd_ps(wa1, xa, s1[t]);
				__m256 xb = _mm256_loadu_ps(xs + t * cols + c + 8);
				__asm__("" : "+x"(xb));
				s0[t] = _mm256_fmadd_ps(wb0, xb, s0[t]);
				s1[t] = _mm256_fmadd_ps(wb1, xb, s1[t]);
			}
		}
#pragma GCC unroll 4
		for (int t = 0; t < N; t++) {
			float u0 = hsum(s0[t]), u1 = hsum(s1[t]);
			for (long c = full; c < cols; c++) {   /* fused explicitly: gcc fuses
				 * such tails or not as it likes, and a row must sum the
				 * same paired or alone, whatever the thread count */
				u0 = __builtin_fmaf(lm_widen1(d, dtype, b0 + c), x[t * cols + c], u0);
				u1 = __builtin_fmaf(lm_widen1(d, dtype, b1 + c), x[t * cols + c], u1);
			}
			y[t * W->rows + r] = u0;
			y[t * W->rows + rh] = u1;
		}
	}
	for (long r = r0 + 2 * h; r < r1; r++) {
		size_t b = (size_t)r * ld;
		__m256 s0[GROUP];
#pragma GCC unroll 4
		for (int t = 0; t < N; t++)
			s0[t] = _mm256_setzero_ps();
		for (long c = 0; c < full; c += 16) {
			__m256 wa, wb;
			load16(W->data, dtype, b + c, &wa, &wb);
#pragma GCC unroll 4
			for (int t = 0; t < N; t++)
				s0[t] = _mm256_fmadd_ps(wb, _mm256_loadu_ps(xs + t * cols + c + 8),
				                        _mm256_fmadd_ps(wa, _mm256_loadu_ps(xs + t * cols + c),
				                                        s0[t]));
		}
#pragma GCC unroll 4
		for (int t = 0; t < N; t++) {
			float u = hsum(s0[t]);
			for (long c = full; c < cols; c++)
				u = __builtin_fmaf(lm_widen1(W->data, dtype, b + c), x[t * cols + c], u);
			y[t * W->rows + r] = u;
		}
	}
}

/* One instance per dtype and token count, so every branch above on them
 * is decided at compile time. */
#define ROWS(name, dtype)                                                       \
	AVX2 static void name(const lm_mat *W, long n, const float *x, const float *xs, \
	                      float *y, long r0, long r1)                           \
	{                                                                           \
		switch (n) {                                                            \
		case 1: rows1(W, x, xs, y, r0, r1, dtype); break;                       \
		case 2: rowsn(W, x, xs, y, r0, r1, dtype, 2); break;                    \
		case 3: rowsn(W, x, xs, y, r0, r1, dtype, 3); break;                    \
		default: rowsn(W, x, xs, y, r0, r1, dtype, 4); break;                   \
		}                                                                       \
	}
ROWS(rows_f32, LM_F32)
ROWS(rows_f16, LM_F16)
ROWS(rows_bf16, LM_BF16)

static void rows_avx2(const lm_mat *W, long n, const float *x, const float *x2,
                      float *y, long r0, long r1)
{
	if (W->dtype == LM_BF16)
		rows_bf16(W, n, x, x2, y, r0, r1);
	else
		(W->dtype == LM_F32 ? rows_f32 : rows_f16)(W, n, x, x, y, r0, r1);
}

/* ---- W stored [in, out] ---- */

/* y[t, r] = sum_c x[t, c] W[c, r].  y holds the sums (matmul.c gives
 * whole input rows, so y is a few tens of KB and stays in the L2 cache);
 * each pass adds four input rows for one token, so four runs stream at
 * once and each sum is loaded and stored once per four rows.  Each run
 * asks for its data COLS_AHEAD bytes ahead and, past its end, as far into
 * the run four rows on, which the next pass reads.  The distance is the
 * dtype's: on the Intel Xeon (family 6 model 167, 16384x5120, one thread,
 * CPU time, bound 19.5 GB/s) F16 and BF16 read 18.0 and 18.3 GB/s at 2048
 * bytes (1536 to 3072 within 1%) and 17.2 and 17.5 at 1024, where F32 read
 * 19.0 at 1024 and 17.5 and 18.2 at 768 and 1536.  Eight rows a pass
 * instead of four, which halves the loads and stores of the sums, read
 * no faster in 16 bits and 0.9 of the rate in F32. */
enum { COLS_AHEAD32 = 1024, COLS_AHEAD16 = 2048 };

AVX2 INLINE void cols_k(const lm_mat *W, long n, const float *x, float *y,
                        long r0, long r1, const int dtype)
{
	long in = W->cols, len = r1 - r0, vl = len & ~7L;
	size_t ld = W->ld, es = lm_esize(dtype);
	long ahead = (dtype == LM_F32 ? COLS_AHEAD32 : COLS_AHEAD16) / (long)es;
	const char *d = W->data;
	for (long t = 0; t < n; t++)
		for (long k = r0; k < r1; k++)
			y[t * W->rows + k] = 0;
	long c = 0;
	if (n == 1) {
		float *acc = y + r0;
		for (; c + 4 <= in; c += 4) {
			size_t p0 = (size_t)c * ld + r0, p1 = p0 + ld, p2 = p1 + ld, p3 = p2 + ld;
			__m256 x0 = _mm256_set1_ps(x[c]), x1 = _mm256_set1_ps(x[c + 1]),
			       x2 = _mm256_set1_ps(x[c + 2]), x3 = _mm256_set1_ps(x[c + 3]);
			for (long k = 0; k < vl; k += 8) {
				if (!(k & (dtype == LM_F32 ? 15 : 31))) {   /* once per 64 bytes */
					long pk = k + ahead;
					size_t o = pk < len ? (size_t)pk : 4 * ld + pk - len;
					_mm_prefetch(d + (p0 + o) * es, _MM_HINT_T0);
					_mm_prefetch(d + (p1 + o) * es, _MM_HINT_T0);
					_mm_prefetch(d + (p2 + o) * es, _MM_HINT_T0);
					_mm_prefetch(d + (p3 + o) * es, _MM_HINT_T0);
				}
				__m256 s = _mm256_loadu_ps(acc + k);
				s = _mm256_fmadd_ps(load8(d, dtype, p0 + k), x0, s);
				s = _mm256_fmadd_ps(load8(d, dtype, p1 + k), x1, s);
				s = _mm256_fmadd_ps(load8(d, dtype, p2 + k), x2, s);
				s = _mm256_fmadd_ps(load8(d, dtype, p3 + k), x3, s);
				_mm256_storeu_ps(acc + k, s);
			}
			for (long k = vl; k < len; k++)
				acc[k] += lm_widen1(d, dtype, p0 + k) * x[c]
				        + lm_widen1(d, dtype, p1 + k) * x[c + 1]
				        + lm_widen1(d, dtype, p2 + k) * x[c + 2]
				        + lm_widen1(d, dtype, p3 + k) * x[c + 3];
		}
	}
	for (; c < in; c++) {
		size_t p = (size_t)c * ld + r0;
		for (long k = 0; k < vl; k += 8) {
			if (!(k & (dtype == LM_F32 ? 15 : 31)))
				prefetch(W, p + k);
			__m256 w = load8(d, dtype, p + k);
#pragma GCC unroll 4
			for (long t = 0; t < GROUP; t++)
				if (t < n) {
					float *acc = y + t * W->rows + r0;
					_mm256_storeu_ps(acc + k,
					                 _mm256_fmadd_ps(w, _mm256_set1_ps(x[t * in + c]),
					                                 _mm256_loadu_ps(acc + k)));
				}
		}
		for (long k = vl; k < len; k++)
			for (long t = 0; t < n; t++)
				y[t * W->rows + r0 + k] += lm_widen1(d, dtype, p + k) * x[t * in + c];
	}
}

#define COLS(name, dtype)                                                       \
	AVX2 static void name(const lm_mat *W, long n, const float *x, float *y,    \
	                      long r0, long r1)                                     \
	{                                                                           \
		cols_k(W, n, x, y, r0, r1, dtype);                                      \
	}
COLS(cols_f32, LM_F32)
COLS(cols_f16, LM_F16)
COLS(cols_bf16, LM_BF16)

static void cols_avx2(const lm_mat *W, long n, const float *x, const float *x2,
                      float *y, long r0, long r1)
{
	(W->dtype == LM_F32 ? cols_f32 : W->dtype == LM_F16 ? cols_f16 : cols_bf16)(
		W, n, x, y, r0, r1);
}

/* ---- prefill: widening a run for sgemm ---- */

AVX2 static void widen_avx2(float *dst, const void *p, int dtype, size_t i, long n)
{
	long k = 0;
	if (dtype == LM_F16)
		for (; k + 8 <= n; k += 8)
			_mm256_storeu_ps(dst + k, load8(p, LM_F16, i + k));
	else if (dtype == LM_BF16)
		for (; k + 8 <= n; k += 8)
			_mm256_storeu_ps(dst + k, load8(p, LM_BF16, i + k));
	for (; k < n; k++)
		dst[k] = lm_widen1(p, dtype, i + k);
}

const lm_stream lm_stream_avx2 = {rows_avx2, cols_avx2, widen_avx2, 16};
