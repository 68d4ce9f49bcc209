/* bound.c: the machine's own limits, measured, for the ratios every speed
 * figure is given as (lmcc bench, tests/unit/bench_matmul.c): how fast the
 * cores can read memory, and how fast they multiply float32 matrices.
 * Both run on the threads lm_set_threads chose and with the instruction
 * set the kernels use (LMCC_ISA chooses both), so a kernel's figure and
 * its bound come from the same loads on the same cores. */
#include "rt.h"

#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
	const float *p;
	double *sums;
	long per;
} Sum;

/* A sum of every float of each block: four vector sums at once, as fast
 * as the memory lets a core read. */
__attribute__((target("avx512f")))
static void sum_512(void *ctx, long lo, long hi)
{
	const Sum *s = ctx;
	for (long b = lo; b < hi; b++) {
		const float *p = s->p + b * s->per;
		__m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
		for (long i = 0; i < s->per; i += 64) {
			a0 = _mm512_add_ps(a0, _mm512_load_ps(p + i));
			a1 = _mm512_add_ps(a1, _mm512_load_ps(p + i + 16));
			a2 = _mm512_add_ps(a2, _mm512_load_ps(p + i + 32));
			a3 = _mm512_add_ps(a3, _mm512_load_ps(p + i + 48));
		}
		s->sums[b] = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1),
		                                                _mm512_add_ps(a2, a3)));
	}
}

__attribute__((target("avx2")))
static void sum_avx2(void *ctx, long lo, long hi)
{
	const Sum *s = ctx;
	for (long b = lo; b < hi; b++) {
		const float *p = s->p + b * s->per;
		__m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
		for (long i = 0; i < s->per; i += 32) {
			a0 = _mm256_add_ps(a0, _mm256_load_ps(p + i));
			a1 = _mm256_add_ps(a1, _mm256_load_ps(p + i + 8));
			a2 = _mm256_add_ps(a2, _mm256_load_ps(p + i + 16));
			a3 = _mm256_add_ps(a3, _mm256_load_ps(p + i + 24));
		}
		float v[8];
		_mm256_storeu_ps(v, _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
		s->sums[b] = v[0] + v[1] + v[2] + v[3] + v[4] + v[5] + v[6] + v[7];
	}
}

/* The portable kernels' way: 16 independent sums gcc vectorises. */
static void sum_c(void *ctx, long lo, long hi)
{
	const Sum *s = ctx;
	for (long b = lo; b < hi; b++) {
		const float *restrict p = s->p + b * s->per;
		float a[16] = {0};
		for (long i = 0; i < s->per; i += 16)
			for (int k = 0; k < 16; k++)
				a[k] += p[i + k];
		double t = 0;
		for (int k = 0; k < 16; k++)
			t += a[k];
		s->sums[b] = t;
	}
}

double lm_read_rate(void)
{
	long blocks = 256, per = (1L << 28) / blocks;   /* 1 GiB of floats */
	float *p = lm_alloc_aligned(blocks * per * sizeof(float));
	for (long i = 0; i < blocks * per; i++)
		p[i] = 1.0f;
	double sums[256], best = 0;
	Sum s = {p, sums, per};
	for (int rep = 0; rep < 5; rep++) {
		double t = lm_now();
		lm_parallel(blocks, 1, lm_isa() == LM_ISA_AVX512 ? sum_512
		                       : lm_isa() == LM_ISA_AVX2 ? sum_avx2 : sum_c, &s);
		double gbs = blocks * per * 4.0 / (lm_now() - t) / 1e9;
		if (gbs > best)
			best = gbs;
	}
	free(p);
	return best;
}

double lm_f32_rate(void)
{
	long n = 128, m = 4096, k = 4096;
	float *a = lm_alloc_aligned(n * k * 4), *b = lm_alloc_aligned(m * k * 4),
	      *c = lm_alloc_aligned(n * m * 4);
	lm_mat W = {.data = b, .dtype = LM_F32, .rows = m, .cols = k, .ld = k};
	double best = 0;
	for (int rep = 0; rep < 5; rep++) {
		double t = lm_now();
		lm_matmul(c, a, n, W);    /* what an F32 weight's prefill runs */
		double gf = 2.0 * n * m * k / (lm_now() - t) / 1e9;
		if (gf > best)
			best = gf;
	}
	free(a);
	free(b);
	free(c);
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
