/* test_gemm_q8: --fast's int8 product (gemm_q8.c) against the exact one
 * (lm_matmul without --fast) on 8- and 4-bit affine weights.
 *
 * The activations are rounded to 8 bits per group of the weight: each
 * input moves by at most d / 2, d = max|x_g| / 127, and the product is
 * that of the centred codes k = q - 2^(bits - 1) (gemm_q8.c), so every
 * output must lie within sum_c |s k_c| d_g / 2 of the exact one (plus
 * float rounding: 1e-5 of sum_c |w_c x_c|).  So that the test cannot pass
 * on the exact path, some output must differ.  Covered: both widths, groups 32, 64 and 128,
 * each scale dtype, row counts that are not multiples of the unpacked
 * block, token counts that are not multiples of a pass, a group of zero
 * inputs (its scale 0), views whose rows and scales are padded, and which
 * weights and token counts --fast leaves to the exact product. */
#include "gemm.h"
#include "harness.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures;
static uint64_t rng = 0x2545f4914f6cdd1dull;

static double uni(void)        /* in [-1, 1) */
{
	return xorshift_uni(&rng);
}

/* How far the int8 product may be from the exact one at (t, r). */
static double allowed(const lm_mat *W, const float *x, long t, long r)
{
	double e = 0, mag = 0;
	for (long g = 0; g < W->cols / W->group; g++) {
		const float *xg = x + t * W->cols + g * W->group;
		double amax = 0;
		for (long c = 0; c < W->group; c++)
			amax = fmax(amax, fabs(xg[c]));
		double s = lm_load_f32(W->scales, W->sdtype, r * W->sld + g);
		double b = lm_load_f32(W->biases, W->sdtype, r * W->sld + g);
		for (long c = 0; c < W->group; c++) {
			double q = packed_code(W, r, g * W->group + c);
			e += fabs(s * (q - (1 << (W->bits - 1)))) * amax / 127 / 2;
			mag += fabs((s * q + b) * xg[c]);
		}
	}
	return e + 1e-5 * mag;
}

static void product(int bits, int group, int sdtype, long n, long rows, long groups)
{
	long cols = groups * group, ld = cols * bits / 32 + 1, sld = groups + 1;
	size_t es = lm_dtype_size(sdtype);
	uint32_t *words = lm_alloc(rows * ld * 4);
	unsigned char *sc = lm_alloc(rows * sld * es), *bi = lm_alloc(rows * sld * es);
	for (long i = 0; i < rows * ld; i++)
		words[i] = (uint32_t)(uni() * 4294967296.0);
	double mid = ((1 << bits) - 1) / 2.0;
	for (long i = 0; i < rows * sld; i++) {
		float s = (float)(uni() * 0.02);
		store_elem(sc, sdtype, i, s);
		store_elem(bi, sdtype, i, (float)(-s * mid * (1 + 0.3 * uni())));
	}
	lm_mat W = {.data = words, .dtype = LM_Q, .rows = rows, .cols = cols, .ld = ld,
	            .bits = bits, .group = group, .sdtype = sdtype, .scales = sc, .biases = bi,
	            .sld = sld};
	float *x = lm_floats(n * cols), *ref = lm_floats(n * rows), *got = lm_floats(n * rows);
	for (long i = 0; i < n * cols; i++)
		x[i] = (float)(uni() + 0.3);
	for (long c = 0; c < group; c++)   /* token 1's first group: all zero */
		x[cols + c] = 0;
	lm_fast = 0;
	lm_matmul(ref, x, n, W);
	lm_fast = 1;
	int fits = lm_gemm_q8_fits(n, &W);
	if (fits)   /* itself: on AMX, lm_matmul's --fast takes the BF16 product */
		lm_gemm_q8(got, x, n, &W);
	lm_fast = 0;
	double worst = 0, rel = 0, differ = 0;
	for (long t = 0; t < n; t++)
		for (long r = 0; r < rows; r++) {
			double mr = 1e-30;
			for (long k = 0; k < rows; k++)
				mr = fmax(mr, fabs(ref[t * rows + k]));
			double d = fabs((double)got[t * rows + r] - ref[t * rows + r]);
			double a = d / allowed(&W, x, t, r);
			worst = a > worst || isnan(d) ? (isnan(d) ? INFINITY : a) : worst;
			rel = fmax(rel, d / mr);
			differ += d > 0;
		}
	int ok = fits && worst <= 1 && differ > 0;
	printf("%s gemm_q8 bits=%d group=%d %s n=%ld rows=%ld: worst %.2g of the bound "
	       "(%.2g of the row's largest)%s\n",
	       ok ? "PASS" : "FAIL", bits, group, sdtype == LM_F32 ? "f32" : sdtype == LM_BF16 ? "bf16" : "f16",
	       n, rows, worst, rel, !fits ? " (the int8 product did not take it)"
	                        : differ ? "" : " (no output differs: not the int8 product)");
	failures += !ok;
	free(words);
	free(sc);
	free(bi);
	free(x);
	free(ref);
	free(got);
}

/* What --fast leaves exact: no --fast, few tokens, other widths, FP modes. */
static void leaves(void)
{
	lm_mat W = {.dtype = LM_Q, .rows = 8, .cols = 64, .bits = 4, .group = 64};
	int bad = 0;
	lm_fast = 0;
	bad |= lm_gemm_q8_fits(32, &W);
	lm_fast = 1;
	bad |= !lm_gemm_q8_fits(32, &W);
	bad |= lm_gemm_q8_fits(8, &W);
	W.bits = 3;
	bad |= lm_gemm_q8_fits(32, &W);
	W.bits = 4;
	W.mode = LM_MXFP4;
	bad |= lm_gemm_q8_fits(32, &W);
	W.mode = LM_AFFINE;
	W.dtype = LM_BF16;
	bad |= lm_gemm_q8_fits(32, &W);
	lm_fast = 0;
	printf("%s gemm_q8: taken only with --fast, past 8 tokens, on 8- and 4-bit affine weights\n",
	       bad ? "FAIL" : "PASS");
	failures += bad;
}

int main(void)
{
	if (lm_isa() < LM_ISA_AVX2) {
		printf("skip gemm_q8: no AVX2 on the %s path\n", lm_isa_name(lm_isa()));
		return 0;
	}
	leaves();
	int dts[] = {LM_F32, LM_BF16, LM_F16};
	for (int bits = 4; bits <= 8; bits += 4)
		for (int g = 32; g <= 128; g *= 2)
			for (int d = 0; d < 3; d++)
				product(bits, g, dts[d], 9 + (g / 32) * 5 + d, 37 + d * 11, 2 + d);
	product(4, 64, LM_BF16, 130, 200, 12);   /* more tokens than a block of gemm.c */
	return failures ? 1 : 0;
}
