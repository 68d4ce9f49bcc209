/* vec.h: the short loops of attention and of the recurrent layers, in one
 * version per instruction set (vec_c.c, vec_avx2.c, vec_512.c), chosen
 * once by lm_vec().  Each loop is over one row of floats (a head, a state
 * row) and sums in float with several independent sums. */
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
} lm_vec_fns;

extern const lm_vec_fns lm_vec_c, lm_vec_avx2, lm_vec_512;

/* The versions of the instruction set lm_isa() chose. */
const lm_vec_fns *lm_vec(void);

#endif
