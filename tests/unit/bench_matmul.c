/* bench_matmul: how close lm_matmul comes to this machine's bounds.
 *
 *   bench_matmul [THREADS]     (--help: what it prints)
 *
 * Measures the machine first: memory read bandwidth (the best vectorised
 * read of 1 GiB, with the instruction set the kernels use, LMCC_ISA
 * choosing both, and with the kernels' thread count and with one)
 * and the float32 matrix rate of OpenBLAS sgemm.  Then lm_matmul on a
 * weight of a real model's size, in F32, F16 and BF16: with one token (decode:
 * reported as GB/s of weights read, and as a ratio to the bandwidth) and
 * with 128 tokens (prefill: GFLOP/s, and a ratio to sgemm's rate). */
#include "rt.h"

#include <cblas.h>
#include <immintrin.h>
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
			if (s->ahead && !(i & 15))    /* once per 64 bytes */
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

/* GB/s with `threads` threads, the best of REPS passes and of each
 * prefetch distance. */
static double bandwidth(const float *p, long blocks, long len, int threads)
{
	static const int ahead[] = {0, 512, 1024, 2048};
	int was = lm_pool_size();
	lm_set_threads(threads);
	Read *s = lm_alloc(sizeof *s);
	double best = 0;
	for (int rep = 0; rep < REPS; rep++)
		for (int d = 0; d < (int)(sizeof ahead / sizeof *ahead); d++) {
			*s = (Read){.p = p, .len = len, .ahead = ahead[d]};
			double t = lm_now();
			lm_parallel(blocks, 1, lm_isa() == LM_ISA_AVX512 ? read_512
			                       : lm_isa() == LM_ISA_AVX2 ? read_avx2 : read_c, s);
			double gbs = blocks * len * 4.0 / (lm_now() - t) / 1e9;
			if (gbs > best)
				best = gbs;
		}
	free(s);
	lm_set_threads(was);
	return best;
}

static double sgemm_rate(void)
{
	long n = 128, m = 4096, k = 4096;
	float *a = lm_alloc_aligned(n * k * 4), *b = lm_alloc_aligned(m * k * 4),
	      *c = lm_alloc_aligned(n * m * 4);
	lm_mat W = {.data = b, .dtype = LM_F32, .rows = m, .cols = k, .ld = k};
	double best = 0;
	for (int rep = 0; rep < 5; rep++) {
		double t = lm_now();
		lm_matmul(c, a, n, W);    /* f32 path: sgemm in each thread's share */
		double gf = 2.0 * n * m * k / (lm_now() - t) / 1e9;
		if (gf > best)
			best = gf;
	}
	free(a);
	free(b);
	free(c);
	return best;
}

static void product(int dtype, int tr, long n, long rows, long cols, double bw, double peak)
{
	size_t es = lm_dtype_size(dtype), bytes = (size_t)rows * cols * es;
	/* several matrices, so that a pass does not run from the cache */
	int copies = (int)(1.5e9 / bytes) + 1;
	unsigned char *w = lm_alloc_aligned(bytes * copies);
	memset(w, 0x3c, bytes * copies);
	float *x = lm_alloc_aligned(n * cols * 4), *y = lm_alloc_aligned(n * rows * 4);
	double best = 1e30;
	for (int rep = 0; rep < 3; rep++) {
		double t = lm_now();
		for (int c = 0; c < copies; c++) {
			lm_mat W = {.data = w + c * bytes, .dtype = dtype, .tr = tr, .rows = rows, .cols = cols,
			            .ld = tr ? rows : cols};
			lm_matmul(y, x, n, W);
		}
		double dt = (lm_now() - t) / copies;
		if (dt < best)
			best = dt;
	}
	const char *name = dtype == LM_F32 ? "f32 " : dtype == LM_F16 ? "f16 " : "bf16";
	if (n == 1)
		printf("decode  %s %5ldx%-5ld%s %6.1f GB/s   %.2f of the bandwidth bound\n",
		       name, rows, cols, tr ? " [in,out]" : "         ", bytes / best / 1e9,
		       bytes / best / 1e9 / bw);
	else
		printf("prefill %s %5ldx%-5ld           %6.1f GFLOP/s %.2f of sgemm's f32 rate (n = %ld)\n",
		       name, rows, cols, 2.0 * n * rows * cols / best / 1e9,
		       2.0 * n * rows * cols / best / 1e9 / peak, n);
	free(w);
	free(x);
	free(y);
}

/* "AMD EPYC (family 25 model 1)", from /proc/cpuinfo. */
static void cpu_name(char *out, size_t size)
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

/* ---- quantized weights (LM_Q, qmat.c) ----
 * MLX's affine format with BF16 scales and biases, as mlx-lm writes it
 * for a BF16 model.  Decode reads the packed words plus the scales and
 * biases once: those bytes over the time, against the bandwidth. */
