/* vec_avx2.c: the loops of vec.h with AVX2 and FMA, two sums of 8 lanes
 * (the rows are a head's 64 to 256 floats); the last n % 8 one by one,
 * except exp's (through the vector exp, so a row's exps do not depend on
 * where it ends). */
#include "vec.h"

#include <immintrin.h>
#include <string.h>

#define AVX2 __attribute__((target("avx2,fma")))

AVX2 static inline float hsum(__m256 v)
{
	__m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
	s = _mm_add_ps(s, _mm_movehl_ps(s, s));
	s = _mm_add_ss(s, _mm_movehdup_ps(s));
	return _mm_cvtss_f32(s);
}

AVX2 static float dot_avx2(const float *a, const float *b, long n)
{
	__m256 s0 = _mm256_setzero_ps(), s1 = s0;
	long j = 0;
	for (; j + 16 <= n; j += 16) {
		s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + j), _mm256_loadu_ps(b + j), s0);
		s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + j + 8), _mm256_loadu_ps(b + j + 8), s1);
	}
	if (j + 8 <= n) {
		s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + j), _mm256_loadu_ps(b + j), s0);
		j += 8;
	}
	float s = hsum(_mm256_add_ps(s0, s1));
	for (; j < n; j++)
		s += a[j] * b[j];
	return s;
}

AVX2 static void axpy_avx2(float *o, float w, const float *v, long n)
{
	__m256 wv = _mm256_set1_ps(w);
	long j = 0;
	for (; j + 8 <= n; j += 8)
		_mm256_storeu_ps(o + j, _mm256_fmadd_ps(wv, _mm256_loadu_ps(v + j), _mm256_loadu_ps(o + j)));
	for (; j < n; j++)
		o[j] += w * v[j];
}

AVX2 static float decay_dot_avx2(float *s, const float *g, const float *k, long n)
{
	__m256 r = _mm256_setzero_ps();
	long j = 0;
	for (; j + 8 <= n; j += 8) {
		__m256 v = _mm256_mul_ps(_mm256_loadu_ps(s + j), _mm256_loadu_ps(g + j));
		_mm256_storeu_ps(s + j, v);
		r = _mm256_fmadd_ps(v, _mm256_loadu_ps(k + j), r);
	}
	float t = hsum(r);
	for (; j < n; j++) {
		s[j] *= g[j];
		t += s[j] * k[j];
	}
	return t;
}

AVX2 static float write_dot_avx2(float *s, float d, const float *k, const float *q, long n)
{
	__m256 dv = _mm256_set1_ps(d), r = _mm256_setzero_ps();
	long j = 0;
	for (; j + 8 <= n; j += 8) {
		__m256 v = _mm256_fmadd_ps(dv, _mm256_loadu_ps(k + j), _mm256_loadu_ps(s + j));
		_mm256_storeu_ps(s + j, v);
		r = _mm256_fmadd_ps(v, _mm256_loadu_ps(q + j), r);
	}
	float t = hsum(r);
	for (; j < n; j++) {
		s[j] += d * k[j];
		t += s[j] * q[j];
	}
	return t;
}

AVX2 static float scan_dot_avx2(float *s, float a, float u, const float *b, const float *c,
                                long n)
{
	__m256 av = _mm256_set1_ps(a), uv = _mm256_set1_ps(u), r = _mm256_setzero_ps();
	long j = 0;
	for (; j + 8 <= n; j += 8) {
		__m256 v = _mm256_fmadd_ps(av, _mm256_loadu_ps(s + j),
		                           _mm256_mul_ps(uv, _mm256_loadu_ps(b + j)));
		_mm256_storeu_ps(s + j, v);
		r = _mm256_fmadd_ps(v, _mm256_loadu_ps(c + j), r);
	}
	float t = hsum(r);
	for (; j < n; j++) {
		s[j] = a * s[j] + u * b[j];
		t += s[j] * c[j];
	}
	return t;
}

/* four double sums of 4 lanes: a float row widened half a vector at a time */
AVX2 static double sumsq_avx2(const float *x, long n)
{
	__m256d s[4];
	for (int k = 0; k < 4; k++)
		s[k] = _mm256_setzero_pd();
	long j = 0;
	for (; j + 16 <= n; j += 16)
		for (int k = 0; k < 4; k++) {
			__m256d v = _mm256_cvtps_pd(_mm_loadu_ps(x + j + 4 * k));
			s[k] = _mm256_fmadd_pd(v, v, s[k]);
		}
	__m256d t4 = _mm256_add_pd(_mm256_add_pd(s[0], s[1]), _mm256_add_pd(s[2], s[3]));
	double v[4];
	_mm256_storeu_pd(v, t4);
	double t = v[0] + v[1] + v[2] + v[3];
	for (; j < n; j++)
		t += (double)x[j] * x[j];
	return t;
}

