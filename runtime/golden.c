/* golden.c: DESIGN.md's bound on logits, shared by the tests (npycmp)
 * and a built program's --check.  Every row r must satisfy
 *   max_j |got[r,j] - ref[r,j]| <= 1e-4 * max_j |ref[r,j]|,
 * and the argmax must agree wherever the reference's top-two margin
 * exceeds that bound. */
#include "rt.h"

#include <math.h>

int lm_logits_cmp(const float *got, const float *ref, long N, long V, lm_cmp *c)
{
	c->worst = 0;
	c->row = 0;
	c->bad_argmax = -1;
	for (long i = 0; i < N; i++) {
		const float *a = got + i * V, *b = ref + i * V;
		double md = 0, mr = 0;
		long ga = 0, ra = 0, rb = -1;
		for (long j = 0; j < V; j++) {
			double d = fabs((double)a[j] - b[j]);
			if (!(d <= md))          /* NaN counts as worst */
				md = isnan(d) ? INFINITY : d;
			if (fabs(b[j]) > mr)
				mr = fabs(b[j]);
			if (a[j] > a[ga])
				ga = j;
			if (b[j] > b[ra]) {
				rb = ra;
				ra = j;
			} else if (rb < 0 || b[j] > b[rb]) {
				if (j != ra)
					rb = j;
			}
		}
		double rel = mr > 0 ? md / mr : md;
		if (rel > c->worst) {
			c->worst = rel;
			c->row = i;
		}
		double margin = rb >= 0 ? b[ra] - b[rb] : INFINITY;
		if (ga != ra && margin > LM_GOLDEN_BOUND * mr && c->bad_argmax < 0)
			c->bad_argmax = i;
	}
	return c->worst <= LM_GOLDEN_BOUND && c->bad_argmax < 0;
}
