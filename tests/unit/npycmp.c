/* npycmp: does a logits file meet DESIGN.md's golden bound?
 *
 *   npycmp GOT.npy REF.npy [--from R] [--exact]
 *
 * With --from, GOT's rows are compared with REF's rows from R on (GOT may
 * have fewer rows); with --exact every value must be equal bit for bit.
 * Passes when both are float32 [N, V] and every row r satisfies
 *   max_j |got[r,j] - ref[r,j]| <= 1e-4 * max_j |ref[r,j]|,
 * and the argmax agrees wherever the reference's top-two margin exceeds
 * that bound.  Prints the worst row's ratio either way; exit 0 iff pass. */
#include "rt.h"
#include "npy.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


int main(int argc, char **argv)
{
	long from = 0;
	int exact = 0, bad = argc < 3;
	for (int i = 3; i < argc && !bad; i++) {
		if (!strcmp(argv[i], "--exact"))
			exact = 1;
		else if (!strcmp(argv[i], "--from") && i + 1 < argc)
			from = atol(argv[++i]);
		else
			bad = 1;
	}
	if (bad) {
		fprintf(stderr, "usage: npycmp GOT.npy REF.npy [--from R] [--exact]\n");
		return 2;
	}
	lm_npy g = lm_npy_read(argv[1]), r = lm_npy_read(argv[2]);
	if (g.type != LM_NPY_F32 || r.type != LM_NPY_F32 || g.ndim != 2 || r.ndim != 2
	    || from < 0 || (from ? g.shape[0] + from > r.shape[0] : g.shape[0] != r.shape[0])
	    || g.shape[1] != r.shape[1]) {
		printf("shape mismatch: got %ldx%ld, reference %ldx%ld\n",
		       g.shape[0], g.shape[1], r.shape[0], r.shape[1]);
		return 1;
	}
	long N = g.shape[0], V = r.shape[1];
	const float *x = g.data, *ref = (const float *)r.data + from * V;
	if (exact) {
		long diff = 0;
		for (long i = 0; i < N * V; i++)
			diff += memcmp(x + i, ref + i, sizeof(float)) != 0;
		printf("%ld of %ld values differ\n", diff, N * V);
		return diff != 0;
	}
	double worst = 0;
	long worst_row = 0, bad_argmax = -1;
	for (long i = 0; i < N; i++) {
		const float *a = x + i * V, *b = ref + i * V;
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
		if (rel > worst) {
			worst = rel;
			worst_row = i;
		}
		double margin = rb >= 0 ? b[ra] - b[rb] : INFINITY;
		if (ga != ra && margin > 1e-4 * mr && bad_argmax < 0)
			bad_argmax = i;
	}
	printf("max relative error %.3g (row %ld)", worst, worst_row);
	if (bad_argmax >= 0)
		printf("; argmax differs at row %ld", bad_argmax);
	printf("\n");
	return worst <= 1e-4 && bad_argmax < 0 ? 0 : 1;
}
