/* test_gemm: the blocked prefill product (runtime/gemm.c) against a naive
 * product in double precision, in every weight dtype and storage order,
 * on sizes that are not multiples of any blocking (one token and odd
 * counts, inputs and outputs off every tile, panel and block edge), with
 * one and two threads, and through the row-reader hook.  The kernels are
 * those of the instruction set lm_isa() chose (LMCC_ISA; suite_unit runs
 * every one the CPU has), named in every line.  Last, lm_matmul on float32
 * weights past FEW tokens, which takes this product where lm_gemm_f32_own
 * chose it over sgemm (the AVX-512 path): exact either way, and this
 * product's very sums when chosen.  First, lm_sgemm, the same kernels on
 * two activations, in every transpose and with alpha and beta. */
#include "gemm.h"
#include "harness.h"

#include <dirent.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures;
static uint64_t rng = 0x9e3779b97f4a7c15ull;

static float uni(void)
{
	return (float)xorshift_uni(&rng);
}

/* W(r, c) of a weight stored in dtype, as a double (the definition in lmcc.h). */
static double w_at(const lm_mat *W, long r, long c)
{
	size_t i = W->tr ? (size_t)c * W->ld + r : (size_t)r * W->ld + c;
	return lm_load_f32(W->data, W->dtype, i);
}

/* A random weight of rows x cols in dtype, stored with ld = its run + pad. */
static lm_mat weight(int dtype, int tr, long rows, long cols, long pad)
{
	long run = tr ? rows : cols, lines = tr ? cols : rows, ld = run + pad;
	void *p = lm_alloc_aligned((size_t)lines * ld * 4);
	for (size_t i = 0; i < (size_t)lines * ld; i++) {
		float v = uni();
		if (dtype == LM_F32)
			((float *)p)[i] = v;
		else
			((uint16_t *)p)[i] = dtype == LM_BF16 ? lm_f32_to_bf16(v) : lm_f32_to_f16(v);
	}
	return (lm_mat){.data = p, .dtype = dtype, .tr = tr, .rows = rows, .cols = cols, .ld = ld};
}

/* The hook's contract, for a float weight: as a quantized format's reader would. */
static void row_reader(float *dst, const lm_mat *W, long r0, long nr, long c0, long kc)
{
	if (c0 % LM_GEMM_KC || kc > LM_GEMM_KC || c0 + kc > W->cols || nr < 1 || r0 + nr > W->rows)
		lm_bug("row reader: rows [%ld, %ld) of %ld, inputs [%ld, %ld) of %ld", r0, r0 + nr,
		       W->rows, c0, c0 + kc, W->cols);
	for (long j = 0; j < nr; j++)
		for (long k = 0; k < kc; k++)
			dst[j * kc + k] = (float)w_at(W, r0 + j, c0 + k);
}

static const char *dname(int dtype)
{
	return dtype == LM_F32 ? "f32" : dtype == LM_F16 ? "f16" : "bf16";
}

/* y's largest error against a float64 product of x and W, relative to
 * the product's largest value (NaN, an output not written: infinite). */
static double error(const float *y, const float *x, long n, const lm_mat *W)
{
	long rows = W->rows, cols = W->cols;
	double md = 0, mb = 1e-30;
	for (long t = 0; t < n; t++)
		for (long r = 0; r < rows; r++) {
			double s = 0;
			for (long c = 0; c < cols; c++)
				s += x[t * cols + c] * w_at(W, r, c);
			double d = fabs(y[t * rows + r] - s);
			if (!(d <= md))
				md = isnan(d) ? INFINITY : d;
			if (fabs(s) > mb)
				mb = fabs(s);
		}
	return md / mb;
}

