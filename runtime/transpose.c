/* transpose.c: a stack of matrices transposed, [n, A, B] into [n, B, A],
 * for elements of 2 or 4 bytes (st.c stores a weight kept [in, out] as
 * [out, in] with it, once, at load).
 *
 * The work is split into squares of T x T elements.  A square is
 * transposed into tmp in L1, then written a whole destination row (T
 * elements) at a time: written element by element in place, its T
 * destination rows, A elements apart, share a few cache sets when A * es
 * is a multiple of 4 KB (Llama 4's 5120 and 8192 are), and were evicted
 * and read back for every element (0.8 GB/s on 2 cores).  Whole squares
 * go through SSE2 (every x86-64 has it): 8 x 8 or 4 x 4 blocks in
 * registers, the next square's source lines asked for ahead, and the rows
 * stored past the caches, since nothing reads them until the model runs
 * (4.6 to 5.6 GB/s on one core of an Intel Xeon family 6 model 207, where
 * the scalar loop did 1.1). */
#include "rt.h"

#include <stdint.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

enum { T = 64 };

typedef struct {
	unsigned char *dst;
	const unsigned char *src;
	long A, B, sa, sb;       /* squares down A and across B */
	int es;
} Job;

/* Any square, any alignment. */
#define SQUARE(type)                                                          \
	do {                                                                      \
		const type *s = (const type *)j->src + base;                          \
		type *d = (type *)j->dst + base, tmp[T][T];                           \
		for (long a = a0; a < a1; a++)                                        \
			for (long b = b0; b < b1; b++)                                    \
				tmp[b - b0][a - a0] = s[a * j->B + b];                        \
		for (long b = b0; b < b1; b++)                                        \
			memcpy(d + b * j->A + a0, tmp[b - b0], (a1 - a0) * sizeof(type)); \
	} while (0)

#ifdef __SSE2__
#define LD(p) _mm_loadu_si128((const __m128i *)(p))
#define ST(p, v) _mm_store_si128((__m128i *)(p), v)

/* 8 x 8 16-bit elements: row k of src (ls apart) into column k of dst. */
static void t8x8(uint16_t *dst, long ld, const uint16_t *src, long ls)
{
	__m128i r[8], a[8], b[8];
	for (int k = 0; k < 8; k++)
		r[k] = LD(src + k * ls);
	for (int k = 0; k < 4; k++) {
		a[2 * k] = _mm_unpacklo_epi16(r[2 * k], r[2 * k + 1]);
		a[2 * k + 1] = _mm_unpackhi_epi16(r[2 * k], r[2 * k + 1]);
	}
	for (int k = 0; k < 2; k++) {     /* a: rows 4k.. interleaved by pairs */
		b[4 * k] = _mm_unpacklo_epi32(a[4 * k], a[4 * k + 2]);
		b[4 * k + 1] = _mm_unpackhi_epi32(a[4 * k], a[4 * k + 2]);
		b[4 * k + 2] = _mm_unpacklo_epi32(a[4 * k + 1], a[4 * k + 3]);
		b[4 * k + 3] = _mm_unpackhi_epi32(a[4 * k + 1], a[4 * k + 3]);
	}
	for (int k = 0; k < 4; k++) {
		ST(dst + (2 * k) * ld, _mm_unpacklo_epi64(b[k], b[k + 4]));
		ST(dst + (2 * k + 1) * ld, _mm_unpackhi_epi64(b[k], b[k + 4]));
	}
}

/* 4 x 4 32-bit elements. */
static void t4x4(uint32_t *dst, long ld, const uint32_t *src, long ls)
{
	__m128i r0 = LD(src), r1 = LD(src + ls), r2 = LD(src + 2 * ls), r3 = LD(src + 3 * ls);
	__m128i a0 = _mm_unpacklo_epi32(r0, r1), a1 = _mm_unpackhi_epi32(r0, r1);
	__m128i a2 = _mm_unpacklo_epi32(r2, r3), a3 = _mm_unpackhi_epi32(r2, r3);
	ST(dst, _mm_unpacklo_epi64(a0, a2));
	ST(dst + ld, _mm_unpackhi_epi64(a0, a2));
	ST(dst + 2 * ld, _mm_unpacklo_epi64(a1, a3));
	ST(dst + 3 * ld, _mm_unpackhi_epi64(a1, a3));
}

/* A whole square at (a0, b0) of the matrix at element base, its rows
 * 16-byte aligned in dst. */
static void whole(const Job *j, long base, long a0, long b0)
{
	_Alignas(64) unsigned char tmp[T * T * 4];
	long row = T * j->es;                  /* bytes of a row of tmp */
	const unsigned char *s = j->src + (base + a0 * j->B + b0) * j->es;
	if (b0 + T < j->B)
		for (long a = 0; a < T; a++)
			for (long k = 0; k < row; k += 64)
				__builtin_prefetch(s + a * j->B * j->es + row + k);
	int v = 16 / j->es;                    /* a block's side */
	for (long a = 0; a < T; a += v)
		for (long b = 0; b < T; b += v) {
			if (j->es == 2)
				t8x8((uint16_t *)tmp + b * T + a, T, (const uint16_t *)s + a * j->B + b, j->B);
			else
				t4x4((uint32_t *)tmp + b * T + a, T, (const uint32_t *)s + a * j->B + b, j->B);
		}
	unsigned char *d = j->dst + (base + b0 * j->A + a0) * j->es;
	for (long b = 0; b < T; b++)
		for (long k = 0; k < row; k += 16)
			_mm_stream_si128((__m128i *)(d + b * j->A * j->es + k),
			                 _mm_load_si128((const __m128i *)(tmp + b * row + k)));
}
#endif

/* Squares [q0, q1) in the order matrix, then square row, then column. */
static void squares(void *ctx, long q0, long q1)
{
	const Job *j = ctx;
	long per = j->sa * j->sb;
#ifdef __SSE2__
	int fast = (uintptr_t)j->dst % 16 == 0 && j->A * j->es % 16 == 0;
#endif
	for (long q = q0; q < q1; q++) {
		long m = q / per, r = q % per;
		long a0 = r / j->sb * T, b0 = r % j->sb * T;
		long a1 = a0 + T < j->A ? a0 + T : j->A, b1 = b0 + T < j->B ? b0 + T : j->B;
		long base = m * j->A * j->B;
#ifdef __SSE2__
		if (fast && a1 - a0 == T && b1 - b0 == T) {
			whole(j, base, a0, b0);
			continue;
		}
#endif
		if (j->es == 2)
			SQUARE(uint16_t);
		else
			SQUARE(uint32_t);
	}
#ifdef __SSE2__
	_mm_sfence();     /* the streamed rows, seen by the thread that waits */
#endif
}

void lm_transpose(void *dst, const void *src, long n, long A, long B, int es)
{
	if (es != 2 && es != 4)
		lm_bug("lm_transpose: %d-byte elements", es);
	Job j = {dst, src, A, B, (A + T - 1) / T, (B + T - 1) / T, es};
	lm_parallel(n * j.sa * j.sb, 1, squares, &j);
}
