/* test_kernels: every runtime kernel against a naive loop in double
 * precision, on random inputs, across the shapes and options the
 * generated code uses.  One PASS/FAIL line per check.
 *
 * The naive versions are written from the definitions in lmcc.h, not from
 * the kernels, so a kernel that drifts from its contract fails here.  The
 * kernels tested are those of the instruction set lm_isa() chose
 * (LMCC_ISA forces one; tests/suite_unit.sh runs every one the CPU has),
 * named in every line. */
#include "gemm.h"
#include "vec.h"
#include "harness.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures;
static uint64_t rng = 88172645463325252ull;

static double uni(void)
{
	return xorshift_uni(&rng);
}

static float *randv(long n)
{
	float *v = lm_floats(n);
	for (long i = 0; i < n; i++)
		v[i] = (float)uni();
	return v;
}

/* max |a - b| / max(max |b|, tiny) <= tol */
static void check(const char *name, const float *a, const double *b, long n, double tol)
{
	double md = 0, mb = 1e-30;
	for (long i = 0; i < n; i++) {
		double d = fabs(a[i] - b[i]);
		if (!(d <= md))
			md = isnan(d) ? INFINITY : d;
		if (fabs(b[i]) > mb)
			mb = fabs(b[i]);
	}
	double rel = md / mb;
	const char *isa = lm_isa_name(lm_isa());
	if (rel <= tol) {
		printf("PASS kernel[%s] %s (rel %.2g)\n", isa, name, rel);
	} else {
		printf("FAIL kernel[%s] %s: relative error %.3g > %.1g\n", isa, name, rel, tol);
		failures++;
	}
}

/* ---- matmul, in every dtype and storage order ---- */

static void test_matmul(int dtype, int tr, long n, long rows, long cols)
{
	long ld = (tr ? rows : cols) + 3;            /* a view inside a wider tensor */
	long outer = tr ? cols : rows;
	size_t es = lm_dtype_size(dtype);
	unsigned char *store = lm_alloc(outer * ld * es);
	float *wf = lm_alloc(rows * cols * sizeof(float));   /* W as read back */
	for (long r = 0; r < rows; r++)
		for (long c = 0; c < cols; c++) {
			float v = (float)uni();
			size_t i = tr ? (size_t)c * ld + r : (size_t)r * ld + c;
			if (dtype == LM_F32) {
				memcpy(store + 4 * i, &v, 4);
			} else if (dtype == LM_BF16) {
				uint16_t h = lm_f32_to_bf16(v);
				memcpy(store + 2 * i, &h, 2);
			} else {
				/* an F16 with a few mantissa bits: exact in half */
				uint16_t h = (uint16_t)(0x3000 + ((rng >> 20) & 0x7ff) + ((rng >> 40) & 1) * 0x8000);
				memcpy(store + 2 * i, &h, 2);
			}
			wf[r * cols + c] = lm_load_f32(store, dtype, i);
		}
	float *x = randv(n * cols), *y = lm_floats(n * rows);
	double *ref = lm_alloc(n * rows * sizeof(double));
	for (long t = 0; t < n; t++)
		for (long r = 0; r < rows; r++) {
			double s = 0;
			for (long c = 0; c < cols; c++)
				s += (double)x[t * cols + c] * wf[r * cols + c];
			ref[t * rows + r] = s;
		}
	lm_mat W = {.data = store, .dtype = dtype, .tr = tr, .rows = rows, .cols = cols, .ld = ld};
	lm_matmul(y, x, n, W);
	char name[96];
	snprintf(name, sizeof name, "matmul %s tr=%d n=%ld %ldx%ld",
	         dtype == LM_F32 ? "f32" : dtype == LM_BF16 ? "bf16" : "f16", tr, n, rows, cols);
	check(name, y, ref, n * rows, 1e-5);
	free(store);
	free(wf);
	free(x);
	free(y);
	free(ref);
}

/* The decode products' sums do not depend on the thread count: the same
 * bits from one thread and from two (an [in, out] weight's partial sums
 * are cut by its shape alone). */
static void test_matmul_threads(int dtype, int tr, long n, long rows, long cols)
{
	long ld = tr ? rows : cols, outer = tr ? cols : rows;
	size_t es = lm_dtype_size(dtype);
	unsigned char *store = lm_alloc(outer * ld * es);
	for (size_t i = 0; i < (size_t)outer * ld; i++) {
		float v = (float)uni();
		uint16_t h = dtype == LM_F16 ? lm_f32_to_f16(v) : lm_f32_to_bf16(v);
		memcpy(store + es * i, dtype == LM_F32 ? (void *)&v : (void *)&h, es);
	}
	float *x = randv(n * cols), *y1 = lm_floats(n * rows), *y2 = lm_floats(n * rows);
	lm_mat W = {.data = store, .dtype = dtype, .tr = tr, .rows = rows, .cols = cols, .ld = ld};
	lm_set_threads(1);
	lm_matmul(y1, x, n, W);
	lm_set_threads(2);
	lm_matmul(y2, x, n, W);
	lm_set_threads(1);
	char name[96];
	snprintf(name, sizeof name, "matmul %s tr=%d n=%ld %ldx%ld: same sums on 1 and 2 threads",
	         dtype == LM_F32 ? "f32" : dtype == LM_BF16 ? "bf16" : "f16", tr, n, rows, cols);
	int same = !memcmp(y1, y2, n * rows * sizeof(float));
	printf("%s kernel[%s] %s%s\n", same ? "PASS" : "FAIL", lm_isa_name(lm_isa()), name,
	       same ? "" : ": the sums differ");
	failures += !same;
	free(store);
	free(x);
	free(y1);
	free(y2);
}

/* --fast's BF16 product (gemm_bf16.c), kernel vec (1: vdpbf16ps, 0: AMX
 * where granted), against a float64 product of the bf16-rounded inputs:
 * x and W rounded to nearest even, each product of two bf16 exact in
 * float32, so the only error left is float32 summation, at most one
 * rounding per input and per block of them: (cols + 8) 2^-24 sum |w x|
 * for every output.  Rounding either input another way (truncating x,
 * or F32 weights left as they are) costs 2^-9 of an input, far past it.
 * The sums must be the same bits on 1 and 2 threads, and must differ from
 * the exact product somewhere, or --fast did not take the product. */
