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

/* Candidates in a strict order: more likely first, lower id on ties. */
static int before(const Cand *a, const Cand *b)
{
	return a->p > b->p || (a->p == b->p && a->id < b->id);
}

static int by_prob(const void *a, const void *b)
{
	return before(a, b) ? -1 : before(b, a) ? 1 : 0;
}

/* Move the m first candidates (in that order) to c[0, m), unsorted:
 * quickselect, median of three. */
static void select_top(Cand *c, long n, long m)
{
	long lo = 0, hi = n - 1;
	while (hi > lo) {
		long mid = lo + (hi - lo) / 2;
		Cand a = c[lo], b = c[mid], d = c[hi], piv;
		piv = before(&a, &b) ? (before(&b, &d) ? b : before(&a, &d) ? d : a)
		                     : (before(&a, &d) ? a : before(&b, &d) ? d : b);
		long i = lo, j = hi;
		while (i <= j) {
			while (before(&c[i], &piv))
				i++;
			while (before(&piv, &c[j]))
				j--;
			if (i <= j) {
				Cand t = c[i];
				c[i++] = c[j];
				c[j--] = t;
			}
		}
		if (m - 1 <= j)
			hi = j;
		else if (m - 1 >= i)
			lo = i;
		else
			return;
	}
}

/* NaN weights would make argmax return token 0 and sampling draw from
 * garbage, silently: a NaN or +inf logit stops the run (-inf is a token
 * ruled out). */
static void check_finite(const float *x, long n)
{
	for (long i = 0; i < n; i++)
		if (isnan(x[i]) || x[i] == INFINITY)
			lm_fail("logits", "token %ld has a logit of %s: the weights hold NaN or infinity, "
			        "or the computation overflows float32", i, isnan(x[i]) ? "NaN" : "+inf");
}

int lm_sample(const float *logits, long n, const lm_sampler *s, uint64_t *rng)
{
	static Cand *c;          /* reused: this runs once per token */
	static long cap;
	check_finite(logits, n);
	if (s->temp <= 0)
		return lm_argmax(logits, n);
	if (n > cap) {
		free(c);
		c = lm_alloc(n * sizeof *c);
		cap = n;
	}
	float mx = logits[lm_argmax(logits, n)];
	double sum = 0;
	for (long i = 0; i < n; i++) {
		c[i].id = (int)i;
		c[i].p = expf((logits[i] - mx) / s->temp);
		sum += c[i].p;
	}
	long keep = n;
	/* top_p 0, as mlx-lm's default, is off like 1: the empty set is no
	 * choice */
	float top_p = s->top_p > 0 && s->top_p < 1 ? s->top_p : 1;
	if (s->top_k > 0 || top_p < 1) {
		/* Only the head of the order matters: sort the first m, and look
		 * further only when top_p needs more. */
		long m = s->top_k > 0 && s->top_k < n ? s->top_k : n < 256 ? n : 256;
		for (;;) {
			select_top(c, n, m);
			qsort(c, m, sizeof *c, by_prob);
			keep = m;
			if (top_p >= 1)
				break;
			double acc = 0;
			long i;
			for (i = 0; i < m && acc < top_p; i++)
				acc += c[i].p / sum;
			if (acc >= top_p || m == n || m == s->top_k) {
				keep = i;
				break;
			}
			m = m * 4 < n ? m * 4 : n;
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
	return id;
}
