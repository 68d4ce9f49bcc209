/* qmat_512.h: qmat_simd.h's operations on AVX-512 (L = 16), for the files
 * that instantiate it: qmat_512.c (every format) and qmat_512_fixed.c
 * (the common formats with their group size fixed). */
#include "qmat.h"

#define AVX512_T __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma,f16c")))

/* Sixteen lanes are two AVX2 chunks side by side: one load when bits
 * divides 32, the two chunks' words then being adjacent (two loads and a
 * vinserti64x4 cost a shuffle-port uop more per row and chunk). */
AVX512_T static inline __attribute__((always_inline)) __m512i lanes_512(const uint32_t *w, int bits)
{
	if (32 % bits == 0)
		return _mm512_loadu_si512(w);
	__m256i lo = lanes_avx2(w, bits);
	__m256i hi = lanes_avx2(w + 8 * lane_elems(bits) * bits / 32, bits);
	return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}

#define L 16
#define K(name) name##_512
#define TARGET AVX512_T
#define Vf __m512
#define Vi __m512i
#define vzero _mm512_setzero_ps
#define vfma _mm512_fmadd_ps
#define vmul _mm512_mul_ps
#define vadd _mm512_add_ps
#define vload _mm512_loadu_ps
#define vstore _mm512_storeu_ps
#define vset1 _mm512_set1_ps
#define vcvt _mm512_cvtepi32_ps
#define vcast _mm512_castsi512_ps
#define vcvtph(h) _mm512_cvtph_ps(_mm512_cvtepi32_epi16(h))
#define vperm(v, i) _mm512_permutexvar_ps(i, v)
#define vhsum _mm512_reduce_add_ps
#define iand _mm512_and_si512
#define isrli _mm512_srli_epi32
#define islli _mm512_slli_epi32
#define iset1 _mm512_set1_epi32
#define iadd _mm512_add_epi32
#define isub _mm512_sub_epi32
#define iminu _mm512_min_epu32
#define ixor _mm512_xor_si512
#define vcasti _mm512_castps_si512
#define iloadu(p) _mm512_loadu_si512(p)
#define LANES lanes_512
#define LOAD16(p) _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(p)))
#define LOAD8(p) _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(p)))
