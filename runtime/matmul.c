/* matmul.c: y = x W^T for every weight layout; the one place that knows
 * how a product is computed.
 *
 * The outputs (rows of W) are split across the pool's threads; each thread
 * streams its own rows.  Two regimes:
 *   - few tokens (decoding): speed is the weight bytes read per second, so
 *     each weight is read once, widened to float32 in registers and
 *     multiplied with up to four tokens at once, by the kernels of the
 *     instruction set lm_isa() chose (matmul_512.c, matmul_avx2.c,
 *     matmul_c.c);
 *   - many tokens (prefill): speed is the matrix rate: lmcc's blocked
 *     product (gemm.c), which widens half-precision weights a panel at a
 *     time inside its blocking, or, with LMCC_GEMM=openblas, OpenBLAS
 *     sgemm on float32 weights as they are and on half-precision ones
 *     widened a panel at a time (either way the widening costs 1/n of
 *     the product).
 * Activations stay float32: rounding them to bf16 to use the bf16
 * dot-product instructions moves the results by about 1e-3, ten times the
 * bound the golden tests hold us to, so only --fast does (gemm_bf16.c). */
#define _GNU_SOURCE
#include "gemm.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>

enum {
	PANEL = 128,     /* rows of a half-precision weight widened at once */
};

typedef struct {
	float *y;
	const float *x, *x2;  /* x2: x in the kernels' layout for BF16 rows, or 0 */
	long n;
	lm_mat W;
	const lm_stream *k;
} Job;

/* More than GROUP tokens take several passes, each over a block of
 * outputs small enough (BLOCK bytes of weights) that the passes after the
 * first read it from the cache: the weights are read from memory once
 * for all FEW tokens. */
enum { BLOCK = 32 << 10 };

static void few(void *ctx, long r0, long r1)
{
	const Job *j = ctx;
	long step = r1 - r0;
	if (j->n > GROUP && !j->W.tr) {
		step = BLOCK / (j->W.cols * (long)lm_esize(j->W.dtype));
		step = step < 2 ? 2 : step;
	}
	for (long b0 = r0; b0 < r1; b0 += step) {
		long b1 = r1 - b0 < step ? r1 : b0 + step;
		for (long t = 0; t < j->n; t += GROUP) {
			long g = j->n - t < GROUP ? j->n - t : GROUP;
			(j->W.tr ? j->k->cols : j->k->rows)(&j->W, g, j->x + t * j->W.cols,
			                                    j->x2 ? j->x2 + t * j->W.cols : NULL,
			                                    j->y + t * j->W.rows, b0, b1);
		}
	}
}

/* ---- few tokens, W stored [in, out] ----
 *
 * An input row of W is a contiguous run of all the outputs, so the way to
 * stream W is whole rows in order, as the bound's read loop does.  Cutting
 * the outputs among the threads instead leaves each of them short runs
 * strided a row apart: with the pool's 8 ranges a thread, 2 KB runs of
 * Llama 4's BF16 experts, which took twice the CPU time of 8 KB runs.  So
 * the inputs are cut, in chunks of CHUNK rows: each chunk's products go to
 * a partial sum of every output, and the partials are added in chunk
 * order.  The chunks depend only on W's shape, so the sums are the same
 * whatever the thread count and whichever thread took a chunk.  Chunks of
 * 256 rows left two threads waiting on each other's last chunk (the pool
 * cuts 20 chunks into 16 ranges): 16384x5120 in F32 read at 0.80 to 0.83
 * of the two-thread bound where one thread reads 0.96 of its own, and
 * 0.92 to 0.93 in chunks of 128 (F16 and BF16 0.83 to 0.88 -> 0.86 to 0.89;
 * chunks of 64 no better; bench_matmul, idle, Intel Xeon family 6 model
 * 167). */
enum { CHUNK = 128 };

typedef struct {
	Job j;
	float *part;     /* [chunks, n, rows] */
	long chunks;
} Cols;

