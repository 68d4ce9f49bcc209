/* tok_util.c: the small containers and UTF-8 rules every tokenizer file
 * uses: byte buffers, int arrays, hash maps, a byte trie. */
#include "tok_int.h"

#include <stdlib.h>
#include <string.h>

void buf_put(tok_buf *b, const void *s, size_t n)
{
	if (b->n + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 64;
		while (cap < b->n + n + 1)
			cap *= 2;
		b->p = lm_realloc(b->p, cap);
		b->cap = cap;
	}
	if (n)
		memcpy(b->p + b->n, s, n);
	b->n += n;
}

void buf_putc(tok_buf *b, int c)
{
	char ch = (char)c;
	buf_put(b, &ch, 1);
}

void buf_puts(tok_buf *b, const char *s)
{
	buf_put(b, s, strlen(s));
}

char *buf_cstr(tok_buf *b)
{
	buf_put(b, "", 0);
	b->p[b->n] = 0;
	return b->p;
}

void ints_push(tok_ints *a, int v)
{
	if (a->n == a->cap) {
		a->cap = a->cap ? a->cap * 2 : 16;
		a->p = lm_realloc(a->p, (size_t)a->cap * sizeof *a->p);
	}
	a->p[a->n++] = v;
}

/* ---- UTF-8 ---- */

const char utf8_fffd[3] = { (char)0xEF, (char)0xBF, (char)0xBD };

int utf8_lead_len(unsigned char c)
{
	return c < 0xC0 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : c < 0xF8 ? 4 : 1;
}

/* The allowed range of the second byte after lead C (Unicode table 3-7),
 * which excludes overlong forms, surrogates and code points past 10FFFF. */
static int second_ok(unsigned char c, unsigned char d)
{
	switch (c) {
	case 0xE0: return d >= 0xA0 && d <= 0xBF;
	case 0xED: return d >= 0x80 && d <= 0x9F;
	case 0xF0: return d >= 0x90 && d <= 0xBF;
	case 0xF4: return d >= 0x80 && d <= 0x8F;
	default: return d >= 0x80 && d <= 0xBF;
	}
}

/* How many bytes of S[0..N) form a valid start of one character (0 when
 * the lead byte itself is bad), and how many that character needs. */
static int utf8_valid_prefix(const unsigned char *s, size_t n, int *need)
{
	unsigned char c = s[0];
	int k, i;
	if (c < 0x80) {
		*need = 1;
		return 1;
	}
	if (c < 0xC2 || c > 0xF4) {
		*need = 1;
		return 0;
	}
	k = c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
	*need = k;
	for (i = 1; i < k && (size_t)i < n; i++) {
		unsigned char d = s[i];
		if (i == 1 ? !second_ok(c, d) : (d & 0xC0) != 0x80)
			break;
	}
	return i;
}

int utf8_char(const unsigned char *s, size_t n, int *prefix)
{
	int need, got;
	if (prefix)
		*prefix = 0;
	if (n == 0)
		return 0;
	got = utf8_valid_prefix(s, n, &need);
	if (got == need)
		return need;
	if (prefix && got > 0 && (size_t)got == n)
		*prefix = 1;
	return 0;
}

unsigned utf8_cp(const unsigned char *s, int k)
{
	static const unsigned char mask[5] = { 0, 0x7F, 0x1F, 0x0F, 0x07 };
	unsigned cp = s[0] & mask[k];
	int i;
	for (i = 1; i < k; i++)
		cp = cp << 6 | (s[i] & 63);
	return cp;
}

int utf8_valid(const char *s, size_t n)
{
	size_t i = 0;
	while (i < n) {
		int k = utf8_char((const unsigned char *)s + i, n - i, NULL);
		if (!k)
			return 0;
		i += k;
	}
	return 1;
}