static void test(int dtype, int tr, long n, long rows, long cols, int threads, int hook)
{
	lm_mat W = weight(dtype, tr, rows, cols, 3);
	float *x = lm_floats(n * cols), *y = lm_floats(n * rows);
	for (long i = 0; i < n * cols; i++)
		x[i] = uni();
	for (long i = 0; i < n * rows; i++)
		y[i] = NAN;    /* every output must be written */
	lm_set_threads(threads);
	lm_gemm(y, x, n, &W, hook ? row_reader : NULL);
	double rel = error(y, x, n, &W);
	const char *ok = rel <= 1e-5 ? "PASS" : "FAIL";
	printf("%s gemm[%s] %s tr=%d n=%ld %ldx%ld threads=%d%s (rel %.2g)\n", ok,
	       lm_isa_name(lm_isa()), dname(dtype), tr, n, rows, cols, threads,
	       hook ? " row reader" : "", rel);
	failures += rel > 1e-5;
	free((void *)W.data);
	free(x);
	free(y);
}

/* lm_matmul of n tokens through an F32 weight as lmcc chooses it: within
 * test()'s bound of a float64 product, and equal to lm_gemm's bit for bit
 * when lm_gemm_f32_own chose it (so the choice is what runs). */
static void matmul(int tr, long n, long rows, long cols, int threads)
{
	lm_mat W = weight(LM_F32, tr, rows, cols, 0);
	float *x = lm_floats(n * cols), *y = lm_floats(n * rows), *g = lm_floats(n * rows);
	for (long i = 0; i < n * cols; i++)
		x[i] = uni();
	lm_set_threads(threads);
	lm_gemm_force = LM_GEMM_CHOOSE;
	lm_matmul(y, x, n, W);
	lm_gemm(g, x, n, &W, NULL);
	int own = lm_gemm_f32_own();
	int same = !own || !memcmp(y, g, n * rows * sizeof *y);
	double rel = error(y, x, n, &W);
	int ok = rel <= 1e-5 && same;
	printf("%s matmul[%s] f32 tr=%d n=%ld %ldx%ld threads=%d via %s (rel %.2g%s)\n",
	       ok ? "PASS" : "FAIL", lm_isa_name(lm_isa()), tr, n, rows, cols, threads,
	       own ? "lmcc" : "sgemm", rel,
	       same ? "" : ", not lm_gemm's sums");
	failures += !ok;
	free((void *)W.data);
	free(x);
	free(y);
	free(g);
}

/* A token's outputs whatever the tokens beside it: n tokens and the same
 * n with one more, bit for bit.  With the AVX-512 kernels n = 16, 32 and
 * 48 take lm_gemm_few (tokens in the lanes) and n + 1 the blocking, so
 * the two orientations must sum in the same order (a prompt's chunking
 * must not change its results: suite_pcache compares them). */
static void same_sums(int dtype, long n, long rows, long cols, int hook)
{
	lm_mat W = weight(dtype, 0, rows, cols, 5);
	float *x = lm_floats((n + 1) * cols), *y = lm_floats(n * rows),
	      *y1 = lm_floats((n + 1) * rows);
	for (long i = 0; i < (n + 1) * cols; i++)
		x[i] = uni();
	lm_set_threads(2);
	lm_gemm(y, x, n, &W, hook ? row_reader : NULL);
	lm_gemm(y1, x, n + 1, &W, hook ? row_reader : NULL);
	int ok = !memcmp(y, y1, (size_t)n * rows * sizeof(float));
	printf("%s gemm[%s] %s n=%ld and n=%ld %ldx%ld%s: the same sums\n", ok ? "PASS" : "FAIL",
	       lm_isa_name(lm_isa()), dname(dtype), n, n + 1, rows, cols, hook ? " row reader" : "");
	failures += !ok;
	free((void *)W.data);
	free(x);
	free(y);
	free(y1);
}

/* lm_sgemm against a float64 product of the same op(A) op(B), with C
 * holding a known value beforehand (beta's part), in every transpose,
 * with leading dimensions wider than the operands. */
