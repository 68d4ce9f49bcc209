/* test_qmat: products and rows of quantized matrices (LM_Q) against a
 * naive bit reader in double precision.
 *
 * The reader takes element c of a row one bit at a time, straight from the
 * definition in lmcc.h (bit p of the row is bit p % 32 of word p / 32), so
 * it shares nothing with the kernels' unpacking.  Every bit width, group
 * size and scale dtype is covered, on views that start rows into a larger
 * tensor (one of q/k/v in a fused projection, one expert of a stack), with
 * odd row counts, token counts on both sides of the decode/prefill switch,
 * negative scales and activations with a nonzero mean (so that the
 * s * (q . x) + b * sum(x) split cancels as it does in real layers).
 * Runs under whichever instruction set LMCC_ISA selects. */
#include "rt.h"
#include "gemm.h"
#include "harness.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures;
static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static double uni(void)        /* in [-1, 1) */
{
	return (next() >> 11) * (1.0 / 9007199254740992.0) * 2 - 1;
}

static void result(int ok, const char *name, const char *fmt, double v)
{
	if (ok) {
		printf("PASS qmat %s", name);
		if (strstr(fmt, "relative"))
			printf(" (rel %.2g)", v);
		printf("\n");
	} else {
		printf("FAIL qmat %s: ", name);
		printf(fmt, v);
		printf("\n");
		failures++;
	}
}

/* A quantized tensor of `total` rows and a view of `rows` of them starting
 * at row `off`.  ld and sld may exceed the packed width. */
typedef struct {
	uint32_t *words;
	unsigned char *scales, *biases;
	lm_mat W;
} Q;

static const char *dtname(int dt)
{
	return dt == LM_F32 ? "f32" : dt == LM_F16 ? "f16" : "bf16";
}

static void put(unsigned char *p, int dt, size_t i, double v)
{
	if (dt == LM_F32) {
		float f = (float)v;
		memcpy(p + 4 * i, &f, 4);
	} else if (dt == LM_BF16) {
		uint16_t h = lm_f32_to_bf16((float)v);
		memcpy(p + 2 * i, &h, 2);
	} else {
		/* a half with random sign, exponent in [-9, 1] and mantissa */
		uint16_t h = (uint16_t)((v < 0 ? 0x8000 : 0) + ((6 + next() % 11) << 10)
		                        + (next() & 0x3ff));
		memcpy(p + 2 * i, &h, 2);
	}
}

static Q make(int bits, int group, int sdtype, long rows, long cols, long off,
              long pad)
{
	Q q;
	long total = off + rows + 2, ld = cols * bits / 32 + pad, sld = cols / group + pad;
	size_t es = lm_dtype_size(sdtype);
	q.words = lm_alloc(total * ld * 4);
	q.scales = lm_alloc(total * sld * es);
	q.biases = lm_alloc(total * sld * es);
	for (long i = 0; i < total * ld; i++)
		q.words[i] = (uint32_t)next();
	double mid = ((1 << bits) - 1) / 2.0;
	for (long i = 0; i < total * sld; i++) {
		double s = uni() * 0.02;           /* negative scales too */
		put(q.scales, sdtype, i, s);
		double st = lm_load_f32(q.scales, sdtype, i);
		/* biases near -s * mid, as quantize chooses them */
		put(q.biases, sdtype, i, -st * mid * (1 + 0.3 * uni()));
	}
	q.W = (lm_mat){.data = q.words + off * ld, .dtype = LM_Q, .rows = rows, .cols = cols,
	               .ld = ld, .bits = bits, .group = group, .sdtype = sdtype,
	               .scales = q.scales + off * sld * es, .biases = q.biases + off * sld * es,
	               .sld = sld};
	return q;
}

static void drop(Q *q)
{
	free(q->words);
	free(q->scales);
	free(q->biases);
}

