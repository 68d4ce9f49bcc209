/* qmat_avx2.h: qmat_simd.h's operations on AVX2 (L = 8), for the files
 * that instantiate it: qmat_avx2.c (every format) and qmat_avx2_fixed.c
 * (the common formats with their group size fixed). */
#include "qmat.h"

AVX2_T static inline float hsum_avx2(__m256 v)
{
	__m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
	s = _mm_add_ps(s, _mm_movehl_ps(s, s));
	return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}

#define L 8
#define K(name) name##_avx2
#define TARGET AVX2_T
#define Vf __m256
#define Vi __m256i
#define vzero _mm256_setzero_ps
#define vfma _mm256_fmadd_ps
#define vmul _mm256_mul_ps
#define vadd _mm256_add_ps
#define vload _mm256_loadu_ps
#define vstore _mm256_storeu_ps
#define vset1 _mm256_set1_ps
#define vcvt _mm256_cvtepi32_ps
#define vcast _mm256_castsi256_ps
#define vcvtph(h) _mm256_cvtph_ps(_mm256_castsi256_si128(_mm256_packus_epi32( \
	(h), _mm256_permute2x128_si256((h), (h), 1))))
#define vperm(v, i) _mm256_permutevar8x32_ps(v, i)
#define vhsum hsum_avx2
#define iand _mm256_and_si256
#define isrli _mm256_srli_epi32
#define islli _mm256_slli_epi32
#define iset1 _mm256_set1_epi32
#define iadd _mm256_add_epi32
#define isub _mm256_sub_epi32
#define iminu _mm256_min_epu32
#define ixor _mm256_xor_si256
#define vcasti _mm256_castps_si256
#define iloadu(p) _mm256_loadu_si256((const __m256i *)(p))
#define LANES lanes_avx2
#define LOAD16(p) _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(p)))
#define LOAD8(p) _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(p)))
