/* npycmp: does a logits file meet DESIGN.md's golden bound?
 *
 *   npycmp GOT.npy REF.npy
 *
 * Passes when both are float32 [N, V] and meet the bound of
 * runtime/golden.c (as a built program's --check does).  Prints the worst
 * row's ratio either way; exit 0 iff pass. */
#include "rt.h"
#include "npy.h"

#include <stdio.h>


int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: npycmp GOT.npy REF.npy\n");
		return 2;
	}
	lm_npy g = lm_npy_read(argv[1]), r = lm_npy_read(argv[2]);
	if (g.type != LM_NPY_F32 || r.type != LM_NPY_F32 || g.ndim != 2 || r.ndim != 2
	    || g.shape[0] != r.shape[0] || g.shape[1] != r.shape[1]) {
		printf("shape mismatch: got %ldx%ld, reference %ldx%ld\n",
		       g.shape[0], g.shape[1], r.shape[0], r.shape[1]);
		return 1;
	}
	lm_cmp c;
	int ok = lm_logits_cmp(g.data, r.data, r.shape[0], r.shape[1], &c);
	printf("max relative error %.3g (row %ld)", c.worst, c.row);
	if (c.bad_argmax >= 0)
		printf("; argmax differs at row %ld", c.bad_argmax);
	printf("\n");
	return ok ? 0 : 1;
}