static double naive_w(const lm_mat *W, long r, long c)
{
	size_t g = (size_t)r * W->sld + c / W->group;
	return (double)lm_load_f32(W->scales, W->sdtype, g) * packed_code(W, r, c)
	       + lm_load_f32(W->biases, W->sdtype, g);
}

/* With scale 1 and bias 0 a dequantized row is the integers themselves. */
static void test_unpack(int bits, int group)
{
	long rows = 5, cols = 3 * group;
	Q q = make(bits, group, LM_F32, rows, cols, 2, 1);
	for (long i = 0; i < (rows + 4) * q.W.sld; i++) {
		((float *)q.scales)[i] = 1;
		((float *)q.biases)[i] = 0;
	}
	float *row = lm_floats(cols);
	long bad = -1;
	for (long r = 0; r < rows && bad < 0; r++) {
		lm_qrow(row, &q.W, r);
		for (long c = 0; c < cols; c++)
			if (row[c] != packed_code(&q.W, r, c)) {
				bad = r * cols + c;
				break;
			}
	}
	char name[64];
	snprintf(name, sizeof name, "unpack bits=%d group=%d", bits, group);
	result(bad < 0, name, "element %.0f differs from the bit reader", bad);
	free(row);
	drop(&q);
}

/* A dequantized row is MLX's: fl(fl(s * q) + b), exactly. */
static void test_row(int bits, int group, int sdtype)
{
	long rows = 3, cols = 2 * group;
	Q q = make(bits, group, sdtype, rows, cols, 1, 0);
	float *row = lm_floats(cols);
	long bad = -1;
	for (long r = 0; r < rows && bad < 0; r++) {
		lm_qrow(row, &q.W, r);
		for (long c = 0; c < cols; c++) {
			size_t g = (size_t)r * q.W.sld + c / group;
			volatile float p = lm_load_f32(q.W.scales, sdtype, g) * (float)packed_code(&q.W, r, c);
			volatile float w = p + lm_load_f32(q.W.biases, sdtype, g);
			if (memcmp(&row[c], (const void *)&w, 4)) {
				bad = r * cols + c;
				break;
			}
		}
	}
	char name[64];
	snprintf(name, sizeof name, "row bits=%d group=%d %s", bits, group, dtname(sdtype));
	result(bad < 0, name, "element %.0f is not fl(fl(s * q) + b)", bad);
	free(row);
	drop(&q);
}

static void test_product(int bits, int group, int sdtype, long n, long rows,
                         long groups, long off)
{
	long cols = groups * group;
	Q q = make(bits, group, sdtype, rows, cols, off, off & 1);
	float *x = lm_floats(n * cols), *y = lm_floats(n * rows);
	for (long i = 0; i < n * cols; i++)
		x[i] = (float)(uni() + 0.3);
	double *wd = lm_alloc(rows * cols * sizeof(double)), md = 0, mr = 1e-30;
	for (long r = 0; r < rows; r++)
		for (long c = 0; c < cols; c++)
			wd[r * cols + c] = naive_w(&q.W, r, c);
	lm_matmul(y, x, n, q.W);
	for (long t = 0; t < n; t++)
		for (long r = 0; r < rows; r++) {
			double s = 0;
			for (long c = 0; c < cols; c++)
				s += wd[r * cols + c] * x[t * cols + c];
			double d = fabs(y[t * rows + r] - s);
			md = d <= md ? md : isnan(d) ? INFINITY : d;
			mr = fabs(s) > mr ? fabs(s) : mr;
		}
	char name[96];
	snprintf(name, sizeof name, "matmul bits=%d group=%d %s n=%ld %ldx%ld view+%ld",
	         bits, group, dtname(sdtype), n, rows, cols, off);
	result(md / mr <= 1e-5, name, "relative error %.3g > 1e-5", md / mr);
	free(x);
	free(y);
	free(wd);
	drop(&q);
}