void utf8_put(tok_buf *b, unsigned cp)
{
	unsigned char u[4];
	int n;
	if (cp < 0x80) {
		u[0] = cp;
		n = 1;
	} else if (cp < 0x800) {
		u[0] = 0xC0 | cp >> 6;
		u[1] = 0x80 | (cp & 63);
		n = 2;
	} else if (cp < 0x10000) {
		u[0] = 0xE0 | cp >> 12;
		u[1] = 0x80 | (cp >> 6 & 63);
		u[2] = 0x80 | (cp & 63);
		n = 3;
	} else {
		u[0] = 0xF0 | cp >> 18;
		u[1] = 0x80 | (cp >> 12 & 63);
		u[2] = 0x80 | (cp >> 6 & 63);
		u[3] = 0x80 | (cp & 63);
		n = 4;
	}
	buf_put(b, u, n);
}

size_t utf8_fix(tok_buf *out, const char *str, size_t n, int per_byte, int final)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0, start = 0;
	while (i < n) {
		int need, got = utf8_valid_prefix(s + i, n - i, &need);
		if (got == need) {
			i += need;
			continue;
		}
		if ((size_t)got == n - i && got > 0 && !final)
			break;          /* an incomplete character: wait for more */
		buf_put(out, s + start, i - start);
		buf_put(out, utf8_fffd, 3);
		i += (per_byte || got == 0) ? 1 : (size_t)got;
		start = i;
	}
	buf_put(out, s + start, i - start);
	return i;
}

/* ---- hashing ---- */

uint64_t tok_hash(const void *p, size_t n)
{
	const unsigned char *s = p;
	uint64_t h = 0x9E3779B97F4A7C15ull ^ (n * 0xff51afd7ed558ccdull), v;
	while (n >= 8) {
		memcpy(&v, s, 8);
		h = (h ^ v) * 0xbf58476d1ce4e5b9ull;
		h ^= h >> 31;
		s += 8;
		n -= 8;
	}
	v = 0;
	memcpy(&v, s, n);
	h = (h ^ v) * 0x94d049bb133111ebull;
	h ^= h >> 29;
	h *= 0xbf58476d1ce4e5b9ull;
	return h ^ (h >> 32);
}

static uint64_t mix64(uint64_t k)
{
	k ^= k >> 33;
	k *= 0xff51afd7ed558ccdull;
	k ^= k >> 33;
	k *= 0xc4ceb9fe1a85ec53ull;
	return k ^ (k >> 33);
}

/* ---- string map (keys live in the piece table) ---- */

static void map_grow(tok_map *m, const lm_tok *t)
{
	uint32_t *old = m->slot, oldcap = m->slot ? m->mask + 1 : 0, i;
	uint32_t cap = oldcap ? oldcap * 2 : 1024;
	m->slot = lm_alloc((size_t)cap * sizeof *m->slot);
	m->mask = cap - 1;
	for (i = 0; i < oldcap; i++) {
		if (old[i]) {
			int id = old[i] - 1;
			uint32_t j = tok_hash(piece_text(t, id), t->piece[id].len) & m->mask;
			while (m->slot[j])
				j = (j + 1) & m->mask;
			m->slot[j] = old[i];
		}
	}
	free(old);
}

int map_get(const tok_map *m, const lm_tok *t, const char *s, size_t n)
{
	uint32_t j;
	if (!m->slot)
		return -1;
	j = tok_hash(s, n) & m->mask;
	for (; m->slot[j]; j = (j + 1) & m->mask) {
		int id = m->slot[j] - 1;
		const tok_piece *p = &t->piece[id];
		if (p->len == n && memcmp(t->blob + p->off, s, n) == 0)
			return id;
	}
	return -1;
}

void map_add(tok_map *m, const lm_tok *t, int id)
{
	uint32_t j;
	const char *s = piece_text(t, id);
	size_t n = t->piece[id].len;
	if (!m->slot || (m->n + 1) * 2 > m->mask + 1)
		map_grow(m, t);
	j = tok_hash(s, n) & m->mask;
	for (; m->slot[j]; j = (j + 1) & m->mask) {
		const tok_piece *p = &t->piece[m->slot[j] - 1];
		if (p->len == n && memcmp(t->blob + p->off, s, n) == 0)
			return;
	}
	m->slot[j] = id + 1;
	m->n++;
}

