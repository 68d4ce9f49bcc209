/* mla.c: the steps of latent attention that lm_attend does not do.
 *
 * Latent attention keeps per head a small matrix that maps between a
 * head's own space and the shared latent (kv_b_proj split per head).  Each
 * head has its own, so the product is one lm_matmul per head over the
 * call's tokens, whose inputs and outputs sit inside wider rows. */
#include "rt.h"
#include "matmul.h"

#include <stdlib.h>
#include <string.h>

void lm_matmul_heads(float *y, long ypitch, const float *x, long xpitch,
                     long n, long heads, const lm_mat *W)
{
	static float *xs, *ys;
	static long cx, cy;
	if (n == 1) {
		/* one token: each head's row is contiguous already, and the
		 * heads' small products share one job of the pool, not one each */
		static float **yh;
		static const float **xh;
		static long ch;
		if (heads > ch) {
			ch = heads;
			yh = lm_realloc(yh, ch * sizeof *yh);
			xh = lm_realloc(xh, ch * sizeof *xh);
		}
		for (long h = 0; h < heads; h++) {
			yh[h] = y + h * ypitch;
			xh[h] = x + h * xpitch;
		}
		lm_matmul_each(heads, yh, xh, W);
		return;
	}
	for (long h = 0; h < heads; h++) {
		long in = W[h].cols, out = W[h].rows;
		/* gather head h of every token, multiply, scatter back */
		float *X = lm_grow(&xs, &cx, n * in), *Y = lm_grow(&ys, &cy, n * out);
		lm_copy_cols(X, in, x + h * xpitch, heads * xpitch, n, in);
		lm_matmul(Y, X, n, W[h]);
		lm_copy_cols(y + h * ypitch, heads * ypitch, Y, out, n, out);
	}
}

void lm_copy_cols(float *dst, long dpitch, const float *src, long spitch,
                  long rows, long cols)
{
	for (long r = 0; r < rows; r++)
		memcpy(dst + r * dpitch, src + r * spitch, cols * sizeof(float));
}
