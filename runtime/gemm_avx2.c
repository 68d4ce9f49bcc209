/* gemm_avx2.c: the prefill micro-kernel with AVX2 and FMA (see gemm.c):
 * a tile of 6 tokens x 16 outputs, twelve vector sums.  Each step loads
 * the 16 outputs' weights of one input (two vectors) and broadcasts the 6
 * tokens' inputs: 12 multiply-adds for 8 loads, as many independent sums
 * as the two FMA pipes need to hide their latency, 15 of 16 registers. */
#include "gemm.h"
#include "gemm_avx2.h"

#include <immintrin.h>

enum { MR = 6, NR = 16 };

/* The first m rows of the tile (m <= MR, a constant once inlined). */
AVX2 INLINE void tile_m(long kc, const float *a, const float *b, float *c, long ldc, int add,
                        const int m)
{
	__m256 acc[MR][2];
#pragma GCC unroll 6
	for (int i = 0; i < m; i++) {
		acc[i][0] = acc[i][1] = _mm256_setzero_ps();
		/* y's tile, from L3 or memory: asked for now, used after kc steps */
		_mm_prefetch((const char *)(c + i * ldc), _MM_HINT_T0);
		_mm_prefetch((const char *)(c + i * ldc + NR - 1), _MM_HINT_T0);
	}
	for (long k = 0; k < kc; k++, a += MR, b += NR) {
		__m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8);
#pragma GCC unroll 6
		for (int i = 0; i < m; i++) {
			__m256 ai = _mm256_broadcast_ss(a + i);
			acc[i][0] = _mm256_fmadd_ps(ai, b0, acc[i][0]);
			acc[i][1] = _mm256_fmadd_ps(ai, b1, acc[i][1]);
		}
	}
#pragma GCC unroll 6
	for (int i = 0; i < m; i++) {
		float *ci = c + i * ldc;
		if (add) {
			acc[i][0] = _mm256_add_ps(acc[i][0], _mm256_loadu_ps(ci));
			acc[i][1] = _mm256_add_ps(acc[i][1], _mm256_loadu_ps(ci + 8));
		}
		_mm256_storeu_ps(ci, acc[i][0]);
		_mm256_storeu_ps(ci + 8, acc[i][1]);
	}
}

/* Aligned so that the loop of six steps starts a cache line. */
AVX2 __attribute__((aligned(64))) static void tile_avx2(long kc, const float *a,
                                                        const float *b, float *c, long ldc,
                                                        int add, int m)
{
	switch (m) {
	case 6: tile_m(kc, a, b, c, ldc, add, 6); break;
	case 5: tile_m(kc, a, b, c, ldc, add, 5); break;
	case 4: tile_m(kc, a, b, c, ldc, add, 4); break;
	case 3: tile_m(kc, a, b, c, ldc, add, 3); break;
	case 2: tile_m(kc, a, b, c, ldc, add, 2); break;
	default: tile_m(kc, a, b, c, ldc, add, 1); break;
	}
}

/* The panel of lm_pack_fn, nr outputs NR apart in dst.  Whole 8 x 8
 * blocks are widened in registers (transposed for W stored [out, in]);
 * the rest goes the portable way. */
