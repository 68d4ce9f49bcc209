/* bound.c: the machine's own limits, measured, for the ratios every speed
 * figure is given as (lmcc bench, tests/unit/bench_matmul.c): how fast the
 * cores can read memory, and how fast they multiply float32 matrices.
 * Both run on the threads lm_set_threads chose and with the instruction
 * set the kernels use (LMCC_ISA chooses both), so a kernel's figure and
 * its bound come from the same loads on the same cores. */
#define _GNU_SOURCE
#include "rt.h"

#include <immintrin.h>
#include <stdint.h>
#include <sys/mman.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The bound: the best a read loop of the kernels' instruction set does
 * on this machine.  Each thread sums its share of 1 GiB as STREAMS runs at
 * once (as the kernels read several rows), with enough vector sums to keep
 * the adds off the critical path, asking for each run's data `ahead` bytes
 * in advance (0: the hardware prefetcher alone); the best of every
 * distance and of REPS passes is the bound. */
enum { STREAMS = 4, REPS = 5 };

typedef struct {
	const float *p;
	long len;            /* floats of one block */
	int ahead;           /* prefetch distance in bytes, or 0 */
	float sums[256];     /* one per block: kept, so the sums are not dead code */
} Read;

/* Blocks [lo, hi) cut into STREAMS runs; returns a run's length. */
static long runs(const Read *s, long lo, long hi, const float **run)
{
	long len = (hi - lo) * s->len / STREAMS;
	for (int k = 0; k < STREAMS; k++)
		run[k] = s->p + lo * s->len + k * len;
	return len;
}

__attribute__((target("avx512f")))
static void read_512(void *ctx, long lo, long hi)
{
	Read *s = ctx;
	const float *run[STREAMS];
	long rl = runs(s, lo, hi, run);
	__m512 a[2 * STREAMS];
	for (int k = 0; k < 2 * STREAMS; k++)
		a[k] = _mm512_setzero_ps();
	for (long i = 0; i < rl; i += 32)
		for (int k = 0; k < STREAMS; k++) {
			if (s->ahead)
				_mm_prefetch((const char *)(run[k] + i) + s->ahead, _MM_HINT_T0);
			a[2 * k] = _mm512_add_ps(a[2 * k], _mm512_load_ps(run[k] + i));
			a[2 * k + 1] = _mm512_add_ps(a[2 * k + 1], _mm512_load_ps(run[k] + i + 16));
		}
	for (int k = 1; k < 2 * STREAMS; k++)
		a[0] = _mm512_add_ps(a[0], a[k]);
	s->sums[lo] = _mm512_reduce_add_ps(a[0]);
}

__attribute__((target("avx2")))
static void read_avx2(void *ctx, long lo, long hi)
{
	Read *s = ctx;
	const float *run[STREAMS];
	long rl = runs(s, lo, hi, run);
	__m256 a[2 * STREAMS];
	for (int k = 0; k < 2 * STREAMS; k++)
		a[k] = _mm256_setzero_ps();
	for (long i = 0; i < rl; i += 16)
		for (int k = 0; k < STREAMS; k++) {
			if (s->ahead)    /* a step is 64 bytes: one line each */
				_mm_prefetch((const char *)(run[k] + i) + s->ahead, _MM_HINT_T0);
			a[2 * k] = _mm256_add_ps(a[2 * k], _mm256_load_ps(run[k] + i));
			a[2 * k + 1] = _mm256_add_ps(a[2 * k + 1], _mm256_load_ps(run[k] + i + 8));
		}
	for (int k = 1; k < 2 * STREAMS; k++)
		a[0] = _mm256_add_ps(a[0], a[k]);
	float v[8];
	_mm256_storeu_ps(v, a[0]);
	s->sums[lo] = v[0] + v[1] + v[2] + v[3] + v[4] + v[5] + v[6] + v[7];
}

/* The portable kernels' way: independent sums gcc vectorises. */
static void read_c(void *ctx, long lo, long hi)
{
	Read *s = ctx;
	const float *run[STREAMS];
	long rl = runs(s, lo, hi, run);
	float a[STREAMS][16] = {{0}};
	for (long i = 0; i < rl; i += 16)
		for (int k = 0; k < STREAMS; k++) {
			const float *restrict q = run[k] + i;
			if (s->ahead)
				__builtin_prefetch((const char *)q + s->ahead);
			for (int l = 0; l < 16; l++)
				a[k][l] += q[l];
		}
	float t = 0;
	for (int k = 0; k < STREAMS; k++)
		for (int l = 0; l < 16; l++)
			t += a[k][l];
	s->sums[lo] = t;
}

