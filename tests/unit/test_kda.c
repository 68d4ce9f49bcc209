/* test_kda: the chunked gated delta rule (runtime/kda_chunk.c), and
 * lm_gated_delta whichever form it chooses, against the token by token
 * one (runtime/delta.c) on random inputs shaped as
 * Kimi's: unit keys, queries scaled by 1/dk, beta in (0, 1), a decay per
 * key channel.  Chunks of several sizes (1, the block of 16 and one past
 * it, off the length, the whole call), lengths that are not a multiple
 * of the chunk, decays near 1, and strong decays whose products over a
 * few tokens underflow (some exactly 0), mixed channel by channel; a
 * random carried-in state.  Outputs and the carried-out state must agree
 * within DESIGN.md's bound: 1e-4 of the largest magnitude.  The token by
 * token form must also give the same bits on 1, 2 and 3 threads, whose
 * shares of the state rows start and end inside heads and inside the
 * groups of rows delta.c takes together. */
#include "rt.h"
#include "harness.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures;
static const char *isa;     /* the instruction set lm_isa() chose: LMCC_ISA */
static uint64_t rng = 0x9e3779b97f4a7c15ull;

static float uni(void)
{
	return (float)xorshift_uni(&rng);
}

/* decays: 0 mixed, 1 near 1, 2 strong (a third of the channels near 1,
 * a third e^-30 or less, a third exactly 0) */
static void check(long n, long chunk, long heads, long dk, long dv, int decays, const char *what)
{
	long Q = n * heads * dk, V = n * heads * dv, S = heads * dv * dk;
	float *q = malloc(Q * 4), *k = malloc(Q * 4), *g = malloc(Q * 4), *v = malloc(V * 4);
	float *beta = malloc(n * heads * 4), *o0 = malloc(V * 4), *o1 = malloc(V * 4);
	float *s0 = malloc(S * 4), *s1 = malloc(S * 4), *o2 = malloc(V * 4), *s2 = malloc(S * 4);
	for (long r = 0; r < n * heads; r++) {
		double kk = 0;
		for (long i = 0; i < dk; i++) {
			q[r * dk + i] = uni() / dk;
			k[r * dk + i] = uni();
			kk += (double)k[r * dk + i] * k[r * dk + i];
		}
		for (long i = 0; i < dk; i++)
			k[r * dk + i] /= (float)sqrt(kk);
		beta[r] = 0.5f + 0.5f * uni();
		for (long i = 0; i < dk; i++) {
			double x = uni();
			long kind = decays == 2 ? i % 3 : decays;
			g[r * dk + i] = kind == 0 ? (float)exp(-0.5 * (1.5 + x))     /* 0.37 to 0.78 */
			              : kind == 1 ? (float)exp(-1e-3 * (1 + x))      /* 0.998 to 1 */
			              : x < 0 ? 0 : (float)exp(-30 - 20 * x);        /* 0, or e^-30..e^-50 */
		}
	}
	for (long i = 0; i < V; i++)
		v[i] = uni();
	for (long i = 0; i < S; i++)
		s0[i] = s1[i] = s2[i] = uni();
	lm_gated_delta_tokens(o0, q, k, v, g, beta, n, heads, dk, dv, s0);
	lm_gated_delta_chunked(o1, q, k, v, g, beta, n, heads, dk, dv, chunk, s1);
	lm_gated_delta(o2, q, k, v, g, beta, n, heads, dk, dv, s2);     /* whichever it chooses */
	double eo = max_rel(o1, o0, V), es = max_rel(s1, s0, S);
	if (eo <= 1e-4 && es <= 1e-4 && max_rel(o2, o0, V) <= 1e-4 && max_rel(s2, s0, S) <= 1e-4)
		printf("PASS kda[%s] %s: %ld tokens in chunks of %ld, %ld heads, dk %ld, dv %ld: "
		       "outputs %.2g, state %.2g\n", isa, what, n, chunk, heads, dk, dv, eo, es);
	else {
		printf("FAIL kda[%s] %s: %ld tokens in chunks of %ld: outputs off by %.2g, state by %.2g; "
		       "lm_gated_delta's by %.2g and %.2g\n", isa, what, n, chunk, eo, es,
		       max_rel(o2, o0, V), max_rel(s2, s0, S));
		failures++;
	}
	free(q); free(k); free(g); free(v); free(beta); free(o0); free(o1); free(s0); free(s1); free(o2); free(s2);
}

/* The token by token form on 1, 2 and 3 threads, over calls of 1, 7 and
 * 40 tokens (a block of tokens and parts of one). */
static void threads(long heads, long dk, long dv)
{
	long n = 48, Q = n * heads * dk, V = n * heads * dv, S = heads * dv * dk;
	float *q = malloc(Q * 4), *k = malloc(Q * 4), *g = malloc(Q * 4), *v = malloc(V * 4);
	float *beta = malloc(n * heads * 4), *o[3], *s[3];
	for (long i = 0; i < Q; i++) {
		q[i] = uni() / dk;
		k[i] = uni() / sqrtf((float)dk);
		g[i] = (float)exp(-0.5 * (1.5 + uni()));
	}
	for (long i = 0; i < V; i++)
		v[i] = uni();
	for (long i = 0; i < n * heads; i++)
		beta[i] = 0.5f + 0.5f * uni();
	for (int t = 0; t < 3; t++) {
		o[t] = malloc(V * 4);
		s[t] = calloc(S, 4);
		lm_set_threads(t + 1);
		long calls[] = {1, 7, 40};
		for (long c = 0, at = 0; c < 3; at += calls[c++])
			lm_gated_delta_tokens(o[t] + at * heads * dv, q + at * heads * dk, k + at * heads * dk,
			                      v + at * heads * dv, g + at * heads * dk, beta + at * heads,
			                      calls[c], heads, dk, dv, s[t]);
	}
	int same = 1;
	for (int t = 1; t < 3; t++)
		same &= !memcmp(o[t], o[0], V * 4) && !memcmp(s[t], s[0], S * 4);
	printf("%s kda[%s] threads: %ld heads, dk %ld, dv %ld: the same bits on 1, 2 and 3 threads\n",
	       same ? "PASS" : "FAIL", isa, heads, dk, dv);
	failures += !same;
	for (int t = 0; t < 3; t++) {
		free(o[t]);
		free(s[t]);
	}
	free(q); free(k); free(g); free(v); free(beta);
}

int main(void)
{
	isa = lm_isa_name(lm_isa());
	long chunks[] = {1, 16, 17, 64, 100, 256};
	for (int i = 0; i < 6; i++)
		check(300, chunks[i], 3, 64, 48, 0, "mixed decays");
	check(700, 64, 2, 128, 128, 1, "decays near 1");
	check(333, 64, 2, 64, 32, 2, "strong decays, underflowing");
	check(129, 32, 2, 32, 64, 2, "strong decays, dv > dk");
	check(5, 64, 4, 64, 48, 0, "a call shorter than a chunk");
	check(1, 64, 4, 64, 48, 0, "one token");
	check(40, 16, 3, 20, 12, 0, "dk not a multiple of 8");
	threads(3, 64, 12);
	threads(2, 20, 9);
	lm_set_threads(2);
	check(257, 64, 5, 64, 48, 0, "two threads");
	return failures != 0;
}
