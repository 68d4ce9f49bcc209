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

/* y may be x.  Here and in rope_c a block is read before it is written:
 * loops that need a tail or an alias check are left scalar at -O2 (gcc's
 * cheapest cost model), and blocks whose loads and stores may overlap
 * are not vectorised either. */
static void scale_c(float *y, const float *x, float s, const float *restrict w, long n)
{
	long j = 0;
	for (; j + LANES <= n; j += LANES) {
		float v[LANES];
		LOOP v[l] = x[j + l];
		if (w)
			LOOP y[j + l] = v[l] * s * w[j + l];
		else
			LOOP y[j + l] = v[l] * s;
	}
	for (; j < n; j++)
		y[j] = x[j] * s * (w ? w[j] : 1.0f);
}

/* c[0] x^(n-1) + ... + c[n-1], by Horner's rule */
static inline float horner(float x, const float *c, const int n)
{
	float p = c[0];
	for (int i = 1; i < n; i++)
		p = p * x + c[i];
	return p;
}

static const float exp_poly[] = {LM_EXP_POLY}, log_poly[] = {LM_LOG_POLY};

/* vec.h's exp with integer conversions and selects only, which gcc
 * vectorises (no floorf, no branch). */
static inline float exp_c(float x)
{
	float t = x < LM_EXP_LO ? LM_EXP_LO : x > LM_EXP_HI ? LM_EXP_HI : x;
	float z = t * LM_LOG2E;
	int k = (int)(z + (z < 0 ? -0.5f : 0.5f));
	float fk = (float)k;
	float r = t - fk * LM_LN2_HI - fk * LM_LN2_LO;
	float p = horner(r, exp_poly, 6);
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

/* One block of LANES pairs (a[j * st], b[j * st]), read before written. */
#define ROPE_BLOCK(a, b, st)                                                    \
	do {                                                                        \
		float x0[LANES], x1[LANES];                                             \
		LOOP {                                                                  \
			x0[l] = a[(j + l) * st];                                            \
			x1[l] = b[(j + l) * st];                                            \
		}                                                                       \
		LOOP {                                                                  \
			a[(j + l) * st] = x0[l] * c[j + l] - x1[l] * s[j + l];              \
			b[(j + l) * st] = x0[l] * s[j + l] + x1[l] * c[j + l];              \
		}                                                                       \
	} while (0)

/* The pairs (a[j st], b[j st]), j < n: no element is both an a and a b. */
static inline __attribute__((always_inline))
void rope_pairs(float *restrict a, float *restrict b, const float *restrict c,
                const float *restrict s, long n, const long st)
{
	long j = 0;
	for (; j + LANES <= n; j += LANES)
		ROPE_BLOCK(a, b, st);
	for (; j < n; j++) {
		float x0 = a[j * st], x1 = b[j * st];
		a[j * st] = x0 * c[j] - x1 * s[j];
		b[j * st] = x0 * s[j] + x1 * c[j];
	}
}

static void rope_c(float *restrict v, const float *restrict c, const float *restrict s,
                   long n, int half)
{
	if (half)
		rope_pairs(v, v + n, c, s, n, 1);
	else
		rope_pairs(v, v + 1, c, s, n, 2);
}

static inline float silu_c(float g)
{
	return g < -LM_EXP_HI ? 0.0f : g / (1.0f + exp_c(-g));
}

static void swiglu_c(float *y, const float *g, const float *u, long n)
{
	long j = 0;
	for (; j + LANES <= n; j += LANES) {
		float t[LANES];
		LOOP t[l] = silu_c(g[j + l]) * u[j + l];
		LOOP y[j + l] = t[l];
	}
	for (; j < n; j++)
		y[j] = silu_c(g[j]) * u[j];
}

static void sigmoid_c(float *x, long n)
{
	for (long j = 0; j < n; j++)
		x[j] = 1.0f / (1.0f + exp_c(-x[j]));
}

/* vec.h's log1p, with selects only. */
static inline float log1p_c(float u)
{
	float w = 1.0f + u;
	float e = w > LM_SQRT2 ? 1.0f : 0.0f;
	float x = (w > LM_SQRT2 ? w * 0.5f : w) - 1.0f, z = x * x;
	float p = horner(x, log_poly, 9);
	float y = p * x * z + e * LM_LN2_LO - 0.5f * z;
	return x + y + e * LM_LN2_HI + (u - (w - 1.0f)) / w;
}

static void decay_c(float *restrict a, const float *restrict bias, float rate, long n)
{
	for (long j = 0; j < n; j++) {
		float z = a[j] + bias[j];
		float sp = (z > 0 ? z : 0) + log1p_c(exp_c(z > 0 ? -z : z));
		a[j] = exp_c(-rate * sp);
	}
}

const lm_vec_fns lm_vec_c = {dot_c, axpy_c, decay_dot_c, write_dot_c, scan_dot_c,
                             sumsq_c, scale_c, expsum_c, rope_c, swiglu_c, sigmoid_c, decay_c};

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
