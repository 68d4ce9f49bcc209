/* gemm_512.c: the prefill micro-kernel with AVX-512F (see gemm.c), the
 * AVX2 kernel (gemm_avx2.c) at 16 floats a vector: a tile of 8 tokens x
 * 32 outputs, sixteen vector sums in 32 registers: 10 loads for 16
 * multiply-adds, where a tile of 6 tokens needs 8 for 12, and an
 * expert's 32 tokens fill whole tiles.  Against 6 tokens it measured 5 to
 * 10% faster at 128 tokens (tests/bin/bench_gemm, BF16, one thread, Intel
 * Xeon family 6 model 167).  Panels are widened by AVX2's packer, 32
 * outputs wide (a 16 x 16 transpose of its own packed no faster). */
#include "gemm.h"

#include <immintrin.h>

#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma,f16c")))
#define INLINE static inline __attribute__((always_inline))

enum { MR = 8, NR = 32 };

AVX512 INLINE void tile_m(long kc, const float *a, const float *b, float *c, long ldc, int add,
                          const int m)
{
	__m512 acc[MR][2];
#pragma GCC unroll 8
	for (int i = 0; i < m; i++)
		acc[i][0] = acc[i][1] = _mm512_setzero_ps();
	for (long k = 0; k < kc; k++, a += MR, b += NR) {
		__m512 b0 = _mm512_load_ps(b), b1 = _mm512_load_ps(b + 16);
#pragma GCC unroll 8
		for (int i = 0; i < m; i++) {
			__m512 ai = _mm512_set1_ps(a[i]);
			acc[i][0] = _mm512_fmadd_ps(ai, b0, acc[i][0]);
			acc[i][1] = _mm512_fmadd_ps(ai, b1, acc[i][1]);
		}
	}
#pragma GCC unroll 8
	for (int i = 0; i < m; i++) {
		float *ci = c + i * ldc;
		if (add) {
			acc[i][0] = _mm512_add_ps(acc[i][0], _mm512_loadu_ps(ci));
			acc[i][1] = _mm512_add_ps(acc[i][1], _mm512_loadu_ps(ci + 16));
		}
		_mm512_storeu_ps(ci, acc[i][0]);
		_mm512_storeu_ps(ci + 16, acc[i][1]);
	}
}

AVX512 __attribute__((aligned(64))) static void tile_512(long kc, const float *a,
                                                         const float *b, float *c, long ldc,
                                                         int add, int m)
{
	switch (m) {
	case 8: tile_m(kc, a, b, c, ldc, add, 8); break;
	case 7: tile_m(kc, a, b, c, ldc, add, 7); break;
	case 6: tile_m(kc, a, b, c, ldc, add, 6); break;
	case 5: tile_m(kc, a, b, c, ldc, add, 5); break;
	case 4: tile_m(kc, a, b, c, ldc, add, 4); break;
	case 3: tile_m(kc, a, b, c, ldc, add, 3); break;
	case 2: tile_m(kc, a, b, c, ldc, add, 2); break;
	default: tile_m(kc, a, b, c, ldc, add, 1); break;
	}
}

static void pack_512(float *dst, const lm_mat *W, long r0, long nr, long c0, long kc)
{
	lm_gemm_pack_avx2(dst, W, r0, nr, c0, kc, NR);
}

/* lm_tile_t_fn: 8 outputs x V vectors of 16 tokens, 8V sums, V + 8 loads
 * for 8V multiply-adds (at V = 2 the ten loads for 16 of tile_m), with
 * the weights broadcast and the tokens in the lanes. */
enum { MW = 8, VMAX = 3 };

AVX512 INLINE void tile_v(long kc, const float *w, const float *xt, float *acc, int add,
                          float *y, long ldy, int m, int n, const int V)
{
	const int NT = 16 * V;
	__m512 s[MW][VMAX];
#pragma GCC unroll 8
	for (int i = 0; i < MW; i++)
#pragma GCC unroll 3
		for (int v = 0; v < V; v++)
			s[i][v] = _mm512_setzero_ps();
	for (long k = 0; k < kc; k++, xt += NT) {
		__m512 x[VMAX];
#pragma GCC unroll 3
		for (int v = 0; v < V; v++)
			x[v] = _mm512_loadu_ps(xt + 16 * v);
#pragma GCC unroll 8
		for (int i = 0; i < MW; i++) {
			__m512 wi = _mm512_set1_ps(w[i * kc + k]);
#pragma GCC unroll 3
			for (int v = 0; v < V; v++)
				s[i][v] = _mm512_fmadd_ps(wi, x[v], s[i][v]);
		}
	}
	float last[MW * 16 * VMAX], *t = y ? last : acc;
#pragma GCC unroll 8
	for (int i = 0; i < MW; i++)
#pragma GCC unroll 3
		for (int v = 0; v < V; v++) {
			if (add)    /* the block's sums after the sums so far, as tile_m */
				s[i][v] = _mm512_add_ps(s[i][v], _mm512_loadu_ps(acc + i * NT + 16 * v));
			_mm512_storeu_ps(t + i * NT + 16 * v, s[i][v]);
		}
	if (y)
		for (int tok = 0; tok < n; tok++)
			for (int i = 0; i < m; i++)
				y[tok * ldy + i] = t[i * NT + tok];
}

AVX512 __attribute__((aligned(64))) static void tile_t_512(long kc, const float *w,
                                                           const float *xt, float *acc,
                                                           int add, float *y, long ldy, int m,
                                                           int n, int nt)
{
	switch (nt) {
	case 16: tile_v(kc, w, xt, acc, add, y, ldy, m, n, 1); break;
	case 32: tile_v(kc, w, xt, acc, add, y, ldy, m, n, 2); break;
	default: tile_v(kc, w, xt, acc, add, y, ldy, m, n, 3); break;
	}
}

const lm_gemm_kern lm_gemm_512 = {MR, NR, tile_512, pack_512, MW, 16 * VMAX, tile_t_512,
                                  lm_gemm_rows_avx2};
