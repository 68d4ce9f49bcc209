/* gemm_c.c: the prefill micro-kernel in plain C (see gemm.c), for a CPU
 * with neither AVX2 nor AVX-512, written for gcc's vectoriser at -O2: a
 * tile of MR x NR sums in a local array whose loops gcc unrolls whole,
 * so that the sums stay in vector registers (MR * NR / 4 of them with
 * SSE2's 4 lanes: 8 of its 16). */
#include "gemm.h"

enum { MR = 4, NR = 8 };

static void tile_c(long kc, const float *restrict a, const float *restrict b,
                   float *restrict c, long ldc, int add, int m)
{
	float acc[MR][NR] = {{0}};
	for (long k = 0; k < kc; k++, a += MR, b += NR) {
#pragma GCC unroll 4
		for (int i = 0; i < MR; i++)
#pragma GCC unroll 8
			for (int j = 0; j < NR; j++)
				acc[i][j] += a[i] * b[j];
	}
	for (int i = 0; i < m; i++)
		for (int j = 0; j < NR; j++)
			c[i * ldc + j] = (add ? c[i * ldc + j] : 0) + acc[i][j];
}

static void pack_c(float *dst, const lm_mat *W, long r0, long nr, long c0, long kc)
{
	lm_gemm_pack_c(dst, W, r0, nr, c0, kc, NR);
}

const lm_gemm_kern lm_gemm_c = {MR, NR, tile_c, pack_c, 0, 0, NULL, NULL};