void *lm_pages(size_t n, int huge)
{
	unsigned char *p = lm_map_aligned(n, -1);
	if (p == MAP_FAILED)
		lm_bug("lm_pages: no memory for %zu bytes", n);
	madvise(p, n, huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);   /* before the first touch */
	return p;
}

/* GB/s on the threads lm_set_threads chose: the best of REPS passes and
 * of each prefetch distance over 1 GiB, in 2 MB pages (huge) where the
 * kernel gives them or in pages of the usual size.  A figure is divided by
 * the bound of the pages its weights sit in: on some machines the page
 * walks of 4 KB pages cost a third of the rate. */
double lm_read_rate_pages(int huge)
{
	static const int ahead[] = {0, 512, 1024, 2048};
	long blocks = 256, len = (1L << 28) / blocks;
	float *p = lm_pages(blocks * len * sizeof(float), huge);
	for (long i = 0; i < blocks * len; i++)
		p[i] = 1.0f;
	/* The AVX-512 path's kernels use AVX2 loads too (matmul_512.c), and on
	 * an Intel Xeon the 256-bit loop read 8 to 15% faster than the 512-bit
	 * one: its bound is the better of the two. */
	void (*loop[2])(void *, long, long) = {read_c};
	int nloops = 1;
	if (lm_isa() == LM_ISA_AVX512) {
		loop[0] = read_512;
		loop[nloops++] = read_avx2;
	} else if (lm_isa() == LM_ISA_AVX2)
		loop[0] = read_avx2;
	Read *s = lm_alloc(sizeof *s);
	double best = 0;
	for (int rep = 0; rep < REPS; rep++)
		for (int d = 0; d < (int)(sizeof ahead / sizeof *ahead); d++)
			for (int l = 0; l < nloops; l++) {
				*s = (Read){.p = p, .len = len, .ahead = ahead[d]};
				double t = lm_now();
				lm_parallel(blocks, 1, loop[l], s);
				double gbs = blocks * len * 4.0 / (lm_now() - t) / 1e9;
				if (gbs > best)
					best = gbs;
			}
	free(s);
	munmap(p, blocks * len * sizeof(float));
	return best;
}

/* GFLOP/s of prod(y, x, n, W), the best of REPS runs: how every matrix
 * rate is taken (lm_f32_rate, gemm_q8.c's lm_int8_rate). */
double lm_best_rate(lm_prod_fn *prod, const lm_mat *W, long n)
{
	float *x = lm_alloc_aligned(n * W->cols * 4), *y = lm_alloc_aligned(n * W->rows * 4);
	double best = 0;
	for (int rep = 0; rep < REPS; rep++) {
		double t = lm_now();
		prod(y, x, n, W);
		double gf = 2.0 * n * W->rows * W->cols / (lm_now() - t) / 1e9;
		best = gf > best ? gf : best;
	}
	free(x);
	free(y);
	return best;
}

static void dense(float *y, const float *x, long n, const lm_mat *W)
{
	lm_matmul(y, x, n, *W);    /* what an F32 weight's prefill runs */
}

double lm_f32_rate(void)
{
	long m = 4096, k = 4096;
	float *b = lm_alloc_aligned(m * k * 4);
	lm_mat W = {.data = b, .dtype = LM_F32, .rows = m, .cols = k, .ld = k};
	double best = lm_best_rate(dense, &W, 128);
	free(b);
	return best;
}

/* The cores' float32 peak: PEAK_REPS x ACC independent multiply-adds per
 * thread in the kernels' instruction set, with nothing else in the loop.
 * ACC sums hide the latency of the FMA pipes (Zen 5: 2 pipes of latency
 * 4 need 8; Intel's 2 of latency 4 the same), and the asm barrier keeps gcc
 * from folding the repeated product.  This, not sgemm's rate, is what a
 * prefill product is held to: an OpenBLAS that does not know the CPU
 * (0.3.21 runs its Haswell kernels on Zen 5) is slower than the cores. */
enum { PEAK_REPS = 1 << 18, ACC = 16 };
/* A run is about a millisecond: the best of many finds one that no other
 * process on a shared machine cut into (under a load of 3 per core, the
 * best of 5 was 0.6 of the idle peak). */
enum { PEAK_RUNS = 40 };