static void cols_chunks(void *ctx, long k0, long k1)
{
	const Cols *s = ctx;
	const Job *j = &s->j;
	long n = j->n, in = j->W.cols, rows = j->W.rows;
	for (long k = k0; k < k1; k++) {
		long c0 = k * CHUNK, m = in - c0 < CHUNK ? in - c0 : CHUNK;
		lm_mat C = j->W;
		C.data = (const char *)C.data + (size_t)c0 * C.ld * lm_esize(C.dtype);
		C.cols = m;
		const float *x = j->x + c0;
		if (n > 1) {     /* the kernels take x as [n, C.cols] */
			float *xc = lm_scratch((size_t)n * m);
			for (long t = 0; t < n; t++)
				memcpy(xc + t * m, j->x + t * in + c0, m * sizeof(float));
			x = xc;
		}
		float *p = s->part + k * n * rows;
		for (long t = 0; t < n; t += GROUP)
			j->k->cols(&C, n - t < GROUP ? n - t : GROUP, x + t * (n > 1 ? m : 0), NULL,
			           p + t * rows, 0, rows);
	}
}

static void cols_sum(void *ctx, long r0, long r1)
{
	const Cols *s = ctx;
	long n = s->j.n, rows = s->j.W.rows;
	for (long t = 0; t < n; t++) {
		float *y = s->j.y + t * rows;
		const float *p = s->part + t * rows;
		for (long r = r0; r < r1; r++)
			y[r] = p[r];
		for (long k = 1; k < s->chunks; k++) {
			p += n * rows;
			for (long r = r0; r < r1; r++)
				y[r] += p[r];
		}
	}
}

static void cols(Job j)
{
	static __thread float *part;    /* each caller's own, as lm_gemm's */
	static __thread long cap;
	Cols s = {j, NULL, (j.W.cols + CHUNK - 1) / CHUNK};
	s.part = lm_grow(&part, &cap, s.chunks * j.n * j.W.rows);
	lm_parallel(s.chunks, 1, cols_chunks, &s);
	lm_parallel(j.W.rows, 16, cols_sum, &s);
}

/* ---- many tokens ---- */

static void blas(void *ctx, long r0, long r1)
{
	const Job *j = ctx;
	const lm_mat *W = &j->W;
	long cols = W->cols, ldy = W->rows;
	if (W->dtype == LM_F32) {
		const float *w = (const float *)W->data + (W->tr ? r0 : r0 * W->ld);
		cblas_sgemm(CblasRowMajor, CblasNoTrans, W->tr ? CblasNoTrans : CblasTrans,
		            j->n, r1 - r0, cols, 1.0f, j->x, cols, w, W->ld, 0.0f,
		            j->y + r0, ldy);
		return;
	}
	/* Half precision: widen a panel of p outputs to float32 in the
	 * storage's own orientation (runs stay contiguous), then sgemm. */
	for (long p0 = r0; p0 < r1; p0 += PANEL) {
		long p = r1 - p0 < PANEL ? r1 - p0 : PANEL;
		float *w = lm_scratch((size_t)p * cols);
		if (W->tr) {
			for (long c = 0; c < cols; c++)         /* [cols, p] */
				j->k->widen(w + c * p, W->data, W->dtype, (size_t)c * W->ld + p0, p);
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, j->n, p, cols, 1.0f,
			            j->x, cols, w, p, 0.0f, j->y + p0, ldy);
		} else {
			for (long r = 0; r < p; r++)            /* [p, cols] */
				j->k->widen(w + r * cols, W->data, W->dtype, (size_t)(p0 + r) * W->ld, cols);
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, j->n, p, cols, 1.0f,
			            j->x, cols, w, cols, 0.0f, j->y + p0, ldy);
		}
	}
}

/* The kernels of the instruction set lm_isa() chose. */
static const lm_stream *kernels(void)
{
	static const lm_stream *k;
	if (!k)
		k = lm_isa() == LM_ISA_AVX512 ? &lm_stream_512
		  : lm_isa() == LM_ISA_AVX2 ? &lm_stream_avx2 : &lm_stream_c;
	return k;
}

