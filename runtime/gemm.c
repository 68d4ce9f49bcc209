/* gemm.c: the prefill product y[n, rows] = x[n, cols] W^T, blocked for
 * the caches, with W read in its stored form.
 *
 * The loops are GotoBLAS's.  For each block of KC inputs, x's tokens are
 * copied MC at a time into panels of MR tokens ([KC][MR]: one block, in
 * L2) and W's outputs are widened to float32 NR at a time into panels
 * [KC][NR] (the weight's only float copy: NC outputs of one block per
 * thread, never the whole weight); a micro-kernel keeps an MR x NR tile
 * of y in registers while it walks the KC inputs of a panel of each, so
 * every float loaded feeds MR or NR multiply-adds.  A panel of W is
 * widened while the first block of tokens uses it, from the L1 cache it
 * was just written to, and read again from L2 by the later blocks: with
 * n tokens the widening costs 1/n of the products.
 *
 * Sums are float32, over the inputs in order within a block of KC and
 * block after block: another order than OpenBLAS's, the same precision. */
#include "gemm.h"

enum {
	KC = LM_GEMM_KC,
	MC = 144,       /* tokens per block: a multiple of every MR (4, 6) */
	NC = 1024,      /* outputs per block: a multiple of every NR */
	MAXTILE = 6 * 32,
};

static const lm_gemm_kern *kernels(void)
{
	int isa = lm_isa();
	return isa == LM_ISA_AVX512 ? &lm_gemm_512 : isa == LM_ISA_AVX2 ? &lm_gemm_avx2 : &lm_gemm_c;
}

static long min(long a, long b)
{
	return a < b ? a : b;
}

/* Tokens [t0, t0 + m) of x, inputs [c0, c0 + kc), as panels of MR
 * tokens, [kc][MR] each; the tokens past m are zero. */
static void pack_x(float *dst, const float *x, long cols, long t0, long m, long c0, long kc,
                   int MR)
{
	for (long i = 0; i < m; i += MR, dst += kc * MR)
		for (long l = 0; l < MR; l++) {
			if (i + l >= m) {
				for (long k = 0; k < kc; k++)
					dst[k * MR + l] = 0;
				continue;
			}
			const float *xr = x + (t0 + i + l) * cols + c0;
			for (long k = 0; k < kc; k++)
				dst[k * MR + l] = xr[k];
		}
}

/* The same panel as lm_pack_fn through a row reader: the rows into tmp
 * ([nr][kc]), then transposed. */
static void pack_rows(float *dst, float *tmp, const lm_mat *W, lm_rowseg_fn *row, long r0,
                      long nr, long c0, long kc, int NR)
{
	for (long j = 0; j < nr; j++)
		row(tmp + j * kc, W, r0 + j, c0, kc);
	for (long k = 0; k < kc; k++)
		for (long j = 0; j < NR; j++)
			dst[k * NR + j] = j < nr ? tmp[j * kc + k] : 0;
}

void lm_gemm_pack_c(float *dst, const lm_mat *W, long r0, long nr, long c0, long kc, int NR)
{
	const void *p = W->data;
	int dtype = W->dtype;
	size_t ld = W->ld;
	for (long k = 0; k < kc; k++)
		for (long j = nr; j < NR; j++)
			dst[k * NR + j] = 0;
	if (W->tr) {
		for (long k = 0; k < kc; k++)
			for (long j = 0; j < nr; j++)
				dst[k * NR + j] = lm_load_f32(p, dtype, (c0 + k) * ld + r0 + j);
	} else {
		for (long j = 0; j < nr; j++)
			for (long k = 0; k < kc; k++)
				dst[k * NR + j] = lm_load_f32(p, dtype, (r0 + j) * ld + c0 + k);
	}
}

typedef struct {
	float *y;
	const float *x;
	long n;
	const lm_mat *W;
	lm_rowseg_fn *row;
	const lm_gemm_kern *g;
} Job;

/* Outputs [r0, r1): one thread's share. */
static void share(void *ctx, long r0, long r1)
{
	const Job *J = ctx;
	float *y = J->y;
	const float *x = J->x;
	long n = J->n;
	const lm_mat *W = J->W;
	lm_rowseg_fn *row = J->row;
	const lm_gemm_kern *g = J->g;
	int MR = g->mr, NR = g->nr;
	long cols = W->cols, ldy = W->rows;
	float *bp = lm_scratch((size_t)KC * (NC + MC + NR));
	float *ap = bp + KC * NC, *tmp = ap + KC * MC;
	for (long jc = r0; jc < r1; jc += NC) {
		long nc = min(NC, r1 - jc);
		for (long pc = 0; pc < cols; pc += KC) {
			long kc = min(KC, cols - pc);
			for (long ic = 0; ic < n; ic += MC) {
				long mc = min(MC, n - ic);
				pack_x(ap, x, cols, ic, mc, pc, kc, MR);
				for (long jr = 0; jr < nc; jr += NR) {
					long nr = min(NR, nc - jr);
					float *b = bp + jr * kc;
					if (ic == 0 && row)
						pack_rows(b, tmp, W, row, jc + jr, nr, pc, kc, NR);
					else if (ic == 0)
						g->pack(b, W, jc + jr, nr, pc, kc);
					for (long ir = 0; ir < mc; ir += MR) {
						long mr = min(MR, mc - ir);
						float *c = y + (ic + ir) * ldy + jc + jr;
						if (nr == NR) {
							g->tile(kc, ap + ir * kc, b, c, ldy, pc > 0, mr);
							continue;
						}
						/* part of a panel's outputs: through a buffer */
						float t[MAXTILE] __attribute__((aligned(64)));
						g->tile(kc, ap + ir * kc, b, t, NR, 0, mr);
						for (long i = 0; i < mr; i++)
							for (long j = 0; j < nr; j++)
								c[i * ldy + j] = (pc > 0 ? c[i * ldy + j] : 0) + t[i * NR + j];
					}
				}
			}
		}
	}
}

void lm_gemm(float *y, const float *x, long n, const lm_mat *W, lm_rowseg_fn *row)
{
	Job j = {y, x, n, W, row, kernels()};
	lm_parallel(W->rows, j.g->nr, share, &j);
}
