/* vec_512.c: the loops of vec.h that AVX-512 makes faster than AVX2
 * (attention's, the norms', 16 lanes with masked tails).  The recurrent
 * rows and RoPE's pairs take the AVX2 versions on this path (lm_vec()
 * fills them in); the gated delta rule has its own AVX-512 kernel that
 * keeps rows in registers (delta.c). */
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

/* The rest translate vec_avx2.c's to 16 lanes with masked tails.  No
 * machine this was written on had AVX-512: these have compiled, never
 * run, until a CPU with it runs suite_unit. */
AVX512 static inline __mmask16 tail(long left)
{
	return left >= 16 ? 0xffff : (__mmask16)((1u << left) - 1);
}

/* the high 8 floats of v */
AVX512 static inline __m256 high8(__m512 v)
{
	return _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1));
}

AVX512 static double sumsq_512(const float *x, long n)
{
	__m512d s0 = _mm512_setzero_pd(), s1 = s0;
	for (long j = 0; j < n; j += 16) {
		__m512 v = _mm512_maskz_loadu_ps(tail(n - j), x + j);
		__m512d lo = _mm512_cvtps_pd(_mm512_castps512_ps256(v));
		__m512d hi = _mm512_cvtps_pd(high8(v));
		s0 = _mm512_fmadd_pd(lo, lo, s0);
		s1 = _mm512_fmadd_pd(hi, hi, s1);
	}
	return _mm512_reduce_add_pd(_mm512_add_pd(s0, s1));
}

AVX512 static void scale_512(float *y, const float *x, float s, const float *w, long n)
{
	__m512 sv = _mm512_set1_ps(s);
	for (long j = 0; j < n; j += 16) {
		__mmask16 m = tail(n - j);
		__m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + j), sv);
		if (w)
			v = _mm512_mul_ps(v, _mm512_maskz_loadu_ps(m, w + j));
		_mm512_mask_storeu_ps(y + j, m, v);
	}
}

/* c[0] x^(n-1) + ... + c[n-1], by Horner's rule */
AVX512 static inline __m512 horner(__m512 x, const float *c, const int n)
{
	__m512 p = _mm512_set1_ps(c[0]);
	for (int i = 1; i < n; i++)
		p = _mm512_fmadd_ps(p, x, _mm512_set1_ps(c[i]));
	return p;
}

static const float exp_poly[] = {LM_EXP_POLY}, log_poly[] = {LM_LOG_POLY};

AVX512 static inline __m512 exp16(__m512 x)
{
	__m512 t = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(LM_EXP_LO)),
	                         _mm512_set1_ps(LM_EXP_HI));
	t = _mm512_mask_mov_ps(t, _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q), x);   /* NaN stays */
	__m512i k = _mm512_cvtps_epi32(_mm512_mul_ps(t, _mm512_set1_ps(LM_LOG2E)));
	__m512 fk = _mm512_cvtepi32_ps(k);
	__m512 r = _mm512_fnmadd_ps(fk, _mm512_set1_ps(LM_LN2_HI), t);
	r = _mm512_fnmadd_ps(fk, _mm512_set1_ps(LM_LN2_LO), r);
	__m512 p = horner(r, exp_poly, 6);
	p = _mm512_add_ps(_mm512_fmadd_ps(p, _mm512_mul_ps(r, r), r), _mm512_set1_ps(1.0f));
	__m512i bits = _mm512_slli_epi32(_mm512_add_epi32(k, _mm512_set1_epi32(127)), 23);
	__m512 two = _mm512_castsi512_ps(bits);
	__mmask16 under = _mm512_cmp_ps_mask(x, _mm512_set1_ps(LM_EXP_LO), _CMP_LT_OQ);
	return _mm512_maskz_mul_ps((__mmask16)~under, p, two);
}

AVX512 static double expsum_512(float *s, float mx, long n)
{
	__m512 m = _mm512_set1_ps(mx);
	__m512d a0 = _mm512_setzero_pd(), a1 = a0;
	for (long j = 0; j < n; j += 16) {
		__mmask16 k = tail(n - j);
		__m512 e = _mm512_maskz_mov_ps(k, exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, s + j), m)));
		_mm512_mask_storeu_ps(s + j, k, e);
		a0 = _mm512_add_pd(a0, _mm512_cvtps_pd(_mm512_castps512_ps256(e)));
		a1 = _mm512_add_pd(a1, _mm512_cvtps_pd(high8(e)));
	}
	return _mm512_reduce_add_pd(_mm512_add_pd(a0, a1));
}

