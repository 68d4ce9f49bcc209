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

static double sumsq_c(const float *restrict x, long n)
{
	double acc[LANES] = {0};
	long j = 0;
	for (; j + LANES <= n; j += LANES)
		LOOP acc[l] += (double)x[j + l] * x[j + l];
	double s = 0;
	for (int l = 0; l < LANES; l++)
		s += acc[l];
	for (; j < n; j++)
		s += (double)x[j] * x[j];
	return s;
}

/* y may be x: each element is read before it is written */
static void scale_c(float *y, const float *x, float s, const float *restrict w, long n)
{
	if (w)
		for (long j = 0; j < n; j++)
			y[j] = x[j] * s * w[j];
	else
		for (long j = 0; j < n; j++)
			y[j] = x[j] * s;
}

/* vec.h's exp with integer conversions and selects only, which gcc
 * vectorises (no floorf, no branch). */
static inline float exp_c(float x)
{
	float t = x < LM_EXP_LO ? LM_EXP_LO : x > LM_EXP_HI ? LM_EXP_HI : x;
	float z = t * LM_LOG2E;
	int k = (int)(z + (z < 0 ? -0.5f : 0.5f));
	float fk = (float)k;
	float r = t - fk * LM_LN2_HI - fk * LM_LN2_LO;
	float p = LM_EXP_P0;
	p = p * r + LM_EXP_P1;
	p = p * r + LM_EXP_P2;
	p = p * r + LM_EXP_P3;
	p = p * r + LM_EXP_P4;
	p = p * r + LM_EXP_P5;
	p = p * (r * r) + r + 1.0f;
	uint32_t e = (uint32_t)(k + 127) << 23;
	float two;
	__builtin_memcpy(&two, &e, 4);
	return x < LM_EXP_LO ? 0.0f : p * two;
}

static double expsum_c(float *restrict s, float mx, long n)
{
	double acc[LANES] = {0};
	long j = 0;
	for (; j + LANES <= n; j += LANES)
		LOOP {
			s[j + l] = exp_c(s[j + l] - mx);
			acc[l] += s[j + l];
		}
	double t = 0;
	for (int l = 0; l < LANES; l++)
		t += acc[l];
	for (; j < n; j++) {
		s[j] = exp_c(s[j] - mx);
		t += s[j];
	}
	return t;
}

static void rope_c(float *restrict v, const float *restrict c, const float *restrict s,
                   long n, int half)
{
	if (half) {
		float *restrict b = v + n;
		for (long j = 0; j < n; j++) {
			float x0 = v[j], x1 = b[j];
			v[j] = x0 * c[j] - x1 * s[j];
			b[j] = x0 * s[j] + x1 * c[j];
		}
	} else {
		for (long j = 0; j < n; j++) {
			float x0 = v[2 * j], x1 = v[2 * j + 1];
			v[2 * j] = x0 * c[j] - x1 * s[j];
			v[2 * j + 1] = x0 * s[j] + x1 * c[j];
		}
	}
}

const lm_vec_fns lm_vec_c = {dot_c, axpy_c, decay_dot_c, write_dot_c, scan_dot_c,
                             sumsq_c, scale_c, expsum_c, rope_c};

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
		if (!v.rope)
			v.rope = lm_vec_avx2.rope;
	}
	return &v;
}
