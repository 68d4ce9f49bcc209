/* tok_rank.c: tiktoken rank files (Llama 3, Llama 4's tokenizer.model,
 * Kimi's tiktoken.model).
 *
 * Each line is "base64(token bytes) SP rank" and the rank is the id.  A
 * piece of text cut by the family's regex is one id when its bytes are a
 * token; otherwise it starts as single bytes and the adjacent pair whose
 * concatenation ranks lowest merges first (ties: leftmost) until no
 * concatenation is a token. */
#include "tok_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Meta's llama3/tokenizer.py pat_str. */
static const char LLAMA3_RE[] =
	"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}"
	"| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/* Meta's llama4/tokenizer.py O200K_PATTERN. */
static const char O200K_RE[] =
	"[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+"
	"(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
	"|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*"
	"(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
	"|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/* Kimi's tokenization_kimi.py pat_str, joined with "|".  The && classes
 * are rewritten for PCRE2 by re_new (tok_pre.c says why that is exact). */
static const char KIMI_RE[] =
	"[\\p{Han}]+"
	"|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}&&[^\\p{Han}]]*"
	"[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}&&[^\\p{Han}]]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
	"|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}&&[^\\p{Han}]]+"
	"[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}&&[^\\p{Han}]]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
	"|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/* The families a rank file can belong to. */
static const struct family {
	const char *name, *regex, *bos, *eot;
	int add_bos, n_ranks, chunk;
	const char *model_types;   /* config.json model_type values, '|' separated */
} FAMILIES[] = {
	{ "llama4", O200K_RE, "<|begin_of_text|>", "<|eot|>", 1, 200000, 0, "|llama4|" },
	{ "llama3", LLAMA3_RE, "<|begin_of_text|>", "<|eot_id|>", 1, 128000, 0, "|llama|" },
	{ "kimi", KIMI_RE, "[BOS]", "<|im_end|>", 0, 163584, 1,
	  "|kimi_linear|kimi_k2|deepseek_v3|" },
};
#define N_FAMILIES (int)(sizeof FAMILIES / sizeof FAMILIES[0])

static int b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Standard base64 with padding.  Returns the decoded length, or -1. */
static int b64_decode(const char *s, size_t n, unsigned char *out)
{
	size_t i;
	int len = 0;
	if (n == 0 || n % 4)
		return -1;
	for (i = 0; i < n; i += 4) {
		int v[4], k, pad = 0;
		for (k = 0; k < 4; k++) {
			if (s[i + k] == '=' && i + 4 == n && k >= 2) {
				v[k] = 0;
				pad++;
			} else if (pad || (v[k] = b64_value(s[i + k])) < 0) {
				return -1;
			}
		}
		out[len++] = v[0] << 2 | v[1] >> 4;
		if (pad < 2)
			out[len++] = (v[1] & 15) << 4 | v[2] >> 2;
		if (pad < 1)
			out[len++] = (v[2] & 3) << 6 | v[3];
	}
	return len;
}

static const struct family *pick_family(lm_tok *t, const char *path, int n_ranks)
{
	char mt[64], key[70];
	const char *base = strrchr(path, '/');
	int i;
	base = base ? base + 1 : path;
	if (config_family_hint(t->dir, mt, sizeof mt)) {
		snprintf(key, sizeof key, "|%s|", mt);
		for (i = 0; i < N_FAMILIES; i++)
			if (strstr(FAMILIES[i].model_types, key))
				return &FAMILIES[i];
	}
	if (strcmp(base, "tiktoken.model") == 0)
		return &FAMILIES[2];    /* the name Kimi's remote code loads */
	for (i = 0; i < N_FAMILIES; i++)
		if (FAMILIES[i].n_ranks == n_ranks)
			return &FAMILIES[i];
	lm_fail(path, "a tiktoken rank file of %d ranks, and no config.json model_type "
		"that tells which pre-tokenizer regex it needs", n_ranks);
}

