/* load_avx2.h: reading stored weights into AVX2 registers, shared by the
 * decode products (matmul_avx2.c) and the prefill product (gemm_avx2.c). */
#ifndef LM_LOAD_AVX2_H
#define LM_LOAD_AVX2_H

#include "rt.h"

#include <immintrin.h>

#define AVX2 __attribute__((target("avx2,fma,f16c")))
#define INLINE static inline __attribute__((always_inline))

/* 8 weights from p + i as floats, in order. */
AVX2 INLINE __m256 load8(const void *p, int dtype, size_t i)
{
	if (dtype == LM_F32)
		return _mm256_loadu_ps((const float *)p + i);
	__m128i h = _mm_loadu_si128((const __m128i *)((const uint16_t *)p + i));
	if (dtype == LM_F16)
		return _mm256_cvtph_ps(h);
	return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

#endif
