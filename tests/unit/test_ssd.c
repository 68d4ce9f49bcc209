/* test_ssd: the chunked Mamba-2 scan (runtime/ssd.c) against the token by
 * token one (runtime/ssm.c) on random inputs: long sequences, chunks of
 * several sizes (1, off the length, the whole call), shared and grouped
 * B/C, steps that make the decays near 1 (state kept) and near 0
 * (forgotten within a token), a random carried-in state.  Outputs and the
 * carried-out state must agree within DESIGN.md's bound: 1e-4 of the
 * largest magnitude. */
#include "rt.h"
#include "harness.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures;
static uint64_t rng = 0x2545f4914f6cdd1dull;

static float uni(void)
{
	return (float)xorshift_uni(&rng);
}

static void check(long n, long chunk, long heads, long groups, float dt_shift, const char *what)
{
	lm_ssm_dims s = {.heads = heads, .hd = 24, .d_state = 16, .groups = groups,
	                 .dt_min = 0, .dt_max = INFINITY};
	long W = heads * s.hd, BC = groups * s.d_state, S = heads * s.hd * s.d_state;
	float *x = malloc(n * W * 4), *dt = malloc(n * heads * 4), *B = malloc(n * BC * 4);
	float *C = malloc(n * BC * 4), *y0 = malloc(n * W * 4), *y1 = malloc(n * W * 4);
	float *st0 = malloc(S * 4), *st1 = malloc(S * 4);
	float a_log[16], bias[16], d[16];
	for (long i = 0; i < n * W; i++)
		x[i] = uni();
	for (long i = 0; i < n * heads; i++)
		dt[i] = 2 * uni() + dt_shift;
	for (long i = 0; i < n * BC; i++) {
		B[i] = uni();
		C[i] = uni();
	}
	for (long h = 0; h < heads; h++) {
		a_log[h] = uni();
		bias[h] = 0.5f * uni();
		d[h] = uni();
	}
	for (long i = 0; i < S; i++)
		st0[i] = st1[i] = uni();
	lm_ssm(y0, x, dt, B, C, n, &s, a_log, bias, d, st0);
	lm_ssm_chunked(y1, x, dt, B, C, n, chunk, &s, a_log, bias, d, st1);
	double ey = max_rel(y1, y0, n * W), es = max_rel(st1, st0, S);
	if (ey <= 1e-4 && es <= 1e-4)
		printf("PASS ssd %s: %ld tokens in chunks of %ld, %ld heads in %ld groups: "
		       "outputs %.2g, state %.2g\n", what, n, chunk, heads, groups, ey, es);
	else {
		printf("FAIL ssd %s: %ld tokens in chunks of %ld: outputs off by %.2g, state by %.2g\n",
		       what, n, chunk, ey, es);
		failures++;
	}
	free(x); free(dt); free(B); free(C); free(y0); free(y1); free(st0); free(st1);
}

int main(void)
{
	long chunks[] = {1, 16, 64, 100, 256};
	for (int i = 0; i < 5; i++)
		check(700, chunks[i], 4, 1, 0, "mixed decays");
	check(1000, 64, 4, 2, -9, "decays near 1");      /* softplus(-9 +- 2): steps ~1e-4 */
	check(1000, 64, 4, 2, 12, "decays near 0");      /* steps ~12: exp(-12 A) */
	check(5, 64, 6, 3, 0, "a call shorter than a chunk");
	lm_set_threads(2);
	check(513, 64, 6, 1, 0, "two threads");
	return failures != 0;
}