static void test_fast_bf16(int dtype, int tr, long n, long rows, long cols, int vec)
{
	long ld = (tr ? rows : cols) + 3, outer = tr ? cols : rows;
	size_t es = lm_dtype_size(dtype);
	unsigned char *store = lm_alloc(outer * ld * es);
	double *wb = lm_alloc(rows * cols * sizeof(double));
	for (long r = 0; r < rows; r++)
		for (long c = 0; c < cols; c++) {
			float v = (float)uni();
			size_t i = tr ? (size_t)c * ld + r : (size_t)r * ld + c;
			uint16_t h = dtype == LM_F16 ? lm_f32_to_f16(v) : lm_f32_to_bf16(v);
			memcpy(store + es * i, dtype == LM_F32 ? (void *)&v : (void *)&h, es);
			wb[r * cols + c] = lm_bf16_to_f32(lm_f32_to_bf16(lm_load_f32(store, dtype, i)));
		}
	float *x = randv(n * cols), *y0 = lm_floats(n * rows), *y1 = lm_floats(n * rows),
	      *y2 = lm_floats(n * rows);
	lm_mat W = {.data = store, .dtype = dtype, .tr = tr, .rows = rows, .cols = cols, .ld = ld};
	lm_matmul(y0, x, n, W);
	lm_fast = 1;
	lm_gemm_bf16_vec = vec;
	int fits = lm_gemm_bf16_fits(n, &W);
	const char *k = lm_gemm_bf16_kernel();
	lm_set_threads(1);
	lm_matmul(y1, x, n, W);
	lm_set_threads(2);
	lm_matmul(y2, x, n, W);
	lm_set_threads(1);
	lm_fast = 0;
	lm_gemm_bf16_vec = 0;
	double worst = bf16_sum_worst(y1, x, wb, n, rows, cols);
	long differ = 0;
	for (long i = 0; i < n * rows; i++)
		differ += y1[i] != y0[i];
	int same = !memcmp(y1, y2, n * rows * sizeof(float)), ok = fits && worst <= 1 && same && differ;
	printf("%s kernel[%s] fast bf16 (%s) %s tr=%d n=%ld %ldx%ld: worst %.2g of the bound%s%s%s\n",
	       ok ? "PASS" : "FAIL", lm_isa_name(lm_isa()), k, dtype == LM_F32 ? "f32" : dtype == LM_BF16 ? "bf16" : "f16",
	       tr, n, rows, cols, worst, fits ? "" : " (not taken)",
	       same ? "" : " (1 and 2 threads differ)", differ ? "" : " (the exact sums: not run)");
	failures += !ok;
	free(store);
	free(wb);
	free(x);
	free(y0);
	free(y1);
	free(y2);
}

/* Which products --fast's BF16 kernel takes: float weights past 8 tokens
 * on the AVX-512 path where AMX or a vdpbf16ps faster than float32 FMAs
 * runs it, only with --fast. */
static void test_fast_bf16_all(void)
{
	lm_mat W = {.dtype = LM_BF16, .rows = 64, .cols = 64, .ld = 64};
	int have = lm_gemm_bf16_kernel() != NULL;
	int bad = lm_gemm_bf16_fits(32, &W);
	lm_fast = 1;
	bad |= lm_gemm_bf16_fits(32, &W) != have || lm_gemm_bf16_fits(8, &W);
	/* quantized weights affine only, on AMX or where vdpbf16ps has no AMX
	 * beside it (on AMX with the kernel forced to vdpbf16ps: int8) */
	W = (lm_mat){.dtype = LM_Q, .rows = 64, .cols = 64, .bits = 4, .group = 64};
	bad |= lm_gemm_bf16_fits(32, &W) != have;
	lm_gemm_bf16_vec = 1;
	bad |= lm_gemm_bf16_fits(32, &W) != lm_cpu_has("bf16_dot_fast");
	lm_gemm_bf16_vec = 0;
	W.mode = LM_MXFP4;
	bad |= lm_gemm_bf16_fits(32, &W);
	lm_fast = 0;
	/* vdpbf16ps only where it beats float32 FMAs (isa.c) */
	bad |= have != (lm_isa() == LM_ISA_AVX512 && lm_cpu_has("avx512_bf16")
	                && (lm_cpu_has("amx") || lm_cpu_has("bf16_dot_fast")));
	printf("%s kernel[%s] fast bf16: %s, only with --fast past 8 tokens on float weights "
	       "(and affine quantized ones)\n",
	       bad ? "FAIL" : "PASS", lm_isa_name(lm_isa()), have ? lm_gemm_bf16_kernel() : "not on this path");
	failures += bad;
	if (!lm_cpu_has("avx512_bf16"))   /* the kernel, forced where --fast does not take it */
		return;
	/* the last: blocks of tokens, of outputs (the AMX kernel's partial
	 * sums stay in L2 for 256 of them at 512 tokens) and of inputs */
	long shapes[][3] = {{9, 37, 29}, {33, 70, 100}, {50, 64, 1100}, {130, 45, 64},
	                    {13, 96, 512}, {520, 33, 40}, {515, 300, 600}};
	int dtypes[3] = {LM_BF16, LM_F32, LM_F16};
	for (int vec = lm_cpu_has("amx") ? 0 : 1; vec <= 1; vec++)
		for (int s = 0; s < 7; s++)
			for (int tr = 0; tr < 2; tr++)
				test_fast_bf16(dtypes[(s + tr) % 3], tr, shapes[s][0], shapes[s][1], shapes[s][2], vec);
}

/* Every finite half through the widening of each regime: one token (the
 * streaming kernels, whole vectors and the scalar tail) and 12 tokens
 * (prefill's widened panels), W [4096, 16] times one-hot inputs, so each
 * output is one weight exactly.  Then infinities and NaNs, one per row. */
static void test_f16_values(void)
{
	long rows = 4096, cols = 16;
	uint16_t *h = lm_alloc(rows * cols * 2);
	for (long i = 0; i < rows * cols; i++)
		h[i] = (uint16_t)i;
	for (long i = 0; i < rows * cols; i++)    /* finite values only: 0 inf = NaN */
		h[i] = (i & 0x7c00) == 0x7c00 ? 0 : (uint16_t)i;
	float *x = lm_floats(12 * cols), *y = lm_floats(12 * rows);
	int bad = 0;
	/* one token with each one-hot input, then 12 tokens at once */
	for (long k = 0; k <= cols && !bad; k++) {
		long n = k < cols ? 1 : 12;
		memset(x, 0, 12 * cols * sizeof(float));
		for (long t = 0; t < n; t++)
			x[t * cols + (k < cols ? k : t)] = 1;
		lm_matmul(y, x, n, (lm_mat){.data = h, .dtype = LM_F16, .rows = rows, .cols = cols, .ld = cols});
		for (long t = 0; t < n && !bad; t++)
			for (long r = 0; r < rows && !bad; r++) {
				uint16_t v = h[r * cols + (k < cols ? k : t)];
				if (y[t * rows + r] != lm_f16_to_f32(v)) {
					printf("FAIL kernel[%s] f16 widening (n=%ld): 0x%04x gives %g, not %g\n",
					       lm_isa_name(lm_isa()), n, v, y[t * rows + r], lm_f16_to_f32(v));
					bad = 1;
				}
			}
	}
	uint16_t special[4] = {0x7c00, 0xfc00, 0x7e00, 0xfd01};
	float one = 1, out[4];
	lm_matmul(out, &one, 1, (lm_mat){.data = special, .dtype = LM_F16, .rows = 4, .cols = 1, .ld = 1});
	if (!bad && !(isinf(out[0]) && out[0] > 0 && isinf(out[1]) && out[1] < 0 && isnan(out[2])
	              && isnan(out[3]))) {
		printf("FAIL kernel[%s] f16 widening: inf, -inf, NaN, NaN give %g %g %g %g\n",
		       lm_isa_name(lm_isa()), out[0], out[1], out[2], out[3]);
		bad = 1;
	}
	if (!bad)
		printf("PASS kernel[%s] f16 widening: every finite half, infinities, NaNs\n",
		       lm_isa_name(lm_isa()));
	failures += bad;
	free(h);
	free(x);
	free(y);
}

