/* test_stop: stop strings over text cut into every possible pieces.  For
 * each text, stop set and cutting, the concatenated output must be the
 * text up to the first stop string's earliest occurrence (the whole text
 * when none occurs), and no piece handed out may end inside a stop string
 * that later completes. */
#include "rt.h"
#include "stop.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The text before the earliest occurrence of any stop string. */
static size_t want(const char *t, char **s, int n)
{
	size_t best = strlen(t);
	for (int i = 0; i < n; i++) {
		const char *f = strstr(t, s[i]);
		if (f && (size_t)(f - t) < best)
			best = f - t;
	}
	return best;
}

static int run(const char *t, char **s, int n, unsigned cuts)
{
	lm_stop st;
	lm_stop_init(&st, s, n);
	char got[256];
	size_t len = strlen(t), g = 0, from = 0;
	for (size_t i = 1; i <= len; i++) {
		if (i < len && !(cuts >> (i - 1) & 1))
			continue;
		const char *out;
		size_t k = lm_stop_push(&st, t + from, i - from, &out);
		memcpy(got + g, out, k);
		g += k;
		from = i;
	}
	const char *out;
	size_t k = lm_stop_flush(&st, &out);
	memcpy(got + g, out, k);
	g += k;
	lm_stop_free(&st);
	size_t w = want(t, s, n);
	return g != w || memcmp(got, t, w);
}

int main(void)
{
	char *set1[] = {"END"}, *set2[] = {"ab", "bcd", "\n\n"}, *set3[] = {"aaa", "aab"};
	struct { const char *t; char **s; int n; } c[] = {
		{"hello END world", set1, 1}, {"ENENDE", set1, 1}, {"EN", set1, 1},
		{"xxabcd", set2, 3}, {"xbcbcd", set2, 3}, {"one\ntwo\n\nthree", set2, 3},
		{"aaaab", set3, 2}, {"aabaaa", set3, 2}, {"no stop here", set2, 3},
		{"abc", NULL, 0},
	};
	int bad = 0, runs = 0;
	for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
		size_t len = strlen(c[i].t);
		unsigned all = len > 13 ? 1u << 12 : 1u << (len - 1);
		for (unsigned cuts = 0; cuts < all; cuts++, runs++)
			if (run(c[i].t, c[i].s, c[i].n, cuts * (len > 13 ? 7919u : 1u))) {
				if (!bad)
					printf("FAIL stop: '%s' cut %#x\n", c[i].t, cuts);
				bad++;
			}
	}
	if (!bad)
		printf("PASS stop: %d cuttings of %zu texts stop where the first stop string starts\n",
		       runs, sizeof c / sizeof c[0]);
	return bad != 0;
}
