/* tok_spm.c: SentencePiece .model files (Baichuan-M1; the Llama 2 and
 * llm-jp stand-ins), BPE and Unigram, with byte fallback.
 *
 * The file is a protobuf ModelProto, read here field by field:
 *   1 pieces          repeated {1 piece, 2 score (float), 3 type}
 *   2 trainer_spec    3 model_type (1 UNIGRAM, 2 BPE), 24
 *                     treat_whitespace_as_suffix, 35 byte_fallback
 *   3 normalizer_spec 1 name, 2 precompiled_charsmap, 3 add_dummy_prefix,
 *                     4 remove_extra_whitespaces, 5 escape_whitespaces
 * Types: 1 NORMAL, 2 UNKNOWN, 3 CONTROL, 4 USER_DEFINED, 5 UNUSED, 6 BYTE.
 *
 * Encoding follows the SentencePiece library (normalizer.cc, bpe_model.cc,
 * unigram_model.cc EncodeOptimized, sentencepiece_processor.cc), including
 * its float arithmetic, since Unigram ties are decided by it. */
#include "tok_int.h"

#include <float.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { T_NORMAL = 1, T_UNKNOWN, T_CONTROL, T_USER, T_UNUSED, T_BYTE };

struct tok_spm {
	int unigram, byte_fallback, dummy_prefix, extra_ws, escape_ws, ws_suffix;
	tok_trie user;        /* USER_DEFINED pieces: matched first, never split */
	tok_trie pieces;      /* Unigram: NORMAL, USER_DEFINED, UNUSED pieces */
	tok_map64 bigrams;    /* BPE: character pairs inside pieces (bpe_chunks) */
	float min_score, max_score;
};

static const char SPACE_SYM[] = "\xe2\x96\x81";  /* U+2581 */

/* ---- protobuf reading, every length checked ---- */

typedef struct {
	const unsigned char *p, *end, *base;
	const char *path;
} pb;

/* Names the byte offset AT (in the file) where the bad field starts. */
static void pb_fail_at(const pb *r, const unsigned char *at, const char *what) __attribute__((noreturn));
static void pb_fail_at(const pb *r, const unsigned char *at, const char *what)
{
	lm_fail(r->path, "byte %zu: %s", (size_t)(at - r->base), what);
}

static void pb_fail(const pb *r, const char *what) __attribute__((noreturn));
static void pb_fail(const pb *r, const char *what)
{
	pb_fail_at(r, r->p, what);
}

static uint64_t pb_varint(pb *r)
{
	const unsigned char *at = r->p;
	uint64_t v = 0;
	int shift;
	for (shift = 0; shift < 64; shift += 7) {
		if (r->p >= r->end)
			pb_fail_at(r, at, "truncated varint (the file ends inside it)");
		v |= (uint64_t)(*r->p & 127) << shift;
		if (!(*r->p++ & 128))
			return v;
	}
	pb_fail_at(r, at, "varint longer than 10 bytes");
}

static int pb_key(pb *r, int *wire)
{
	uint64_t k = pb_varint(r);
	if (k >> 3 == 0 || k >> 3 > 536870911)
		pb_fail(r, "bad field number");
	*wire = k & 7;
	return (int)(k >> 3);
}

/* A length-delimited field as its own reader. */
static pb pb_sub(pb *r)
{
	const unsigned char *at = r->p;
	uint64_t n = pb_varint(r);
	pb s = *r;
	if (n > (uint64_t)(r->end - r->p))
		pb_fail_at(r, at, "length runs past the end of the data (truncated file?)");
	s.end = r->p + n;
	r->p += n;
	return s;
}

static void pb_skip(pb *r, int wire)
{
	size_t n;
	switch (wire) {
	case 0: pb_varint(r); return;
	case 1: n = 8; break;
	case 2: pb_sub(r); return;
	case 5: n = 4; break;
	default: pb_fail(r, "unsupported wire type"); return;
	}
	if (n > (size_t)(r->end - r->p))
		pb_fail(r, "truncated fixed-size field");
	r->p += n;
}

