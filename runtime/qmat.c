/* qmat.c: products with weights in MLX's group formats (LM_Q).
 *
 * What is stored (lmcc.h): per row, `bits`-bit codes packed LSB-first into
 * 32-bit words, and per group of `group` inputs one scale s (and in affine
 * mode one bias b): w = s * q + b with q the unsigned integer (affine), or
 * w = s * v(q) with v the value of an FP4 E2M1 or FP8 E4M3 code and s that
 * of an E8M0 or E4M3 byte (mxfp4, nvfp4, mxfp8; mxfp.c).  A group starts
 * on a word boundary (group * bits is a multiple of 32), and 32 inputs
 * always fill exactly `bits` words: the kernels read a row 32 inputs at a
 * time.
 *
 * How a product reads it, without ever making a float copy of the matrix:
 *   - few tokens (decoding): the row is read once, packed.  Within a group
 *       sum_c w_c x_c = s * (q . x_g) + b * sum(x_g),
 *     and sum(x_g) is the same for every row, so it is computed once per
 *     call; a row costs one integer-times-float dot product per group plus
 *     two multiply-adds, and the bytes read are the packed words, the
 *     scales and the biases: the bandwidth bound.  The FP modes have no
 *     bias: s * (v . x_g), v widened from its code by a table or by the
 *     half-precision converter.
 *   - many tokens (prefill): lmcc's blocked product (gemm.c) dequantizes
 *     each panel of rows and block of inputs to float32 inside its
 *     blocking, as it widens BF16 panels (the dequantizing costs about
 *     1/n of the product); where lm_gemm_own says no (the portable path,
 *     LMCC_GEMM=openblas), a panel of whole rows is dequantized into a
 *     per-thread buffer for OpenBLAS sgemm.
 * Activations are never rounded: q, s and b widen to float32 exactly, and
 * only the order of the sums differs from MLX's dequantize-then-multiply. */
#define _GNU_SOURCE
#include "qmat.h"
#include "matmul.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>

enum {
	PANEL = 64,   /* rows dequantized at once for sgemm */
};

static const lm_qpath *const paths[3] = {
	[LM_ISA_PORTABLE] = &lm_qpath_c,
	[LM_ISA_AVX2] = &lm_qpath_avx2,
	[LM_ISA_AVX512] = &lm_qpath_512,
};

void lm_qrow(float *dst, const lm_mat *W, long r)
{
	lm_qpath_c.row(dst, W, r);
}

void lm_qseg_chunked(float *dst, const lm_mat *W, long r0, long nr, long c0, long kc)
{
	paths[lm_isa()]->seg(dst, W, r0, nr, c0, kc);
}

void lm_qpermute(float *xp, const float *x, long n, const lm_mat *W)
{
	if (paths[lm_isa()]->permute)
		paths[lm_isa()]->permute(xp, x, n, W->cols, W->bits, W->mode, 0);
	else
		memcpy(xp, x, (size_t)n * W->cols * sizeof(float));
}

static void few(void *ctx, long r0, long r1)
{
	const Job *j = ctx;
	long ng = j->W.cols / j->W.group;
	for (long t = 0; t < j->n; t += TOK) {
		long nt = j->n - t < TOK ? j->n - t : TOK;
		paths[lm_isa()]->few(j, j->x + t * j->W.cols, j->sx + t * ng,
		                     j->y + t * j->W.rows, nt, r0, r1);
	}
}

/* ---- many tokens ---- */

static void many(void *ctx, long r0, long r1)
{
	const Job *j = ctx;
	const lm_mat *W = &j->W;
	long cols = W->cols;
	for (long p0 = r0; p0 < r1; p0 += PANEL) {
		long p = r1 - p0 < PANEL ? r1 - p0 : PANEL;
		float *w = lm_scratch((size_t)p * cols);
		for (long r = 0; r < p; r++)
			paths[lm_isa()]->row(w + r * cols, W, p0 + r);
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, j->n, p, cols, 1.0f,
		            j->x, cols, w, cols, 0.0f, j->y + p0, W->rows);
	}
}

void lm_qmatmul(float *y, const float *x, long n, lm_mat W)
{
	if (W.cols % W.group || W.cols % 16)
		lm_bug("quantized matrix: %ld inputs in groups of %d", W.cols, W.group);
	Job j = {y, x, n, W, NULL};
	if (n <= FEW && W.mode == LM_AFFINE) {
		static __thread float *sx;    /* each caller's own */
		static __thread long cap;
		long ng = W.cols / W.group;
		if (n * ng > cap) {
			free(sx);
			cap = n * ng;
			sx = lm_alloc_aligned(cap * sizeof(float));
		}
		for (long t = 0; t < n; t++)
			for (long g = 0; g < ng; g++) {
				/* four chains: the sum in double, at vector speed */
				const float *xg = x + t * W.cols + g * W.group;
				double s[4] = {0};
				for (long c = 0; c < W.group; c += 4)
					for (int k = 0; k < 4; k++)
						s[k] += xg[c + k];
				sx[t * ng + g] = (float)((s[0] + s[1]) + (s[2] + s[3]));
			}
		j.sx = sx;
	}
	const lm_qpath *path = paths[lm_isa()];
	if (path->permute) {
		static __thread float *xp;
		static __thread long cap;
		if (n * W.cols > cap) {
			free(xp);
			cap = n * W.cols;
			xp = lm_alloc_aligned(cap * sizeof(float));
		}
		path->permute(xp, x, n, W.cols, W.bits, W.mode, n <= FEW);
		j.x = xp;
	}
	if (n > FEW && lm_gemm_own())
		lm_gemm(y, j.x, n, &W, path->seg);
	else
		lm_parallel(W.rows, 16, n <= FEW ? few : many, &j);
}