static void test_embed(void)
{
	long V = 11, D = 7;
	uint16_t *e = lm_alloc(V * D * 2);
	double ref[3 * 7];
	int tok[3] = {5, 0, 10};
	for (long i = 0; i < V * D; i++)
		e[i] = lm_f32_to_bf16((float)uni());
	for (int t = 0; t < 3; t++)
		for (long i = 0; i < D; i++)
			ref[t * D + i] = lm_bf16_to_f32(e[tok[t] * D + i]);
	float x[3 * 7];
	lm_embed(x, (lm_mat){.data = e, .dtype = LM_BF16, .rows = V, .cols = D, .ld = D}, tok, 3);
	check("embed bf16", x, ref, 3 * D, 0);
	free(e);
}

static void test_rmsnorm(long dim, const float *w, long wrows, const char *what)
{
	long rows = 6;
	float *x = randv(rows * dim), *y = lm_floats(rows * dim);
	double *ref = lm_alloc(rows * dim * sizeof(double));
	for (long r = 0; r < rows; r++) {
		double ss = 0;
		for (long i = 0; i < dim; i++)
			ss += (double)x[r * dim + i] * x[r * dim + i];
		double inv = 1 / sqrt(ss / dim + 1e-5);
		for (long i = 0; i < dim; i++)
			ref[r * dim + i] = x[r * dim + i] * inv * (w ? w[(r % wrows) * dim + i] : 1);
	}
	char name[96];
	snprintf(name, sizeof name, "rmsnorm %s, dim %ld", what, dim);
	lm_rmsnorm(y, x, rows, dim, w, wrows, 1e-5f);
	check(name, y, ref, rows * dim, 1e-6);
	lm_rmsnorm(x, x, rows, dim, w, wrows, 1e-5f);   /* in place */
	check(name, x, ref, rows * dim, 1e-6);
	free(x);
	free(y);
	free(ref);
}

static void test_rope(int style, long hd, long dims)
{
	long n = 5, heads = 3, pos = 100000;
	double f[1024];
	for (int j = 0; j < dims / 2; j++)
		f[j] = pow(10000.0, -2.0 * j / dims);
	float *x = randv(n * heads * hd);
	double *ref = lm_alloc(n * heads * hd * sizeof(double));
	for (long t = 0; t < n; t++)
		for (long h = 0; h < heads; h++) {
			const float *v = x + (t * heads + h) * hd;
			double *o = ref + (t * heads + h) * hd;
			for (long i = 0; i < hd; i++)
				o[i] = v[i];
			for (long j = 0; j < dims / 2; j++) {
				double a = (pos + t) * f[j];
				long i0 = style == LM_ROPE_HALF ? j : 2 * j;
				long i1 = style == LM_ROPE_HALF ? j + dims / 2 : 2 * j + 1;
				o[i0] = v[i0] * cos(a) - v[i1] * sin(a);
				o[i1] = v[i0] * sin(a) + v[i1] * cos(a);
			}
		}
	lm_rope(x, n, heads, hd, dims, pos, f, style);
	char name[96];
	snprintf(name, sizeof name, "rope %s, %ld of %ld dims, pos 1e5",
	         style == LM_ROPE_HALF ? "half" : "interleaved", dims, hd);
	check(name, x, ref, n * heads * hd, 1e-6);
	free(x);
	free(ref);
}

/* Softmax's numerators: each exp within 2 ulp-ish of libm's in double
 * (so judged elementwise, not against the row's largest), their sum, and
 * the edges: far below the float range 0, -inf 0, NaN NaN. */
static void test_expsum(long n)
{
	float *s = lm_floats(n + 1);
	double *ref = lm_alloc(n * sizeof(double)), sum = 0;
	float mx = -INFINITY;
	for (long j = 0; j < n; j++) {
		s[j] = (float)(uni() * 40 - 20);
		mx = s[j] > mx ? s[j] : mx;
	}
	if (n > 3) {
		s[1] = mx - 100;        /* below exp's float range */
		s[2] = -INFINITY;
	}
	for (long j = 0; j < n; j++)
		sum += ref[j] = exp((double)(s[j] - mx));
	double got = lm_vec()->expsum(s, mx, n), worst = fabs(got - sum) / sum;
	for (long j = 0; j < n; j++) {
		double d = fabs(s[j] - ref[j]) / (ref[j] > 1e-37 ? ref[j] : 1);
		if (!(d <= worst))
			worst = isnan(d) ? INFINITY : d;
	}
	const char *isa = lm_isa_name(lm_isa());
	if (worst <= 3e-7) {
		printf("PASS kernel[%s] softmax exp and sum, %ld scores (rel %.2g)\n", isa, n, worst);
	} else {
		printf("FAIL kernel[%s] softmax exp and sum, %ld scores: relative error %.3g > 3e-7\n",
		       isa, n, worst);
		failures++;
	}
	float nan[9] = {0, NAN, 0, 0, 0, 0, 0, 0, 0};
	lm_vec()->expsum(nan, 0, 9);
	if (!isnan(nan[1]) || nan[0] != 1) {
		printf("FAIL kernel[%s] softmax exp: exp(NaN) = %g, exp(0) = %g\n", isa, nan[1],
		       nan[0]);
		failures++;
	}
	free(s);
	free(ref);
}

/* SwiGLU's silu(g) u and the sigmoid against double, element by element
 * (relative to the element: both are a few float roundings of a vector
 * exp), on n elements so that a vector's tail is seen, with the extremes:
 * exp(-g) past a float, NaN, zeros; and SwiGLU into its own u. */
static void test_activations(long n)
{
	float *g = lm_floats(n), *u = lm_floats(n), *y = lm_floats(n), *sg = lm_floats(n);
	for (long j = 0; j < n; j++) {
		g[j] = (float)(uni() * 30 - 15);
		u[j] = (float)(uni() * 2 - 1);
	}
	static const float edge[] = {-100.0f, -1e37f, 100.0f, 1e37f, 0.0f, -0.0f, -88.5f, 87.0f};
	for (long j = 0; j < n && j < 8; j++)
		g[(j * 7) % n] = edge[j];
	memcpy(sg, g, n * sizeof(float));
	memcpy(y, u, n * sizeof(float));
	lm_vec()->swiglu(y, g, y, n);
	lm_vec()->sigmoid(sg, n);
	double worst = 0;
	for (long j = 0; j < n; j++) {
		double e = exp(-(double)g[j]), sw = g[j] / (1 + e) * u[j], sm = 1 / (1 + e);
		double d1 = fabs(y[j] - sw) / (fabs(sw) > 1e-30 ? fabs(sw) : 1);
		double d2 = fabs(sg[j] - sm) / (sm > 1e-30 ? sm : 1);
		d1 = d1 > d2 ? d1 : d2;
		if (!(d1 <= worst))
			worst = isnan(d1) ? INFINITY : d1;
	}
	float nan[3] = {NAN, 1, NAN}, one[3] = {1, 1, 1};
	lm_vec()->swiglu(nan, nan, one, 3);
	float sn[3] = {NAN, 0, 0};
	lm_vec()->sigmoid(sn, 3);
	int nan_ok = isnan(nan[0]) && isnan(nan[2]) && isnan(sn[0]) && sn[1] == 0.5f;
	const char *isa = lm_isa_name(lm_isa());
	if (worst <= 6e-7 && nan_ok) {
		printf("PASS kernel[%s] silu and sigmoid, %ld elements (rel %.2g)\n", isa, n, worst);
	} else {
		printf("FAIL kernel[%s] silu and sigmoid, %ld elements: relative error %.3g%s\n", isa,
		       n, worst, nan_ok ? "" : ", NaN or sigmoid(0) wrong");
		failures++;
	}
	free(g);
	free(u);
	free(y);
	free(sg);
}