/* --fast on AMX, or vdpbf16ps without AMX (gemm_bf16.c): the rows dequantized as lm_qrow reads
 * them and rounded to bf16, x rounded to bf16, products of bf16 pairs
 * exact in float32, so the error left is the float32 sums': at most
 * (cols + 8) 2^-24 sum |w x| an output.  The same bits on 1 and 2
 * threads.  Elsewhere --fast takes quantized weights as int8 (gemm_q8.c). */
static void test_fast_q(int bits, int group, int sdtype, long n, long rows, long groups, long off)
{
	long cols = groups * group;
	Q q = make(bits, group, sdtype, rows, cols, off, off & 1);
	lm_fast = 1;
	int fits = lm_gemm_bf16_fits(n, &q.W);
	if (!fits) {
		lm_fast = 0;
		drop(&q);
		return;
	}
	float *x = lm_floats(n * cols), *y1 = lm_floats(n * rows), *y2 = lm_floats(n * rows);
	float *row = lm_floats(cols);
	double *wb = lm_alloc(rows * cols * sizeof(double));
	for (long i = 0; i < n * cols; i++)
		x[i] = (float)(uni() + 0.3);
	for (long r = 0; r < rows; r++) {
		lm_qrow(row, &q.W, r);
		for (long c = 0; c < cols; c++)
			wb[r * cols + c] = lm_bf16_to_f32(lm_f32_to_bf16(row[c]));
	}
	lm_set_threads(1);
	lm_matmul(y1, x, n, q.W);
	lm_set_threads(2);
	lm_matmul(y2, x, n, q.W);
	lm_fast = 0;
	double worst = bf16_sum_worst(y1, x, wb, n, rows, cols);
	int same = !memcmp(y1, y2, n * rows * sizeof(float));
	char name[112];
	snprintf(name, sizeof name, "fast bf16 bits=%d group=%d %s n=%ld %ldx%ld view+%ld%s", bits,
	         group, dtname(sdtype), n, rows, cols, off, same ? "" : " (1 and 2 threads differ)");
	result(worst <= 1 && same, name, "%.3g of the bound", worst);
	free(x);
	free(y1);
	free(y2);
	free(row);
	free(wb);
	drop(&q);
}

static void test_embed(void)
{
	Q q = make(4, 32, LM_BF16, 9, 64, 0, 0);
	int tok[3] = {8, 0, 3};
	float x[3 * 64], row[64];
	lm_embed(x, q.W, tok, 3);
	int ok = 1;
	for (int t = 0; t < 3; t++) {
		lm_qrow(row, &q.W, tok[t]);
		ok &= !memcmp(row, x + t * 64, sizeof row);
	}
	result(ok, "embed bits=4 group=32 bf16", "%.0f", 0);
	drop(&q);
}


/* ---- MLX's FP modes ---- */

/* The value of a code, from the formats' definitions (lmcc.h). */
static double naive_e2m1(unsigned c)
{
	int e = (c >> 1) & 3, m = c & 1;
	double v = e ? pow(2, e - 1) * (1 + m / 2.0) : m / 2.0;
	return c & 8 ? -v : v;
}

static double naive_e4m3(unsigned c)
{
	int e = (c >> 3) & 15, m = c & 7;
	double v = e ? pow(2, e - 7) * (1 + m / 8.0) : m * pow(2, -9);
	return c & 0x80 ? -v : v;
}

static double naive_e8m0(unsigned c)
{
	return c == 255 ? INFINITY : pow(2, (int)c - 127);
}

static int same(double a, double b)
{
	return (isnan(a) && isnan(b)) || (a == b && signbit(a) == signbit(b));
}

