/* tok_bpe.c: the merge loop every BPE flavour shares.
 *
 * Symbols form a linked list; every adjacent pair that may merge sits in a
 * binary heap keyed by (priority, left index).  Popping the best pair,
 * merging it and pushing the two new neighbour pairs costs O(log n), so a
 * word of n symbols takes O(n log n) however long it is (a megabyte of one
 * repeated character included) instead of the O(n^2) of rescanning.  A heap
 * entry is stale when either side has changed since it was pushed; the
 * lengths tell, because a symbol only ever grows or dies. */
#include "tok_int.h"

#include <stdlib.h>

typedef struct {
	double prio;
	int left, right, len, id;
} entry;

typedef struct {
	entry *e;
	int n, cap;
} heap;

static int before(const entry *a, const entry *b)
{
	if (a->prio != b->prio)
		return a->prio < b->prio;
	return a->left < b->left;
}

static void heap_push(heap *h, entry x)
{
	int i;
	if (h->n == h->cap) {
		h->cap = h->cap ? h->cap * 2 : 64;
		h->e = lm_realloc(h->e, (size_t)h->cap * sizeof *h->e);
	}
	i = h->n++;
	while (i > 0 && before(&x, &h->e[(i - 1) / 2])) {
		h->e[i] = h->e[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	h->e[i] = x;
}

static entry heap_pop(heap *h)
{
	entry top = h->e[0], x = h->e[--h->n];
	int i = 0;
	for (;;) {
		int c = 2 * i + 1;
		if (c >= h->n)
			break;
		if (c + 1 < h->n && before(&h->e[c + 1], &h->e[c]))
			c++;
		if (!before(&h->e[c], &x))
			break;
		h->e[i] = h->e[c];
		i = c;
	}
	if (h->n)
		h->e[i] = x;
	return top;
}

static void try_pair(heap *h, tok_sym *sym, int l, int r, tok_pair_fn pair, void *ctx)
{
	entry x;
	if (l < 0 || r < 0 || sym[l].frozen || sym[r].frozen)
		return;
	if (!pair(ctx, &sym[l], &sym[r], &x.prio, &x.id))
		return;
	x.left = l;
	x.right = r;
	x.len = sym[l].len + sym[r].len;
	heap_push(h, x);
}

void bpe_merge(tok_sym *sym, int n, tok_pair_fn pair, void *ctx)
{
	heap h = { 0 };
	int i;
	for (i = 0; i + 1 < n; i++)
		try_pair(&h, sym, i, i + 1, pair, ctx);
	while (h.n) {
		entry x = heap_pop(&h);
		tok_sym *l = &sym[x.left], *r = &sym[x.right];
		if (l->len == 0 || r->len == 0 || l->next != x.right || l->len + r->len != x.len)
			continue;
		l->len = x.len;
		l->id = x.id;
		l->next = r->next;
		if (r->next >= 0)
			sym[r->next].prev = x.left;
		r->len = 0;
		try_pair(&h, sym, l->prev, x.left, pair, ctx);
		try_pair(&h, sym, x.left, l->next, pair, ctx);
	}
	free(h.e);
}

/* ---- cutting text where no merge can reach across ----
 *
 * A merge only ever forms a vocabulary piece, so a symbol can span the
 * boundary between two adjacent characters a|b only if some piece contains
 * "ab".  Where no piece does, the two sides merge independently, and
 * encoding them one at a time gives the same ids while keeping every merge
 * loop short (SentencePiece-style BPE has no pre-tokenizer: a whole prompt
 * is otherwise one word).  The set holds the character pairs that occur
 * inside pieces. */

void bigrams_add(tok_map64 *set, const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0;
	unsigned prev = 0;
	while (i < n) {
		int k = utf8_char(s + i, n - i, NULL);
		unsigned cp;
		if (!k)
			k = 1;
		cp = utf8_cp(s + i, k);
		if (i)
			map64_put(set, (uint64_t)prev << 32 | cp, 0, 0);
		prev = cp;
		i += k;
	}
}

void bpe_chunks(const tok_map64 *set, const lm_tok *known, const char *str, size_t n,
		re_piece_fn fn, void *ctx)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0, start = 0, prev_at = 0;
	unsigned prev = 0;
	while (i < n) {
		int k = utf8_lead_len(s[i]);
		unsigned cp;
		if (i + k > n)
			k = n - i;
		cp = utf8_cp(s + i, k);
		if (i > start && !map64_get(set, (uint64_t)prev << 32 | cp, NULL, NULL)
		    && (!known || (map_get(&known->text, known, str + prev_at, i - prev_at) >= 0
				   && map_get(&known->text, known, str + i, k) >= 0))) {
			fn(ctx, str + start, i - start);
			start = i;
		}
		prev = cp;
		prev_at = i;
		i += k;
	}
	if (n > start)
		fn(ctx, str + start, n - start);
}