static void qproduct(int bits, int group, long n, long rows, long cols, double bw,
                     double peak)
{
	size_t wbytes = (size_t)rows * cols * bits / 8, sbytes = (size_t)rows * cols / group * 2;
	size_t bytes = wbytes + 2 * sbytes;
	int copies = (int)(1.5e9 / bytes) + 1;
	unsigned char *w = lm_alloc_aligned(wbytes * copies);
	uint16_t *sb = lm_alloc_aligned(2 * sbytes * copies);
	for (size_t i = 0; i < wbytes * copies; i++)
		w[i] = (unsigned char)(i * 2654435761u >> 13);
	for (size_t i = 0; i < sbytes * copies; i++)
		sb[i] = lm_f32_to_bf16(i & 1 ? -0.01f : 0.002f);
	float *x = lm_alloc_aligned(n * cols * 4), *y = lm_alloc_aligned(n * rows * 4);
	for (long i = 0; i < n * cols; i++)
		x[i] = (float)(i % 7) - 3;
	double best = 1e30;
	for (int rep = 0; rep < 3; rep++) {
		double t = lm_now();
		for (int c = 0; c < copies; c++) {
			const unsigned char *s = (const unsigned char *)sb + 2 * sbytes * c;
			lm_mat W = {.data = w + wbytes * c, .dtype = LM_Q, .rows = rows, .cols = cols,
			            .ld = cols * bits / 32, .bits = bits, .group = group,
			            .sdtype = LM_BF16, .scales = s, .biases = s + sbytes,
			            .sld = cols / group};
			lm_matmul(y, x, n, W);
		}
		double dt = (lm_now() - t) / copies;
		if (dt < best)
			best = dt;
	}
	if (n == 1)
		printf("decode  q%d g%-3d %5ldx%-5ld          %6.1f GB/s   %.2f of the bandwidth bound (%s)\n",
		       bits, group, rows, cols, bytes / best / 1e9, bytes / best / 1e9 / bw,
		       lm_isa_name(lm_isa()));
	else
		printf("prefill q%d g%-3d %5ldx%-5ld          %6.1f GFLOP/s %.2f of sgemm's f32 rate (n = %ld, %s)\n",
		       bits, group, rows, cols, 2.0 * n * rows * cols / best / 1e9,
		       2.0 * n * rows * cols / best / 1e9 / peak, n, lm_isa_name(lm_isa()));
	free(w);
	free(sb);
	free(x);
	free(y);
}

static void quantized(double bw, double peak)
{
	int fmt[3][2] = {{8, 64}, {4, 64}, {4, 32}};
	for (int i = 0; i < 3; i++) {
		qproduct(fmt[i][0], fmt[i][1], 1, 6656, 2048, bw, peak);
		qproduct(fmt[i][0], fmt[i][1], 1, 2048, 6656, bw, peak);
		qproduct(fmt[i][0], fmt[i][1], 128, 6656, 2048, bw, peak);
	}
}

static void usage(FILE *f)
{
	fprintf(f, "usage: bench_matmul [THREADS]\n"
	           "  How close lm_matmul comes to this machine's bounds, with THREADS threads\n"
	           "  (default: one per CPU) and the kernels LMCC_ISA chooses (avx512, avx2,\n"
	           "  portable; default: the best this CPU has).  The first line gives the\n"
	           "  read bandwidth with THREADS threads and with one, measured with the\n"
	           "  kernels' instruction set, and sgemm's float32 rate; each product after\n"
	           "  it is a ratio to one of them.\n");
}

int main(int argc, char **argv)
{
	if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		usage(stdout);
		return 0;
	}
	if (argc > 2 || (argc == 2 && (atoi(argv[1]) < 1 || atoi(argv[1]) > 64))) {
		usage(stderr);
		return 2;
	}
	if (argc > 1)
		lm_set_threads(atoi(argv[1]));
	setvbuf(stdout, NULL, _IOLBF, 0);    /* make bench reads the first line alone */
	char cpu[200];
	cpu_name(cpu, sizeof cpu);
	long blocks = 256, len = (1L << 28) / blocks;   /* 1 GiB of floats */
	float *p = lm_alloc_aligned(blocks * len * sizeof(float));
	for (long i = 0; i < blocks * len; i++)
		p[i] = 1.0f;
	int threads = lm_pool_size();
	double bw = bandwidth(p, blocks, len, threads);
	double bw1 = threads > 1 ? bandwidth(p, blocks, len, 1) : bw;
	free(p);
	double peak = sgemm_rate();
	printf("machine: memory read %.1f GB/s with %d thread%s (%.1f with 1), sgemm %.1f GFLOP/s; "
	       "%s, %s kernels\n", bw, threads, threads > 1 ? "s" : "", bw1, peak, cpu,
	       lm_isa_name(lm_isa()));
	int dt[3] = {LM_F32, LM_F16, LM_BF16};
	for (int i = 0; i < 3; i++) {
		product(dt[i], 0, 1, 6656, 2048, bw, peak);
		product(dt[i], 0, 1, 2048, 6656, bw, peak);
		product(dt[i], 1, 1, 16384, 5120, bw, peak);   /* Llama 4's fused experts */
		product(dt[i], 0, 128, 6656, 2048, bw, peak);
	}
	quantized(bw, peak);
	return 0;
}