/* x with each block of `pair` columns as [even | odd] (matmul.h), into x2. */
static const float *pairs_to(float *x2, const float *x, long n, long cols, long pair)
{
	for (long t = 0; t < n; t++) {
		const float *xt = x + t * cols;
		float *o = x2 + t * cols;
		for (long c = 0; c + pair <= cols; c += pair)
			for (long k = 0; k < pair / 2; k++) {
				o[c + k] = xt[c + 2 * k];
				o[c + pair / 2 + k] = xt[c + 2 * k + 1];
			}
	}
	return x2;
}

static const float *pairs(const float *x, long n, long cols, long pair)
{
	static __thread float *x2;
	static __thread long cap;
	return pairs_to(lm_grow(&x2, &cap, n * cols), x, n, cols, pair);
}

int lm_gemm_force = -1;

int lm_gemm_mode(void)
{
	if (lm_gemm_force < 0) {
		const char *e = getenv("LMCC_GEMM");
		if (!e || !*e)
			lm_gemm_force = LM_GEMM_CHOOSE;
		else if (!strcmp(e, "lmcc"))
			lm_gemm_force = LM_GEMM_LMCC;
		else if (!strcmp(e, "openblas"))
			lm_gemm_force = LM_GEMM_OPENBLAS;
		else
			lm_fail("LMCC_GEMM", "unknown product '%.40s' (lmcc or openblas)", e);
	}
	return lm_gemm_force;
}

int lm_gemm_own(void)
{
	/* Without AVX2, OpenBLAS's kernels for the CPU beat gcc's baseline
	 * SSE2 code (3 to 1 on Zen 3). */
	if (lm_gemm_mode())
		return lm_gemm_force == LM_GEMM_LMCC;
	return lm_isa() != LM_ISA_PORTABLE;
}

/* Whether n tokens times W go through lmcc's own product (gemm.c). */
static int own(long n, const lm_mat *W)
{
	if (lm_gemm_mode())
		return lm_gemm_force == LM_GEMM_LMCC;
	/* By measurement (bench_gemm on Zen 3, avx2, one and two threads, the
	 * bench models' shapes at 128 and 512 tokens): on half-precision
	 * weights lmcc's product is as fast as widened panels for sgemm or
	 * faster at every shape (1.0 to 1.4 times).  On float32 weights, which
	 * sgemm reads as they are, the faster depends on the CPU and on how well
	 * OpenBLAS knows it: lm_gemm_f32_own decides. */
	return lm_gemm_own() && n > FEW && (W->dtype != LM_F32 || lm_gemm_f32_own());
}

/* The float dtypes: rows of W across the pool's threads. */
static void dense(float *y, const float *x, long n, lm_mat W)
{
	Job j = {y, x, NULL, n, W, kernels()};
	if (n > FEW && own(n, &W)) {
		lm_gemm(y, x, n, &W, NULL);
		return;
	}
	if (n <= FEW && W.tr && W.cols > CHUNK) {
		cols(j);
		return;
	}
	if (n <= FEW && W.dtype == LM_BF16 && !W.tr && j.k->pair)
		j.x2 = pairs(x, n, W.cols, j.k->pair);
	lm_parallel(W.rows, 16, n <= FEW ? few : blas, &j);
}

/* ---- several products of one token (matmul.h) ---- */

typedef struct {
	long k;
	const Job *j;
	const long *start;   /* product i's rows are [start[i], start[i + 1]) of the job */
} Each;

static void each(void *ctx, long r0, long r1)
{
	const Each *e = ctx;
	for (long i = 0; i < e->k; i++) {
		const Job *j = &e->j[i];
		long a = e->start[i], b = a + j->W.rows;
		long lo = r0 > a ? r0 : a, hi = r1 < b ? r1 : b;
		if (lo < hi)
			(j->W.tr ? j->k->cols : j->k->rows)(&j->W, 1, j->x, j->x2, j->y, lo - a, hi - a);
	}
}

