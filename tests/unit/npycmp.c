/* npycmp: does a logits file meet DESIGN.md's golden bound?
 *
 *   npycmp GOT.npy REF.npy [--from R] [--exact | --report]
 *
 * Passes when both are float32 [N, V] and meet the bound of
 * runtime/golden.c (as a built program's --check does).  With --from,
 * GOT's rows are compared with REF's rows from R on (GOT may have fewer
 * rows); with --exact every value must be equal bit for bit.  Prints the
 * worst row's ratio (or the count of values that differ) either way; exit
 * 0 iff pass.  With --report (an approximation's cost, as --fast's), it
 * prints the worst row's ratio and in how many rows the argmax agrees,
 * and exits 0 whenever the shapes match. */
#include "rt.h"
#include "npy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>


int main(int argc, char **argv)
{
	long from = 0;
	int exact = 0, report = 0, bad = argc < 3;
	for (int i = 3; i < argc && !bad; i++) {
		if (!strcmp(argv[i], "--exact"))
			exact = 1;
		else if (!strcmp(argv[i], "--report"))
			report = 1;
		else if (!strcmp(argv[i], "--from") && i + 1 < argc)
			from = atol(argv[++i]);
		else
			bad = 1;
	}
	if (bad) {
		fprintf(stderr, "usage: npycmp GOT.npy REF.npy [--from R] [--exact | --report]\n");
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
	lm_cmp c;
	int ok = lm_logits_cmp(x, ref, N, V, &c);
	if (report) {
		long agree = 0;
		for (long i = 0; i < N; i++) {
			long a = 0, b = 0;
			for (long j = 1; j < V; j++) {
				a = x[i * V + j] > x[i * V + a] ? j : a;
				b = ref[i * V + j] > ref[i * V + b] ? j : b;
			}
			agree += a == b;
		}
		printf("max relative error %.3g (row %ld); top-1 agrees in %ld of %ld rows\n",
		       c.worst, c.row, agree, N);
		return 0;
	}
	printf("max relative error %.3g (row %ld)", c.worst, c.row);
	if (c.bad_argmax >= 0)
		printf("; argmax differs at row %ld", c.bad_argmax);
	printf("\n");
	return ok ? 0 : 1;
}
