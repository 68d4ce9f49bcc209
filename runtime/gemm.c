/* gemm.c: the prefill product y[n, rows] = x[n, cols] W^T, blocked for
 * the caches, with W read in its stored form.
 *
 * The loops are GotoBLAS's, for one block of at most MC tokens at a time.
 * The block's x is copied once into panels of MR tokens ([KC][MR] for
 * each block of KC inputs: one block of inputs, MC x KC floats, sits in
 * L2).  Each thread's outputs go NY at a time, NY such that the part of
 * y they make, which every block of inputs adds to, stays in L2 too.
 * For each block of inputs, W's outputs are widened to float32 NR at a
 * time into a panel [KC][NR] (the weight's only float copy, one panel
 * per thread, in L1); a micro-kernel keeps an MR x NR tile of y in
 * registers while it walks the KC inputs of the panels of both, so every
 * float loaded feeds MR or NR multiply-adds.  Each block of tokens widens
 * the weight again: with MC tokens that costs about 1/MC of the products,
 * less than keeping widened panels for the next block (measured).  Past
 * MC tokens the loops turn (share_wide): the inputs outermost, a block
 * holds up to about WIDE tokens, x's panel of KC inputs (512 KB) stays
 * in L2 and y goes to L3 and back once a block of inputs, so W is read
 * and widened once for 512 tokens, not three times (Intel Xeon family 6
 * model 207, 2 threads, BF16, 512 tokens, the two orders alternating:
 * plamo2 0.96 to 1.16 times as fast, llama4 1.04 to 1.14, kimi_linear
 * 1.01 to 1.07; the same sums, in the same order).
 *
 * Sums are float32, over the inputs in order within a block of KC and
 * block after block: another order than OpenBLAS's, the same precision. */
#include "gemm.h"

#include <cblas.h>
#include <string.h>
#include <strings.h>

