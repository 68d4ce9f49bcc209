/* bench_gemm: lmcc's prefill product (runtime/gemm.c) beside OpenBLAS's
 * (widened panels and sgemm, runtime/matmul.c), on the bench models'
 * shapes, and both beside the cores' float32 peak.
 *
 *   bench_gemm [THREADS [REPS [DTYPE [N]]]]   DTYPE: bf16 (default), f16, f32;
 *                                            N: only that many tokens
 *
 * The peak is a loop of independent FMAs (12 sums in flight), with the
 * instruction set the kernels use.  Each product runs REPS times, lmcc's
 * and OpenBLAS's alternating so that both see the same load; the best
 * wall time counts, and the CPU time of that run (all threads) is shown
 * as a rate too: on a machine others load, it is the steadier figure. */
#include "gemm.h"

#include <cblas.h>
#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

enum { PEAK_ITERS = 50000000 };

static double cpu_now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
	return t.tv_sec + t.tv_nsec * 1e-9;
}

__attribute__((target("avx512f")))
static float fma_512(long iters)
{
	__m512 a[12], m = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f);
	for (int i = 0; i < 12; i++)
		a[i] = _mm512_set1_ps((float)i);
	for (long k = 0; k < iters; k++)
#pragma GCC unroll 12
		for (int i = 0; i < 12; i++)
			a[i] = _mm512_fmadd_ps(a[i], m, c);
	float s = 0;
	for (int i = 0; i < 12; i++)
		s += _mm512_reduce_add_ps(a[i]);
	return s;
}

__attribute__((target("avx2,fma")))
static float fma_avx2(long iters)
{
	__m256 a[12], m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
	for (int i = 0; i < 12; i++)
		a[i] = _mm256_set1_ps((float)i);
	for (long k = 0; k < iters; k++)
#pragma GCC unroll 12
		for (int i = 0; i < 12; i++)
			a[i] = _mm256_fmadd_ps(a[i], m, c);
	float v[8], s = 0;
	for (int i = 0; i < 12; i++) {
		_mm256_storeu_ps(v, a[i]);
		for (int l = 0; l < 8; l++)
			s += v[l];
	}
	return s;
}

static volatile float sink;

static void peak_share(void *ctx, long lo, long hi)
{
	for (long i = lo; i < hi; i++)
		sink = lm_isa() == LM_ISA_AVX512 ? fma_512(PEAK_ITERS) : fma_avx2(PEAK_ITERS);
}

/* GFLOP/s of `threads` cores running the FMA loop at once, by the wall
 * clock and per CPU second (times threads: what they would do unshared). */
static void peak(int threads, double *wall, double *cpu)
{
	int lanes = lm_isa() == LM_ISA_AVX512 ? 16 : 8;
	double fl = threads * (double)PEAK_ITERS * 12 * lanes * 2 * 1e-9;
	*wall = *cpu = 0;
	for (int rep = 0; rep < 3; rep++) {
		double c = cpu_now(), t = lm_now();
		lm_parallel(threads, 1, peak_share, NULL);
		t = lm_now() - t;
		c = cpu_now() - c;
		if (fl / t > *wall)
			*wall = fl / t;
		if (fl / c * threads > *cpu)
			*cpu = fl / c * threads;
	}
}

typedef struct {
	double wall, cpu;
} Time;

static void run(float *y, const float *x, long n, lm_mat W, int mode, Time *best)
{
	lm_gemm_force = mode;
	double c = cpu_now(), t = lm_now();
	lm_matmul(y, x, n, W);
	t = lm_now() - t;
	c = cpu_now() - c;
	if (!best->wall || t < best->wall) {
		best->wall = t;
		best->cpu = c;
	}
}

static void usage(FILE *f)
{
	fprintf(f, "usage: bench_gemm [THREADS [REPS [bf16|f16|f32 [N]]]]\n"
	           "  lmcc's prefill product beside OpenBLAS's on the bench models' shapes,\n"
	           "  THREADS threads (default 1), the best of REPS runs (default 5), weights\n"
	           "  of that dtype (default bf16), N tokens only (default 32, 128 and 512),\n"
	           "  each beside the cores' float32 FMA peak, in wall time and CPU time.\n");
}

