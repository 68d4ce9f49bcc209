/* sample.c: choosing the next token from logits.
 *
 * Greedy by default.  With a temperature, the distribution softmax(l / T)
 * is cut to the top_k most likely tokens and then to the smallest set whose
 * probability reaches top_p, and a token is drawn from what is left, with a
 * seeded generator so that a run can be repeated. */
#include "rt.h"
#include "sample.h"

#include <math.h>
#include <stdlib.h>

int lm_argmax(const float *x, long n)
{
	long best = 0;
	for (long i = 1; i < n; i++)
		if (x[i] > x[best])
			best = i;
	return (int)best;
}

static double uniform(uint64_t *s)
{
	/* xorshift64*: small, fast, and the same sequence everywhere */
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return ((*s * 2685821657736338717ull) >> 11) * (1.0 / 9007199254740992.0);
}

typedef struct { float p; int id; } Cand;

static int by_prob(const void *a, const void *b)
{
	float x = ((const Cand *)a)->p, y = ((const Cand *)b)->p;
	return x < y ? 1 : x > y ? -1 : ((const Cand *)a)->id - ((const Cand *)b)->id;
}

int lm_sample(const float *logits, long n, const lm_sampler *s, uint64_t *rng)
{
	if (s->temp <= 0)
		return lm_argmax(logits, n);
	Cand *c = lm_alloc(n * sizeof *c);
	float mx = logits[lm_argmax(logits, n)];
	double sum = 0;
	for (long i = 0; i < n; i++) {
		c[i].id = (int)i;
		c[i].p = expf((logits[i] - mx) / s->temp);
		sum += c[i].p;
	}
	long keep = n;
	if (s->top_k > 0 || s->top_p < 1) {
		qsort(c, n, sizeof *c, by_prob);
		if (s->top_k > 0 && s->top_k < keep)
			keep = s->top_k;
		if (s->top_p < 1) {
			double acc = 0;
			for (long i = 0; i < keep; i++) {
				acc += c[i].p / sum;
				if (acc >= s->top_p) {
					keep = i + 1;
					break;
				}
			}
		}
		sum = 0;
		for (long i = 0; i < keep; i++)
			sum += c[i].p;
	}
	double r = uniform(rng) * sum, acc = 0;
	int id = c[keep - 1].id;
	for (long i = 0; i < keep; i++) {
		acc += c[i].p;
		if (r < acc) {
			id = c[i].id;
			break;
		}
	}
	free(c);
	return id;
}