/* The gate's decay against double: float32 roundings of exp, log1p and
 * exp again, so an element's error grows with the exponent, rate
 * softplus(z): within 5e-7 (1 + rate softplus(z)) of it, or 1e-30 where
 * it is below a float's normal range.  z from -30 to 30, rates from 1e-3
 * to 50, n elements for the tails, and the extremes: z = +-inf, NaN, a u
 * = exp(-|z|) below 2^-24 (where 1 + u rounds to 1), softplus near sqrt 2. */
static void test_decay(long n, float rate)
{
	float *a = lm_floats(n), *b = lm_floats(n), *z = lm_floats(n);
	for (long j = 0; j < n; j++) {
		a[j] = (float)(uni() * 60 - 30);
		b[j] = (float)(uni() * 2 - 1);
	}
	static const float edge[] = {INFINITY, -INFINITY, 20.0f, -20.0f, 0.0f, -0.5f, 1e-7f, -3.0f};
	for (long j = 0; j < n && j < 8; j++) {
		a[(j * 5) % n] = edge[j];
		b[(j * 5) % n] = 0;
	}
	for (long j = 0; j < n; j++)
		z[j] = a[j] + b[j];
	lm_vec()->decay(a, b, rate, n);
	double worst = 0;
	for (long j = 0; j < n; j++) {
		double arg = (double)rate * lm_softplus(z[j]), want = exp(-arg);
		double d = fabs(a[j] - want);
		d = want < 1e-30 ? (d <= 1e-30 ? 0 : INFINITY) : d / want / (1 + arg);
		if (!(d <= worst))
			worst = isnan(d) ? INFINITY : d;
	}
	float nan[2] = {NAN, 0}, zb[2] = {0, 0};
	lm_vec()->decay(nan, zb, rate, 2);
	int nan_ok = isnan(nan[0]);
	const char *isa = lm_isa_name(lm_isa());
	if (worst <= 5e-7 && nan_ok) {
		printf("PASS kernel[%s] decay, %ld elements at rate %g (rel %.2g per unit of exponent)\n",
		       isa, n, rate, worst);
	} else {
		printf("FAIL kernel[%s] decay, %ld elements at rate %g: relative error %.3g%s\n", isa,
		       n, rate, worst, nan_ok ? "" : ", NaN lost");
		failures++;
	}
	free(a);
	free(b);
	free(z);
}

/* The conv over a sequence cut in two calls equals one call over all of
 * it, and both equal the definition with zero history. */
static void test_conv(long taps, int silu, int inplace, long ch, long cut)
{
	long n = 9;
	float *u = randv(n * ch), *w = randv(ch * taps), *y = lm_floats(n * ch);
	float *state = lm_floats((taps - 1) * ch);
	double *ref = lm_alloc(n * ch * sizeof(double));
	for (long t = 0; t < n; t++)
		for (long c = 0; c < ch; c++) {
			double s = 0;
			for (long j = 0; j < taps; j++) {
				long i = t - (taps - 1) + j;
				s += i < 0 ? 0 : (double)w[c * taps + j] * u[i * ch + c];
			}
			ref[t * ch + c] = silu ? s / (1 + exp(-s)) : s;
		}
	if (inplace) {
		memcpy(y, u, n * ch * sizeof(float));
		lm_causal_conv(y, y, cut, ch, w, taps, state, silu);
		lm_causal_conv(y + cut * ch, y + cut * ch, n - cut, ch, w, taps, state, silu);
	} else {
		lm_causal_conv(y, u, cut, ch, w, taps, state, silu);
		lm_causal_conv(y + cut * ch, u + cut * ch, n - cut, ch, w, taps, state, silu);
	}
	char name[80];
	snprintf(name, sizeof name, "causal conv taps=%ld silu=%d in-place=%d ch=%ld, calls of %ld and %ld",
	         taps, silu, inplace, ch, cut, n - cut);
	check(name, y, ref, n * ch, 1e-6);
	free(u);
	free(w);
	free(y);
	free(state);
	free(ref);
}

/* The elementwise steps split across the pool (lm_each) give what one
 * thread gives, bit for bit, at sizes past the point where they split,
 * with counts that end inside a cache line. */
static void same(const char *what, const float *a, const float *b, long n, int threads)
{
	long i = 0;
	while (i < n && (a[i] == b[i] || (isnan(a[i]) && isnan(b[i]))))
		i++;
	const char *isa = lm_isa_name(lm_isa());
	if (i == n) {
		printf("PASS kernel[%s] %s: %d threads as one\n", isa, what, threads);
		return;
	}
	printf("FAIL kernel[%s] %s: %d threads differ from one at %ld: %g against %g\n", isa, what,
	       threads, i, a[i], b[i]);
	failures++;
}

static void test_each(int threads)
{
	long n = 37, heads = 5, dim = 128, count = n * heads * dim + 3;   /* 23683 */
	long ch = 4099, taps = 4, T = 11;
	float *x = randv(count), *a = randv(count), *w = randv(dim * heads), *r[2];
	float *cw = randv(ch * taps), *st[2], *cu = randv(T * ch), *cy[2];
	for (int k = 0; k < 2; k++) {
		lm_set_threads(k ? threads : 1);
		r[k] = lm_floats(8 * count);
		float *o = r[k];
		lm_add(o, x, a, count);
		lm_mul(o + count, x, a, count);
		memcpy(o + 2 * count, x, count * sizeof(float));
		lm_scale(o + 2 * count, count, 0.37f);
		lm_swiglu(o + 3 * count, x, a, count);
		memcpy(o + 4 * count, x, count * sizeof(float));
		lm_sigmoid(o + 4 * count, count);
		memcpy(o + 5 * count, x, count * sizeof(float));
		lm_decay(o + 5 * count, n, heads, dim, w, a);
		lm_rmsnorm(o + 6 * count, x, n * heads, dim, w, heads, 1e-5f);
		st[k] = lm_floats((taps - 1) * ch);
		cy[k] = lm_floats(T * ch);
		lm_causal_conv(cy[k], cu, 5, ch, cw, taps, st[k], 1);
		lm_causal_conv(cy[k] + 5 * ch, cu + 5 * ch, T - 5, ch, cw, taps, st[k], 1);
	}
	const char *names[] = {"add", "mul", "scale", "swiglu", "sigmoid", "decay", "rmsnorm"};
	for (int i = 0; i < 7; i++)
		same(names[i], r[1] + i * count, r[0] + i * count, i == 6 ? n * heads * dim : count,
		     threads);
	same("causal conv", cy[1], cy[0], T * ch, threads);
	same("causal conv's state", st[1], st[0], (taps - 1) * ch, threads);
	lm_set_threads(1);
	for (int k = 0; k < 2; k++) {
		free(r[k]);
		free(st[k]);
		free(cy[k]);
	}
	free(x);
	free(a);
	free(w);
	free(cw);
	free(cu);
}