AVX2 static void scale_avx2(float *y, const float *x, float s, const float *w, long n)
{
	__m256 sv = _mm256_set1_ps(s);
	long j = 0;
	for (; j + 8 <= n; j += 8) {
		__m256 v = _mm256_mul_ps(_mm256_loadu_ps(x + j), sv);
		_mm256_storeu_ps(y + j, w ? _mm256_mul_ps(v, _mm256_loadu_ps(w + j)) : v);
	}
	for (; j < n; j++)
		y[j] = w ? x[j] * s * w[j] : x[j] * s;
}

/* c[0] x^(n-1) + ... + c[n-1], by Horner's rule */
AVX2 static inline __m256 horner(__m256 x, const float *c, const int n)
{
	__m256 p = _mm256_set1_ps(c[0]);
	for (int i = 1; i < n; i++)
		p = _mm256_fmadd_ps(p, x, _mm256_set1_ps(c[i]));
	return p;
}

static const float exp_poly[] = {LM_EXP_POLY}, log_poly[] = {LM_LOG_POLY};

/* vec.h's exp on 8 lanes */
AVX2 static inline __m256 exp8(__m256 x)
{
	__m256 t = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(LM_EXP_LO)),
	                         _mm256_set1_ps(LM_EXP_HI));
	t = _mm256_blendv_ps(t, x, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));   /* NaN stays */
	__m256i k = _mm256_cvtps_epi32(_mm256_mul_ps(t, _mm256_set1_ps(LM_LOG2E)));
	__m256 fk = _mm256_cvtepi32_ps(k);
	__m256 r = _mm256_fnmadd_ps(fk, _mm256_set1_ps(LM_LN2_HI), t);
	r = _mm256_fnmadd_ps(fk, _mm256_set1_ps(LM_LN2_LO), r);
	__m256 p = horner(r, exp_poly, 6);
	p = _mm256_add_ps(_mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r), _mm256_set1_ps(1.0f));
	__m256i bits = _mm256_slli_epi32(_mm256_add_epi32(k, _mm256_set1_epi32(127)), 23);
	__m256 two = _mm256_castsi256_ps(bits);
	__m256 e = _mm256_mul_ps(p, two);
	return _mm256_andnot_ps(_mm256_cmp_ps(x, _mm256_set1_ps(LM_EXP_LO), _CMP_LT_OQ), e);
}

/* n mod 8 floats from p into a vector, the rest 0, and back */
AVX2 static inline __m256 part8(const float *p, long n)
{
	float t[8] = {0};
	memcpy(t, p, n * sizeof(float));
	return _mm256_loadu_ps(t);
}

AVX2 static inline void unpart8(float *p, __m256 v, long n)
{
	float t[8];
	_mm256_storeu_ps(t, v);
	memcpy(p, t, n * sizeof(float));
}

/* sums of 8 floats at a time into double */
AVX2 static double expsum_avx2(float *s, float mx, long n)
{
	__m256 m = _mm256_set1_ps(mx);
	__m256d a0 = _mm256_setzero_pd(), a1 = a0;
	long j = 0;
	for (; j + 8 <= n; j += 8) {
		__m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(s + j), m));
		_mm256_storeu_ps(s + j, e);
		a0 = _mm256_add_pd(a0, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
		a1 = _mm256_add_pd(a1, _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
	}
	double v[4];
	_mm256_storeu_pd(v, _mm256_add_pd(a0, a1));
	double t = v[0] + v[1] + v[2] + v[3];
	if (j < n) {     /* the tail through the same exp, one lane each */
		unpart8(s + j, exp8(_mm256_sub_ps(part8(s + j, n - j), m)), n - j);
		for (long i = j; i < n; i++)
			t += s[i];
	}
	return t;
}

/* Interleaved pairs: lanes (2j, 2j + 1) hold (a, b); with each cosine and
 * sine doubled across its pair, a' = a c - b s and b' = b c + a s are
 * v c + swap(v) (-s, s). */
AVX2 static void rope_avx2(float *v, const float *c, const float *s, long n, int half)
{
	long j = 0;
	if (half) {
		float *b = v + n;
		for (; j + 8 <= n; j += 8) {
			__m256 x0 = _mm256_loadu_ps(v + j), x1 = _mm256_loadu_ps(b + j);
			__m256 cv = _mm256_loadu_ps(c + j), sv = _mm256_loadu_ps(s + j);
			_mm256_storeu_ps(v + j, _mm256_fmsub_ps(x0, cv, _mm256_mul_ps(x1, sv)));
			_mm256_storeu_ps(b + j, _mm256_fmadd_ps(x0, sv, _mm256_mul_ps(x1, cv)));
		}
		for (; j < n; j++) {
			float x0 = v[j], x1 = b[j];
			v[j] = x0 * c[j] - x1 * s[j];
			b[j] = x0 * s[j] + x1 * c[j];
		}
		return;
	}
	__m256 sign = _mm256_castsi256_ps(_mm256_set1_epi64x(0x80000000ll));   /* -0 in even lanes */
	for (; j + 4 <= n; j += 4) {
		__m128 c4 = _mm_loadu_ps(c + j), s4 = _mm_loadu_ps(s + j);
		__m256 cv = _mm256_set_m128(_mm_unpackhi_ps(c4, c4), _mm_unpacklo_ps(c4, c4));
		__m256 sv = _mm256_set_m128(_mm_unpackhi_ps(s4, s4), _mm_unpacklo_ps(s4, s4));
		__m256 x = _mm256_loadu_ps(v + 2 * j);
		__m256 sw = _mm256_permute_ps(x, 0xb1);     /* (b, a) in each pair */
		_mm256_storeu_ps(v + 2 * j, _mm256_fmadd_ps(x, cv, _mm256_mul_ps(sw, _mm256_xor_ps(sv, sign))));
	}
	for (; j < n; j++) {
		float x0 = v[2 * j], x1 = v[2 * j + 1];
		v[2 * j] = x0 * c[j] - x1 * s[j];
		v[2 * j + 1] = x0 * s[j] + x1 * c[j];
	}
}