AVX2 INLINE void pack_k(float *dst, const lm_mat *W, long r0, long nr, long c0, long kc,
                        const int dtype, const int width)
{
	size_t ld = W->ld;
	long whole = nr & ~7L, k8 = W->tr ? kc : kc & ~7L;
	if (whole < nr || k8 < kc)
		lm_gemm_pack_c(dst, W, r0, nr, c0, kc, width);
	if (W->tr) {
		/* Input by input, each row's outputs in one pass: rows ld apart
		 * can fall in one cache set (Llama 4's experts: 16 KB, a 12-way
		 * L1 holds 12 of a panel's 256), so the panel read 8 outputs at a
		 * time, over every row, lost its lines before their next use. */
		for (long k = 0; k < kc; k++)
			for (long j = 0; j < whole; j += 8)
				_mm256_store_ps(dst + k * width + j,
				                load8(W->data, dtype, (c0 + k) * ld + r0 + j));
		return;
	}
	for (long j = 0; j < whole; j += 8) {
		long k = 0;
		/* BF16, 16 inputs at a time: a 32-bit lane holds inputs 2m and
		 * 2m + 1, whose floats are the lane shifted left 16 and the lane
		 * with its low half cleared, so widening takes no shuffle and the
		 * shuffle port (one on Intel) is left to the transpose.  A hot
		 * panel: 0.095 ns a weight widened by vpmovzxwd, 0.064 so (Intel
		 * Xeon family 6 model 167, one thread; a 16 x 16 transpose on
		 * AVX-512 did no better). */
		if (dtype == LM_BF16)
			for (; k + 16 <= k8; k += 16) {
				__m256 e[8], o[8];
				__m256i hi = _mm256_set1_epi32((int)0xffff0000u);
#pragma GCC unroll 8
				for (int i = 0; i < 8; i++) {
					__m256i v = _mm256_loadu_si256(
					        (const __m256i *)((const uint16_t *)W->data +
					                          (r0 + j + i) * ld + c0 + k));
					e[i] = _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
					o[i] = _mm256_castsi256_ps(_mm256_and_si256(v, hi));
				}
				transpose8(e);
				transpose8(o);
#pragma GCC unroll 8
				for (int m = 0; m < 8; m++) {
					_mm256_store_ps(dst + (k + 2 * m) * width + j, e[m]);
					_mm256_store_ps(dst + (k + 2 * m + 1) * width + j, o[m]);
				}
			}
		for (; k < k8; k += 8) {
			__m256 v[8];
#pragma GCC unroll 8
			for (int i = 0; i < 8; i++)
				v[i] = load8(W->data, dtype, (r0 + j + i) * ld + c0 + k);
			transpose8(v);
#pragma GCC unroll 8
			for (int i = 0; i < 8; i++)
				_mm256_store_ps(dst + (k + i) * width + j, v[i]);
		}
	}
}

/* For gemm_512.c too, whose panels are 32 outputs wide. */
AVX2 void lm_gemm_pack_avx2(float *dst, const lm_mat *W, long r0, long nr, long c0, long kc,
                            int width)
{
	switch (W->dtype) {
	case LM_BF16: pack_k(dst, W, r0, nr, c0, kc, LM_BF16, width); break;
	case LM_F16: pack_k(dst, W, r0, nr, c0, kc, LM_F16, width); break;
	default: pack_k(dst, W, r0, nr, c0, kc, LM_F32, width); break;
	}
}

static void pack_avx2(float *dst, const lm_mat *W, long r0, long nr, long c0, long kc)
{
	lm_gemm_pack_avx2(dst, W, r0, nr, c0, kc, NR);
}

/* Rows [r0, r0 + nr) of a float W stored [out, in], inputs [c0, c0 + kc),
 * row j's at dst + j * kc: widened in order, with no transpose. */
AVX2 void lm_gemm_rows_avx2(float *dst, const lm_mat *W, long r0, long nr, long c0, long kc)
{
	int dtype = W->dtype;
	for (long j = 0; j < nr; j++, dst += kc) {
		size_t at = (size_t)(r0 + j) * W->ld + c0;
		long k = 0;
		if (dtype == LM_BF16)
			for (; k + 8 <= kc; k += 8)
				_mm256_storeu_ps(dst + k, load8(W->data, LM_BF16, at + k));
		else if (dtype == LM_F16)
			for (; k + 8 <= kc; k += 8)
				_mm256_storeu_ps(dst + k, load8(W->data, LM_F16, at + k));
		else
			for (; k + 8 <= kc; k += 8)
				_mm256_storeu_ps(dst + k, load8(W->data, LM_F32, at + k));
		for (; k < kc; k++)
			dst[k] = lm_load_f32(W->data, dtype, at + k);
	}
}

/* x's 8 x 8 blocks transposed in registers: a fraction of the cost of
 * storing token by token nt floats apart. */
AVX2 void lm_gemm_xt_avx2(float *xt, const float *x, long n, long cols, long c0, long c1, int nt)
{
	for (long t0 = 0; t0 < nt; t0 += 8) {
		long k = c0;
		for (; k + 8 <= c1; k += 8) {
			__m256 v[8];
#pragma GCC unroll 8
			for (int j = 0; j < 8; j++)
				v[j] = t0 + j < n ? _mm256_loadu_ps(x + (t0 + j) * cols + k) : _mm256_setzero_ps();
			transpose8(v);
#pragma GCC unroll 8
			for (int i = 0; i < 8; i++)
				_mm256_storeu_ps(xt + (k + i) * nt + t0, v[i]);
		}
		for (; k < c1; k++)
			for (long j = 0; j < 8; j++)
				xt[k * nt + t0 + j] = t0 + j < n ? x[(t0 + j) * cols + k] : 0;
	}
}

const lm_gemm_kern lm_gemm_avx2 = {MR, NR, tile_avx2, pack_avx2, 0, 0, NULL, NULL};