static void test_fake8(void)
{
	float s = 0.5f;
	float x[] = {0.25f, 0.75f, -0.25f, 1.25f, 100.0f, -100.0f, 0.2f, 63.75f};
	double ref[] = {0.0, 1.0, 0.0, 1.0, 63.5, -64.0, 0.0, 63.5};
	/* 0.5, 1.5 and 2.5 steps round to even; 127.5 rounds to 128 and
	 * clips to 127, as +-200 do */
	lm_fake8(x, 8, s);
	check("fake8 half-to-even and clipping", x, ref, 8, 0);
}

/* ---- attention ---- */

/* Softmax attention by definition over all positions 0..pos+n-1. */
static void naive_attention(double *out, const float *q, long n, long pos,
                            const float *K, const float *V, long heads, long kvh,
                            long hd, float scale, lm_mask m)
{
	for (long t = 0; t < n; t++)
		for (long h = 0; h < heads; h++) {
			long qp = pos + t, g = h / (heads / kvh);
			double mx = -INFINITY, sum = 0, *o = out + (t * heads + h) * hd;
			double s[256];
			for (long p = 0; p <= qp; p++) {
				s[p] = -INFINITY;
				if ((m.window && qp - p >= m.window) || (m.chunk && p / m.chunk != qp / m.chunk))
					continue;
				double d = 0;
				for (long j = 0; j < hd; j++)
					d += (double)q[(t * heads + h) * hd + j] * K[(p * kvh + g) * hd + j];
				s[p] = d * scale;
				if (s[p] > mx)
					mx = s[p];
			}
			for (long j = 0; j < hd; j++)
				o[j] = 0;
			for (long p = 0; p <= qp; p++)
				sum += exp(s[p] - mx);
			for (long p = 0; p <= qp; p++)
				for (long j = 0; j < hd; j++)
					o[j] += exp(s[p] - mx) / sum * V[(p * kvh + g) * hd + j];
		}
}

/* Feed N tokens in calls of `chunk` through a cache of the given kind and
 * capacity; every call's output must match the definition. */
static void test_attend_hd(int kind, long cap, lm_mask m, long chunk, const char *what, long hd)
{
	long N = 23, heads = 4, kvh = 2;
	float *Q = randv(N * heads * hd), *K = randv(N * kvh * hd), *V = randv(N * kvh * hd);
	float *out = lm_floats(N * heads * hd);
	double *ref = lm_alloc(N * heads * hd * sizeof(double));
	lm_kv c;
	lm_kv_init(&c, kind, kind == LM_KV_FULL ? N : cap, kvh * hd, kvh * hd);
	for (long p = 0; p < N; p += chunk) {
		long n = N - p < chunk ? N - p : chunk;
		lm_attend(out + p * heads * hd, Q + p * heads * hd, n, p, &c, K + p * kvh * hd,
		          V + p * kvh * hd, heads, kvh, hd, hd, 0.4f, m);
		naive_attention(ref + p * heads * hd, Q + p * heads * hd, n, p, K, V, heads,
		                kvh, hd, 0.4f, m);
	}
	char name[120];
	snprintf(name, sizeof name, "attend %s, calls of %ld, head %ld", what, chunk, hd);
	check(name, out, ref, N * heads * hd, 1e-5);
	/* A reader of the same cache (KV reuse) sees what the last call saw. */
	if (kind == LM_KV_FULL && chunk == 5) {
		float *o2 = lm_floats(3 * heads * hd);
		lm_attend(o2, Q + (N - 3) * heads * hd, 3, N - 3, &c, 0, 0, heads, kvh, hd, hd, 0.4f, m);
		char rn[140];
		snprintf(rn, sizeof rn, "attend %s, read back by a layer without K/V", what);
		check(rn, o2,
		      ref + (N - 3) * heads * hd, 3 * heads * hd, 1e-5);
		free(o2);
	}
	free(Q);
	free(K);
	free(V);
	free(out);
	free(ref);
	free(c.k);
	free(c.v);
	free(c.pos);
}

/* ---- recurrent layers ---- */

/* The gated delta rule by its definition in lmcc.h, in double, over the
 * tokens of two calls (the state carries). */
static void test_gated_delta(long heads, long dk, long dv, int threads)
{
	long n = 5, cut = 2;
	float *q = randv(n * heads * dk), *k = randv(n * heads * dk), *v = randv(n * heads * dv);
	float *g = randv(n * heads * dk), *beta = randv(n * heads);
	for (long i = 0; i < n * heads * dk; i++) {
		g[i] = 0.75f + 0.25f * g[i];             /* gates in (0.5, 1] */
		k[i] *= 0.2f;                            /* a key of norm about 1 */
	}
	for (long i = 0; i < n * heads; i++)
		beta[i] = 0.5f + 0.5f * beta[i];
	float *out = lm_floats(n * heads * dv), *state = lm_floats(heads * dv * dk);
	double *S = lm_alloc(heads * dv * dk * sizeof(double)), *ref = lm_alloc(n * heads * dv * sizeof(double));
	for (long t = 0; t < n; t++)
		for (long h = 0; h < heads; h++) {
			long at = t * heads + h;
			double *Sh = S + h * dv * dk;
			for (long j = 0; j < dv; j++) {
				double sk = 0, o = 0;
				for (long i = 0; i < dk; i++) {
					Sh[j * dk + i] *= g[at * dk + i];
					sk += Sh[j * dk + i] * k[at * dk + i];
				}
				for (long i = 0; i < dk; i++) {
					Sh[j * dk + i] += beta[at] * (v[at * dv + j] - sk) * k[at * dk + i];
					o += Sh[j * dk + i] * q[at * dk + i];
				}
				ref[at * dv + j] = o;
			}
		}
	lm_set_threads(threads);
	lm_gated_delta(out, q, k, v, g, beta, cut, heads, dk, dv, state);
	lm_gated_delta(out + cut * heads * dv, q + cut * heads * dk, k + cut * heads * dk,
	               v + cut * heads * dv, g + cut * heads * dk, beta + cut * heads, n - cut,
	               heads, dk, dv, state);
	lm_set_threads(1);
	char name[100];
	snprintf(name, sizeof name, "gated delta %ld heads dk=%ld dv=%ld, two calls, %d threads",
	         heads, dk, dv, threads);
	check(name, out, ref, n * heads * dv, 1e-5);
	free(q), free(k), free(v), free(g), free(beta), free(out), free(state), free(S), free(ref);
}

