/* tok_decode.c: ids back to text, whole or streamed.
 *
 * Every id first becomes a segment: text, or one byte of a byte-fallback
 * run (<0xXX>).  How segments become text is the format's rule:
 *
 *   DEC_RAW     tiktoken, HF byte-level, PLaMo: all bytes form one stream,
 *               decoded as UTF-8 with one U+FFFD per maximal invalid
 *               subpart (Python's and Rust's "replace").
 *   DEC_SPM     SentencePiece: U+2581 -> space; a byte run decodes one
 *               character at a time, U+FFFD for each byte that is not part
 *               of a valid character; the space of the dummy prefix is
 *               dropped from the first piece.
 *   DEC_HF_SPM  HF decoder chains (Replace, ByteFallback, Fuse, Strip,
 *               Metaspace): a byte run that is not valid UTF-8 as a whole
 *               becomes one U+FFFD per byte; Strip drops leading spaces of
 *               the whole text.
 *
 * Special tokens (control, unknown, added) decode to their text.
 *
 * lm_tok_decode assembles the segments of all ids at once; lm_detok does it
 * one id at a time and holds back only what the next id could still change
 * (an unfinished character, an unfinished byte run).  The tests check that
 * both give the same text. */
#include "tok_int.h"

#include <stdlib.h>
#include <string.h>

enum { SEG_TEXT, SEG_BYTE };

static const char SPACE_SYM[] = "\xe2\x96\x81";  /* U+2581 */

/* Per-stream state of the SentencePiece dummy-prefix rule. */
typedef struct {
	int ntok;          /* ids seen */
	int bos_ws;        /* still expecting the dummy-prefix space */
	int bos_seen;      /* the previous piece gave up its leading space */
	int text_seen;     /* some model text (not a special token) came out */
} seg_state;

static void seg_reset(seg_state *st)
{
	memset(st, 0, sizeof *st);
	st->bos_ws = 1;
}

static void put_spaces(tok_buf *out, const char *s, size_t n)
{
	size_t i = 0;
	while (i < n) {
		if (i + 3 <= n && memcmp(s + i, SPACE_SYM, 3) == 0) {
			buf_putc(out, ' ');
			i += 3;
		} else {
			buf_putc(out, s[i++]);
		}
	}
}

/* The segment of ID: SEG_BYTE with *BYTE, or SEG_TEXT appended to TEXT. */
static int segment(lm_tok *t, seg_state *st, int id, tok_buf *text, int *byte)
{
	const tok_piece *p;
	int first = st->ntok++ == 0;
	if (id < 0 || id >= t->n)
		lm_fail(t->path, "token id %d is out of range [0, %d)", id, t->n);
	p = &t->piece[id];
	if (t->dec == DEC_HF_SPM) {
		const char *s = p->special ? special_text(t, id) : piece_text(t, id);
		size_t n = p->special ? p->slen : p->len;
		int b = byte_piece(s, n);
		if (b >= 0 && hf_dec_bytes(t)) {
			*byte = b;
			return SEG_BYTE;
		}
		hf_dec_token(t, s, n, first, text);
		return SEG_TEXT;
	}
	if (p->special) {
		buf_put(text, special_text(t, id), p->slen);
		return SEG_TEXT;
	}
	if (p->kind == PK_BYTE) {
		*byte = p->byte;
		st->text_seen = 1;
		return SEG_BYTE;
	}
	if (t->dec == DEC_RAW) {
		buf_put(text, piece_text(t, id), p->len);
		return SEG_TEXT;
	}
	/* DEC_SPM (sentencepiece_processor.cc, Decode). */
	{
		const char *s = piece_text(t, id);
		size_t n = p->len, before = text->n;
		int consumed = 0;
		if (st->bos_seen || st->text_seen)
			st->bos_ws = 0;
		if (st->bos_ws && t->spm_bos_ws && n >= 3 && memcmp(s, SPACE_SYM, 3) == 0) {
			s += 3;
			n -= 3;
			consumed = !t->spm_all_ws;
		}
		st->bos_seen = consumed;
		put_spaces(text, s, n);
		if (text->n > before)
			st->text_seen = 1;
		return SEG_TEXT;
	}
}

/* HF ByteFallback: a run that is valid UTF-8 is that text, else one
 * U+FFFD per byte. */
static void hf_run(tok_buf *out, const char *s, size_t n)
{
	size_t i;
	tok_buf probe = { 0 };
	utf8_fix(&probe, s, n, 1, 1);
	if (probe.n == n && memcmp(probe.p, s, n) == 0)
		buf_put(out, s, n);
	else
		for (i = 0; i < n; i++)
			buf_put(out, utf8_fffd, 3);
	free(probe.p);
}