void lm_matmul_each(long k, float *const *y, const float *const *x, const lm_mat *W)
{
	static __thread Job *j;
	static __thread long *start, cap;
	static __thread float *x2;
	static __thread long cx2;
	const lm_stream *ks = kernels();
	long cols = 0;
	for (long i = 0; i < k; i++) {
		if (W[i].dtype == LM_Q || (W[i].tr && W[i].cols > CHUNK) || W[i].lora) {
			for (long q = 0; q < k; q++)
				lm_matmul(y[q], x[q], 1, W[q]);
			return;
		}
		cols += W[i].cols;
	}
	if (k > cap) {
		cap = k;
		j = lm_realloc(j, cap * sizeof *j);
		start = lm_realloc(start, (cap + 1) * sizeof *start);
	}
	float *p = lm_grow(&x2, &cx2, cols);
	start[0] = 0;
	for (long i = 0; i < k; i++) {
		j[i] = (Job){y[i], x[i], NULL, 1, W[i], ks};
		if (W[i].dtype == LM_BF16 && !W[i].tr && ks->pair) {
			/* products of one input (gate and up) share its reordering */
			if (i && x[i] == x[i - 1] && W[i].cols == W[i - 1].cols && j[i - 1].x2)
				j[i].x2 = j[i - 1].x2;
			else
				j[i].x2 = pairs_to(p, x[i], 1, W[i].cols, ks->pair);
			p += W[i].cols;
		}
		/* at multiples of 16, as lm_matmul's ranges: an [in, out] range's
		 * last few outputs are summed as a tail */
		start[i + 1] = start[i] + (W[i].rows + 15) / 16 * 16;
	}
	lm_parallel(start[k], 16, each, &(Each){k, j, start});
}

/* The pool splits the work, and OpenBLAS runs inside each share, on one
 * thread.  Its pthreads build (Debian's default) starts a worker per core
 * as it loads, and an idle worker spins on sched_yield for about 0.1 s
 * before it sleeps: on two cores, the first 0.1 s of every process ran
 * three busy threads (Intel Xeon family 6 model 207, 2 cores: 6% of the
 * samples of Kimi-Linear's 128-token prefill, which took 0.54 to 0.59 s
 * with OPENBLAS_NUM_THREADS=1 against 0.59 to 0.72 without, six runs
 * alternating; PLaMo-2's 1.09 to 1.15 s against 1.19 to 1.20 once the
 * workers were stopped here).  So the workers are stopped as
 * lmcc starts: a shared library's constructors run before those of
 * whatever loads it, so OpenBLAS's has run by then.  The stop is looked
 * up weakly: another BLAS, or OpenBLAS's serial build, has none. */
extern int blas_thread_shutdown_(void) __attribute__((weak));

__attribute__((constructor)) static void blas_serial(void)
{
	openblas_set_num_threads(1);
	if (blas_thread_shutdown_)
		blas_thread_shutdown_();
}

void lm_matmul(float *y, const float *x, long n, lm_mat W)
{
	static int once;
	if (!once) {     /* again, should OpenBLAS have loaded after lmcc */
		blas_serial();
		once = 1;
	}
	if (lm_gemm_bf16_fits(n, &W))     /* --fast, float or quantized W */
		lm_gemm_bf16(y, x, n, &W);
	else if (lm_gemm_bf16x3_fits(n, &W))
		lm_gemm_bf16x3(y, x, n, &W);
	else if (W.dtype == LM_Q && lm_gemm_q8_fits(n, &W))
		lm_gemm_q8(y, x, n, &W);
	else if (W.dtype == LM_Q)
		lm_qmatmul(y, x, n, W);
	else
		dense(y, x, n, W);
	if (W.lora)
		lm_lora(y, x, n, W.lora);
}
