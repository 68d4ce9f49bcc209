/* vec.h: the short loops of attention, of the recurrent layers and of the
 * small kernels (norms, rotary embedding, the MoE gather), in one version
 * per instruction set (vec_c.c, vec_avx2.c, vec_512.c), chosen once by
 * lm_vec().  Each loop is over one row of floats (a head, a state row, a
 * hidden vector) and sums in float with several independent sums, except
 * where a result's scale is decided (sumsq, expsum: in double). */
#ifndef LM_VEC_H
#define LM_VEC_H

#include "rt.h"

typedef struct {
	/* sum a[j] b[j] */
	float (*dot)(const float *a, const float *b, long n);
	/* o[j] += w v[j] */
	void (*axpy)(float *o, float w, const float *v, long n);
	/* s[j] *= g[j], then sum s[j] k[j]: a delta-rule row decays, then recalls */
	float (*decay_dot)(float *s, const float *g, const float *k, long n);
	/* s[j] += d k[j], then sum s[j] q[j]: it writes, then answers the query */
	float (*write_dot)(float *s, float d, const float *k, const float *q, long n);
	/* s[j] = a s[j] + u b[j], then sum s[j] c[j]: a selective-scan state row */
	float (*scan_dot)(float *s, float a, float u, const float *b, const float *c, long n);
	/* sum x[j]^2 in double: RMSNorm's scale */
	double (*sumsq)(const float *x, long n);
	/* y[j] = (x[j] s) w[j], or x[j] s when w is 0; y may be x */
	void (*scale)(float *y, const float *x, float s, const float *w, long n);
	/* s[j] = exp(s[j] - mx) (mx >= every s[j]), returning their sum in
	 * double: a softmax's numerators and denominator */
	double (*expsum)(float *s, float mx, long n);
	/* RoPE of one head: pair j of v, (v[j], v[j + n]) when half, else
	 * (v[2j], v[2j + 1]), turns by the angle of cosine c[j] and sine s[j] */
	void (*rope)(float *v, const float *c, const float *s, long n, int half);
	/* y[j] = silu(g[j]) u[j], silu(g) = g / (1 + exp(-g)), and 0 where
	 * exp(-g) is past a float (g < -EXP_HI): SwiGLU; y may be g or u */
	void (*swiglu)(float *y, const float *g, const float *u, long n);
	/* x[j] = 1 / (1 + exp(-x[j])) */
	void (*sigmoid)(float *x, long n);
	/* a[j] = exp(-rate softplus(a[j] + bias[j])), softplus(z) =
	 * max(z, 0) + log1p(exp(-|z|)): a delta-rule gate's decay, in float32
	 * as the reference computes it */
	void (*decay)(float *a, const float *bias, float rate, long n);
} lm_vec_fns;

/* exp(x) of the vector versions of expsum (Cephes' expf): x = n ln 2 + r
 * with |r| <= ln 2 / 2, ln 2 in two parts so that n ln 2 is exact, e^r by
 * a degree-7 polynomial (about one ulp), 2^n put into the exponent bits;
 * x below EXP_LO (where floats turn subnormal) gives 0, NaN stays NaN. */
#define LM_EXP_LO -87.33654f
#define LM_EXP_HI 88.0f
#define LM_LOG2E 1.44269504088896341f
#define LM_LN2_HI 0.693359375f
#define LM_LN2_LO -2.12194440e-4f
#define LM_EXP_P0 1.9875691500e-4f
#define LM_EXP_P1 1.3981999507e-3f
#define LM_EXP_P2 8.3334519073e-3f
#define LM_EXP_P3 4.1665795894e-2f
#define LM_EXP_P4 1.6666665459e-1f
#define LM_EXP_P5 5.0000001201e-1f
#define LM_EXP_POLY LM_EXP_P0, LM_EXP_P1, LM_EXP_P2, LM_EXP_P3, LM_EXP_P4, LM_EXP_P5

/* log1p(u) for 0 <= u <= 1 of the vector versions of decay: w = 1 + u
 * rounded, log(w) as Cephes' logf takes it (w over 2 past sqrt(2), so
 * that m = w or w / 2 lies in [sqrt(1/2), sqrt(2)), then log(m) = x -
 * x^2 / 2 + x^3 P(x) with x = m - 1, and ln 2 in the two parts above),
 * plus (u - (w - 1)) / w, the rounding of 1 + u taken back (so that a u
 * below 2^-24 still gives u). */
#define LM_SQRT2 1.41421356f
#define LM_LOG_P0 7.0376836292e-2f
#define LM_LOG_P1 -1.1514610310e-1f
#define LM_LOG_P2 1.1676998740e-1f
#define LM_LOG_P3 -1.2420140846e-1f
#define LM_LOG_P4 1.4249322787e-1f
#define LM_LOG_P5 -1.6668057665e-1f
#define LM_LOG_P6 2.0000714765e-1f
#define LM_LOG_P7 -2.4999993993e-1f
#define LM_LOG_P8 3.3333331174e-1f
#define LM_LOG_POLY LM_LOG_P0, LM_LOG_P1, LM_LOG_P2, LM_LOG_P3, LM_LOG_P4, LM_LOG_P5, \
                    LM_LOG_P6, LM_LOG_P7, LM_LOG_P8

extern const lm_vec_fns lm_vec_c, lm_vec_avx2, lm_vec_512;

/* The versions of the instruction set lm_isa() chose. */
const lm_vec_fns *lm_vec(void);

#endif