/* The selective scan by its definition in lmcc.h, in double, one call
 * (tests/bin/ssm checks the closed form over two calls on small shapes). */
static void test_ssm(long heads, long hd, long N, long groups)
{
	long n = 4;
	lm_ssm_dims dims = {heads, hd, N, groups, 0.01f, 5.0f};
	float *x = randv(n * heads * hd), *dt = randv(n * heads), *B = randv(n * groups * N);
	float *C = randv(n * groups * N), *a_log = randv(heads), *dtb = randv(heads), *d = randv(heads);
	float *y = lm_floats(n * heads * hd), *state = lm_floats(heads * hd * N);
	double *S = lm_alloc(heads * hd * N * sizeof(double)), *ref = lm_alloc(n * heads * hd * sizeof(double));
	for (long t = 0; t < n; t++)
		for (long h = 0; h < heads; h++) {
			double v = (double)dt[t * heads + h] + dtb[h];
			double step = v > 0 ? v + log1p(exp(-v)) : log1p(exp(v));
			step = step < 0.01 ? 0.01 : step > 5 ? 5 : step;
			double a = exp(-exp((double)a_log[h]) * step);
			long gr = h / (heads / groups);
			for (long p = 0; p < hd; p++) {
				double xv = x[(t * heads + h) * hd + p], o = 0;
				for (long i = 0; i < N; i++) {
					double *st = S + (h * hd + p) * N + i;
					*st = a * *st + step * xv * B[(t * groups + gr) * N + i];
					o += *st * C[(t * groups + gr) * N + i];
				}
				ref[(t * heads + h) * hd + p] = o + d[h] * xv;
			}
		}
	lm_ssm(y, x, dt, B, C, n, &dims, a_log, dtb, d, state);
	char name[100];
	snprintf(name, sizeof name, "selective scan %ld heads hd=%ld d_state=%ld %ld groups",
	         heads, hd, N, groups);
	check(name, y, ref, n * heads * hd, 1e-5);
	free(x), free(dt), free(B), free(C), free(a_log), free(dtb), free(d), free(y), free(state);
	free(S), free(ref);
}

static void test_attend(int kind, long cap, lm_mask m, long chunk, const char *what)
{
	test_attend_hd(kind, cap, m, chunk, what, 6);
}

/* ---- experts ---- */

static void test_route_grouped(void)
{
	/* 8 experts in 4 groups of 2, keep the best 2 groups, choose 3 */
	float logits[8] = {0.1f, 2.0f, -1.0f, -0.5f, 1.5f, 1.4f, 0.3f, -2.0f};
	float bias[8] = {0, 0, 0, 0, 0, 0, 0.9f, 0};
	lm_router r = {LM_ROUTE_GROUPED, 8, 3, 0, 4, 2, 1, 2.5f};
	int idx[3];
	float w[3];
	lm_route(logits, 1, &r, bias, idx, w);
	/* sigmoid + bias; groups {0,1}:1.40, {2,3}:0.65, {4,5}:1.62, {6,7}:1.59 */
	double s[8];
	for (int e = 0; e < 8; e++)
		s[e] = 1 / (1 + exp(-logits[e]));
	/* groups 2 and 3 win; best 3 of {4,5,6,7} on biased scores: 6, 4, 5 */
	int want[3] = {6, 4, 5};
	double sum = s[6] + s[4] + s[5], ref[3];
	int ok = 1;
	for (int k = 0; k < 3; k++) {
		ok &= idx[k] == want[k];
		ref[k] = s[want[k]] / sum * 2.5;
	}
	if (!ok) {
		printf("FAIL kernel[%s] route grouped: chose %d %d %d, expected 6 4 5\n",
		       lm_isa_name(lm_isa()), idx[0], idx[1], idx[2]);
		failures++;
	} else {
		check("route grouped: groups, bias, renorm, scaling", w, ref, 3, 1e-6);
	}
	lm_router top1 = {LM_ROUTE_TOP1_SIGMOID_IN, 8, 1, 0, 1, 1, 0, 1};
	lm_route(logits, 1, &top1, 0, idx, w);
	double r1 = 1 / (1 + exp(-2.0));
	if (idx[0] != 1) {
		printf("FAIL kernel[%s] route top-1: chose %d, expected 1\n", lm_isa_name(lm_isa()),
		       idx[0]);
		failures++;
	} else {
		check("route top-1 sigmoid", w, &r1, 1, 1e-6);
	}
}

static void naive_expert(double *o, const float *x, long dim, const lm_mat *g,
                         const lm_mat *u, const lm_mat *d, float s)
{
	long I = g->rows;
	double h[64];
	for (long i = 0; i < I; i++) {
		double a = 0, b = 0;
		for (long c = 0; c < dim; c++) {
			a += ((const float *)g->data)[i * g->ld + c] * (double)x[c] * s;
			b += ((const float *)u->data)[i * u->ld + c] * (double)x[c] * s;
		}
		h[i] = a / (1 + exp(-a)) * b;
	}
	for (long r = 0; r < dim; r++) {
		o[r] = 0;
		for (long i = 0; i < I; i++)
			o[r] += ((const float *)d->data)[r * d->ld + i] * h[i];
	}
}

static void test_moe(int scale_input, int n)
{
	enum { E = 4, K = 2, N = 5, D = 37, I = 5 };   /* D: vectors and a tail */
	lm_mat g[E], u[E], d[E];
	for (int e = 0; e < E; e++) {
		g[e] = (lm_mat){.data = randv(I * D), .dtype = LM_F32, .rows = I, .cols = D, .ld = D};
		u[e] = (lm_mat){.data = randv(I * D), .dtype = LM_F32, .rows = I, .cols = D, .ld = D};
		d[e] = (lm_mat){.data = randv(D * I), .dtype = LM_F32, .rows = D, .cols = I, .ld = I};
	}
	float *x = randv(N * D), y[N * D], w[N * K];
	int idx[N * K] = {0, 3, 2, 1, 3, 0, 1, 2, 0, 2};
	double ref[N * D], o[D];
	for (int i = 0; i < N * K; i++)
		w[i] = (float)(0.5 + uni() * 0.4);
	for (int t = 0; t < n; t++) {
		for (int j = 0; j < D; j++)
			ref[t * D + j] = 0;
		for (int k = 0; k < K; k++) {
			int e = idx[t * K + k];
			float wi = w[t * K + k];
			naive_expert(o, x + t * D, D, &g[e], &u[e], &d[e], scale_input ? wi : 1);
			for (int j = 0; j < D; j++)
				ref[t * D + j] += (scale_input ? 1 : wi) * o[j];
		}
	}
	lm_moe(y, x, n, D, g, u, d, idx, w, K, scale_input);
	char name[96];
	snprintf(name, sizeof name, "moe, %d token%s, weight scales the expert's %s", n,
	         n > 1 ? "s" : "", scale_input ? "input" : "output");
	check(name, y, ref, n * D, 1e-5);
}