/* Finishes a byte run (SPM or HF rules) into OUT. */
static void end_run(const lm_tok *t, tok_buf *out, tok_buf *run)
{
	if (t->dec == DEC_HF_SPM)
		hf_run(out, run->p, run->n);
	else
		utf8_fix(out, run->p, run->n, 1, 1);
	run->n = 0;
}

/* HF Strip(' ', N, 0): the first N spaces of the whole text go. */
static size_t strip_head(const char *s, size_t n, int *left)
{
	size_t k = 0;
	while (*left > 0 && k < n && s[k] == ' ') {
		k++;
		(*left)--;
	}
	if (k < n)
		*left = 0;
	return k;
}

char *lm_tok_decode(lm_tok *t, const int *ids, int n, size_t *len)
{
	tok_buf out = { 0 }, raw = { 0 }, run = { 0 }, seg = { 0 };
	seg_state st;
	int i, left = t->strip_start;
	size_t k;
	seg_reset(&st);
	for (i = 0; i < n; i++) {
		int b, kind;
		seg.n = 0;
		kind = segment(t, &st, ids[i], &seg, &b);
		if (t->dec == DEC_RAW) {
			if (kind == SEG_BYTE)
				buf_putc(&raw, b);
			else
				buf_put(&raw, seg.p, seg.n);
		} else if (kind == SEG_BYTE) {
			buf_putc(&run, b);
		} else {
			if (run.n)
				end_run(t, &out, &run);
			buf_put(&out, seg.p, seg.n);
		}
	}
	if (t->dec == DEC_RAW)
		utf8_fix(&out, raw.p, raw.n, 0, 1);
	else if (run.n)
		end_run(t, &out, &run);
	free(raw.p);
	free(run.p);
	free(seg.p);
	buf_cstr(&out);
	k = strip_head(out.p, out.n, &left);
	memmove(out.p, out.p + k, out.n - k + 1);
	out.n -= k;
	if (len)
		*len = out.n;
	return out.p;
}

/* ---- streaming ---- */

struct lm_detok {
	lm_tok *t;
	seg_state st;
	tok_buf pend;      /* bytes not yet decided: a character or byte run */
	tok_buf text;      /* scratch: one segment's text */
	tok_buf out;       /* what the last call returns */
	int left;          /* spaces Strip may still remove */
};

lm_detok *lm_detok_new(lm_tok *t)
{
	lm_detok *d = lm_alloc(sizeof *d);
	d->t = t;
	seg_reset(&d->st);
	d->left = t->strip_start;
	return d;
}

void lm_detok_free(lm_detok *d)
{
	if (!d)
		return;
	free(d->pend.p);
	free(d->text.p);
	free(d->out.p);
	free(d);
}

/* Drops the first K pending bytes. */
static void pend_drop(tok_buf *b, size_t k)
{
	if (k == 0)
		return;
	memmove(b->p, b->p + k, b->n - k);
	b->n -= k;
}

/* Applies Strip to the start of the stream and returns the output. */
static const char *finish(lm_detok *d, size_t *n)
{
	size_t k = strip_head(d->out.p, d->out.n, &d->left);
	pend_drop(&d->out, k);
	buf_cstr(&d->out);
	if (n)
		*n = d->out.n;
	return d->out.p;
}

const char *lm_detok_push(lm_detok *d, int id, size_t *n)
{
	lm_tok *t = d->t;
	int b, kind;
	d->out.n = 0;
	d->text.n = 0;
	kind = segment(t, &d->st, id, &d->text, &b);
	if (t->dec == DEC_RAW) {
		/* one byte stream: keep only an unfinished character */
		if (kind == SEG_BYTE)
			buf_putc(&d->pend, b);
		else
			buf_put(&d->pend, d->text.p, d->text.n);
		pend_drop(&d->pend, utf8_fix(&d->out, d->pend.p, d->pend.n, 0, 0));
	} else if (kind == SEG_BYTE) {
		buf_putc(&d->pend, b);
		/* SPM decides character by character; HF needs the whole run */
		if (t->dec == DEC_SPM)
			pend_drop(&d->pend, utf8_fix(&d->out, d->pend.p, d->pend.n, 1, 0));
	} else {
		if (d->pend.n)
			end_run(t, &d->out, &d->pend);
		buf_put(&d->out, d->text.p, d->text.n);
	}
	return finish(d, n);
}

const char *lm_detok_flush(lm_detok *d, size_t *n)
{
	lm_tok *t = d->t;
	const char *r;
	d->out.n = 0;
	if (t->dec == DEC_RAW)
		utf8_fix(&d->out, d->pend.p, d->pend.n, 0, 1);
	else if (d->pend.n)
		end_run(t, &d->out, &d->pend);
	d->pend.n = 0;
	r = finish(d, n);
	seg_reset(&d->st);
	d->left = t->strip_start;
	return r;
}
