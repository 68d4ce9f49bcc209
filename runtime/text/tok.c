/* tok.c: opening a tokenizer (which format is in the directory) and the
 * encoding steps every format shares: clean UTF-8, split out the special
 * tokens, hand each piece of text between them to the format's algorithm. */
#define _GNU_SOURCE
#include "tok_int.h"

#include <dirent.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int has_suffix(const char *s, const char *suf)
{
	size_t n = strlen(s), k = strlen(suf);
	return n >= k && strcmp(s + n - k, suf) == 0;
}

static int is_file(const char *p)
{
	struct stat st;
	return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

void *tok_hold(lm_tok *t, void *p, void (*fn)(void *))
{
	size_t i;
	for (i = 0; i < sizeof t->held / sizeof *t->held; i++)
		if (!t->held[i].p) {
			t->held[i].p = p;
			t->held[i].free = fn;
			return p;
		}
	lm_bug("tok_hold: more than %zu held", i);
}

void tok_drop(lm_tok *t, void *p)
{
	size_t i;
	if (!p)
		return;
	for (i = 0; i < sizeof t->held / sizeof *t->held; i++)
		if (t->held[i].p == p) {
			t->held[i].free(p);
			t->held[i].p = NULL;
			return;
		}
	lm_bug("tok_drop: not held");
}

void tok_put_json(void *o)
{
	json_object_put(o);
}

static void load(lm_tok *t, const char *path);

/* A tokenizer read from PATH; when reading fails, what it had is freed
 * before the error goes on: under the C API and the server the process
 * lives on after a bad tokenizer. */
static lm_tok *open_file(const char *path)
{
	lm_tok *t = lm_alloc(sizeof *t);
	lm_err err;
	if (lm_catch(&err)) {
		lm_tok_free(t);
		lm_err_raise(&err);
	}
	load(t, path);
	lm_err_pop(&err);
	return t;
}

static void load(lm_tok *t, const char *path)
{
	const char *slash = strrchr(path, '/');
	const char *base = slash ? slash + 1 : path;
	int i;
	t->path = lm_strdup(path);
	t->dir = slash ? strndup(path, slash - path) : lm_strdup(".");
	if (!t->dir)
		lm_bug("out of memory");
	t->bos = t->unk = -1;
	for (i = 0; i < 256; i++)
		t->byte_id[i] = -1;
	trie_init(&t->special);

	if (has_suffix(base, ".jsonl")) {
		plamo_load(t, path);
	} else if (has_suffix(base, ".json")) {
		hf_load(t, path);
	} else {
		/* A SentencePiece ModelProto starts with field 1 (pieces,
		 * length-delimited): byte 0x0A.  A rank file starts with base64. */
		FILE *f = fopen(path, "rb");
		int c = f ? getc(f) : EOF;
		if (f)
			fclose(f);
		if (!f)
			lm_fail(path, "cannot open");
		if (c == EOF)
			lm_fail(path, "empty file");
		if (c == 0x0A)
			spm_load(t, path);
		else
			rank_load(t, path);
	}
	config_load(t);
	for (i = 0; i < 256; i++)
		t->special_first[i] = trie_step(&t->special, 0, i) >= 0;
}

lm_tok *lm_tok_open(const char *dir)
{
	static const char *const NAMES[] = {
		"tokenizer.json", "tokenizer.jsonl", "tiktoken.model", "tokenizer.model",
	};
	char *found = NULL;
	unsigned i;
	DIR *d;
	struct dirent *e;
	lm_tok *t;
	if (is_file(dir))
		return open_file(dir);
	for (i = 0; i < sizeof NAMES / sizeof *NAMES && !found; i++) {
		char *p = lm_path(dir, NAMES[i]);
		if (is_file(p))
			found = p;
		else
			free(p);
	}
	/* PLaMo's stand-in and others ship one SentencePiece file by its own name. */
	if (!found && (d = opendir(dir))) {
		while ((e = readdir(d))) {
			char *p;
			if (!has_suffix(e->d_name, ".model"))
				continue;
			p = lm_path(dir, e->d_name);
			if (!is_file(p)) {
				free(p);
				continue;
			}
			if (found) {
				char a[256], b[256];
				snprintf(a, sizeof a, "%s", strrchr(found, '/') + 1);
				snprintf(b, sizeof b, "%s", e->d_name);
				free(found);
				free(p);
				closedir(d);
				lm_fail(dir, "several .model files (%s, %s): name the one to use", a, b);
			}
			found = p;
		}
		closedir(d);
	}
	if (!found)
		return NULL;
	/* open_file ends a bad file with lm_fail, which does not return: the
	 * path it reads from must not be the only copy of a heap block, or each
	 * failed open caught by the C API or the server would keep it. */
	char path[4096];
	if (strlen(found) >= sizeof path) {
		free(found);
		lm_fail(dir, "the tokenizer's path is longer than %zu bytes", sizeof path - 1);
	}
	strcpy(path, found);
	free(found);
	t = open_file(path);
	return t;
}

void lm_tok_free(lm_tok *t)
{
	if (!t)
		return;
	free(t->path);
	free(t->dir);
	free(t->piece);
	free(t->blob);
	map_free(&t->text);
	trie_free(&t->special);
	trie_free(&t->plamo);
	free(t->iscore);
	re_free(t->re);
	free(t->eos.p);
	free(t->eot.p);
	free(t->bos_text);
	free(t->eos_text);
	free(t->chat_template);
	free(t->template_name);
	hf_free(t->hf);
	spm_free(t->spm);
	for (size_t i = 0; i < sizeof t->held / sizeof *t->held; i++)
		if (t->held[i].p)
			t->held[i].free(t->held[i].p);
	free(t);
}

int lm_tok_n_vocab(const lm_tok *t) { return t->n; }
const char *lm_tok_format(const lm_tok *t) { return t->fmt; }
int lm_tok_bos_id(const lm_tok *t) { return t->bos; }

int lm_tok_is_eos(const lm_tok *t, int id, int chat)
{
	int i;
	for (i = 0; i < t->eos.n; i++)
		if (t->eos.p[i] == id)
			return 1;
	for (i = 0; chat && i < t->eot.n; i++)
		if (t->eot.p[i] == id)
			return 1;
	return 0;
}

/* ---- encoding ---- */

static void encode_piece(lm_tok *t, const char *s, size_t n, int first, tok_ints *out)
{
	if (n == 0)
		return;
	switch (t->algo) {
	case ALGO_RANK: rank_encode(t, s, n, out); break;
	case ALGO_HF_BPE: hf_encode(t, s, n, first, out); break;
	case ALGO_SPM_BPE:
	case ALGO_SPM_UNIGRAM: spm_encode(t, s, n, out); break;
	case ALGO_PLAMO: plamo_encode(t, s, n, out); break;
	default: lm_bug("tokenizer algorithm %d", t->algo);
	}
}

/* Special tokens first: at each position the longest special token that
 * starts there, scanning left to right (HF's leftmost-longest). */
static void encode_text(lm_tok *t, const char *s, size_t n, size_t base, tok_ints *out)
{
	size_t seg = 0, i = 0;
	while (i < n) {
		int id;
		size_t k;
		if (t->special_first[(unsigned char)s[i]]
		    && (k = trie_longest(&t->special, s + i, n - i, &id))) {
			encode_piece(t, s + seg, i - seg, base + seg == 0, out);
			ints_push(out, id);
			i += k;
			seg = i;
		} else {
			i++;
		}
	}
	encode_piece(t, s + seg, n - seg, base + seg == 0, out);
}

/* Python's str.isspace(), which Kimi's chunking uses (not White_Space: it
 * also counts U+001C..U+001F). */
static int py_isspace(unsigned cp)
{
	return (cp >= 9 && cp <= 13) || (cp >= 0x1C && cp <= 0x20) || cp == 0x85 || cp == 0xA0
		|| cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028
		|| cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

/* Kimi's encode: windows of 400 000 characters, each cut wherever a run of
 * spaces or of non-spaces grows past 25 000 characters; each part is
 * encoded on its own, special tokens included (tokenization_kimi.py). */
static void encode_kimi(lm_tok *t, const char *s, size_t n, tok_ints *out)
{
	size_t w = 0;
	while (w < n) {
		size_t i = w, start = w;
		long chars = 0, run = 0;
		int run_space = -1;
		while (i < n && chars < 400000) {
			int k = utf8_char((const unsigned char *)s + i, n - i, NULL);
			int sp = py_isspace(utf8_cp((const unsigned char *)s + i, k));
			if (run_space < 0)
				run_space = sp;
			if (sp != run_space) {
				run = 1;
				run_space = sp;
			} else if (++run > 25000) {
				encode_text(t, s + start, i - start, start, out);
				start = i;
				run = 1;
			}
			i += k;
			chars++;
		}
		encode_text(t, s + start, i - start, start, out);
		w = i;
	}
}

static void encode(lm_tok *t, const char *text, size_t len, int add_bos, tok_buf *clean,
                   tok_ints *out)
{
	/* Invalid bytes become U+FFFD one by one, as SentencePiece's normalizer
	 * does; the regex engine and the algorithms then see valid UTF-8. */
	utf8_fix(clean, text, len, 1, 1);
	if (t->newline_tok) {
		/* AFM's NewlineTokenizer: text.replace("\n", "<n>") before encoding. */
		tok_buf nl = { 0 };
		size_t i;
		for (i = 0; i < clean->n; i++) {
			if (clean->p[i] == '\n')
				buf_puts(&nl, "<n>");
			else
				buf_putc(&nl, clean->p[i]);
		}
		free(clean->p);
		*clean = nl;
	}
	if (add_bos && t->add_bos && t->bos >= 0)
		ints_push(out, t->bos);
	if (t->chunk_kimi)
		encode_kimi(t, clean->p, clean->n, out);
	else
		encode_text(t, clean->p, clean->n, 0, out);
}

/* A pre-tokenizer regex may fail on a text (PCRE2's limits): its buffers
 * are freed before the error goes on, as the server lives on. */
int lm_tok_encode(lm_tok *t, const char *text, size_t len, int add_bos, int **ids)
{
	tok_buf clean = { 0 };
	tok_ints out = { 0 };
	lm_err err;
	if (lm_catch(&err)) {
		free(clean.p);
		free(out.p);
		lm_err_raise(&err);
	}
	re_split_reset();
	encode(t, text, len, add_bos, &clean, &out);
	if (re_split_failed())
		lm_fail(NULL, "%s", re_split_failed());
	lm_err_pop(&err);
	free(clean.p);
	if (!out.p)
		out.p = lm_alloc(sizeof *out.p);
	*ids = out.p;
	return out.n;
}