/* lm_matmul_each gives the bits lm_matmul gives product by product, on
 * one thread and on two: weights of every float dtype, two products of
 * one input (which share its BF16 reordering), [in, out] weights of
 * outputs that are not a multiple of the ranges, and one of more than 256
 * inputs (which takes lm_matmul's own way). */
static void test_matmul_each(void)
{
	enum { K = 8 };
	int dt[K] = {LM_BF16, LM_BF16, LM_F32, LM_F16, LM_BF16, LM_BF16, LM_F16, LM_BF16};
	long rows[K] = {70, 33, 48, 17, 37, 64, 21, 300}, cols[K] = {96, 96, 37, 200, 100, 41, 256, 600};
	int tr[K] = {0, 0, 0, 0, 1, 0, 1, 1};
	lm_mat W[K];
	float *y[K], *ref[K];
	const float *x[K];
	for (int i = 0; i < K; i++) {
		size_t es = lm_dtype_size(dt[i]), n = (size_t)rows[i] * cols[i];
		unsigned char *store = lm_alloc(n * es);
		for (size_t e = 0; e < n; e++) {
			float v = (float)uni();
			uint16_t h = dt[i] == LM_F16 ? lm_f32_to_f16(v) : lm_f32_to_bf16(v);
			memcpy(store + es * e, dt[i] == LM_F32 ? (void *)&v : (void *)&h, es);
		}
		W[i] = (lm_mat){.data = store, .dtype = dt[i], .tr = tr[i], .rows = rows[i],
		                .cols = cols[i], .ld = tr[i] ? rows[i] : cols[i]};
		x[i] = i == 1 ? x[0] : randv(cols[i]);
		y[i] = lm_floats(rows[i]);
		ref[i] = lm_floats(rows[i]);
		lm_matmul(ref[i], x[i], 1, W[i]);
	}
	int same = 1;
	for (int th = 1; th <= 2; th++)
		for (int k = K - 1; k <= K; k++) {   /* without and with the one of 600 inputs */
			lm_set_threads(th);
			lm_matmul_each(k, y, x, W);
			for (int i = 0; i < k; i++)
				same &= !memcmp(y[i], ref[i], rows[i] * sizeof(float));
		}
	lm_set_threads(1);
	printf("%s kernel[%s] matmul_each: the bits of lm_matmul, on 1 and 2 threads\n",
	       same ? "PASS" : "FAIL", lm_isa_name(lm_isa()));
	failures += !same;
	for (int i = 0; i < K; i++) {
		free((void *)W[i].data);
		if (i != 1)
			free((void *)x[i]);
		free(y[i]);
		free(ref[i]);
	}
}

/* Two threads, as two models served side by side, each running the
 * float decode products over and over: every result must be the bits it
 * gave alone.  The pool runs one caller's job at a time, so each runs on
 * its own thread (one pool thread): what is shared is the products'
 * buffers (an [in, out] weight's partial sums, BF16's paired inputs,
 * lm_matmul_each's jobs). */
typedef struct {
	lm_mat W[3];       /* BF16 [out, in], F32 [in, out] past a chunk, F16 [in, out] */
	float *x[3], *y[3], *want[3];
	int bad;
} Caller;

static lm_mat float_weight(int dtype, int tr, long rows, long cols)
{
	size_t es = lm_dtype_size(dtype), n = (size_t)rows * cols;
	unsigned char *store = lm_alloc(n * es);
	for (size_t e = 0; e < n; e++) {
		float v = (float)uni();
		uint16_t h = dtype == LM_F16 ? lm_f32_to_f16(v) : lm_f32_to_bf16(v);
		memcpy(store + es * e, dtype == LM_F32 ? (void *)&v : (void *)&h, es);
	}
	return (lm_mat){.data = store, .dtype = dtype, .tr = tr, .rows = rows, .cols = cols,
	                .ld = tr ? rows : cols};
}

static pthread_barrier_t two_start;

static void *caller_run(void *arg)
{
	Caller *c = arg;
	pthread_barrier_wait(&two_start);    /* both at once, not one after the other */
	for (int i = 0; i < 2000; i++) {
		if (i % 2)
			lm_matmul_each(3, c->y, (const float *const *)c->x, c->W);
		else
			for (int k = 0; k < 3; k++)
				lm_matmul(c->y[k], c->x[k], 1, c->W[k]);
		for (int k = 0; k < 3; k++)
			c->bad += memcmp(c->y[k], c->want[k], c->W[k].rows * sizeof(float)) != 0;
	}
	return NULL;
}

static void test_two_callers(void)
{
	lm_set_threads(1);
	Caller c[2];
	for (int i = 0; i < 2; i++) {
		c[i].W[0] = float_weight(LM_BF16, 0, 40 + 24 * i, 96 + 64 * i);
		c[i].W[1] = float_weight(LM_F32, 1, 30 + 20 * i, 300 + 200 * i);
		c[i].W[2] = float_weight(LM_F16, 1, 50 - 10 * i, 40 + 24 * i);
		c[i].bad = 0;
		for (int k = 0; k < 3; k++) {
			c[i].x[k] = randv(c[i].W[k].cols);
			c[i].y[k] = lm_floats(c[i].W[k].rows);
			c[i].want[k] = lm_floats(c[i].W[k].rows);
			lm_matmul(c[i].want[k], c[i].x[k], 1, c[i].W[k]);
		}
	}
	pthread_t tid[2];
	pthread_barrier_init(&two_start, NULL, 2);
	for (int i = 0; i < 2; i++)
		pthread_create(&tid[i], NULL, caller_run, &c[i]);
	for (int i = 0; i < 2; i++)
		pthread_join(tid[i], NULL);
	pthread_barrier_destroy(&two_start);
	int bad = c[0].bad + c[1].bad;
	printf("%s kernel[%s] matmul: two callers at once, the bits of each alone%s\n",
	       bad ? "FAIL" : "PASS", lm_isa_name(lm_isa()), bad ? " (results changed)" : "");
	failures += bad != 0;
	for (int i = 0; i < 2; i++)
		for (int k = 0; k < 3; k++) {
			free((void *)c[i].W[k].data);
			free(c[i].x[k]);
			free(c[i].y[k]);
			free(c[i].want[k]);
		}
}

/* The pool: every unit of every job is run once, in ranges cut at
 * multiples of align, over many short jobs back to back, where a worker
 * still finishing one job (or late to it) meets the next. */
typedef struct {
	_Atomic int hits[512];
	long align;
	int misaligned;
} Cover;

static void cover(void *ctx, long lo, long hi)
{
	Cover *c = ctx;
	if (lo % c->align)
		c->misaligned = 1;
	for (long i = lo; i < hi; i++)
		c->hits[i]++;
}