static void test_codes(void)
{
	int bad = -1;
	for (unsigned c = 0; c < 16; c++)
		if (!same(lm_e2m1(c), naive_e2m1(c)))
			bad = (int)c;
	result(bad < 0, "e2m1 all 16 codes", "code %.0f", bad);
	bad = -1;
	for (unsigned c = 0; c < 256; c++)
		if (!same(lm_e4m3(c), naive_e4m3(c)))
			bad = (int)c;
	result(bad < 0 && lm_e4m3(0x7f) == 480 && lm_e4m3(0xff) == -480,
	       "e4m3 all 256 codes (0x7f is 480, no NaN)", "code %.0f", bad);
	bad = -1;
	for (unsigned c = 0; c < 256; c++)
		if (!same(lm_e8m0(c), naive_e8m0(c)))
			bad = (int)c;
	result(bad < 0 && isinf(lm_e8m0(255)) && lm_e8m0(0) == ldexpf(1, -127),
	       "e8m0 all 256 codes (255 inf, 0 2^-127)", "code %.0f", bad);
}

static const char *mode_tag(int mode)
{
	return lm_qmode_name(mode);
}

/* An FP-mode tensor: random codes (every code appears), scale bytes from
 * [lo, lo + span). */
static Q make_fp(int mode, long rows, long cols, long off, long pad, int lo, int span)
{
	int bits = mode == LM_MXFP8 ? 8 : 4, group = mode == LM_NVFP4 ? 16 : 32;
	Q q;
	long total = off + rows + 2, ld = cols * bits / 32 + pad, sld = cols / group + pad;
	q.words = lm_alloc(total * ld * 4);
	q.scales = lm_alloc(total * sld);
	q.biases = NULL;
	for (long i = 0; i < total * ld; i++)
		q.words[i] = (uint32_t)next();
	for (long i = 0; i < total * sld; i++)
		q.scales[i] = (unsigned char)(lo + next() % span);
	q.W = (lm_mat){.data = q.words + off * ld, .dtype = LM_Q, .rows = rows, .cols = cols,
	               .ld = ld, .bits = bits, .group = group, .sdtype = LM_U8, .mode = mode,
	               .scales = q.scales + off * sld, .sld = sld};
	return q;
}

static double naive_fp(const lm_mat *W, long r, long c)
{
	unsigned code = packed_code(W, r, c), s = ((const unsigned char *)W->scales)[r * W->sld + c / W->group];
	double v = W->bits == 4 ? naive_e2m1(code) : naive_e4m3(code);
	return v * (W->mode == LM_NVFP4 ? naive_e4m3(s) : naive_e8m0(s));
}

/* A dequantized row is value * scale, exactly (few significant bits), for
 * every code and every scale byte (infinity times zero is NaN). */
static void test_fp_row(int mode, long cols)
{
	long rows = 256 / (cols / (mode == LM_NVFP4 ? 16 : 32)) + 3;
	Q q = make_fp(mode, rows, cols, 1, 1, 0, 256);
	long ng = cols / q.W.group;
	for (long r = 0; r < rows; r++)          /* every scale byte */
		for (long g = 0; g < ng; g++)
			q.scales[(r + 1) * q.W.sld + g] = (unsigned char)(r * ng + g);
	float *row = lm_floats(cols);
	long bad = -1;
	for (long r = 0; r < rows && bad < 0; r++) {
		lm_qrow(row, &q.W, r);
		for (long c = 0; c < cols; c++)
			if (!same(row[c], (float)naive_fp(&q.W, r, c))) {
				bad = r * cols + c;
				break;
			}
	}
	char name[64];
	snprintf(name, sizeof name, "row %s cols=%ld all scale bytes", mode_tag(mode), cols);
	result(bad < 0, name, "element %.0f is not value * scale", bad);
	free(row);
	free(q.words);
	free(q.scales);
}