AVX2 static inline __m256 silu8(__m256 g)
{
	__m256 s = _mm256_div_ps(g, _mm256_add_ps(_mm256_set1_ps(1.0f),
	                                          exp8(_mm256_sub_ps(_mm256_setzero_ps(), g))));
	return _mm256_andnot_ps(_mm256_cmp_ps(g, _mm256_set1_ps(-LM_EXP_HI), _CMP_LT_OQ), s);
}

AVX2 static void swiglu_avx2(float *y, const float *g, const float *u, long n)
{
	long j = 0;
	for (; j + 8 <= n; j += 8)
		_mm256_storeu_ps(y + j, _mm256_mul_ps(silu8(_mm256_loadu_ps(g + j)),
		                                      _mm256_loadu_ps(u + j)));
	if (j < n)
		unpart8(y + j, _mm256_mul_ps(silu8(part8(g + j, n - j)), part8(u + j, n - j)), n - j);
}

AVX2 static inline __m256 sigmoid8(__m256 x)
{
	__m256 one = _mm256_set1_ps(1.0f);
	return _mm256_div_ps(one, _mm256_add_ps(one, exp8(_mm256_sub_ps(_mm256_setzero_ps(), x))));
}

AVX2 static void sigmoid_avx2(float *x, long n)
{
	long j = 0;
	for (; j + 8 <= n; j += 8)
		_mm256_storeu_ps(x + j, sigmoid8(_mm256_loadu_ps(x + j)));
	if (j < n)
		unpart8(x + j, sigmoid8(part8(x + j, n - j)), n - j);
}

AVX2 static inline __m256 log1p8(__m256 u)
{
	__m256 one = _mm256_set1_ps(1.0f), w = _mm256_add_ps(one, u);
	__m256 big = _mm256_cmp_ps(w, _mm256_set1_ps(LM_SQRT2), _CMP_GT_OQ);
	__m256 e = _mm256_and_ps(big, one);
	__m256 x = _mm256_sub_ps(_mm256_blendv_ps(w, _mm256_mul_ps(w, _mm256_set1_ps(0.5f)), big), one);
	__m256 z = _mm256_mul_ps(x, x);
	__m256 p = horner(x, log_poly, 9);
	__m256 y = _mm256_fmadd_ps(e, _mm256_set1_ps(LM_LN2_LO), _mm256_mul_ps(_mm256_mul_ps(p, x), z));
	y = _mm256_fnmadd_ps(_mm256_set1_ps(0.5f), z, y);
	__m256 r = _mm256_fmadd_ps(e, _mm256_set1_ps(LM_LN2_HI), _mm256_add_ps(x, y));
	return _mm256_add_ps(r, _mm256_div_ps(_mm256_sub_ps(u, _mm256_sub_ps(w, one)), w));
}

AVX2 static inline __m256 decay8(__m256 a, __m256 b, __m256 rate)
{
	__m256 z = _mm256_add_ps(a, b), zero = _mm256_setzero_ps();
	__m256 neg = _mm256_min_ps(z, _mm256_sub_ps(zero, z));     /* -|z| */
	neg = _mm256_blendv_ps(neg, z, _mm256_cmp_ps(z, z, _CMP_UNORD_Q));   /* NaN stays */
	__m256 sp = _mm256_add_ps(_mm256_max_ps(z, zero), log1p8(exp8(neg)));
	return exp8(_mm256_sub_ps(zero, _mm256_mul_ps(rate, sp)));
}

AVX2 static void decay_avx2(float *a, const float *bias, float rate, long n)
{
	__m256 r = _mm256_set1_ps(rate);
	long j = 0;
	for (; j + 8 <= n; j += 8)
		_mm256_storeu_ps(a + j, decay8(_mm256_loadu_ps(a + j), _mm256_loadu_ps(bias + j), r));
	if (j < n)
		unpart8(a + j, decay8(part8(a + j, n - j), part8(bias + j, n - j), r), n - j);
}

const lm_vec_fns lm_vec_avx2 = {dot_avx2, axpy_avx2, decay_dot_avx2, write_dot_avx2,
                                scan_dot_avx2, sumsq_avx2, scale_avx2, expsum_avx2,
                                rope_avx2, swiglu_avx2, sigmoid_avx2, decay_avx2};
