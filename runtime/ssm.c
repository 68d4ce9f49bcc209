/* ssm.c: the selective scan of a Mamba-2 layer (see lm_ssm in lmcc.h).
 *
 * A Mamba-2 head keeps, for each of its hd channels, a small state of
 * d_state numbers.  Each token decays the state by exp(step * A) (A < 0,
 * so a larger step forgets more), writes its input x into it along the
 * direction B, and reads it out along C.  step, B and C depend on the
 * token: that is what makes the scan "selective".
 *
 * mlx-lm evaluates a call's tokens in the equivalent closed form
 *   y[t] = sum over s <= t of (C[t].B[s]) exp(A (step[s+1] + ... + step[t])) step[s] x[s]
 *          + (earlier state) read the same way, + D x[t];
 * the recurrence below computes the same sums one token at a time, which
 * needs no [n, n] matrix, and keeps decoding and prefill one code path. */
#include "vec.h"

#include <math.h>

typedef struct {
	float *y, *state;
	const float *x, *dt, *B, *C, *a_log, *dt_bias, *d;
	long n;
	const lm_ssm_dims *s;
	const lm_vec_fns *v;
} Scan;

/* Heads [h0, h1) through every token: heads share nothing but B and C,
 * which they only read, so threads take heads. */
static void scan_heads(void *ctx, long h0, long h1)
{
	const Scan *j = ctx;
	const lm_ssm_dims *s = j->s;
	long H = s->heads, hd = s->hd, N = s->d_state;
	long per_group = H / s->groups;
	for (long h = h0; h < h1; h++)
		for (long t = 0; t < j->n; t++) {
			double step = lm_softplus((double)j->dt[t * H + h] + j->dt_bias[h]);
			step = step < s->dt_min ? s->dt_min : step > s->dt_max ? s->dt_max : step;
			float decay = (float)exp(-exp((double)j->a_log[h]) * step);
			long g = h / per_group;
			const float *b = j->B + (t * s->groups + g) * N;
			const float *c = j->C + (t * s->groups + g) * N;
			const float *xh = j->x + (t * H + h) * hd;
			float *yh = j->y + (t * H + h) * hd;
			for (long p = 0; p < hd; p++) {
				float *st = j->state + (h * hd + p) * N;
				float out = j->v->scan_dot(st, decay, (float)(step * xh[p]), b, c, N);
				yh[p] = (float)(out + (double)j->d[h] * xh[p]);
			}
		}
}

void lm_ssm(float *y, const float *x, const float *dt, const float *B,
            const float *C, long n, const lm_ssm_dims *s, const float *a_log,
            const float *dt_bias, const float *d, float *state)
{
	Scan j = {y, state, x, dt, B, C, a_log, dt_bias, d, n, s, lm_vec()};
	lm_parallel(s->heads, 1, scan_heads, &j);
}
