/* vec_c.c: the loops of vec.h in plain C, for gcc's vectoriser at -O2
 * (as matmul_c.c: LANES independent sums in an unrolled inner loop, so
 * no float sum needs reassociating). */
#include "vec.h"

enum { LANES = 8 };

#define LOOP _Pragma("GCC unroll 8") for (int l = 0; l < LANES; l++)

static float total(const float *acc)
{
	float s = 0;
	for (int l = 0; l < LANES; l++)
		s += acc[l];
	return s;
}

static float dot_c(const float *restrict a, const float *restrict b, long n)
{
	float acc[LANES] = {0};
	long j = 0;
	for (; j + LANES <= n; j += LANES)
		LOOP acc[l] += a[j + l] * b[j + l];
	float s = total(acc);
	for (; j < n; j++)
		s += a[j] * b[j];
	return s;
}

static void axpy_c(float *restrict o, float w, const float *restrict v, long n)
{
	long j = 0;
	for (; j + LANES <= n; j += LANES)
		LOOP o[j + l] += w * v[j + l];
	for (; j < n; j++)
		o[j] += w * v[j];
}

static float decay_dot_c(float *restrict s, const float *restrict g,
                         const float *restrict k, long n)
{
	float acc[LANES] = {0};
	long j = 0;
	for (; j + LANES <= n; j += LANES)
		LOOP {
			s[j + l] *= g[j + l];
			acc[l] += s[j + l] * k[j + l];
		}
	float r = total(acc);
	for (; j < n; j++) {
		s[j] *= g[j];
		r += s[j] * k[j];
	}
	return r;
}

static float write_dot_c(float *restrict s, float d, const float *restrict k,
                         const float *restrict q, long n)
{
	float acc[LANES] = {0};
	long j = 0;
	for (; j + LANES <= n; j += LANES)
		LOOP {
			s[j + l] += d * k[j + l];
			acc[l] += s[j + l] * q[j + l];
		}
	float r = total(acc);
	for (; j < n; j++) {
		s[j] += d * k[j];
		r += s[j] * q[j];
	}
	return r;
}

static float scan_dot_c(float *restrict s, float a, float u, const float *restrict b,
                        const float *restrict c, long n)
{
	float acc[LANES] = {0};
	long j = 0;
	for (; j + LANES <= n; j += LANES)
		LOOP {
			s[j + l] = a * s[j + l] + u * b[j + l];
			acc[l] += s[j + l] * c[j + l];
		}
	float r = total(acc);
	for (; j < n; j++) {
		s[j] = a * s[j] + u * b[j];
		r += s[j] * c[j];
	}
	return r;
}

const lm_vec_fns lm_vec_c = {dot_c, axpy_c, decay_dot_c, write_dot_c, scan_dot_c};

/* Called before the threads start (the kernels pass its answer to them). */
const lm_vec_fns *lm_vec(void)
{
	static lm_vec_fns v;
	if (!v.dot) {
		v = lm_isa() == LM_ISA_AVX512 ? lm_vec_512
		  : lm_isa() == LM_ISA_AVX2 ? lm_vec_avx2 : lm_vec_c;
		/* AVX-512's table leaves to AVX2 what it would not speed up */
		if (!v.decay_dot)
			v.decay_dot = lm_vec_avx2.decay_dot;
		if (!v.write_dot)
			v.write_dot = lm_vec_avx2.write_dot;
		if (!v.scan_dot)
			v.scan_dot = lm_vec_avx2.scan_dot;
	}
	return &v;
}
