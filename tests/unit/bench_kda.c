/* bench_kda: CPU time of the gated delta rule token by token
 * (lm_gated_delta_tokens) against its chunked form (lm_gated_delta_chunked) at
 * Kimi Linear's dimensions (32 heads, dk = dv = 128), interleaved, best
 * of R, on the thread count given, in calls of at most CALL tokens as a
 * model's prefill makes them (its blocks of MAXB tokens).  Fewer than 512
 * tokens (decode-sized calls) are run 512 / TOKENS times over per sample,
 * the state carried on, and the time given per pass.
 *   bench_kda TOKENS [R] [THREADS] [CALL] [CHUNK...]
 *   (defaults: 3 repetitions, 1 thread, calls of 256, chunks 32 64 128) */
#include "rt.h"
#include "harness.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double cpu(void)
{
	struct timespec t;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
	return t.tv_sec + 1e-9 * t.tv_nsec;
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 512, reps = argc > 2 ? atol(argv[2]) : 3;
	int threads = argc > 3 ? atoi(argv[3]) : 1;
	long call = argc > 4 ? atol(argv[4]) : 256;
	long chunks[8] = {32, 64, 128}, nc = 3;
	if (argc > 5)
		for (nc = 0; nc < 8 && 5 + nc < argc; nc++)
			chunks[nc] = atol(argv[5 + nc]);
	long H = 32, D = 128, Q = n * H * D, S = H * D * D;
	uint64_t rng = 7;
	float *q = lm_floats(Q), *k = lm_floats(Q), *g = lm_floats(Q), *v = lm_floats(Q);
	float *o = lm_floats(Q), *beta = lm_floats(n * H), *st = lm_floats(S);
	for (long i = 0; i < Q; i++) {
		q[i] = (float)xorshift_uni(&rng) / D;
		k[i] = (float)xorshift_uni(&rng) / sqrtf((float)D / 3);
		g[i] = (float)exp(-0.5 * (1.5 + xorshift_uni(&rng)));
		v[i] = (float)xorshift_uni(&rng);
	}
	for (long i = 0; i < n * H; i++)
		beta[i] = 0.5f;
	long passes = n < 512 ? 512 / n : 1;
	lm_set_threads(threads);
	openblas_set_num_threads(1);     /* as a model's first lm_matmul sets it */
	double best[9];
	for (int i = 0; i <= nc; i++)
		best[i] = INFINITY;
	for (long r = 0; r < reps; r++)
		for (int i = 0; i <= nc; i++) {
			for (long x = 0; x < S; x++)
				st[x] = 0;
			double c0 = cpu(), w0 = lm_now();
			for (long e = 0; e < passes * n;) {
				long t = e % n, m = n - t < call ? n - t : call, a = t * H * D;
				e += m;
				if (i == 0)
					lm_gated_delta_tokens(o + a, q + a, k + a, v + a, g + a, beta + t * H, m, H, D, D,
					                      st);
				else
					lm_gated_delta_chunked(o + a, q + a, k + a, v + a, g + a, beta + t * H, m,
					                       H, D, D, chunks[i - 1], st);
			}
			double c = (threads == 1 ? cpu() - c0 : lm_now() - w0) / passes;
			best[i] = c < best[i] ? c : best[i];
		}
	printf("%ld tokens in calls of %ld, %d thread%s, best of %ld (%s): recurrence %.3g s", n,
	       call, threads, threads > 1 ? "s" : "", reps, threads == 1 ? "CPU time" : "wall time",
	       best[0]);
	for (int i = 1; i <= nc; i++)
		printf(", chunks of %ld %.3g s (%.2fx)", chunks[i - 1], best[i], best[0] / best[i]);
	printf("\n");
	return 0;
}
