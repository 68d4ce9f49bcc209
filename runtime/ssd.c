/* ssd.c: the Mamba-2 selective scan of ssm.c in its chunked ("state space
 * duality") form: the same sums, a chunk of L tokens at a time as matrix
 * products, the state carried from chunk to chunk.
 *
 * Within a chunk, with a_t = exp(-exp(A_log) step_t) the token's decay,
 * cum_t = log a_0 + ... + log a_t and u_t = step_t x_t, the recurrence
 * state_t = a_t state_{t-1} + u_t B_t^T unrolls to
 *   y_t    = sum_{s <= t} exp(cum_t - cum_s) (C_t . B_s) u_s      (intra)
 *          + exp(cum_t) state C_t                                  (carried)
 *          + D x_t
 *   state' = exp(cum_L) state + sum_s exp(cum_L - cum_s) u_s B_s^T
 * so a chunk is C B^T masked by the decays ([L, L]), times U ([L, hd]),
 * plus C times the carried state, and the state update is one [hd, L] x
 * [L, N] product.  Every exponent is a sum of decays from a later token
 * back to an earlier one, never positive: decays near 0 underflow to 0
 * as the recurrence's products would, nothing overflows. */
#include "vec.h"

#include <math.h>

typedef struct {
	float *y, *state;
	const float *x, *dt, *B, *C, *a_log, *dt_bias, *d;
	long n, L;
	const lm_ssm_dims *s;
} Ssd;

static void ssd_heads(void *ctx, long h0, long h1)
{
	const Ssd *j = ctx;
	const lm_ssm_dims *s = j->s;
	long H = s->heads, hd = s->hd, N = s->d_state, G = s->groups, L = j->L;
	long bc = G * N;       /* a token's B (and C) row: every group's */
	float *M = lm_scratch(L * L + 2 * L * hd + L * N + L);
	float *U = M + L * L, *Y = U + L * hd, *Cs = Y + L * hd, *w = Cs + L * N;
	double cum[L];
	for (long h = h0; h < h1; h++) {
		long g = h / (H / G);
		float *st = j->state + h * hd * N;       /* [hd, N] */
		double rate = exp((double)j->a_log[h]);
		for (long c0 = 0; c0 < j->n; c0 += L) {
			long nl = j->n - c0 < L ? j->n - c0 : L;
			const float *B = j->B + c0 * bc + g * N, *C = j->C + c0 * bc + g * N;
			double acc = 0;
			for (long t = 0; t < nl; t++) {
				double step = lm_softplus((double)j->dt[(c0 + t) * H + h] + j->dt_bias[h]);
				step = step < s->dt_min ? s->dt_min : step > s->dt_max ? s->dt_max : step;
				cum[t] = acc -= rate * step;
				const float *xh = j->x + ((c0 + t) * H + h) * hd;
				for (long p = 0; p < hd; p++)
					U[t * hd + p] = (float)(step * xh[p]);
			}
			/* M = (C B^T) masked by the decays between the two tokens */
			lm_sgemm(0, 1, nl, nl, N, 1.0f, C, bc, B, bc, 0.0f, M, L);
			for (long t = 0; t < nl; t++)
				for (long r = 0; r < nl; r++)
					M[t * L + r] = r <= t ? (float)(M[t * L + r] * exp(cum[t] - cum[r])) : 0;
			/* Y = M U + (exp(cum) C) state^T */
			for (long t = 0; t < nl; t++) {
				float e = (float)exp(cum[t]);
				for (long k = 0; k < N; k++)
					Cs[t * N + k] = C[t * bc + k] * e;
			}
			lm_sgemm(0, 0, nl, hd, nl, 1.0f, M, L, U, hd, 0.0f, Y, hd);
			lm_sgemm(0, 1, nl, hd, N, 1.0f, Cs, N, st, N, 1.0f, Y, hd);
			for (long t = 0; t < nl; t++) {
				const float *xh = j->x + ((c0 + t) * H + h) * hd;
				float *yh = j->y + ((c0 + t) * H + h) * hd;
				for (long p = 0; p < hd; p++)
					yh[p] = (float)(Y[t * hd + p] + (double)j->d[h] * xh[p]);
			}
			/* state = exp(cum_L) state + (U scaled by exp(cum_L - cum_s))^T B */
			double last = cum[nl - 1];
			for (long t = 0; t < nl; t++)
				w[t] = (float)exp(last - cum[t]);
			for (long t = 0; t < nl; t++)
				for (long p = 0; p < hd; p++)
					U[t * hd + p] *= w[t];
			float e = (float)exp(last);
			for (long i = 0; i < hd * N; i++)
				st[i] *= e;
			lm_sgemm(1, 0, hd, N, nl, 1.0f, U, hd, B, bc, 1.0f, st, N);
		}
	}
}

void lm_ssm_chunked(float *y, const float *x, const float *dt, const float *B,
                    const float *C, long n, long chunk, const lm_ssm_dims *s,
                    const float *a_log, const float *dt_bias, const float *d, float *state)
{
	if (chunk < 1 || chunk > 256)
		lm_bug("lm_ssm_chunked: chunk of %ld tokens", chunk);
	Ssd j = {y, state, x, dt, B, C, a_log, dt_bias, d, n, chunk, s};
	lm_parallel(s->heads, 1, ssd_heads, &j);
}