static float pb_float(pb *r, int wire)
{
	float f;
	if (wire != 5)
		pb_fail(r, "score is not a float");
	if (r->end - r->p < 4)
		pb_fail(r, "truncated float");
	memcpy(&f, r->p, 4);   /* little-endian, as x86 */
	r->p += 4;
	return f;
}

static uint64_t pb_uint(pb *r, int wire)
{
	if (wire != 0)
		pb_fail(r, "expected a varint");
	return pb_varint(r);
}

/* ---- loading ---- */

static void read_piece(lm_tok *t, pb *r, int id)
{
	pb s = pb_sub(r);
	const unsigned char *text = NULL, *at = s.p;
	size_t tn = 0;
	float score = 0;
	int type = T_NORMAL, wire, f;
	tok_piece *p;
	while (s.p < s.end) {
		const unsigned char *field = s.p;
		f = pb_key(&s, &wire);
		if (f == 1 && wire == 2) {
			pb str = pb_sub(&s);
			text = str.p;
			tn = str.end - str.p;
		} else if (f == 2) {
			score = pb_float(&s, wire);
		} else if (f == 3) {
			uint64_t v = pb_uint(&s, wire);
			if (v < 1 || v > 6)
				pb_fail_at(&s, field, "piece type is not 1..6");
			type = (int)v;
		} else {
			pb_skip(&s, wire);
		}
	}
	s.p = at;
	if (!text || tn == 0)
		pb_fail(&s, "empty piece");
	if (type != T_BYTE && !utf8_valid((const char *)text, tn))
		pb_fail(&s, "piece is not UTF-8");
	vocab_set(t, id, (const char *)text, tn, PK_NORMAL);
	p = &t->piece[id];
	p->score = score;
	p->spm_type = type;
	if (type == T_BYTE) {
		int b = byte_piece((const char *)text, tn);
		if (b < 0)
			pb_fail(&s, "BYTE piece is not <0xXX>");
		p->kind = PK_BYTE;
		p->byte = b;
		if (t->byte_id[b] < 0)
			t->byte_id[b] = id;
	} else if (type == T_CONTROL || type == T_UNKNOWN) {
		p->kind = PK_UNUSED;
		vocab_special(t, id, (const char *)text, tn, 0);
		if (type == T_UNKNOWN) {
			if (t->unk >= 0)
				pb_fail(&s, "a second UNKNOWN piece");
			t->unk = id;
		}
	}
}