enum {
	KC = LM_GEMM_KC,
	MC_ALL = 24,       /* a multiple of every MR (4, 6, 8) */
	MC = 8 * MC_ALL,   /* tokens per block, the outputs outermost */
	WIDE = 512,        /* about that many per block past MC, the inputs outermost */
	YBYTES = 128 << 10, /* of y, added to by every block of inputs (Zen 3's L2: 512 KB) */
	MAXTILE = 8 * 32,
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

/* Tokens [0, m) of op(A), inputs [c0, c0 + kc), times alpha, as panels
 * of MR tokens, [kc][MR] each; the tokens past m are zero.  op(A) = A
 * ([m, k], rows lda apart: x) or A^T (A stored [k, m]).  Each is read
 * along its rows. */
static void pack_a(float *dst, const float *A, long lda, int ta, float alpha, long m, long c0,
                   long kc, int MR)
{
	for (long i = 0; i < m; i += MR, dst += kc * MR) {
		if (ta) {
			for (long k = 0; k < kc; k++)
				for (long l = 0; l < MR; l++)
					dst[k * MR + l] = i + l < m ? alpha * A[(c0 + k) * lda + i + l] : 0;
			continue;
		}
		for (long l = 0; l < MR; l++) {
			if (i + l >= m) {
				for (long k = 0; k < kc; k++)
					dst[k * MR + l] = 0;
				continue;
			}
			const float *ar = A + (i + l) * lda + c0;
			for (long k = 0; k < kc; k++)
				dst[k * MR + l] = alpha * ar[k];
		}
	}
}

/* The same panel as lm_pack_fn through a row reader: the rows into tmp
 * ([nr][kc], float32), then transposed by the kernels' own packer, whose
 * vector transposes cost a fraction of an element-by-element one. */
static void pack_rows(const lm_gemm_kern *g, float *dst, float *tmp, const lm_mat *W,
                      lm_rowseg_fn *row, long r0, long nr, long c0, long kc)
{
	row(tmp, W, r0, nr, c0, kc);
	lm_mat T = {.data = tmp, .dtype = LM_F32, .rows = nr, .cols = kc, .ld = kc};
	g->pack(dst, &T, 0, nr, 0, kc);
}

/* A run of bytes a panel reads: len bytes at p. */
typedef struct {
	const char *p;
	long len;
} Run;

/* The runs of row (or, stored [in, out], input) i of the panel of W's
 * outputs [r0, r0 + nr) and inputs [c0, c0 + kc): one for a float dtype;
 * for a quantized W its packed words and its groups' scales and biases
 * (c0 starts a word and a group: a multiple of LM_GEMM_KC). */
static int runs_of(Run *o, const lm_mat *W, long r0, long nr, long c0, long kc, long i)
{
	if (W->dtype != LM_Q) {
		size_t es = lm_esize(W->dtype);
		size_t at = W->tr ? (size_t)(c0 + i) * W->ld + r0 : (size_t)(r0 + i) * W->ld + c0;
		o[0] = (Run){(const char *)W->data + at * es, (W->tr ? nr : kc) * (long)es};
		return 1;
	}
	size_t r = (size_t)(r0 + i), g = (size_t)(c0 / W->group);
	size_t es = W->mode == LM_AFFINE ? lm_esize(W->sdtype) : 1;
	long ng = (kc + W->group - 1) / W->group;
	o[0] = (Run){(const char *)W->data + r * W->ld * 4 + (size_t)c0 * W->bits / 8,
	             kc * W->bits / 8};
	o[1] = (Run){(const char *)W->scales + (r * W->sld + g) * es, ng * (long)es};
	if (W->mode != LM_AFFINE)
		return 2;
	o[2] = (Run){(const char *)W->biases + (r * W->sld + g) * es, ng * (long)es};
	return 3;
}

/* Part `part` of `parts` of the cache lines of that panel, asked for
 * into L2: the next panel's weights arrive while this one is multiplied,
 * the wait for memory spread over its tiles. */
void lm_gemm_prefetch(const lm_mat *W, long r0, long nr, long c0, long kc, long part,
                      long parts)
{
	if (W->dtype == LM_Q && W->tr)
		return;
	long runs = W->tr ? kc : nr;
	for (long i = runs * part / parts; i < runs * (part + 1) / parts; i++) {
		Run run[3];
		int n = runs_of(run, W, r0, nr, c0, kc, i);
		for (int k = 0; k < n; k++)
			for (const char *l = (const char *)((uintptr_t)run[k].p & ~(uintptr_t)63);
			     l < run[k].p + run[k].len; l += 64)
				__builtin_prefetch(l, 0, 2);
	}
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
	float *ap;       /* x as panels: block pc's at ap + pc * mpad */
	long mpad;       /* n rounded up to MR */
} Job;

/* Panels [p0, p1) of MR tokens of x, in every block of inputs: x is
 * packed once for all threads' shares, not once per share (packing it
 * per share cost a sixth of Kimi's prefill, whose experts see about 32
 * tokens). */
static void pack_share(void *ctx, long p0, long p1)
{
	const Job *J = ctx;
	int MR = J->g->mr;
	long cols = J->W->cols;
	for (long pc = 0; pc < cols; pc += KC) {
		long kc = min(KC, cols - pc);
		for (long p = p0; p < p1; p++) {
			float *dst = J->ap + pc * J->mpad + p * MR * kc;
			const float *x = J->x + p * MR * cols;
			long m = min(MR, J->n - p * MR);
			/* AVX-512's panels of 8 tokens are x's 8 x 8 blocks
			 * transposed in registers (dst indexed from input 0):
			 * Kimi-Linear's 256-token prefill spent 2.5% of its samples
			 * in pack_a, 1.5% in this */
			if (J->g == &lm_gemm_512)
				lm_gemm_xt_avx2(dst - pc * MR, x, m, cols, pc, pc + kc, MR);
			else
				pack_a(dst, x, cols, 0, 1.0f, m, pc, kc, MR);
		}
	}
}

/* The tile of mr tokens x nr outputs at c (rows ldc apart): a whole
 * panel's straight into c, part of one through a buffer. */
static void tile(const lm_gemm_kern *g, long kc, const float *a, const float *b, float *c,
                 long ldc, int add, long mr, long nr)
{
	if (nr == g->nr) {
		g->tile(kc, a, b, c, ldc, add, (int)mr);
		return;
	}
	float t[MAXTILE] __attribute__((aligned(64)));
	g->tile(kc, a, b, t, g->nr, 0, (int)mr);
	for (long i = 0; i < mr; i++)
		for (long j = 0; j < nr; j++)
			c[i * ldc + j] = (add ? c[i * ldc + j] : 0) + t[i * g->nr + j];
}

/* The panel of outputs [jr, jr + NR) (none past end) and inputs [pc, pc
 * + KC) of a block: W's part widened into b (tmp: pack_rows' rows), then
 * every tile of the block's tokens, while the next panel up to end is
 * asked for. */
static void panel(const Job *J, float *b, float *tmp, long jr, long end, long pc)
{
	const lm_mat *W = J->W;
	const lm_gemm_kern *g = J->g;
	int MR = g->mr, NR = g->nr;
	long n = J->n, mpad = J->mpad, ldy = W->rows;
	long kc = min(KC, W->cols - pc), nr = min(NR, end - jr);
	const float *a = J->ap + pc * mpad;
	if (J->row)
		pack_rows(g, b, tmp, W, J->row, jr, nr, pc, kc);
	else
		g->pack(b, W, jr, nr, pc, kc);
	long next = jr + NR < end ? min(NR, end - jr - NR) : 0;
	for (long ir = 0; ir < n; ir += MR) {
		if (next)
			lm_gemm_prefetch(W, jr + NR, next, pc, kc, ir / MR, mpad / MR);
		tile(g, kc, a + ir * kc, b, J->y + ir * ldy + jr, ldy, pc > 0, min(MR, n - ir), nr);
	}
}

/* Outputs [r0, r1) of a block of n <= MC tokens: one thread's share. */
static void share(void *ctx, long r0, long r1)
{
	const Job *J = ctx;
	long NR = J->g->nr;
	long ny = YBYTES / (J->mpad * (long)sizeof(float)) / NR * NR;
	ny = ny < NR ? NR : ny;
	float *b = lm_scratch((size_t)KC * 2 * NR), *tmp = b + KC * NR;
	for (long jc = r0; jc < r1; jc += ny) {
		long end = min(jc + ny, r1);
		for (long pc = 0; pc < J->W->cols; pc += KC)
			for (long jr = jc; jr < end; jr += NR)
				panel(J, b, tmp, jr, end, pc);
	}
}

/* Outputs [r0, r1) of a block of many tokens: the inputs outermost, so
 * that each panel of W is widened once for all the block's tokens. */
static void share_wide(void *ctx, long r0, long r1)
{
	const Job *J = ctx;
	long NR = J->g->nr;
	float *b = lm_scratch((size_t)KC * 2 * NR), *tmp = b + KC * NR;
	for (long pc = 0; pc < J->W->cols; pc += KC)
		for (long jr = r0; jr < r1; jr += NR)
			panel(J, b, tmp, jr, r1, pc);
}

/* ---- few tokens: the tokens in the lanes ----
 *
 * With a few more tokens than FEW (an expert's share of a prompt) the
 * blocking above widens and transposes every panel of W for a handful of
 * tiles: at 128 tokens a seventh of Kimi's prefill went to
 * lm_gemm_pack_avx2 (perf, BF16).  Here x is transposed instead, once per
 * product ([cols][nt], nt = n rounded up to 16, the tokens past n zero),
 * and W read by rows as stored (float32 rows, or the format's own
 * reader), MW rows x KC inputs at a time, into a panel in L1 that the
 * tile broadcasts from.  A tile's sums over the blocks of inputs wait in
 * acc ([rows][nt]), and the last block's go to y, transposed back.  The
 * sums are those of the blocking above, in the same order, so a token's
 * outputs do not depend on how many tokens share the product.  Only the
 * AVX-512 kernels have such a tile (lm_gemm_xt_avx2 transposes x). */

typedef struct {
	float *y, *xt, *acc;
	long n, nt;         /* tokens, and n rounded up to a vector of 16 */
	const lm_mat *W;
	lm_rowseg_fn *row;
	const lm_gemm_kern *g;
	const float *x;
} Few;

static void xt_share(void *ctx, long c0, long c1)
{
	const Few *F = ctx;
	lm_gemm_xt_avx2(F->xt, F->x, F->n, F->W->cols, c0, c1, (int)F->nt);
}

static void few_share(void *ctx, long r0, long r1)
{
	const Few *F = ctx;
	const lm_mat *W = F->W;
	const lm_gemm_kern *g = F->g;
	int MW = g->mw;
	long cols = W->cols, NT = F->nt;
	float *w = lm_scratch((size_t)MW * KC);
	for (long r = r0; r < r1; r += MW) {
		long m = min(MW, r1 - r);
		if (m < MW)     /* rows past the end as zeros, not whatever was there */
			memset(w, 0, (size_t)MW * KC * sizeof(float));
		for (long pc = 0; pc < cols; pc += KC) {
			long kc = min(KC, cols - pc);
			F->row(w, W, r, m, pc, kc);
			int last = pc + kc == cols;
			g->tile_t(kc, w, F->xt + pc * NT, F->acc + r * NT, pc > 0, last ? F->y + r : NULL,
			          W->rows, (int)m, (int)F->n, (int)NT);
		}
	}
}

/* Whether n tokens times W take lm_gemm_few: up to the kernel's NT
 * tokens, where the last vector of 16 is at least 13 full.  By measurement
 * (Intel Xeon family 6 model 207, one thread, BF16, Kimi's experts'
 * 1024x2304 and 2304x1024, against the blocking above): 1.25 to 1.5
 * times at 16 tokens, 1.04 to 1.09 at 32, 1.13 to 1.18 at 48, 1.1 at
 * 30 and 46, even at 28 and 44, and 0.9 to 0.95 at 12 and 20, where the
 * empty lanes cost more than the transposes saved. */
static int few_fits(const lm_gemm_kern *g, long n, const lm_mat *W)
{
	return g->tile_t && !W->tr && n > FEW && n <= g->nt && (n % 16 == 0 || n % 16 > 12);
}

static void lm_gemm_few(float *y, const float *x, long n, const lm_mat *W, lm_rowseg_fn *row,
                        const lm_gemm_kern *g)
{
	static __thread float *xt, *acc;
	static __thread long cx, ca;
	long nt = (n + 15) / 16 * 16;
	Few F = {y, lm_grow(&xt, &cx, W->cols * nt), lm_grow(&acc, &ca, (W->rows + g->mw) * nt), n, nt,
	         W, row ? row : g->rows, g, x};
	lm_parallel(W->cols, 8, xt_share, &F);
	lm_parallel(W->rows, g->mw, few_share, &F);
}

void lm_gemm(float *y, const float *x, long n, const lm_mat *W, lm_rowseg_fn *row)
{
	static __thread float *ap;    /* each caller's own (the server runs several) */
	static __thread long cap;
	const lm_gemm_kern *g = kernels();
	if (few_fits(g, n, W)) {
		lm_gemm_few(y, x, n, W, row, g);
		return;
	}
	long mc = MC;
	if (n > MC) {     /* blocks as even as the tiles allow */
		long nb = (n + WIDE - 1) / WIDE;
		mc = ((n + nb - 1) / nb + MC_ALL - 1) / MC_ALL * MC_ALL;
	}
	for (long t0 = 0; t0 < n; t0 += mc) {
		long m = min(mc, n - t0), mpad = (m + g->mr - 1) / g->mr * g->mr;
		Job j = {y + t0 * W->rows, x + t0 * W->cols, m, W, row, g,
		         lm_grow(&ap, &cap, mpad * W->cols), mpad};
		lm_parallel(mpad / g->mr, 1, pack_share, &j);
		lm_parallel(W->rows, g->nr, m > MC ? share_wide : share, &j);
	}
}

/* Whether OpenBLAS runs kernels written for AVX2 or later: it picks them
 * by the CPU's family and model, and a CPU newer than the library gets
 * its SSE3 ones (Debian's 0.3.21 on the Intel Xeon of family 6 model 207:
 * "Prescott", sgemm at 0.3 of the AVX2 FMA peak where this product does
 * 0.8; tests/bin/bench_gemm, F32, 128 tokens, one thread). */
static int blas_knows_cpu(void)
{
	static const char *const known[] = {"haswell", "zen", "skylakex", "cooperlake",
	                                    "sapphirerapids"};
	const char *core = openblas_get_corename();
	for (size_t i = 0; core && i < sizeof known / sizeof *known; i++)
		if (!strcasecmp(core, known[i]))
			return 1;
	return 0;
}

/* Whether float32 weights' prefill takes this product rather than
 * OpenBLAS's sgemm, which reads the weight as it is stored.  Neither wins
 * everywhere: on Zen 3 (AVX2) sgemm was faster (0.8 of the FMA peak
 * against 0.7 at 512 tokens); on Zen 5 (AVX-512) this one is twice as fast
 * (bench_matmul: 1.05 of sgemm's rate for sgemm itself, 2.08 for this
 * product on F16), as Debian's OpenBLAS 0.3.21 does not know the CPU and
 * runs its Haswell kernels.  The choice is by instruction set and by the
 * kernels OpenBLAS chose, not timed at start-up: a timing flips between
 * two processes on a loaded machine (seen here on the AVX2 path, where
 * the two are close), and lmcc's results must not (suite_mpi and
 * suite_pcache compare processes bit for bit).  On the Intel Xeon
 * (family 6 model 167), whose OpenBLAS kernels (SKYLAKEX) know it, the
 * two are close on F32 (tests/bin/bench_gemm, 128 tokens, one thread,
 * CPU time, loaded: this one 121 to 146 GFLOP/s on [out, in] weights
 * where sgemm does 115 to 137, 85 to 91 on [in, out] where sgemm does 93
 * to 107); LMCC_GEMM=openblas keeps sgemm. */
int lm_gemm_f32_own(void)
{
	static int own = -1;
	if (own < 0)
		own = lm_isa() == LM_ISA_AVX512 || (lm_isa() == LM_ISA_AVX2 && !blas_knows_cpu());
	return own;
}

/* ---- products of two activations ---- */

void lm_sgemm(int ta, int tb, long m, long n, long k, float alpha, const float *A, long lda,
              const float *B, long ldb, float beta, float *C, long ldc)
{
	if (m <= 0 || n <= 0)
		return;
	if (!lm_gemm_own()) {
		cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
		            (int)m, (int)n, (int)k, alpha, A, (int)lda, B, (int)ldb, beta, C, (int)ldc);
		return;
	}
	if (beta != 0 && beta != 1)
		for (long i = 0; i < m; i++)
			for (long j = 0; j < n; j++)
				C[i * ldc + j] *= beta;
	if (k <= 0) {
		if (beta == 0)
			for (long i = 0; i < m; i++)
				memset(C + i * ldc, 0, n * sizeof(float));
		return;
	}
	const lm_gemm_kern *g = kernels();
	int MR = g->mr, NR = g->nr;
	long mpad = (m + MR - 1) / MR * MR;
	static __thread float *buf;       /* the caller's lm_scratch may be in use */
	static __thread long cap;
	float *b = lm_grow(&buf, &cap, KC * NR + mpad * KC), *a = b + KC * NR;
	/* op(B) = B^T with B [n, k] is the weight layout [out, in]; B [k, n]
	 * is [in, out] */
	lm_mat W = {.data = B, .dtype = LM_F32, .tr = !tb, .rows = n, .cols = k, .ld = ldb};
	for (long pc = 0; pc < k; pc += KC) {
		long kc = min(KC, k - pc);
		int add = pc > 0 || beta != 0;
		pack_a(a, A, lda, ta, alpha, m, pc, kc, MR);
		for (long jr = 0; jr < n; jr += NR) {
			long nr = min(NR, n - jr);
			g->pack(b, &W, jr, nr, pc, kc);
			for (long ir = 0; ir < m; ir += MR)
				tile(g, kc, a + ir * kc, b, C + ir * ldc + jr, ldc, add, min(MR, m - ir), nr);
		}
	}
}
