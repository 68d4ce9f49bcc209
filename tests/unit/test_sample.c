/* test_sample: lm_sample against sampling by definition (sort every
 * candidate, cut by top_k then top_p, draw) with the same generator, over
 * many draws, distributions and settings; and greedy is the argmax. */
#include "rt.h"
#include "sample.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static uint64_t gen = 1;

static double uni(void)
{
	gen = gen * 6364136223846793005ull + 1442695040888963407ull;
	return (gen >> 11) * (1.0 / 9007199254740992.0);
}

/* the generator lm_sample uses (sample.c), to replay its draws */
static double draw(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return ((*s * 2685821657736338717ull) >> 11) * (1.0 / 9007199254740992.0);
}

typedef struct { float p; int id; } C;

static int cmp(const void *a, const void *b)
{
	const C *x = a, *y = b;
	if (x->p != y->p)
		return x->p > y->p ? -1 : 1;
	return x->id - y->id;
}

static int naive(const float *l, long n, const lm_sampler *s, uint64_t *rng)
{
	C *c = malloc(n * sizeof *c);
	float mx = l[0];
	for (long i = 1; i < n; i++)
		mx = l[i] > mx ? l[i] : mx;
	double sum = 0;
	for (long i = 0; i < n; i++) {
		c[i].id = (int)i;
		c[i].p = expf((l[i] - mx) / s->temp);
		sum += c[i].p;
	}
	/* without a cut the draw walks the ids in order (sample.c's
	 * convention: any fixed order samples the same distribution) */
	if (s->top_k > 0 || s->top_p < 1)
		qsort(c, n, sizeof *c, cmp);
	long keep = s->top_k > 0 && s->top_k < n ? s->top_k : n;
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
	double r = draw(rng) * sum, acc = 0;
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

/* The logit processors by definition: count each id's occurrences in the
 * window, then bias, penalise, and cut by min_p. */
static int naive_hist(const float *l0, long n, const lm_sampler *s, const int *h,
                      long nh, uint64_t *rng)
{
	float *l = malloc(n * sizeof *l);
	long *cnt = calloc(n, sizeof *cnt);
	for (long i = 0; i < n; i++)
		l[i] = l0[i];
	for (int i = 0; i < s->nbias; i++)
		l[s->bias_id[i]] += s->bias[i];
	for (long i = nh - s->repeat_last_n < 0 ? 0 : nh - s->repeat_last_n; i < nh; i++)
		cnt[h[i]]++;
	for (long i = 0; i < n; i++) {
		if (!cnt[i])
			continue;
		l[i] = l[i] < 0 ? l[i] * s->repeat_penalty : l[i] / s->repeat_penalty;
		l[i] -= s->presence_penalty + s->frequency_penalty * cnt[i];
	}
	float mx = l[0];
	for (long i = 1; i < n; i++)
		mx = l[i] > mx ? l[i] : mx;
	if (s->min_p > 0 && s->temp > 0)
		for (long i = 0; i < n; i++)
			if (expf(l[i] - mx) < s->min_p)
				l[i] = -INFINITY;
	int id;
	if (s->temp <= 0) {
		id = 0;
		for (long i = 1; i < n; i++)
			if (l[i] > l[id])
				id = (int)i;
	} else {
		id = naive(l, n, s, rng);
	}
	free(l);
	free(cnt);
	return id;
}

/* Penalties, biases and min_p over histories with repeats, greedy and
 * sampled: returns the count of draws that differ. */
static int processors(int *draws)
{
	enum { N = 300, H = 90 };
	float l[N];
	int h[H], bid[3] = {5, 17, 299};
	float bv[3] = {4.5f, -100, 0.25f};
	lm_sampler set[6] = {
		{.temp = 0, .top_p = 1, .repeat_penalty = 1.3f, .repeat_last_n = 20},
		{.temp = 0.8f, .top_p = 1, .repeat_penalty = 1.1f, .repeat_last_n = 64,
		 .presence_penalty = 0.5f, .frequency_penalty = 0.25f},
		{.temp = 1, .top_p = 1, .min_p = 0.1f, .repeat_penalty = 1, .repeat_last_n = 64},
		{.temp = 0.7f, .top_p = 0.9f, .top_k = 40, .min_p = 0.05f, .repeat_penalty = 0.8f,
		 .repeat_last_n = 7, .frequency_penalty = -0.5f},
		{.temp = 1.5f, .top_p = 1, .repeat_penalty = 1, .repeat_last_n = 0,
		 .presence_penalty = 2, .nbias = 3, .bias_id = bid, .bias = bv},
		{.temp = 0, .top_p = 1, .repeat_penalty = 1, .repeat_last_n = 64,
		 .nbias = 3, .bias_id = bid, .bias = bv},
	};
	int bad = 0;
	for (int rep = 0; rep < 20; rep++) {
		for (long i = 0; i < N; i++)   /* logits of both signs */
			l[i] = (float)(6 * uni() * uni() - 2);
		for (long i = 0; i < H; i++)   /* few distinct ids: many repeats */
			h[i] = (int)(uni() * (rep % 2 ? 12 : N));
		for (int k = 0; k < 6; k++) {
			uint64_t a = 5 + rep, b = 5 + rep;
			for (int d = 0; d < 10; d++, (*draws)++) {
				long nh = (d * 13) % H;
				bad += lm_sample_hist(l, N, &set[k], h, nh, &a)
				       != naive_hist(l, N, &set[k], h, nh, &b);
			}
		}
	}
	return bad;
}

int main(void)
{
	long sizes[3] = {7, 1000, 50000};
#define S(t, p, k) {.temp = t, .top_p = p, .top_k = k}
	lm_sampler set[5] = {S(1, 1, 0), S(0.7f, 0.9f, 0), S(1.3f, 0.99f, 40), S(0.5f, 1, 3),
	                     S(2, 0.999f, 0)};
	int bad = 0, draws = 0;
	for (int si = 0; si < 3; si++) {
		long n = sizes[si];
		float *l = malloc(n * sizeof *l);
		for (int rep = 0; rep < 6; rep++) {
			for (long i = 0; i < n; i++)   /* flat, peaked, and with ties */
				l[i] = rep % 3 == 0 ? (float)uni() : rep % 3 == 1 ? (float)(8 * uni() * uni())
				                                               : (float)floor(4 * uni());
			for (int k = 0; k < 5; k++) {
				uint64_t a = 77 + rep, b = 77 + rep;
				for (int d = 0; d < 20; d++, draws++)
					bad += lm_sample(l, n, &set[k], &a) != naive(l, n, &set[k], &b);
			}
			lm_sampler greedy = S(0, 1, 0);
			uint64_t g = 1;
			long best = 0;
			for (long i = 1; i < n; i++)
				if (l[i] > l[best])
					best = i;
			bad += lm_sample(l, n, &greedy, &g) != best;
		}
		free(l);
	}
	int pdraws = 0, pbad = processors(&pdraws);
	if (pbad)
		printf("FAIL sample: %d of %d draws with penalties, biases or min_p differ from "
		       "their definition\n", pbad, pdraws);
	else
		printf("PASS sample: %d draws with repetition/presence/frequency penalties, logit "
		       "bias and min_p equal their definition\n", pdraws);
	bad += pbad;
	if (bad)
		printf("FAIL sample: %d of %d draws differ from sampling by definition\n", bad, draws);
	else
		printf("PASS sample: %d draws equal sampling by definition (top-k, top-p, ties)\n", draws);
	return bad != 0;
}