void spm_load(lm_tok *t, const char *path)
{
	size_t len;
	char *data = lm_read_text(path, &len);
	pb r;
	tok_spm *m;
	int n = 0, wire, f, i;
	char norm[64] = "identity";
	size_t charsmap = 0;
	if (!data)
		lm_fail(path, "cannot read");
	tok_hold(t, data, free);
	m = t->spm = lm_alloc(sizeof *m);
	m->unigram = 1;
	m->dummy_prefix = m->extra_ws = m->escape_ws = 1;   /* proto defaults */
	r.p = r.base = (const unsigned char *)data;
	r.end = r.p + len;
	r.path = path;
	while (r.p < r.end) {
		f = pb_key(&r, &wire);
		if (f == 1 && wire == 2) {
			read_piece(t, &r, n++);
		} else if ((f == 2 || f == 3) && wire == 2) {
			pb s = pb_sub(&r);
			while (s.p < s.end) {
				const unsigned char *field = s.p;
				int sf = pb_key(&s, &wire);
				if (f == 2 && sf == 3) {
					uint64_t v = pb_uint(&s, wire);
					if (v != 1 && v != 2)
						pb_fail_at(&s, field, "model_type is not UNIGRAM or BPE");
					m->unigram = v == 1;
				} else if (f == 2 && sf == 35) {
					m->byte_fallback = pb_uint(&s, wire) != 0;
				} else if (f == 2 && sf == 24) {
					m->ws_suffix = pb_uint(&s, wire) != 0;
				} else if (f == 3 && sf == 1 && wire == 2) {
					pb str = pb_sub(&s);
					snprintf(norm, sizeof norm, "%.*s", (int)(str.end - str.p), (const char *)str.p);
				} else if (f == 3 && sf == 2 && wire == 2) {
					pb str = pb_sub(&s);
					charsmap = str.end - str.p;
				} else if (f == 3 && sf == 3) {
					m->dummy_prefix = pb_uint(&s, wire) != 0;
				} else if (f == 3 && sf == 4) {
					m->extra_ws = pb_uint(&s, wire) != 0;
				} else if (f == 3 && sf == 5) {
					m->escape_ws = pb_uint(&s, wire) != 0;
				} else {
					pb_skip(&s, wire);
				}
			}
		} else {
			pb_skip(&r, wire);
		}
	}
	tok_drop(t, data);
	if (n == 0)
		lm_fail(path, "no pieces (not a SentencePiece model?)");
	if (charsmap)
		lm_fail(path, "normalizer '%s' uses a precompiled character map, which is not supported "
			"(only the identity normalizer is)", norm);
	if (t->unk < 0)
		lm_fail(path, "no UNKNOWN piece");

	m->min_score = FLT_MAX;
	m->max_score = FLT_MIN;   /* sic: SentencePiece starts from FLT_MIN */
	trie_init(&m->user);
	trie_init(&m->pieces);
	for (i = 0; i < n; i++) {
		tok_piece *p = &t->piece[i];
		const char *s = piece_text(t, i);
		if (p->spm_type == T_BYTE && !m->byte_fallback)
			lm_fail(path, "piece %d is a BYTE piece but byte_fallback is off", i);
		if (p->spm_type == T_NORMAL) {
			if (p->score < m->min_score)
				m->min_score = p->score;
			if (p->score > m->max_score)
				m->max_score = p->score;
		}
		if (p->spm_type == T_NORMAL || p->spm_type == T_USER || p->spm_type == T_UNUSED) {
			if (map_get(&t->text, t, s, p->len) >= 0)
				lm_fail(path, "piece %d ('%s') is defined twice", i, s);
			map_add(&t->text, t, i);
			if (m->unigram)
				trie_add(&m->pieces, s, p->len, i);
			else
				bigrams_add(&m->bigrams, s, p->len);
		}
		if (p->spm_type == T_USER)
			trie_add(&m->user, s, p->len, i);
	}
	if (m->byte_fallback)
		for (i = 0; i < 256; i++)
			if (t->byte_id[i] < 0)
				lm_fail(path, "byte_fallback is on but there is no piece <0x%02X>", i);

	t->algo = m->unigram ? ALGO_SPM_UNIGRAM : ALGO_SPM_BPE;
	t->dec = DEC_SPM;
	t->spm_bos_ws = m->dummy_prefix || m->extra_ws;
	t->spm_all_ws = m->extra_ws;
	snprintf(t->fmt, sizeof t->fmt, "sentencepiece/%s", m->unigram ? "unigram" : "bpe");
	/* BOS for the chat template's bos_token; SentencePiece adds none itself. */
	t->bos_text = NULL;
	for (i = 0; i < n; i++)
		if (t->piece[i].spm_type == T_CONTROL && strcmp(piece_text(t, i), "<s>") == 0)
			t->bos_text = lm_strdup("<s>");
}

void spm_free(tok_spm *m)
{
	if (!m)
		return;
	trie_free(&m->user);
	trie_free(&m->pieces);
	map64_free(&m->bigrams);
	free(m);
}

/* ---- normalizing (normalizer.cc, for the identity normalizer) ---- */

/* The next unit of input: a user-defined piece, or one character. */
static size_t next_unit(const tok_spm *m, const char *s, size_t n)
{
	int id;
	size_t k = trie_longest(&m->user, s, n, &id);
	return k ? k : (size_t)utf8_lead_len((unsigned char)*s);
}

static void add_ws(const tok_spm *m, tok_buf *o)
{
	if (m->escape_ws)
		buf_put(o, SPACE_SYM, 3);
	else
		buf_putc(o, ' ');
}