AVX512 static void swiglu_512(float *y, const float *g, const float *u, long n)
{
	__m512 one = _mm512_set1_ps(1.0f);
	for (long j = 0; j < n; j += 16) {
		__mmask16 k = tail(n - j);
		__m512 gv = _mm512_maskz_loadu_ps(k, g + j);
		__m512 s = _mm512_div_ps(gv, _mm512_add_ps(one, exp16(_mm512_sub_ps(_mm512_setzero_ps(), gv))));
		__mmask16 off = _mm512_cmp_ps_mask(gv, _mm512_set1_ps(-LM_EXP_HI), _CMP_LT_OQ);
		s = _mm512_maskz_mov_ps((__mmask16)~off, s);
		_mm512_mask_storeu_ps(y + j, k, _mm512_mul_ps(s, _mm512_maskz_loadu_ps(k, u + j)));
	}
}

AVX512 static void sigmoid_512(float *x, long n)
{
	__m512 one = _mm512_set1_ps(1.0f);
	for (long j = 0; j < n; j += 16) {
		__mmask16 k = tail(n - j);
		__m512 e = exp16(_mm512_sub_ps(_mm512_setzero_ps(), _mm512_maskz_loadu_ps(k, x + j)));
		_mm512_mask_storeu_ps(x + j, k, _mm512_div_ps(one, _mm512_add_ps(one, e)));
	}
}

AVX512 static inline __m512 log1p16(__m512 u)
{
	__m512 one = _mm512_set1_ps(1.0f), w = _mm512_add_ps(one, u);
	__mmask16 big = _mm512_cmp_ps_mask(w, _mm512_set1_ps(LM_SQRT2), _CMP_GT_OQ);
	__m512 e = _mm512_maskz_mov_ps(big, one);
	__m512 x = _mm512_sub_ps(_mm512_mask_mul_ps(w, big, w, _mm512_set1_ps(0.5f)), one);
	__m512 z = _mm512_mul_ps(x, x);
	__m512 p = horner(x, log_poly, 9);
	__m512 y = _mm512_fmadd_ps(e, _mm512_set1_ps(LM_LN2_LO), _mm512_mul_ps(_mm512_mul_ps(p, x), z));
	y = _mm512_fnmadd_ps(_mm512_set1_ps(0.5f), z, y);
	__m512 r = _mm512_fmadd_ps(e, _mm512_set1_ps(LM_LN2_HI), _mm512_add_ps(x, y));
	return _mm512_add_ps(r, _mm512_div_ps(_mm512_sub_ps(u, _mm512_sub_ps(w, one)), w));
}

AVX512 static void decay_512(float *a, const float *bias, float rate, long n)
{
	__m512 r = _mm512_set1_ps(rate), zero = _mm512_setzero_ps();
	for (long j = 0; j < n; j += 16) {
		__mmask16 k = tail(n - j);
		__m512 z = _mm512_add_ps(_mm512_maskz_loadu_ps(k, a + j), _mm512_maskz_loadu_ps(k, bias + j));
		__m512 neg = _mm512_min_ps(z, _mm512_sub_ps(zero, z));     /* -|z| */
		neg = _mm512_mask_mov_ps(neg, _mm512_cmp_ps_mask(z, z, _CMP_UNORD_Q), z);   /* NaN stays */
		__m512 sp = _mm512_add_ps(_mm512_max_ps(z, zero), log1p16(exp16(neg)));
		_mm512_mask_storeu_ps(a + j, k, exp16(_mm512_sub_ps(zero, _mm512_mul_ps(r, sp))));
	}
}

const lm_vec_fns lm_vec_512 = {dot_512, axpy_512, NULL, NULL, NULL,
                               sumsq_512, scale_512, expsum_512, NULL, swiglu_512, sigmoid_512,
                               decay_512};