void rank_load(lm_tok *t, const char *path)
{
	size_t len, pos = 0;
	char *data = lm_read_text(path, &len);
	unsigned char tokbuf[1024];
	int line = 0, i, n_ranks = 0;
	long lines = len && data[len - 1] != '\n';
	const struct family *fam;
	if (!data)
		lm_fail(path, "cannot read");
	tok_hold(t, data, free);
	/* ranks are ids 0..N-1 of a file of N lines: bounding them by the
	 * lines keeps one line from sizing the vocabulary table */
	for (const char *c = data; (c = memchr(c, '\n', len - (size_t)(c - data))); c++)
		lines++;
	t->algo = ALGO_RANK;
	t->dec = DEC_RAW;
	while (pos < len) {
		char *nl = memchr(data + pos, '\n', len - pos), *sp, *end;
		size_t ln = nl ? (size_t)(nl - data - pos) : len - pos;
		char *s = data + pos;
		long rank = 0;
		int n;
		line++;
		pos += ln + 1;
		if (ln && s[ln - 1] == '\r')
			ln--;
		if (ln == 0)
			continue;
		sp = memchr(s, ' ', ln);
		end = s + ln;
		if (!sp || sp + 1 == end)
			lm_fail(path, "line %d: expected \"base64 rank\"", line);
		if ((size_t)(sp - s) > 4 * sizeof tokbuf / 3)
			lm_fail(path, "line %d: token longer than %zu bytes", line, sizeof tokbuf);
		n = b64_decode(s, sp - s, tokbuf);
		if (n <= 0)
			lm_fail(path, "line %d: token is not base64", line);
		for (s = sp + 1; s < end; s++) {
			if (*s < '0' || *s > '9' || rank > 10000000)
				lm_fail(path, "line %d: rank is not a number below 10000000", line);
			rank = rank * 10 + (*s - '0');
		}
		if (rank >= lines)
			lm_fail(path, "line %d: rank %ld, but a file of %ld lines holds ranks below %ld",
				line, rank, lines, lines);
		if (rank < t->n && t->piece[rank].kind != PK_UNUSED)
			lm_fail(path, "line %d: rank %ld given twice", line, rank);
		vocab_set(t, (int)rank, (const char *)tokbuf, n, PK_NORMAL);
		if (map_get(&t->text, t, (const char *)tokbuf, n) >= 0)
			lm_fail(path, "line %d: token given twice", line);
		map_add(&t->text, t, (int)rank);
		if (n == 1)
			t->byte_id[tokbuf[0]] = (int)rank;
		n_ranks++;
	}
	tok_drop(t, data);
	for (i = 0; i < 256; i++)
		if (t->byte_id[i] < 0)
			lm_fail(path, "no rank for the single byte 0x%02X", i);
	fam = pick_family(t, path, n_ranks);
	snprintf(t->fmt, sizeof t->fmt, "tiktoken/%s", fam->name);
	t->re = re_new(fam->regex, path);
	t->pattern = fam->regex;
	t->chunk_kimi = fam->chunk;
	t->add_bos = fam->add_bos;
	t->bos_text = lm_strdup(fam->bos);
	t->eot_name = fam->eot;
	snprintf(t->family, sizeof t->family, "%s", fam->name);
	t->n_base = n_ranks;
}

/* ---- encoding ---- */

typedef struct {
	lm_tok *t;
	const char *s;          /* the piece being merged */
	tok_sym *sym;
	int cap;
	tok_ints *out;
} rank_ctx;

static int rank_pair(void *ctx, const tok_sym *a, const tok_sym *b, double *prio, int *id)
{
	rank_ctx *c = ctx;
	int r = map_get(&c->t->text, c->t, c->s + a->start, a->len + b->len);
	if (r < 0)
		return 0;
	*prio = r;
	*id = r;
	return 1;
}

static void rank_piece(void *ctx, const char *s, size_t n)
{
	rank_ctx *c = ctx;
	lm_tok *t = c->t;
	int id = map_get(&t->text, t, s, n), i;
	if (id >= 0) {
		ints_push(c->out, id);
		return;
	}
	if ((int)n > c->cap) {
		c->cap = n;
		c->sym = lm_realloc(c->sym, n * sizeof *c->sym);
	}
	for (i = 0; i < (int)n; i++) {
		tok_sym *y = &c->sym[i];
		y->start = i;
		y->len = 1;
		y->prev = i - 1;
		y->next = i + 1 < (int)n ? i + 1 : -1;
		y->id = t->byte_id[(unsigned char)s[i]];
		y->frozen = 0;
	}
	c->s = s;
	bpe_merge(c->sym, n, rank_pair, c);
	for (i = 0; i >= 0; i = c->sym[i].next)
		ints_push(c->out, c->sym[i].id);
}

void rank_encode(lm_tok *t, const char *s, size_t n, tok_ints *out)
{
	rank_ctx c = { t, NULL, NULL, 0, out };
	re_split(t->re, s, n, rank_piece, &c);
	free(c.sym);
}
