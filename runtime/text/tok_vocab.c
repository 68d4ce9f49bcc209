/* tok_vocab.c: the piece table (id -> bytes, kind) and the special tokens
 * that are split out of the text before the model's algorithm runs. */
#include "tok_int.h"

#include <stdlib.h>
#include <string.h>

/* Bytes beyond 4 GiB would overflow the 32-bit offsets; no real vocabulary
 * comes near, so a file that asks for it is malformed. */
static uint32_t blob_put(lm_tok *t, const char *s, size_t n)
{
	size_t off = t->blob_n;
	if (off + n + 1 > UINT32_MAX)
		lm_fail(t->path, "vocabulary text exceeds 4 GiB");
	if (off + n + 1 > t->blob_cap) {
		size_t cap = t->blob_cap ? t->blob_cap : 1 << 16;
		while (cap < off + n + 1)
			cap *= 2;
		t->blob = lm_realloc(t->blob, cap);
		t->blob_cap = cap;
	}
	if (n)
		memcpy(t->blob + off, s, n);
	t->blob[off + n] = 0;   /* so a piece can be read as a C string */
	t->blob_n = off + n + 1;
	return off;
}

void vocab_grow(lm_tok *t, int n)
{
	int i;
	if (n <= t->n)
		return;
	if (n > TOK_MAX_IDS)
		lm_fail(t->path, "vocabulary of %d ids is too large", n);
	if (n > t->cap) {   /* doubling: ids mostly arrive one at a time */
		t->cap = n > 2 * t->cap ? n : 2 * t->cap;
		t->piece = lm_realloc(t->piece, (size_t)t->cap * sizeof *t->piece);
	}
	for (i = t->n; i < n; i++) {
		memset(&t->piece[i], 0, sizeof t->piece[i]);
		t->piece[i].kind = PK_UNUSED;
		t->piece[i].off = blob_put(t, "", 0);
	}
	t->n = n;
}

/* The readers bound their ids naming the field; this is the last line. */
static void check_id(lm_tok *t, int id)
{
	if (id < 0 || id >= TOK_MAX_IDS)
		lm_fail(t->path, "token id %d is not in [0, %d)", id, TOK_MAX_IDS);
}

void vocab_set(lm_tok *t, int id, const char *s, size_t n, int kind)
{
	check_id(t, id);
	vocab_grow(t, id + 1);
	t->piece[id].off = blob_put(t, s, n);
	t->piece[id].len = n;
	t->piece[id].kind = kind;
}

int vocab_add(lm_tok *t, const char *s, size_t n, int kind)
{
	int id = t->n;
	vocab_set(t, id, s, n, kind);
	return id;
}

void vocab_special(lm_tok *t, int id, const char *s, size_t n, int split)
{
	tok_piece *p;
	check_id(t, id);
	if (n == 0)
		lm_fail(t->path, "special token %d has empty text", id);
	vocab_grow(t, id + 1);
	p = &t->piece[id];
	p->soff = blob_put(t, s, n);
	p->slen = n;
	if (p->special < SP_TEXT)
		p->special = SP_TEXT;
	if (split && p->special != SP_SPLIT) {
		t->piece[id].special = SP_SPLIT;
		trie_add(&t->special, s, n, id);
		t->n_special++;
	}
}

int vocab_find_special(const lm_tok *t, const char *s)
{
	int id;
	size_t n = strlen(s);
	if (n && trie_longest(&t->special, s, n, &id) == n)
		return id;
	for (id = 0; id < t->n; id++)
		if (t->piece[id].special && t->piece[id].slen == n
		    && memcmp(special_text(t, id), s, n) == 0)
			return id;
	return -1;
}

int byte_piece(const char *s, size_t n)
{
	int v = 0, i;
	if (n != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>')
		return -1;
	for (i = 3; i < 5; i++) {
		char c = s[i];
		v = v * 16 + (c >= '0' && c <= '9' ? c - '0'
			      : c >= 'A' && c <= 'F' ? c - 'A' + 10
			      : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1000);
	}
	return v >= 0 ? v : -1;
}
