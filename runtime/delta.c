/* delta.c: the gated delta rule, a linear-attention recurrence, and the
 * elementwise steps that make its inputs (see lmcc.h).
 *
 * A head's state S is a [dv, dk] matrix used as an associative memory:
 * S k is the value it recalls for key k.  Each token first lets S fade,
 * channel by channel of the key space (the gate g), then writes its value
 * v at its key k by the delta rule: it adds beta * (v - S k) k^T, the
 * correction that moves the recall for k towards v (beta = 1 with a unit
 * k would make the recall exact).  The output is the recall for the query,
 * S q.  The state is all a layer keeps between calls, whatever the length.
 *
 * Row j of S only ever meets v[j]: each row is updated on its own, in two
 * passes over dk floats.  Dot products accumulate in double. */
#include "rt.h"

#include <math.h>

static double softplus(double x)
{
	return x > 30 ? x : log1p(exp(x));
}

void lm_decay(float *a, long n, long heads, long dim, const float *a_log,
              const float *bias)
{
	for (long t = 0; t < n; t++)
		for (long h = 0; h < heads; h++) {
			double rate = exp((double)a_log[h]);
			float *ah = a + (t * heads + h) * dim;
			const float *bh = bias + h * dim;
			for (long i = 0; i < dim; i++)
				ah[i] = (float)exp(-rate * softplus((double)ah[i] + bh[i]));
		}
}

void lm_sigmoid(float *x, long count)
{
	for (long i = 0; i < count; i++)
		x[i] = (float)(1.0 / (1.0 + exp(-(double)x[i])));
}

void lm_scale(float *x, long count, float s)
{
	for (long i = 0; i < count; i++)
		x[i] *= s;
}

void lm_mul(float *y, const float *x, const float *a, long count)
{
	for (long i = 0; i < count; i++)
		y[i] = x[i] * a[i];
}

void lm_gated_delta(float *out, const float *q, const float *k, const float *v,
                    const float *g, const float *beta, long n, long heads,
                    long dk, long dv, float *state)
{
	for (long t = 0; t < n; t++)
		for (long h = 0; h < heads; h++) {
			long at = t * heads + h;
			const float *qh = q + at * dk, *kh = k + at * dk, *gh = g + at * dk;
			const float *vh = v + at * dv;
			float *oh = out + at * dv;
			float b = beta[at];
			for (long j = 0; j < dv; j++) {
				float *s = state + (h * dv + j) * dk;
				double recall = 0;           /* (S k)[j], after the decay */
				for (long i = 0; i < dk; i++) {
					s[i] *= gh[i];
					recall += (double)s[i] * kh[i];
				}
				float delta = (float)((vh[j] - recall) * b);
				double o = 0;                /* (S q)[j], after the write */
				for (long i = 0; i < dk; i++) {
					s[i] += kh[i] * delta;
					o += (double)s[i] * qh[i];
				}
				oh[j] = (float)o;
			}
		}
}
