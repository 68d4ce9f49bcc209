/* vec_512.c: the loops of vec.h that AVX-512 makes faster than AVX2
 * (attention's, 16 lanes with masked tails).  The recurrent rows take the
 * AVX2 versions on this path (lm_vec() fills them in); the gated delta
 * rule has its own AVX-512 kernel that keeps rows in registers (delta.c). */
#include "vec.h"

#include <immintrin.h>

#define AVX512 __attribute__((target("avx512f")))

AVX512 static float dot_512(const float *a, const float *b, long n)
{
	__m512 s0 = _mm512_setzero_ps(), s1 = s0;
	long j = 0;
	for (; j + 32 <= n; j += 32) {
		s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + j), _mm512_loadu_ps(b + j), s0);
		s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + j + 16), _mm512_loadu_ps(b + j + 16), s1);
	}
	for (; j < n; j += 16) {
		__mmask16 m = n - j >= 16 ? 0xffff : (__mmask16)((1u << (n - j)) - 1);
		s0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + j), _mm512_maskz_loadu_ps(m, b + j), s0);
	}
	return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

AVX512 static void axpy_512(float *o, float w, const float *v, long n)
{
	__m512 wv = _mm512_set1_ps(w);
	for (long j = 0; j < n; j += 16) {
		__mmask16 m = n - j >= 16 ? 0xffff : (__mmask16)((1u << (n - j)) - 1);
		_mm512_mask_storeu_ps(o + j, m, _mm512_fmadd_ps(wv, _mm512_maskz_loadu_ps(m, v + j),
		                                                 _mm512_maskz_loadu_ps(m, o + j)));
	}
}

const lm_vec_fns lm_vec_512 = {dot_512, axpy_512, NULL, NULL, NULL};