static void normalize(const tok_spm *m, const char *s, size_t n, tok_buf *o)
{
	int prev_space = m->extra_ws;
	if (m->extra_ws)
		while (n && *s == ' ') {
			s++;
			n--;
		}
	if (n == 0)
		return;
	if (!m->ws_suffix && m->dummy_prefix)
		add_ws(m, o);
	while (n) {
		size_t k = next_unit(m, s, n), i = 0;
		while (prev_space && i < k && s[i] == ' ')
			i++;
		if (i < k) {
			for (; i < k; i++) {
				if (m->escape_ws && s[i] == ' ')
					buf_put(o, SPACE_SYM, 3);
				else
					buf_putc(o, s[i]);
			}
			prev_space = s[k - 1] == ' ';
		}
		s += k;
		n -= k;
		if (!m->extra_ws)
			prev_space = 0;
	}
	if (m->extra_ws) {
		const char *sp = m->escape_ws ? SPACE_SYM : " ";
		size_t sn = m->escape_ws ? 3 : 1;
		while (o->n >= sn && memcmp(o->p + o->n - sn, sp, sn) == 0)
			o->n -= sn;
	}
	if (m->ws_suffix && m->dummy_prefix)
		add_ws(m, o);
}

/* ---- output: unknown pieces become bytes or one fused <unk> ---- */

static void emit(lm_tok *t, const char *s, size_t n, int id, int *prev_unk, tok_ints *out)
{
	size_t i;
	int unk = id == t->unk;
	if (unk && t->spm->byte_fallback) {
		for (i = 0; i < n; i++)
			ints_push(out, t->byte_id[(unsigned char)s[i]]);
	} else if (!(unk && *prev_unk)) {
		ints_push(out, id);
	}
	*prev_unk = unk;
}

/* ---- BPE (bpe_model.cc) ---- */

typedef struct {
	lm_tok *t;
	const char *s;
	/* UNUSED pieces are split back into the pair that formed them. */
	tok_ints rev;     /* quadruples: id, left start, left len, right len */
} bpe_ctx;

static int spm_pair(void *ctx, const tok_sym *a, const tok_sym *b, double *prio, int *id)
{
	bpe_ctx *c = ctx;
	int i, k = map_get(&c->t->text, c->t, c->s + a->start, a->len + b->len);
	if (k < 0)
		return 0;
	*prio = -(double)c->t->piece[k].score;
	*id = k;
	if (c->t->piece[k].spm_type == T_UNUSED) {
		for (i = 0; i < c->rev.n && c->rev.p[i] != k; i += 4)
			;
		if (i == c->rev.n) {
			ints_push(&c->rev, k);
			ints_push(&c->rev, 0);
			ints_push(&c->rev, 0);
			ints_push(&c->rev, 0);
		}
		/* SentencePiece keeps the last pair pushed for this piece. */
		c->rev.p[i + 1] = a->start;
		c->rev.p[i + 2] = a->len;
		c->rev.p[i + 3] = b->len;
	}
	return 1;
}

static void resegment(bpe_ctx *c, int start, int len, int depth, int *prev_unk, tok_ints *out)
{
	lm_tok *t = c->t;
	int id = map_get(&t->text, t, c->s + start, len), i;
	if (id < 0)
		id = t->unk;
	if (id != t->unk && t->piece[id].spm_type == T_UNUSED && depth < 64) {
		for (i = 0; i < c->rev.n; i += 4) {
			if (c->rev.p[i] == id) {
				/* The recorded pair has the same text as this piece. */
				int l = c->rev.p[i + 2], r = c->rev.p[i + 3];
				resegment(c, start, l, depth + 1, prev_unk, out);
				resegment(c, start + l, r, depth + 1, prev_unk, out);
				return;
			}
		}
	}
	emit(t, c->s + start, len, id, prev_unk, out);
}

/* PREV_UNK carries across the chunks, so that unknown pieces still fuse. */
typedef struct {
	lm_tok *t;
	tok_ints *out;
	int prev_unk;
} chunk_ctx;