int main(int argc, char **argv)
{
	if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		usage(stdout);
		return 0;
	}
	int threads = argc > 1 ? atoi(argv[1]) : 1;
	int reps = argc > 2 ? atoi(argv[2]) : 5;
	const char *dn = argc > 3 ? argv[3] : "bf16";
	long only = argc > 4 ? atol(argv[4]) : 0;
	if (argc > 5 || threads < 1 || threads > 64 || reps < 1 || only < 0
	    || (strcmp(dn, "bf16") && strcmp(dn, "f16") && strcmp(dn, "f32"))) {
		usage(stderr);
		return 2;
	}
	int dtype = !strcmp(dn, "f32") ? LM_F32 : !strcmp(dn, "f16") ? LM_F16 : LM_BF16;
	if (lm_isa() == LM_ISA_PORTABLE) {
		fprintf(stderr, "bench_gemm: the peak loop needs avx2 or avx512\n");
		return 1;
	}
	lm_set_threads(threads);
	double pk, pkc;
	peak(threads, &pk, &pkc);
	printf("%s kernels, %d thread(s), %s weights; FMA peak %.1f GFLOP/s (%.1f per CPU second); "
	       "OpenBLAS runs its %s kernels\n",
	       lm_isa_name(lm_isa()), threads, dn, pk, pkc, openblas_get_corename());
	printf("%-18s %4s | %21s | %21s | %s\n", "rows x cols", "n", "lmcc GFLOP/s (cpu)",
	       "OpenBLAS GFLOP/s (cpu)", "of peak (cpu): lmcc blas");
	static const struct { long rows, cols; int tr; } shapes[] = {
		{2048, 2048, 0}, {6656, 2048, 0}, {2048, 6656, 0}, {16384, 5120, 0},
		{8192, 5120, 1},    /* Llama 4's experts are stored [in, out] */
		{5120, 8192, 1},
		{1024, 2304, 0}, {2304, 1024, 0},   /* Kimi's experts */
	};
	/* 32: a MoE expert's share of 128 tokens (Kimi, 8 of 32 experts a
	 * token; Llama 4, 1 of 4) */
	static const long ns[] = {32, 128, 512};
	for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
		long rows = shapes[s].rows, cols = shapes[s].cols;
		size_t sz = (size_t)rows * cols * (dtype == LM_F32 ? 4 : 2);
		void *w = lm_pages(sz, 1);   /* as lmcc asks for its weights */
		for (size_t i = 0; i < sz / 2; i++)   /* small values in every dtype */
			((uint16_t *)w)[i] = dtype == LM_F16 ? 0x2000 + (i * 7919 & 0x3ff)
			                                     : 0x3c00 + (i * 7919 & 0x7f);
		lm_mat W = {.data = w, .dtype = dtype, .tr = shapes[s].tr, .rows = rows, .cols = cols,
		            .ld = shapes[s].tr ? rows : cols};
		for (size_t k = 0; k < sizeof ns / sizeof *ns; k++) {
			long n = ns[k];
			if (only && n != only)
				continue;
			float *x = lm_floats(n * cols), *y = lm_floats(n * rows);
			for (long i = 0; i < n * cols; i++)
				x[i] = (float)(i % 13) * 0.01f;
			Time own = {0}, blas = {0};
			run(y, x, n, W, LM_GEMM_LMCC, &own);     /* warm: pages, panels */
			for (int r = 0; r < reps; r++) {
				run(y, x, n, W, LM_GEMM_OPENBLAS, &blas);
				run(y, x, n, W, LM_GEMM_LMCC, &own);
			}
			double fl = 2.0 * n * rows * cols * 1e-9;
			char name[32];
			snprintf(name, sizeof name, "%ldx%ld%s", rows, cols, shapes[s].tr ? " tr" : "");
			printf("%-18s %4ld | %9.1f (%9.1f) | %9.1f (%9.1f) | %.2f %.2f\n", name, n,
			       fl / own.wall, fl / own.cpu * threads, fl / blas.wall,
			       fl / blas.cpu * threads, fl / own.cpu * threads / pkc,
			       fl / blas.cpu * threads / pkc);
			fflush(stdout);
			free(x);
			free(y);
		}
		munmap(w, sz);
	}
	return 0;
}