void map_free(tok_map *m)
{
	free(m->slot);
	memset(m, 0, sizeof *m);
}

/* ---- 64-bit key map ---- */

#define EMPTY64 UINT64_MAX

static void map64_grow(tok_map64 *m)
{
	uint32_t oldcap = m->key ? m->mask + 1 : 0, cap = oldcap ? oldcap * 2 : 1024, i;
	uint64_t *ok = m->key;
	int32_t *oa = m->a, *ob = m->b;
	m->key = lm_alloc((size_t)cap * sizeof *m->key);
	memset(m->key, 0xff, (size_t)cap * sizeof *m->key);
	m->a = lm_alloc((size_t)cap * sizeof *m->a);
	m->b = lm_alloc((size_t)cap * sizeof *m->b);
	m->mask = cap - 1;
	for (i = 0; i < oldcap; i++) {
		if (ok[i] != EMPTY64) {
			uint32_t j = mix64(ok[i]) & m->mask;
			while (m->key[j] != EMPTY64)
				j = (j + 1) & m->mask;
			m->key[j] = ok[i];
			m->a[j] = oa[i];
			m->b[j] = ob[i];
		}
	}
	free(ok);
	free(oa);
	free(ob);
}

void map64_put(tok_map64 *m, uint64_t key, int a, int b)
{
	uint32_t j;
	if (!m->key || (m->n + 1) * 2 > m->mask + 1)
		map64_grow(m);
	for (j = mix64(key) & m->mask; m->key[j] != EMPTY64; j = (j + 1) & m->mask)
		if (m->key[j] == key)
			return;
	m->key[j] = key;
	m->a[j] = a;
	m->b[j] = b;
	m->n++;
}

int map64_get(const tok_map64 *m, uint64_t key, int *a, int *b)
{
	uint32_t j;
	if (!m->key)
		return 0;
	for (j = mix64(key) & m->mask; m->key[j] != EMPTY64; j = (j + 1) & m->mask) {
		if (m->key[j] == key) {
			if (a)
				*a = m->a[j];
			if (b)
				*b = m->b[j];
			return 1;
		}
	}
	return 0;
}

void map64_free(tok_map64 *m)
{
	free(m->key);
	free(m->a);
	free(m->b);
	memset(m, 0, sizeof *m);
}

/* ---- byte trie: edges are (node, byte) keys in a map64 ---- */

void trie_init(tok_trie *tr)
{
	memset(tr, 0, sizeof *tr);
	ints_push(&tr->value, -1);
}

int trie_step(const tok_trie *tr, int node, unsigned char c)
{
	int child;
	if (!map64_get(&tr->edge, (uint64_t)node << 8 | c, &child, NULL))
		return -1;
	return child;
}

void trie_add(tok_trie *tr, const char *s, size_t n, int value)
{
	int node = 0;
	size_t i;
	for (i = 0; i < n; i++) {
		int child = trie_step(tr, node, (unsigned char)s[i]);
		if (child < 0) {
			child = tr->value.n;
			ints_push(&tr->value, -1);
			map64_put(&tr->edge, (uint64_t)node << 8 | (unsigned char)s[i], child, 0);
		}
		node = child;
	}
	if (tr->value.p[node] < 0)
		tr->value.p[node] = value;
}

size_t trie_longest(const tok_trie *tr, const char *s, size_t n, int *value)
{
	size_t i, best = 0;
	int node = 0;
	for (i = 0; i < n; i++) {
		node = trie_step(tr, node, (unsigned char)s[i]);
		if (node < 0)
			break;
		if (tr->value.p[node] >= 0) {
			best = i + 1;
			*value = tr->value.p[node];
		}
	}
	return best;
}

void trie_free(tok_trie *tr)
{
	map64_free(&tr->edge);
	free(tr->value.p);
	memset(tr, 0, sizeof *tr);
}