static void test_fp_product(int mode, long n, long rows, long cols, long off)
{
	/* scale bytes near 2^0 (E8M0 120..134; E4M3 0x28..0x48: 2^-2..2^2) */
	Q q = mode == LM_NVFP4 ? make_fp(mode, rows, cols, off, off & 1, 0x28, 0x20)
	                       : make_fp(mode, rows, cols, off, off & 1, 120, 15);
	float *x = lm_floats(n * cols), *y = lm_floats(n * rows);
	for (long i = 0; i < n * cols; i++)
		x[i] = (float)(uni() + 0.3);
	double md = 0, mr = 1e-30;
	lm_matmul(y, x, n, q.W);
	for (long t = 0; t < n; t++)
		for (long r = 0; r < rows; r++) {
			double s = 0, a = 0;
			for (long c = 0; c < cols; c++) {
				s += naive_fp(&q.W, r, c) * x[t * cols + c];
				a += fabs(naive_fp(&q.W, r, c) * x[t * cols + c]);
			}
			double d = fabs(y[t * rows + r] - s);
			md = d <= md ? md : isnan(d) ? INFINITY : d;
			mr = a > mr ? a : mr;
		}
	char name[96];
	snprintf(name, sizeof name, "matmul %s n=%ld %ldx%ld view+%ld", mode_tag(mode), n, rows,
	         cols, off);
	result(md / mr <= 1e-6, name, "relative error %.3g > 1e-6", md / mr);
	free(x);
	free(y);
	free(q.words);
	free(q.scales);
}

static void test_fp(void)
{
	test_codes();
	int modes[3] = {LM_MXFP4, LM_NVFP4, LM_MXFP8};
	for (int m = 0; m < 3; m++) {
		test_fp_row(modes[m], 32);
		test_fp_row(modes[m], 544);
		long cols[4] = {32, 96, 512, 544};
		for (int k = 0; k < 4; k++) {
			test_fp_product(modes[m], 1, 37, cols[k], 5);
			test_fp_product(modes[m], 2, 23, cols[k], 1);    /* rows in pairs */
			test_fp_product(modes[m], 3, 19, cols[k], 0);
			test_fp_product(modes[m], 9, 71, cols[k], 2);
		}
		test_fp_product(modes[m], 1, 45, 4096, 4);
		if (modes[m] == LM_NVFP4) {
			/* rows of 16 * odd inputs: a lone group of 16 at the end */
			long odd[4] = {16, 48, 112, 528};
			for (int k = 0; k < 4; k++) {
				test_fp_product(modes[m], 1, 21, odd[k], 3);
				test_fp_product(modes[m], 4, 9, odd[k], 0);
				test_fp_product(modes[m], 11, 35, odd[k], 1);
			}
			test_fp_row(modes[m], 48);
		}
		test_fp_product(modes[m], 20, 133, 256, 1);
	}
}

/* ---- two callers at once ---- */

/* Two threads, as two models served side by side, each multiplying its own
 * matrix (decode, prefill, and --fast's int8 prefill) over and over: every
 * result must be the one it gave alone.  The pool runs one caller's job at
 * a time, so each runs its products on its own thread (one pool thread):
 * what is shared is the kernels' scratch. */
typedef struct {
	Q q;
	long n;
	float *x, *y, *want;
	int bad;
} Caller;

static void *caller_run(void *arg)
{
	Caller *c = arg;
	for (int i = 0; i < 200; i++) {
		lm_matmul(c->y, c->x, c->n, c->q.W);
		c->bad += memcmp(c->y, c->want, c->n * c->q.W.rows * sizeof(float)) != 0;
	}
	return NULL;
}

static void test_two_callers(long n, int fast)
{
	lm_set_threads(1);
	lm_fast = fast;
	Caller c[2] = {{make(4, 64, LM_BF16, 24, 64 * 12, 0, 0), n, 0, 0, 0, 0},
	               {make(8, 32, LM_F16, 40, 32 * 20, 1, 1), n, 0, 0, 0, 0}};
	for (int k = 0; k < 2; k++) {
		long cols = c[k].q.W.cols, rows = c[k].q.W.rows;
		c[k].x = lm_floats(n * cols);
		c[k].y = lm_floats(n * rows);
		c[k].want = lm_floats(n * rows);
		for (long i = 0; i < n * cols; i++)
			c[k].x[i] = (float)(uni() + 0.3);
		lm_matmul(c[k].want, c[k].x, n, c[k].q.W);
	}
	pthread_t tid[2];
	for (int k = 0; k < 2; k++)
		pthread_create(&tid[k], NULL, caller_run, &c[k]);
	for (int k = 0; k < 2; k++)
		pthread_join(tid[k], NULL);
	char name[96];
	snprintf(name, sizeof name, "two callers at once, n=%ld%s", n, fast ? " --fast" : "");
	result(!c[0].bad && !c[1].bad, name, "%.0f of 400 results changed", c[0].bad + c[1].bad);
	for (int k = 0; k < 2; k++) {
		free(c[k].x);
		free(c[k].y);
		free(c[k].want);
		drop(&c[k].q);
	}
	lm_fast = 0;
	lm_set_threads(2);
}

