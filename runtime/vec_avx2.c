/* vec_avx2.c: the loops of vec.h with AVX2 and FMA, two sums of 8 lanes
 * (the rows are a head's 64 to 256 floats); the last n % 8 one by one. */
#include "vec.h"

#include <immintrin.h>

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

const lm_vec_fns lm_vec_avx2 = {dot_avx2, axpy_avx2, decay_dot_avx2, write_dot_avx2,
                                scan_dot_avx2};