__attribute__((target("avx512f"))) static void peak_512(void *ctx, long lo, long hi)
{
	__m512 acc[ACC], a = _mm512_set1_ps(1.0f), b = _mm512_set1_ps(1e-9f);
	for (int i = 0; i < ACC; i++)
		acc[i] = _mm512_setzero_ps();
	for (long r = 0; r < PEAK_REPS; r++) {
#pragma GCC unroll 16
		for (int i = 0; i < ACC; i++)
			acc[i] = _mm512_fmadd_ps(a, b, acc[i]);
		__asm__ volatile("" : "+v"(a));
	}
	for (int i = 1; i < ACC; i++)
		acc[0] = _mm512_add_ps(acc[0], acc[i]);
	((float *)ctx)[lo] = _mm512_reduce_add_ps(acc[0]);
}

/* 12 sums: with a and b, 14 of AVX2's 16 registers. */
__attribute__((target("avx2,fma"))) static void peak_avx2(void *ctx, long lo, long hi)
{
	__m256 acc[12], a = _mm256_set1_ps(1.0f), b = _mm256_set1_ps(1e-9f);
	for (int i = 0; i < 12; i++)
		acc[i] = _mm256_setzero_ps();
	for (long r = 0; r < PEAK_REPS; r++) {
#pragma GCC unroll 12
		for (int i = 0; i < 12; i++)
			acc[i] = _mm256_fmadd_ps(a, b, acc[i]);
		__asm__ volatile("" : "+x"(a));
	}
	for (int i = 1; i < 12; i++)
		acc[0] = _mm256_add_ps(acc[0], acc[i]);
	float v[8];
	_mm256_storeu_ps(v, acc[0]);
	((float *)ctx)[lo] = v[0];
}

/* The portable kernels' way (gemm_c.c): a multiply and an add per lane,
 * in sums gcc vectorises with the baseline's SSE2 (8 vectors of 4). */
static void peak_c(void *ctx, long lo, long hi)
{
	float acc[32] = {0}, x[32], a = 1e-9f;
	for (int i = 0; i < 32; i++)
		x[i] = 1.0f;
	for (long r = 0; r < PEAK_REPS; r++) {
#pragma GCC unroll 32    /* whole, as gemm_c.c's tile, so the sums stay in registers */
		for (int i = 0; i < 32; i++)   /* as its tile: a load, a multiply, an add */
			acc[i] += x[i] * a;
		__asm__ volatile("" : "+x"(a));
	}
	float t = 0;
	for (int i = 0; i < 32; i++)
		t += acc[i];
	((float *)ctx)[lo] = t;
}

double lm_f32_peak(void)
{
	/* each path's loop and the flops of one pass of its body */
	static const struct {
		void (*loop)(void *, long, long);
		int flops;
	} path[] = {
		[LM_ISA_PORTABLE] = {peak_c, 32 * 2},
		[LM_ISA_AVX2] = {peak_avx2, 12 * 16},
		[LM_ISA_AVX512] = {peak_512, ACC * 32},
	};
	int isa = lm_isa(), th = lm_pool_size();
	void (*loop)(void *, long, long) = path[isa].loop;
	double flops = (double)PEAK_REPS * path[isa].flops;   /* of one thread's loop */
	float *sink = lm_alloc(th * sizeof *sink);
	double best = 0;
	for (int rep = 0; rep < PEAK_RUNS; rep++) {
		double t = lm_now();
		lm_parallel(th, 1, loop, sink);
		double gf = th * flops / (lm_now() - t) / 1e9;
		best = gf > best ? gf : best;
	}
	free(sink);
	return best;
}

void lm_cpu_name(char *out, size_t size)
{
	char line[256], name[128] = "unknown CPU";
	int family = -1, model = -1;
	FILE *f = fopen("/proc/cpuinfo", "r");
	while (f && fgets(line, sizeof line, f) && !(*name != 'u' && family >= 0 && model >= 0)) {
		char *v = strchr(line, ':');
		if (!v)
			continue;
		v += 1 + (v[1] == ' ');
		v[strcspn(v, "\n")] = 0;
		if (!strncmp(line, "model name", 10))
			snprintf(name, sizeof name, "%s", v);
		else if (!strncmp(line, "cpu family", 10))
			family = atoi(v);
		else if (!strncmp(line, "model\t", 6))
			model = atoi(v);
	}
	if (f)
		fclose(f);
	snprintf(out, size, "%s (family %d model %d)", name, family, model);
}
