/* matmul.c: y = x W^T for every weight layout, through OpenBLAS.
 *
 * This is the one place that knows how a product is computed.  Float32
 * weights go straight to sgemm/sgemv, in either storage order.  Half
 * precision weights are widened to float32 a panel of rows at a time and
 * multiplied the same way; a dedicated BF16 kernel can replace that path
 * without any caller noticing. */
#include "rt.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>

enum { PANEL = 256 };   /* rows of a half-precision weight widened at once */

static float *scratch(size_t n)
{
	static float *buf;
	static size_t cap;
	if (n > cap) {
		free(buf);
		buf = lm_alloc_aligned(n * sizeof(float));
		cap = n;
	}
	return buf;
}

static void f32_product(float *y, long ldy, const float *x, long n, long cols,
                        const float *w, int tr, long rows, long ld)
{
	if (n == 1)
		cblas_sgemv(CblasRowMajor, tr ? CblasTrans : CblasNoTrans,
		            tr ? cols : rows, tr ? rows : cols, 1.0f, w, ld,
		            x, 1, 0.0f, y, 1);
	else
		cblas_sgemm(CblasRowMajor, CblasNoTrans, tr ? CblasNoTrans : CblasTrans,
		            n, rows, cols, 1.0f, x, cols, w, ld, 0.0f, y, ldy);
}

void lm_matmul(float *y, const float *x, long n, lm_mat W)
{
	if (W.dtype == LM_F32) {
		f32_product(y, W.rows, x, n, W.cols, W.data, W.tr, W.rows, W.ld);
		return;
	}
	/* Widen PANEL outputs at a time into a float32 [p, cols] block. */
	for (long r0 = 0; r0 < W.rows; r0 += PANEL) {
		long p = W.rows - r0 < PANEL ? W.rows - r0 : PANEL;
		float *w = scratch((size_t)p * W.cols);
		for (long r = 0; r < p; r++)
			for (long c = 0; c < W.cols; c++) {
				size_t i = W.tr ? (size_t)c * W.ld + r0 + r
				                : (size_t)(r0 + r) * W.ld + c;
				w[r * W.cols + c] = lm_load_f32(W.data, W.dtype, i);
			}
		if (n == 1)
			cblas_sgemv(CblasRowMajor, CblasNoTrans, p, W.cols, 1.0f, w,
			            W.cols, x, 1, 0.0f, y + r0, 1);
		else
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, p,
			            W.cols, 1.0f, x, W.cols, w, W.cols, 0.0f, y + r0,
			            W.rows);
	}
}

void lm_set_threads(int n)
{
	openblas_set_num_threads(n);
}