int main(void)
{
	lm_set_threads(2);
	int bits[6] = {2, 3, 4, 5, 6, 8}, groups[3] = {32, 64, 128};
	int sdt[3] = {LM_F32, LM_F16, LM_BF16};
	for (int b = 0; b < 6; b++)
		for (int g = 0; g < 3; g++) {
			test_unpack(bits[b], groups[g]);
			for (int s = 0; s < 3; s++) {
				test_row(bits[b], groups[g], sdt[s]);
				/* decode: one token, a few, and the TOK-token blocking's tails */
				test_product(bits[b], groups[g], sdt[s], 1, 37, 3, 5);
				test_product(bits[b], groups[g], sdt[s], 3, 19, 2, 0);
			}
			test_product(bits[b], groups[g], LM_BF16, 5, 33, 4, 3);
			/* 512 columns and a group more: whole vector chunks of
			 * every width (up to 256 columns) and a tail */
			long wide = 512 / groups[g] + 1;
			test_product(bits[b], groups[g], LM_BF16, 1, 13, wide, 1);
			test_product(bits[b], groups[g], LM_F16, 2, 11, wide, 1);   /* rows in pairs */
			test_product(bits[b], groups[g], LM_F16, 4, 6, wide, 2);
			test_product(bits[b], groups[g], LM_F32, 6, 9, wide, 0);
			test_product(bits[b], groups[g], LM_BF16, 12, 21, wide, 3);
			test_product(bits[b], groups[g], LM_F16, 8, 7, 1, 1);
			/* prefill: panels and their tails, split across threads */
			test_product(bits[b], groups[g], LM_BF16, 9, 71, 2, 2);
			test_product(bits[b], groups[g], LM_F32, 20, 133, 3, 0);
			/* gemm.c's blocks of 256 inputs: one starting inside a
			 * vector of groups' scales, the last a part of a block, two
			 * blocks of 192 tokens, the second short */
			test_product(bits[b], groups[g], LM_BF16, 200, 37, 1152 / groups[g] + 1, 1);
		}
	/* wide rows as real layers have them, on both regimes */
	test_product(4, 64, LM_BF16, 1, 45, 64, 4);
	test_product(8, 64, LM_BF16, 2, 45, 64, 0);
	test_product(4, 32, LM_F16, 1, 17, 128, 1);
	test_product(3, 128, LM_BF16, 1, 29, 24, 1);
	test_product(6, 64, LM_F32, 1, 29, 48, 0);
	test_product(4, 64, LM_BF16, 16, 45, 64, 4);
	/* --fast on AMX: panels of 32 rows, blocks of 256 inputs and their tails */
	test_fast_q(4, 64, LM_BF16, 33, 45, 9, 1);
	test_fast_q(8, 32, LM_F16, 12, 70, 3, 0);
	test_fast_q(3, 128, LM_F32, 40, 33, 5, 2);
	test_fast_q(2, 32, LM_BF16, 9, 96, 17, 0);
	test_fast_q(6, 64, LM_BF16, 520, 31, 10, 1);
	test_embed();
	test_fp();
	test_two_callers(1, 0);
	test_two_callers(12, 0);
	test_two_callers(12, 1);
	return failures != 0;
}
