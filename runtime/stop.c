/* stop.c: stop strings over streamed text (see stop.h).
 *
 * The held text never contains a whole stop string: after each push, a
 * stop string found in it ends the stream; otherwise its longest suffix
 * that begins some stop string stays held and the rest goes out. */
#define _GNU_SOURCE
#include "rt.h"
#include "stop.h"

#include <stdlib.h>
#include <string.h>

void lm_stop_init(lm_stop *st, char **stops, int n)
{
	*st = (lm_stop){.s = stops, .n = n};
}

/* The length of the longest suffix of t[0, len) that is a proper prefix
 * of a stop string. */
static size_t partial(const lm_stop *st, const char *t, size_t len)
{
	size_t best = 0;
	for (int i = 0; i < st->n; i++) {
		size_t m = strlen(st->s[i]);
		if (!m)
			continue;
		for (size_t k = m - 1 < len ? m - 1 : len; k > best; k--)
			if (!memcmp(t + len - k, st->s[i], k)) {
				best = k;
				break;
			}
	}
	return best;
}

size_t lm_stop_push(lm_stop *st, const char *text, size_t len, const char **out)
{
	static char empty;
	*out = &empty;
	if (st->hit)
		return 0;
	if (!st->n) {
		*out = text;
		return len;
	}
	if (st->len + len + 1 > st->cap) {
		st->cap = 2 * (st->len + len + 1);
		st->held = lm_realloc(st->held, st->cap);
	}
	memcpy(st->held + st->len, text, len);
	st->len += len;
	st->held[st->len] = 0;
	size_t cut = st->len;
	for (int i = 0; i < st->n; i++) {
		if (!*st->s[i])
			continue;
		char *f = memmem(st->held, st->len, st->s[i], strlen(st->s[i]));
		if (f && (size_t)(f - st->held) < cut)
			cut = f - st->held;
	}
	if (cut < st->len) {
		st->hit = 1;
		st->len = 0;
		*out = st->held;
		return cut;
	}
	size_t keep = partial(st, st->held, st->len), go = st->len - keep;
	/* hand out the front; the kept tail moves to the front next time */
	if (go + 1 > st->ocap)
		st->out = lm_realloc(st->out, st->ocap = 2 * (go + 1));
	memcpy(st->out, st->held, go);
	memmove(st->held, st->held + go, keep);
	st->len = keep;
	*out = st->out;
	return go;
}

size_t lm_stop_flush(lm_stop *st, const char **out)
{
	size_t n = st->hit ? 0 : st->len;
	*out = st->held ? st->held : "";
	st->len = 0;
	return n;
}

void lm_stop_free(lm_stop *st)
{
	free(st->held);
	free(st->out);
	st->held = st->out = NULL;
}