static void sgemm(int ta, int tb, long m, long n, long k, float alpha, float beta)
{
	long lda = (ta ? m : k) + 5, ldb = (tb ? k : n) + 3, ldc = n + 7;
	long ar = ta ? k : m, br = tb ? n : k;
	float *A = lm_floats(ar * lda), *B = lm_floats(br * ldb), *C = lm_floats(m * ldc);
	double *c0 = malloc((size_t)m * ldc * sizeof *c0);
	for (long i = 0; i < ar * lda; i++)
		A[i] = uni();
	for (long i = 0; i < br * ldb; i++)
		B[i] = uni();
	for (long i = 0; i < m * ldc; i++)
		c0[i] = C[i] = beta == 0 ? NAN : uni();   /* beta 0: C is not read */
	lm_sgemm(ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
	double md = 0, mb = 1e-30;
	for (long i = 0; i < m; i++)
		for (long j = 0; j < n; j++) {
			double s = 0;
			for (long l = 0; l < k; l++)
				s += (double)(ta ? A[l * lda + i] : A[i * lda + l]) *
				     (tb ? B[j * ldb + l] : B[l * ldb + j]);
			s = alpha * s + (beta == 0 ? 0 : beta * c0[i * ldc + j]);
			double d = fabs(C[i * ldc + j] - s);
			if (!(d <= md))
				md = isnan(d) ? INFINITY : d;
			if (fabs(s) > mb)
				mb = fabs(s);
		}
	int past = 0;     /* the padding of C's rows stays as it was */
	for (long i = 0; i < m; i++)
		for (long j = n; j < ldc; j++)
		{
			float v = C[i * ldc + j], want = (float)c0[i * ldc + j];
			past |= !(v == want || (isnan(v) && isnan(want)));
		}
	double rel = md / mb;
	int ok = rel <= 1e-5 && !past;
	printf("%s sgemm[%s] ta=%d tb=%d %ldx%ldx%ld alpha=%g beta=%g (rel %.2g%s)\n",
	       ok ? "PASS" : "FAIL", lm_isa_name(lm_isa()), ta, tb, m, n, k, alpha, beta, rel,
	       past ? ", wrote past n" : "");
	failures += !ok;
	free(A);
	free(B);
	free(C);
	free(c0);
}

/* No thread but this one before the pool starts: OpenBLAS's workers,
 * which it starts as it loads, are stopped as lmcc loads (matmul.c). */
static void no_blas_workers(void)
{
	long n = 0;
	DIR *d = opendir("/proc/self/task");
	for (struct dirent *e; d && (e = readdir(d));)
		n += e->d_name[0] != '.';
	if (d)
		closedir(d);
	int ok = n == 1;
	printf("%s threads before the first product: %ld (OpenBLAS's workers stopped)\n",
	       ok ? "PASS" : "FAIL", n);
	failures += !ok;
}

/* ---- the exact BF16 product on AMX (gemm_bf16.c) ---- */

/* y's worst error against a float64 product as a fraction of float32
 * summation's bound, (cols + 8) 2^-24 sum |w x| (NaN: infinite). */
static double x3_worst(const float *y, const float *x, long n, const lm_mat *W)
{
	double worst = 0;
	for (long t = 0; t < n; t++)
		for (long r = 0; r < W->rows; r++) {
			double s = 0, mag = 0;
			for (long c = 0; c < W->cols; c++) {
				double p = x[t * W->cols + c] * w_at(W, r, c);
				s += p;
				mag += fabs(p);
			}
			double e = fabs(y[t * W->rows + r] - s) / ((W->cols + 8) * 0x1p-24 * mag + 1e-300);
			worst = !(e <= worst) ? (isnan(e) ? INFINITY : e) : worst;
		}
	return worst;
}

/* n tokens through a BF16 W: within float32's summation bound, the same
 * bits on 1 and 2 threads. */
static void x3(int tr, long n, long rows, long cols)
{
	if (!lm_gemm_bf16x3_fits(n, &(lm_mat){.dtype = LM_BF16})) {
		printf("PASS gemm bf16x3 n=%ld: no AMX on this CPU or OS (not run)\n", n);
		return;
	}
	lm_mat W = weight(LM_BF16, tr, rows, cols, 3);
	float *x = lm_floats(n * cols), *y = lm_floats(n * rows), *y2 = lm_floats(n * rows);
	for (long i = 0; i < n * cols; i++)
		x[i] = uni() * (i % 7 ? 1 : 1000);   /* some inputs far larger */
	for (long i = 0; i < n * rows; i++)
		y[i] = y2[i] = NAN;
	lm_set_threads(1);
	lm_gemm_bf16x3(y, x, n, &W);
	lm_set_threads(2);
	lm_gemm_bf16x3(y2, x, n, &W);
	double worst = x3_worst(y, x, n, &W);
	int same = !memcmp(y, y2, n * rows * sizeof *y), ok = worst <= 1 && same;
	printf("%s gemm bf16x3 tr=%d n=%ld %ldx%ld: worst %.2g of float32's bound%s\n",
	       ok ? "PASS" : "FAIL", tr, n, rows, cols, worst, same ? "" : " (1 and 2 threads differ)");
	failures += !ok;
	free((void *)W.data);
	free(x);
	free(y);
	free(y2);
}

/* One input a row with a power of two as its weight: each output is one
 * product, exact in float32, so the three parts of x must sum to x to
 * the last bit; an Inf passes as the FMA kernels pass it (its output
 * Inf, the token's others 0 * Inf: NaN). */
static void x3_parts(void)
{
	long n = 40, rows = 100, cols = 100;
	if (!lm_gemm_bf16x3_fits(n, &(lm_mat){.dtype = LM_BF16}))
		return;
	uint16_t *w = lm_alloc((size_t)rows * cols * 2);
	for (long r = 0; r < rows; r++)
		for (long c = 0; c < cols; c++)
			w[r * cols + c] = r == c ? lm_f32_to_bf16(ldexpf(1, (int)(r % 5) - 2)) : 0;
	lm_mat W = {.data = w, .dtype = LM_BF16, .rows = rows, .cols = cols, .ld = cols};
	float *x = lm_floats(n * cols), *y = lm_floats(n * rows);
	for (long i = 0; i < n * cols; i++)     /* 24 significant bits, 2^-20 to 2^20 */
		x[i] = ldexpf(1 + (float)(xorshift_uni(&rng) * 0.5 + 0.5) * (1 - 0x1p-23f),
		              (int)(i % 41) - 20) * (i % 3 ? 1 : -1);
	x[5 * cols + 7] = INFINITY;
	lm_gemm_bf16x3(y, x, n, &W);
	long bad = 0;
	for (long t = 0; t < n; t++)
		for (long r = 0; r < rows; r++) {
			float want = t == 5 && r != 7 ? NAN : x[t * cols + r] * ldexpf(1, (int)(r % 5) - 2);
			float got = y[t * rows + r];
			bad += isnan(want) ? !isnan(got) : got != want;
		}
	printf("%s gemm bf16x3: one product an output, x to its last bit (%ld of %ld differ)\n",
	       bad ? "FAIL" : "PASS", bad, n * rows);
	failures += bad != 0;
	free(w);
	free(x);
	free(y);
}

/* Which products lm_matmul gives the AMX kernel: BF16 weights from 16
 * tokens on, not with LMCC_GEMM set, and then its bits are lm_matmul's. */
static void x3_choice(void)
{
	lm_mat W = weight(LM_BF16, 0, 70, 300, 0);
	int amx = lm_gemm_bf16x3_fits(16, &W);
	lm_mat F = W;
	F.dtype = LM_F16;
	int bad = lm_gemm_bf16x3_fits(15, &W) || lm_gemm_bf16x3_fits(16, &F);
	bad |= amx != (lm_cpu_has("amx") && lm_isa() == LM_ISA_AVX512);
	lm_gemm_force = LM_GEMM_LMCC;
	bad |= lm_gemm_bf16x3_fits(16, &W);
	lm_gemm_force = LM_GEMM_CHOOSE;
	long n = 130;
	float *x = lm_floats(n * 300), *y = lm_floats(n * 70), *g = lm_floats(n * 70);
	for (long i = 0; i < n * 300; i++)
		x[i] = uni();
	lm_set_threads(2);
	lm_matmul(y, x, n, W);
	if (amx) {
		lm_gemm_bf16x3(g, x, n, &W);
		bad |= memcmp(y, g, n * 70 * sizeof *y) != 0;
	}
	printf("%s matmul bf16: %s\n", bad ? "FAIL" : "PASS",
	       amx ? "AMX's exact product from 16 tokens on, unless LMCC_GEMM says otherwise"
	           : "no AMX here: the FMA kernels");
	failures += bad;
	free((void *)W.data);
	free(x);
	free(y);
	free(g);
}

int main(void)
{
	no_blas_workers();
	for (int ta = 0; ta < 2; ta++)
		for (int tb = 0; tb < 2; tb++) {
			sgemm(ta, tb, 1, 1, 1, 1, 0);
			sgemm(ta, tb, 13, 37, 19, 0.125f, 0);   /* attention's scale */
			sgemm(ta, tb, 64, 128, 128, 1, 1);      /* a chunk's state update */
			sgemm(ta, tb, 70, 45, 300, 1, 1);       /* two blocks of inputs, added to C */
			sgemm(ta, tb, 9, 33, 257, -0.5f, 0.25f);
			sgemm(ta, tb, 5, 7, 0, 1, 0.5f);        /* no inputs: C = beta C */
		}
	int dtypes[] = {LM_F32, LM_F16, LM_BF16};
	for (int d = 0; d < 3; d++)
		for (int tr = 0; tr < 2; tr++) {
			test(dtypes[d], tr, 1, 37, 19, 1, 0);
			test(dtypes[d], tr, 3, 45, 64, 1, 0);      /* whole vectors, part tiles */
			test(dtypes[d], tr, 7, 100, 269, 2, 0);    /* a block of inputs and a tail */
			test(dtypes[d], tr, 130, 53, 515, 2, 0);   /* three blocks of inputs */
			test(dtypes[d], tr, 150, 1059, 40, 2, 0);  /* outputs past y's part in L2 */
			test(dtypes[d], tr, 400, 70, 300, 2, 0);   /* one block, the inputs outermost */
			test(dtypes[d], tr, 1100, 45, 300, 2, 0);  /* three such blocks: 384, 384, 332 */
			test(dtypes[d], tr, 12, 96, 48, 1, 0);     /* whole tiles only */
			/* an expert's few tokens: x packed by both threads, part
			 * panels of tokens and of outputs, three blocks of inputs */
			test(dtypes[d], tr, 33, 83, 520, 2, 0);
			test(dtypes[d], tr, 13, 64, 300, 2, 0);
			/* tokens in the lanes (AVX-512): one vector of them, part
			 * tiles of outputs, a tail of inputs past the last 8 */
			test(dtypes[d], tr, 16, 83, 523, 2, 0);
			test(dtypes[d], tr, 29, 5, 19, 1, 0);     /* fewer outputs than a tile */
			test(dtypes[d], tr, 32, 130, 256, 2, 0);
			test(dtypes[d], tr, 46, 1059, 40, 2, 0);
			test(dtypes[d], tr, 48, 64, 700, 1, 0);
			same_sums(dtypes[d], 16, 83, 523, 0);
			same_sums(dtypes[d], 48, 40, 600, 0);
			/* the outputs outermost, then the inputs: the same order of sums */
			same_sums(dtypes[d], 192, 70, 600, 0);
		}
	test(LM_BF16, 0, 32, 77, 600, 2, 1);
	test(LM_BF16, 0, 45, 21, 300, 1, 1);
	same_sums(LM_BF16, 32, 77, 600, 1);
	same_sums(LM_BF16, 192, 77, 600, 1);
	test(LM_BF16, 0, 130, 77, 600, 2, 1);
	test(LM_BF16, 0, 197, 40, 300, 2, 1);
	test(LM_F32, 1, 7, 33, 257, 1, 1);
	for (int tr = 0; tr < 2; tr++) {
		matmul(tr, FEW + 1, 70, 300, 2);
		matmul(tr, 130, 1059, 515, 2);
		x3(tr, 16, 45, 300);      /* one step of 32 tokens, part tiles, a tail of inputs */
		x3(tr, 33, 70, 515);      /* two steps, three blocks of inputs */
		x3(tr, 130, 1059, 64);    /* outputs past a share's part in L2 */
	}
	x3(0, 600, 96, 200);          /* two blocks of tokens (512 and 88) */
	x3_parts();
	x3_choice();
	return failures != 0;
}