static void bpe_chunk(void *ctx, const char *s, size_t n)
{
	chunk_ctx *cc = ctx;
	lm_tok *t = cc->t;
	bpe_ctx c = { t, s, { 0 } };
	tok_sym *sym = lm_alloc(n * sizeof *sym);
	int count = 0, i;
	size_t at = 0;
	while (at < n) {
		int id;
		size_t k = trie_longest(&t->spm->user, s + at, n - at, &id);
		tok_sym *y = &sym[count];
		y->frozen = k > 0;
		if (!k)
			k = utf8_lead_len((unsigned char)s[at]);
		y->start = at;
		y->len = k;
		y->prev = count - 1;
		y->next = at + k < n ? count + 1 : -1;
		y->id = -1;
		count++;
		at += k;
	}
	bpe_merge(sym, count, spm_pair, &c);
	for (i = 0; count && i >= 0; i = sym[i].next)
		resegment(&c, sym[i].start, sym[i].len, 0, &cc->prev_unk, cc->out);
	free(sym);
	free(c.rev.p);
}

/* ---- Unigram (unigram_model.cc, EncodeOptimized) ---- */

typedef struct {
	int id, start;
	float score;
} best_node;

static void unigram_encode(lm_tok *t, const char *s, size_t n, tok_ints *out)
{
	const tok_spm *m = t->spm;
	best_node *best = lm_alloc((n + 1) * sizeof *best);
	const float unk_score = m->min_score - 10.0f;   /* kUnkPenalty */
	size_t at, i;
	int prev_unk = 0, count = 0, *path;
	for (i = 0; i <= n; i++)
		best[i].start = -1;
	best[0].start = 0;
	for (at = 0; at < n;) {
		const float here = best[at].score;
		size_t mblen = utf8_lead_len((unsigned char)s[at]), key;
		int node = 0, single = 0;
		if (mblen > n - at)
			mblen = n - at;
		for (key = at; key < n;) {
			node = trie_step(&m->pieces, node, (unsigned char)s[key++]);
			if (node < 0)
				break;
			{
				int id = m->pieces.value.p[node];
				size_t length = key - at;
				double score, cand;
				best_node *b = &best[key];
				if (id < 0 || t->piece[id].spm_type == T_UNUSED)
					continue;
				/* A user-defined piece gets a bonus so that it always wins;
				 * the arithmetic is SentencePiece's, in double. */
				score = t->piece[id].spm_type == T_USER
					? (double)((float)length * m->max_score) - 0.1
					: (double)t->piece[id].score;
				cand = score + (double)here;
				if (b->start < 0 || cand > (double)b->score) {
					b->score = (float)cand;
					b->start = at;
					b->id = id;
				}
				if (length == mblen)
					single = 1;
			}
		}
		if (!single) {
			best_node *b = &best[at + mblen];
			float cand = unk_score + here;
			if (b->start < 0 || cand > b->score) {
				b->score = cand;
				b->start = at;
				b->id = t->unk;
			}
		}
		at += mblen;
	}
	/* Walk back from the end, then emit in order. */
	path = lm_alloc((n + 1) * sizeof *path);
	for (at = n; at > 0; at = best[at].start)
		path[count++] = (int)at;
	while (count--) {
		size_t end = path[count], start = best[end].start;
		emit(t, s + start, end - start, best[end].id, &prev_unk, out);
	}
	free(path);
	free(best);
}

void spm_encode(lm_tok *t, const char *s, size_t n, tok_ints *out)
{
	tok_buf norm = { 0 };
	normalize(t->spm, s, n, &norm);
	if (norm.n) {
		if (t->algo == ALGO_SPM_BPE) {
			chunk_ctx c = { t, out, 0 };
			bpe_chunks(&t->spm->bigrams, NULL, norm.p, norm.n, bpe_chunk, &c);
		}
		else
			unigram_encode(t, norm.p, norm.n, out);
	}
	free(norm.p);
}