static void test_pool(int threads)
{
	static Cover c;
	uint64_t seed = 7;   /* its own: the other tests draw the inputs they drew before */
	int bad = 0;
	lm_set_threads(threads);
	for (long job = 0; job < 20000 && !bad; job++) {
		long total = 1 + (long)((xorshift_uni(&seed) + 1) * 255.5);
		memset(&c, 0, sizeof c);
		c.align = 1 + (long)((xorshift_uni(&seed) + 1) * 8);
		lm_parallel(total, c.align, cover, &c);
		for (long i = 0; i < 512; i++)
			bad |= c.hits[i] != (i < total);
		bad |= c.misaligned;
	}
	lm_set_threads(1);
	printf("%s kernel[%s] pool of %d threads: each unit of 20000 jobs run once, ranges aligned\n",
	       bad ? "FAIL" : "PASS", lm_isa_name(lm_isa()), threads);
	failures += bad;
}

/* The streaming and prefill products of every dtype, order and shape. */
static void test_matmul_all(void)
{
	int dtypes[3] = {LM_F32, LM_BF16, LM_F16};
	for (int th = 1; th <= 2; th++) {
		lm_set_threads(th);              /* shares cut at multiples of 16 */
		for (int i = 0; i < 3; i++)
			for (int tr = 0; tr < 2; tr++) {
				if (th == 2) {
					test_matmul(dtypes[i], tr, 1, 4099, 19);  /* blocks of 4096 and a tail */
					test_matmul(dtypes[i], tr, 2, 203, 67);
					test_matmul(dtypes[i], tr, 1, 70, 600);   /* [in, out]: input chunks */
					test_matmul(dtypes[i], tr, 6, 70, 600);   /* and a tail chunk */
					continue;
				}
				test_matmul(dtypes[i], tr, 1, 37, 29);
				test_matmul(dtypes[i], tr, 1, 39, 100);   /* vector blocks and tails */
				test_matmul(dtypes[i], tr, 1, 45, 96);    /* whole vectors only */
				test_matmul(dtypes[i], tr, 2, 21, 70);    /* every token count... */
				test_matmul(dtypes[i], tr, 3, 21, 70);
				test_matmul(dtypes[i], tr, 4, 21, 70);
				test_matmul(dtypes[i], tr, 5, 23, 48);    /* ...a group and one more */
				test_matmul(dtypes[i], tr, 1, 300, 41);   /* whole 256-output blocks */
				test_matmul(dtypes[i], tr, 7, 300, 41);
				test_matmul(dtypes[i], tr, 8, 19, 33);    /* the last streamed count */
				test_matmul(dtypes[i], tr, 6, 77, 2500);  /* blocks of outputs, an odd tail */
				test_matmul(dtypes[i], tr, 12, 150, 40);  /* prefill: panels and a tail */
				test_matmul(dtypes[i], tr, 1, 45, 31);    /* one short of a block of 32 */
				test_matmul(dtypes[i], tr, 3, 45, 95);    /* a row alone after the pairs */
			}
	}
	for (int i = 0; i < 3; i++)
		for (int tr = 0; tr < 2; tr++) {
			test_matmul_threads(dtypes[i], tr, 1, 300, 700);
			test_matmul_threads(dtypes[i], tr, 5, 300, 700);
			/* runs of quarters and pairs of halves, rows left alone,
			 * columns past the last block of 32 */
			test_matmul_threads(dtypes[i], tr, 1, 301, 95);
			test_matmul_threads(dtypes[i], tr, 2, 301, 95);
		}
}

int main(void)
{
	lm_set_threads(1);
	/* both of the AVX-512 path's [in, out] kernels, whichever this CPU
	 * takes; the other paths have one */
	for (int wide = 0; wide < (lm_isa() == LM_ISA_AVX512 ? 2 : 1); wide++) {
		lm_cols_wide = wide;
		test_matmul_all();
	}
	lm_cols_wide = -1;
	test_pool(2);
	test_pool(3);
	test_two_callers();
	test_fast_bf16_all();
	lm_set_threads(1);
	test_f16_values();
	test_embed();
	long dims[3] = {10, 64, 2053};       /* a tail only; whole vectors; both */
	for (int i = 0; i < 3; i++) {
		float *w = randv(3 * dims[i]);
		test_rmsnorm(dims[i], NULL, 1, "without weight");
		test_rmsnorm(dims[i], w, 1, "one shared weight");
		test_rmsnorm(dims[i], w, 3, "per-head weights");
		free(w);
	}
	for (int style = 0; style < 2; style++) {
		test_rope(style, 12, 8);
		test_rope(style, 128, 128);
		test_rope(style, 100, 78);           /* pairs past the last vector */
	}
	long scores[6] = {1, 5, 8, 9, 31, 1000};
	for (int i = 0; i < 6; i++)
		test_expsum(scores[i]);
	long acts[4] = {3, 16, 37, 1000};
	for (int i = 0; i < 4; i++)
		test_activations(acts[i]);
	float rates[3] = {1e-3f, 0.7f, 50.0f};
	for (int i = 0; i < 4; i++)
		for (int r = 0; r < 3; r++)
			test_decay(acts[i] + 8, rates[r]);
	test_conv(2, 0, 0, 5, 4);
	test_conv(2, 0, 1, 5, 4);
	test_conv(4, 1, 0, 5, 4);
	test_conv(4, 1, 1, 5, 4);
	test_conv(4, 1, 1, 200, 2);     /* blocks of channels and a rest; a call shorter than the history */
	test_conv(100, 0, 0, 131, 7);   /* so many taps that a block holds fewer channels */
	test_conv(1, 0, 1, 70, 4);      /* no history at all */
	for (int t = 2; t <= 3; t++)
		test_each(t);
	test_fake8();
	long chunks[3] = {23, 1, 5};
	for (int i = 0; i < 3; i++) {
		test_attend(LM_KV_FULL, 0, (lm_mask){0, 0}, chunks[i], "causal, full cache");
		test_attend(LM_KV_RING, 4, (lm_mask){4, 0}, chunks[i], "window 4, ring of 4");
		test_attend(LM_KV_RING, 6, (lm_mask){0, 6}, chunks[i], "chunk 6, ring of 6");
		test_attend(LM_KV_FULL, 0, (lm_mask){7, 0}, chunks[i], "window 7, full cache");
	}
	test_attend_hd(LM_KV_FULL, 0, (lm_mask){0, 0}, 5, "causal, full cache", 128);
	test_attend_hd(LM_KV_RING, 6, (lm_mask){0, 6}, 1, "chunk 6, ring of 6", 77);
	test_gated_delta(3, 128, 24, 1);     /* AVX-512 keeps these rows in registers */
	test_gated_delta(2, 64, 40, 2);
	test_gated_delta(2, 133, 17, 2);     /* longer rows, tails */
	test_gated_delta(4, 5, 3, 1);
	test_ssm(4, 8, 64, 2);
	test_ssm(3, 5, 67, 1);
	test_ssm(2, 3, 5, 2);
	test_route_grouped();
	test_moe(0, 5);
	test_moe(1, 5);
	test_moe(0, 1);     /* decoding: lm_matmul_each */
	test_moe(1, 1);
	test_matmul_each();
	return failures != 0;
}
