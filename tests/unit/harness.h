/* harness.h: what the test programs and the fuzz targets share. */
#ifndef LM_TEST_HARNESS_H
#define LM_TEST_HARNESS_H
#include <math.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rt.h"

/* The process's resident memory, in MB. */
static inline long resident_mb(void)
{
	long pages = 0;
	FILE *f = fopen("/proc/self/statm", "r");
	if (f && fscanf(f, "%*s %ld", &pages) != 1)
		pages = 0;
	if (f)
		fclose(f);
	return pages * sysconf(_SC_PAGESIZE) >> 20;
}

/* v stored as element i of an F32, F16 or BF16 array at p (rounded to
 * nearest even). */
static inline void store_elem(unsigned char *p, int dtype, size_t i, float v)
{
	if (dtype == LM_F32) {
		memcpy(p + 4 * i, &v, 4);
	} else {
		uint16_t h = dtype == LM_BF16 ? lm_f32_to_bf16(v) : lm_f32_to_f16(v);
		memcpy(p + 2 * i, &h, 2);
	}
}

/* A number in [-1, 1) from the xorshift generator whose state is *s: the
 * test programs' random inputs, each program from its own seed. */
static inline double xorshift_uni(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return (*s >> 11) * (1.0 / 9007199254740992.0) * 2 - 1;
}

/* The worst output of --fast's BF16 product y[n, rows] = x W^T against
 * the float64 product of x rounded to bf16 (nearest even, as the kernel
 * rounds it) and wr [rows, cols], W already rounded as the kernel reads
 * it (so each product is exact in float32), as a fraction of float32
 * summation's bound, (cols + 8) 2^-24 sum |w x|: past 1 the kernel lost
 * more than its sums can (infinite where y is NaN). */
static inline double bf16_sum_worst(const float *y, const float *x, const double *wr, long n,
                                    long rows, long cols)
{
	double worst = 0;
	for (long t = 0; t < n; t++)
		for (long r = 0; r < rows; r++) {
			double s = 0, mag = 0;
			for (long c = 0; c < cols; c++) {
				double p = lm_bf16_to_f32(lm_f32_to_bf16(x[t * cols + c])) * wr[r * cols + c];
				s += p;
				mag += fabs(p);
			}
			double d = fabs(y[t * rows + r] - s), a = d / ((cols + 8) * 0x1p-24 * mag + 1e-30);
			worst = isnan(d) ? INFINITY : a > worst ? a : worst;
		}
	return worst;
}

/* max |a - b| over max |b| (infinite where a is NaN): the relative
 * error DESIGN.md bounds by 1e-4. */
static inline double max_rel(const float *a, const float *b, long count)
{
	double err = 0, big = 0;
	for (long i = 0; i < count; i++) {
		double e = fabs((double)a[i] - b[i]);
		if (isnan(e))
			return INFINITY;
		err = e > err ? e : err;
		big = fabs(b[i]) > big ? fabs(b[i]) : big;
	}
	return big > 0 ? err / big : err;
}

#ifdef LMCC_H
/* Code c of row r of a packed matrix, one bit at a time (lmcc.h's
 * definition), to check the kernels' faster unpacking against. */
static inline unsigned packed_code(const lm_mat *W, long r, long c)
{
	const uint32_t *w = (const uint32_t *)W->data + r * W->ld;
	unsigned q = 0;
	for (int b = 0; b < W->bits; b++) {
		long p = c * W->bits + b;
		q |= ((w[p / 32] >> (p % 32)) & 1u) << b;
	}
	return q;
}
#endif

#ifdef LM_SRV_H
/* A request body parsed into a job and freed, as the server's complete()
 * does it, catching a failure of the template or the tokenizer: 0 when
 * one raised. */
static inline int parse_request(Srv *s, lm_tok *tok, int chat, const char *body, size_t len)
{
	Job *j = lm_alloc(sizeof *j);
	int status, raised = 0;
	char *err = NULL;
	lm_err fail;
	pthread_mutex_init(&j->mu, NULL);
	pthread_cond_init(&j->cv, NULL);
	if (lm_catch(&fail)) {
		raised = 1;
	} else {
		api_parse(s, tok, chat, body, len, j, &status, &err);
		lm_err_pop(&fail);
	}
	free(err);
	job_free(j);
	return !raised;
}
#endif
#endif
