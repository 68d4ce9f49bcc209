/* tok_hf.c: Hugging Face tokenizer.json with a BPE model, in its two
 * kinds:
 *
 *   byte-level (Llama 4): tokens are bytes written through GPT-2's
 *     bytes_to_unicode table; a Split regex cuts the text; the ByteLevel
 *     decoder maps characters back to bytes.  The vocabulary is stored here
 *     as raw bytes, so the mapping happens once, when loading.
 *   SentencePiece-derived (Llama 2 converted, AFM): a normalizer
 *     (Prepend "▁", Replace " " -> "▁") or a Metaspace pre-tokenizer;
 *     characters missing from the vocabulary fall back to <0xXX> tokens;
 *     the decoder chain Replace / ByteFallback / Fuse / Strip undoes it.
 *
 * Merges ("a b" or ["a", "b"]) have the priority of their index; a word
 * merges its lowest-priority adjacent pair first (ties: leftmost), as the
 * tokenizers crate's Word::merge_all.  With "ignore_merges", a word that is
 * itself in the vocabulary is one token. */
#include "tok_int.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_STEPS 8

enum { N_PREPEND, N_REPLACE };
enum { P_SPLIT, P_BYTELEVEL, P_METASPACE };

struct tok_hf {
	int bytelevel;                 /* vocabulary is byte-mapped */
	int byte_fallback, fuse_unk, ignore_merges;
	tok_map64 merges;              /* (left id, right id) -> rank, merged id */
	struct { int kind; char *a, *b; } norm[MAX_STEPS];
	int n_norm;
	struct { int kind, prepend, split, prefix_space; tok_re *re; } pre[MAX_STEPS];
	int n_pre;
	char *rep_from[MAX_STEPS], *rep_to[MAX_STEPS];   /* decoder Replace rules */
	int n_rep;
	int dec_bytes;                 /* ByteFallback in the decoder */
	int dec_metaspace;
	int byte_of[512];              /* bytes_to_unicode inverted; -1 */
	tok_map64 bigrams;             /* character pairs inside tokens (bpe_chunks) */
	int chunked;                   /* words are cut where no merge can reach */
};

/* GPT-2's ByteLevel pre-tokenizer regex (use_regex). */
static const char GPT2_RE[] =
	"'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

static const char SPACE_SYM[] = "\xe2\x96\x81";  /* U+2581 */

/* bytes_to_unicode: printable bytes stand for themselves, the others for
 * 256, 257, ... in byte order. */
static void byte_table(unsigned cp_of[256])
{
	int b, k = 0;
	for (b = 0; b < 256; b++) {
		int printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174;
		cp_of[b] = printable ? (unsigned)b : 256u + k++;
	}
}

/* A byte-level token string back to its bytes; a character outside the
 * table stands for itself, as the ByteLevel decoder leaves it. */
static void unmap_bytes(const char *s, size_t n, const int *byte_of, tok_buf *out)
{
	size_t i = 0;
	while (i < n) {
		const unsigned char *u = (const unsigned char *)s + i;
		int k = utf8_char(u, n - i, NULL);
		unsigned cp;
		if (!k) {
			buf_putc(out, s[i++]);
			continue;
		}
		cp = utf8_cp(u, k);
		if (cp < 512 && byte_of[cp] >= 0)
			buf_putc(out, byte_of[cp]);
		else
			buf_put(out, s + i, k);
		i += k;
	}
}

static struct json_object *get(struct json_object *o, const char *key)
{
	struct json_object *v;
	if (o && json_object_is_type(o, json_type_object) && json_object_object_get_ex(o, key, &v)
	    && !json_object_is_type(v, json_type_null))
		return v;
	return NULL;
}

static int get_bool(struct json_object *o, const char *key, int dflt)
{
	struct json_object *v = get(o, key);
	return v ? json_object_get_boolean(v) : dflt;
}

/* The steps of a component: a Sequence's list, or the component itself. */
/* The steps of O (a Sequence's LIST, or O itself); a list is held by T
 * (tok_hold) until steps_done, so a step that fails does not leak it. */
static size_t steps(lm_tok *t, struct json_object *o, const char *list, struct json_object ***out)
{
	static struct json_object *one[1];
	struct json_object *l;
	const char *type = json_str(o, "type");
	if (type && strcmp(type, "Sequence") == 0 && (l = get(o, list))
	    && json_object_is_type(l, json_type_array)) {
		size_t n = json_object_array_length(l), i;
		*out = tok_hold(t, lm_alloc((n + 1) * sizeof **out), free);
		for (i = 0; i < n; i++)
			(*out)[i] = json_object_array_get_idx(l, i);
		return n;
	}
	one[0] = o;
	*out = one;
	return 1;
}

static void steps_done(lm_tok *t, struct json_object **st, struct json_object *o)
{
	if (st[0] != o)
		tok_drop(t, st);
}

static const char *pattern_string(const char *path, struct json_object *step)
{
	struct json_object *p = get(step, "pattern");
	const char *s = json_str(p, "String");
	if (!s)
		lm_fail(path, "%s: only String patterns are supported", json_str(step, "type"));
	return s;
}

static void read_normalizer(lm_tok *t, const char *path, struct json_object *o)
{
	tok_hf *h = t->hf;
	struct json_object **st;
	size_t n = steps(t, o, "normalizers", &st), i;
	for (i = 0; i < n; i++) {
		const char *type = json_str(st[i], "type");
		if (!type)
			lm_fail(path, "normalizer: no type");
		if (h->n_norm == MAX_STEPS)
			lm_fail(path, "normalizer: more than %d steps", MAX_STEPS);
		if (strcmp(type, "Prepend") == 0 && json_str(st[i], "prepend")) {
			h->norm[h->n_norm].kind = N_PREPEND;
			h->norm[h->n_norm++].a = lm_strdup(json_str(st[i], "prepend"));
		} else if (strcmp(type, "Replace") == 0 && json_str(st[i], "content")) {
			h->norm[h->n_norm].kind = N_REPLACE;
			h->norm[h->n_norm].a = lm_strdup(pattern_string(path, st[i]));
			h->norm[h->n_norm++].b = lm_strdup(json_str(st[i], "content"));
			if (!*h->norm[h->n_norm - 1].a)
				lm_fail(path, "normalizer Replace: empty pattern");
		} else {
			lm_fail(path, "normalizer '%s' is not supported", type);
		}
	}
	steps_done(t, st, o);
}

static int prepend_scheme(const char *path, struct json_object *o)
{
	const char *s = json_str(o, "prepend_scheme");
	if (!s)
		return get_bool(o, "add_prefix_space", 1) ? 2 : 0;
	if (strcmp(s, "always") == 0)
		return 2;
	if (strcmp(s, "first") == 0)
		return 1;
	if (strcmp(s, "never") == 0)
		return 0;
	lm_fail(path, "Metaspace: prepend_scheme '%s' is not supported", s);
}

static void check_metaspace_char(const char *path, struct json_object *o)
{
	const char *r = json_str(o, "replacement");
	if (r && strcmp(r, SPACE_SYM) != 0)
		lm_fail(path, "Metaspace: only the replacement U+2581 is supported");
}

static void read_pre(lm_tok *t, const char *path, struct json_object *o)
{
	tok_hf *h = t->hf;
	struct json_object **st;
	size_t n = steps(t, o, "pretokenizers", &st), i;
	for (i = 0; i < n; i++) {
		const char *type = json_str(st[i], "type");
		if (!type)
			lm_fail(path, "pre_tokenizer: no type");
		if (h->n_pre == MAX_STEPS)
			lm_fail(path, "pre_tokenizer: more than %d steps", MAX_STEPS);
		if (strcmp(type, "Split") == 0) {
			struct json_object *p = get(st[i], "pattern");
			const char *re = json_str(p, "Regex"), *lit = json_str(p, "String");
			const char *beh = json_str(st[i], "behavior");
			if (!beh || strcmp(beh, "Isolated") != 0 || get_bool(st[i], "invert", 0))
				lm_fail(path, "pre_tokenizer Split: only behavior Isolated, not inverted, is supported");
			if (re) {
				h->pre[h->n_pre].re = re_new(re, path);
			} else if (lit && *lit) {
				tok_buf q = { 0 };
				buf_puts(&q, "\\Q");
				buf_puts(&q, lit);
				buf_puts(&q, "\\E");
				h->pre[h->n_pre].re = re_new(tok_hold(t, buf_cstr(&q), free), path);
				tok_drop(t, q.p);
			} else {
				lm_fail(path, "pre_tokenizer Split: no pattern");
			}
			h->pre[h->n_pre++].kind = P_SPLIT;
		} else if (strcmp(type, "ByteLevel") == 0) {
			h->pre[h->n_pre].kind = P_BYTELEVEL;
			h->pre[h->n_pre].prefix_space = get_bool(st[i], "add_prefix_space", 1);
			if (get_bool(st[i], "use_regex", 1))
				h->pre[h->n_pre].re = re_new(GPT2_RE, path);
			h->n_pre++;
			h->bytelevel = 1;
		} else if (strcmp(type, "Metaspace") == 0) {
			check_metaspace_char(path, st[i]);
			h->pre[h->n_pre].kind = P_METASPACE;
			h->pre[h->n_pre].prepend = prepend_scheme(path, st[i]);
			h->pre[h->n_pre++].split = get_bool(st[i], "split", 1);
		} else {
			lm_fail(path, "pre_tokenizer '%s' is not supported", type);
		}
	}
	steps_done(t, st, o);
}

static void read_decoder(lm_tok *t, const char *path, struct json_object *o)
{
	tok_hf *h = t->hf;
	struct json_object **st;
	size_t n = steps(t, o, "decoders", &st), i;
	int fused = 0;
	for (i = 0; i < n; i++) {
		const char *type = json_str(st[i], "type");
		if (!type)
			lm_fail(path, "decoder: no type");
		if (strcmp(type, "ByteLevel") == 0) {
			h->bytelevel = 1;
		} else if (strcmp(type, "Replace") == 0) {
			if (h->n_rep == MAX_STEPS)
				lm_fail(path, "decoder: more than %d Replace steps", MAX_STEPS);
			h->rep_from[h->n_rep] = lm_strdup(pattern_string(path, st[i]));
			h->rep_to[h->n_rep++] = lm_strdup(json_str(st[i], "content") ? json_str(st[i], "content") : "");
			if (!*h->rep_from[h->n_rep - 1])
				lm_fail(path, "decoder Replace: empty pattern");
		} else if (strcmp(type, "ByteFallback") == 0) {
			h->dec_bytes = 1;
		} else if (strcmp(type, "Fuse") == 0) {
			fused = 1;
		} else if (strcmp(type, "Strip") == 0) {
			const char *c = json_str(st[i], "content");
			struct json_object *a = get(st[i], "start"), *z = get(st[i], "stop");
			/* Before Fuse it would strip every token; only the whole-text
			 * form occurs in the files. */
			if (!fused || !c || strcmp(c, " ") != 0 || (z && json_object_get_int(z) != 0))
				lm_fail(path, "decoder Strip: only Strip(' ', N, 0) after Fuse is supported");
			t->strip_start = a ? json_object_get_int(a) : 0;
			if (t->strip_start < 0 || t->strip_start > 64)
				lm_fail(path, "decoder Strip: start out of range");
		} else if (strcmp(type, "Metaspace") == 0) {
			check_metaspace_char(path, st[i]);
			h->dec_metaspace = 1;
			t->metaspace_first = prepend_scheme(path, st[i]) != 0;
		} else {
			lm_fail(path, "decoder '%s' is not supported", type);
		}
	}
	steps_done(t, st, o);
}

/* BOS from a TemplateProcessing post-processor whose single form starts
 * with a special token (Llama 4: [<|begin_of_text|>, $A]). */
static void read_post(lm_tok *t, const char *path, struct json_object *o)
{
	struct json_object **st;
	size_t n = steps(t, o, "processors", &st), i;
	for (i = 0; i < n; i++) {
		const char *type = json_str(st[i], "type");
		struct json_object *single = get(st[i], "single"), *first, *sp;
		const char *name;
		if (!type || strcmp(type, "TemplateProcessing") != 0 || !single
		    || !json_object_is_type(single, json_type_array) || !json_object_array_length(single))
			continue;
		first = json_object_array_get_idx(single, 0);
		sp = get(first, "SpecialToken");
		if (sp && (name = json_str(sp, "id"))) {
			t->bos_text = lm_strdup(name);
			t->add_bos = 1;
		}
	}
	steps_done(t, st, o);
}

static void read_vocab(lm_tok *t, const char *path, struct json_object *vocab)
{
	tok_hf *h = t->hf;
	int i;
	tok_buf raw = { 0 };
	if (!vocab || !json_object_is_type(vocab, json_type_object))
		lm_fail(path, "model.vocab: expected an object");
	json_object_object_foreach(vocab, key, val) {
		int id;
		size_t kn = strlen(key);
		if ((id = json_id(val)) < 0)
			lm_fail(path, "model.vocab[\"%s\"]: expected an id below 2^24", key);
		if (id < t->n && t->piece[id].len)
			lm_fail(path, "model.vocab: id %d given twice", id);
		raw.n = 0;
		if (h->bytelevel)
			unmap_bytes(key, kn, h->byte_of, &raw);
		else
			buf_put(&raw, key, kn);
		if (raw.n == 0)
			lm_fail(path, "model.vocab: empty token");
		vocab_set(t, id, raw.p, raw.n, PK_NORMAL);
	}
	free(raw.p);
	for (i = 0; i < t->n; i++) {
		int b;
		if (!t->piece[i].len)
			continue;   /* a hole in the ids */
		if (map_get(&t->text, t, piece_text(t, i), t->piece[i].len) >= 0)
			lm_fail(path, "model.vocab: token of id %d given twice", i);
		map_add(&t->text, t, i);
		if (!h->bytelevel)
			bigrams_add(&h->bigrams, piece_text(t, i), t->piece[i].len);
		if (h->bytelevel) {
			if (t->piece[i].len == 1)
				t->byte_id[(unsigned char)piece_text(t, i)[0]] = i;
		} else if ((b = byte_piece(piece_text(t, i), t->piece[i].len)) >= 0) {
			t->byte_id[b] = i;
		}
	}
}

static void read_merges(lm_tok *t, const char *path, struct json_object *merges)
{
	tok_hf *h = t->hf;
	size_t n, k;
	if (!merges)
		return;
	if (!json_object_is_type(merges, json_type_array))
		lm_fail(path, "model.merges: expected a list");
	n = json_object_array_length(merges);
	if (n >= (1u << 31))
		lm_fail(path, "model.merges: too many");
	/* Later duplicates win in the tokenizers crate (a HashMap filled in
	 * order), so fill from the end and keep the first seen. */
	for (k = n; k-- > 0;) {
		struct json_object *m = json_object_array_get_idx(merges, k);
		tok_buf a = { 0 }, b = { 0 };
		const char *sa, *sb;
		size_t na, nb;
		int ia, ib, im;
		if (json_object_is_type(m, json_type_string)) {
			const char *s = json_object_get_string(m), *sp = strchr(s, ' ');
			if (!sp || sp == s || !sp[1] || strchr(sp + 1, ' '))
				lm_fail(path, "model.merges[%zu]: expected \"a b\"", k);
			sa = s;
			na = sp - s;
			sb = sp + 1;
			nb = strlen(sb);
		} else if (json_object_is_type(m, json_type_array) && json_object_array_length(m) == 2
			   && json_object_is_type(json_object_array_get_idx(m, 0), json_type_string)
			   && json_object_is_type(json_object_array_get_idx(m, 1), json_type_string)) {
			sa = json_object_get_string(json_object_array_get_idx(m, 0));
			sb = json_object_get_string(json_object_array_get_idx(m, 1));
			na = strlen(sa);
			nb = strlen(sb);
		} else {
			lm_fail(path, "model.merges[%zu]: expected \"a b\" or [\"a\", \"b\"]", k);
		}
		if (h->bytelevel) {
			unmap_bytes(sa, na, h->byte_of, &a);
			unmap_bytes(sb, nb, h->byte_of, &b);
		} else {
			buf_put(&a, sa, na);
			buf_put(&b, sb, nb);
		}
		ia = map_get(&t->text, t, a.p, a.n);
		ib = map_get(&t->text, t, b.p, b.n);
		buf_put(&a, b.p, b.n);
		im = map_get(&t->text, t, a.p, a.n);
		if (ia < 0 || ib < 0 || im < 0)
			lm_fail(path, "model.merges[%zu]: a token of the merge is not in the vocabulary", k);
		map64_put(&h->merges, (uint64_t)ia << 32 | (uint32_t)ib, (int)k, im);
		free(a.p);
		free(b.p);
	}
}

void hf_load(lm_tok *t, const char *path)
{
	struct json_object *root = json_load(path), *model, *v, *added;
	tok_hf *h;
	const char *type, *unk;
	unsigned cp_of[256];
	size_t i;
	if (!root)
		lm_fail(path, "cannot read");
	tok_hold(t, root, tok_put_json);
	h = t->hf = lm_alloc(sizeof *h);
	byte_table(cp_of);
	for (i = 0; i < 512; i++)
		h->byte_of[i] = -1;
	for (i = 0; i < 256; i++)
		h->byte_of[cp_of[i]] = i;
	model = get(root, "model");
	type = json_str(model, "type");
	if (!type && get(model, "merges"))
		type = "BPE";   /* older files leave the type out */
	if (!type || strcmp(type, "BPE") != 0)
		lm_fail(path, "model.type '%s' is not supported (only BPE)", type ? type : "(none)");
	if (get(model, "continuing_subword_prefix") || get(model, "end_of_word_suffix"))
		lm_fail(path, "model: continuing_subword_prefix / end_of_word_suffix are not supported");
	if ((v = get(root, "normalizer")))
		read_normalizer(t, path, v);
	if ((v = get(root, "pre_tokenizer")))
		read_pre(t, path, v);
	if ((v = get(root, "decoder")))
		read_decoder(t, path, v);
	h->byte_fallback = get_bool(model, "byte_fallback", 0);
	h->fuse_unk = get_bool(model, "fuse_unk", 0);
	h->ignore_merges = get_bool(model, "ignore_merges", 0);
	read_vocab(t, path, get(model, "vocab"));
	read_merges(t, path, get(model, "merges"));
	unk = json_str(model, "unk_token");
	if (unk && (t->unk = map_get(&t->text, t, unk, strlen(unk))) < 0)
		lm_fail(path, "model.unk_token '%s' is not in the vocabulary", unk);
	if (h->byte_fallback)
		for (i = 0; i < 256; i++)
			if (t->byte_id[i] < 0)
				h->byte_fallback = 0;   /* as the crate: no fallback without all 256 */
	if (h->bytelevel)
		for (i = 0; i < 256; i++)
			if (t->byte_id[i] < 0)
				lm_fail(path, "byte-level vocabulary lacks the byte 0x%02zX", i);

	added = get(root, "added_tokens");
	if (added && !json_object_is_type(added, json_type_array))
		lm_fail(path, "added_tokens: expected a list");
	for (i = 0; added && i < json_object_array_length(added); i++) {
		struct json_object *a = json_object_array_get_idx(added, i), *id = get(a, "id");
		const char *c = json_str(a, "content");
		if (!c || !id || !json_object_is_type(id, json_type_int))
			lm_fail(path, "added_tokens[%zu]: expected {id, content}", i);
		if (json_id(id) < 0)
			lm_fail(path, "added_tokens[%zu]: id %s is not in [0, 2^24)", i, json_object_get_string(id));
		vocab_special(t, json_id(id), c, strlen(c), 1);
	}
	if ((v = get(root, "post_processor")))
		read_post(t, path, v);

	t->algo = ALGO_HF_BPE;
	t->dec = h->bytelevel ? DEC_RAW : DEC_HF_SPM;
	/* Without a pre-tokenizer a whole text is one word: cut it (not when a
	 * whole word in the vocabulary must stay one token). */
	h->chunked = !h->bytelevel && !h->ignore_merges;
	snprintf(t->fmt, sizeof t->fmt, "hf/%s", h->bytelevel ? "bytelevel" : "bpe");
	tok_drop(t, root);
}

void hf_free(tok_hf *h)
{
	int i;
	if (!h)
		return;
	map64_free(&h->merges);
	map64_free(&h->bigrams);
	for (i = 0; i < h->n_norm; i++) {
		free(h->norm[i].a);
		free(h->norm[i].b);
	}
	for (i = 0; i < h->n_pre; i++)
		re_free(h->pre[i].re);
	for (i = 0; i < h->n_rep; i++) {
		free(h->rep_from[i]);
		free(h->rep_to[i]);
	}
	free(h);
}

/* ---- encoding ---- */

static void replace_all(tok_buf *out, const char *s, size_t n, const char *from, const char *to)
{
	size_t fn = strlen(from), i = 0;
	while (i < n) {
		if (i + fn <= n && memcmp(s + i, from, fn) == 0) {
			buf_puts(out, to);
			i += fn;
		} else {
			buf_putc(out, s[i++]);
		}
	}
}

typedef struct {
	const char *base;
	tok_ints *out;
	size_t last;       /* end of the previous match, for the gaps */
} split_ctx;

/* HF Split(Isolated) keeps both the matches and the text between them. */
static void split_piece(void *ctx, const char *s, size_t n)
{
	split_ctx *c = ctx;
	size_t at = s - c->base;
	if (at > c->last) {
		ints_push(c->out, (int)c->last);
		ints_push(c->out, (int)(at - c->last));
	}
	ints_push(c->out, (int)at);
	ints_push(c->out, (int)n);
	c->last = at + n;
}

static void split_words(tok_re *re, const char *text, tok_ints *in, tok_ints *out)
{
	int i;
	for (i = 0; i < in->n; i += 2) {
		split_ctx c = { text, out, (size_t)in->p[i] };
		size_t end = (size_t)in->p[i] + in->p[i + 1];
		re_split(re, text + in->p[i], in->p[i + 1], split_piece, &c);
		if (c.last < end) {
			ints_push(out, (int)c.last);
			ints_push(out, (int)(end - c.last));
		}
	}
}

static int hf_pair(void *ctx, const tok_sym *a, const tok_sym *b, double *prio, int *id)
{
	const tok_hf *h = ctx;
	int rank, merged;
	if (!map64_get(&h->merges, (uint64_t)a->id << 32 | (uint32_t)b->id, &rank, &merged))
		return 0;
	*prio = rank;
	*id = merged;
	return 1;
}

/* The BPE model on one word (models/bpe/model.rs, merge_word). */
static void bpe_word(lm_tok *t, const char *s, size_t n, tok_ints *out, tok_sym **sym, int *cap)
{
	tok_hf *h = t->hf;
	int count = 0, i, unk_run = 0;
	size_t at = 0;
	if (h->ignore_merges) {
		int id = map_get(&t->text, t, s, n);
		if (id >= 0) {
			ints_push(out, id);
			return;
		}
	}
	if ((int)n > *cap) {
		*cap = n;
		*sym = lm_realloc(*sym, n * sizeof **sym);
	}
	while (at < n) {
		size_t k = h->bytelevel ? 1 : (size_t)utf8_lead_len((unsigned char)s[at]);
		int id = map_get(&t->text, t, s + at, k);
		size_t j, parts = 1;
		if (id < 0 && h->byte_fallback)
			parts = k;
		else if (id < 0 && t->unk >= 0 && h->fuse_unk && unk_run)
			parts = 0;      /* fused into the unknown before it */
		else if (id < 0 && t->unk < 0)
			parts = 0;      /* no unknown token: the character is dropped */
		for (j = 0; j < parts; j++) {
			tok_sym *y = &(*sym)[count];
			y->start = at + j;
			y->len = parts == k && id < 0 ? 1 : k;
			y->id = id >= 0 ? id : h->byte_fallback ? t->byte_id[(unsigned char)s[at + j]] : t->unk;
			y->prev = count - 1;
			y->next = count + 1;
			y->frozen = 0;
			count++;
		}
		unk_run = id < 0 && !h->byte_fallback;
		at += k;
	}
	if (!count)
		return;
	(*sym)[count - 1].next = -1;
	bpe_merge(*sym, count, hf_pair, h);
	for (i = 0; i >= 0; i = (*sym)[i].next)
		ints_push(out, (*sym)[i].id);
}

typedef struct {
	lm_tok *t;
	tok_ints *out;
	tok_sym **sym;
	int *cap;
} word_ctx;

static void word_chunk(void *ctx, const char *s, size_t n)
{
	word_ctx *c = ctx;
	bpe_word(c->t, s, n, c->out, c->sym, c->cap);
}

void hf_encode(lm_tok *t, const char *s, size_t n, int first, tok_ints *out)
{
	tok_hf *h = t->hf;
	tok_buf a = { 0 }, b = { 0 };
	tok_ints w = { 0 }, w2 = { 0 };
	tok_sym *sym = NULL;
	int i, cap = 0;
	buf_put(&a, s, n);
	for (i = 0; i < h->n_norm; i++) {
		b.n = 0;
		if (h->norm[i].kind == N_PREPEND) {
			if (a.n)
				buf_puts(&b, h->norm[i].a);
			buf_put(&b, a.p, a.n);
		} else {
			replace_all(&b, a.p, a.n, h->norm[i].a, h->norm[i].b);
		}
		tok_buf tmp = a;
		a = b;
		b = tmp;
	}
	ints_push(&w, 0);
	ints_push(&w, (int)a.n);
	for (i = 0; i < h->n_pre; i++) {
		int j;
		w2.n = 0;
		if (h->pre[i].kind == P_SPLIT) {
			split_words(h->pre[i].re, buf_cstr(&a), &w, &w2);
		} else if (h->pre[i].kind == P_BYTELEVEL) {
			/* add_prefix_space applies to the whole text before the split */
			if (h->pre[i].prefix_space && a.n && a.p[0] != ' ' && w.n == 2) {
				b.n = 0;
				buf_putc(&b, ' ');
				buf_put(&b, a.p, a.n);
				tok_buf tmp = a;
				a = b;
				b = tmp;
				w.p[1] = (int)a.n;
			}
			if (h->pre[i].re)
				split_words(h->pre[i].re, buf_cstr(&a), &w, &w2);
			else
				for (j = 0; j < w.n; j++)
					ints_push(&w2, w.p[j]);
		} else {
			/* Metaspace: spaces become U+2581, the first word may get one
			 * prepended, and words may split before each U+2581. */
			tok_buf c = { 0 };
			for (j = 0; j < w.n; j += 2) {
				size_t start = c.n, k;
				int pre = h->pre[i].prepend;
				tok_buf piece = { 0 };
				replace_all(&piece, a.p + w.p[j], w.p[j + 1], " ", SPACE_SYM);
				if ((pre == 2 || (pre == 1 && first && w.p[j] == 0))
				    && !(piece.n >= 3 && memcmp(piece.p, SPACE_SYM, 3) == 0))
					buf_put(&c, SPACE_SYM, 3);
				buf_put(&c, piece.p, piece.n);
				free(piece.p);
				if (!h->pre[i].split) {
					ints_push(&w2, (int)start);
					ints_push(&w2, (int)(c.n - start));
					continue;
				}
				for (k = start; k < c.n;) {
					size_t e = k + 3;
					while (e < c.n && !(e + 3 <= c.n && memcmp(c.p + e, SPACE_SYM, 3) == 0))
						e++;
					if (e > c.n)
						e = c.n;
					ints_push(&w2, (int)k);
					ints_push(&w2, (int)(e - k));
					k = e;
				}
			}
			free(a.p);
			a = c;
		}
		tok_ints tmp = w;
		w = w2;
		w2 = tmp;
	}
	for (i = 0; i < w.n; i += 2) {
		word_ctx c = { t, out, &sym, &cap };
		if (w.p[i + 1] <= 0)
			continue;
		if (h->chunked)
			bpe_chunks(&h->bigrams, t, a.p + w.p[i], w.p[i + 1], word_chunk, &c);
		else
			bpe_word(t, a.p + w.p[i], w.p[i + 1], out, &sym, &cap);
	}
	free(a.p);
	free(b.p);
	free(w.p);
	free(w2.p);
	free(sym);
}

/* ---- decoding help for tok_decode.c ---- */

int hf_dec_bytes(const lm_tok *t)
{
	return t->hf && t->hf->dec_bytes;
}

void hf_dec_token(const lm_tok *t, const char *s, size_t n, int first, tok_buf *out)
{
	const tok_hf *h = t->hf;
	tok_buf a = { 0 }, b = { 0 };
	int i;
	buf_put(&a, s, n);
	for (i = 0; i < h->n_rep; i++) {
		b.n = 0;
		replace_all(&b, a.p, a.n, h->rep_from[i], h->rep_to[i]);
		tok_buf tmp = a;
		a = b;
		b = tmp;
	}
	if (h->dec_metaspace)
		/* the first token loses every U+2581, the others turn them to spaces */
		replace_all(out, a.p, a.n, SPACE_SYM, first && t->metaspace_first ? "" : " ");
	else
		buf_put(out, a.p, a.n);
	free(a.p);
	free(b.p);
}

/* AFM's NewlineTokenizer decodes "<n>" to a newline, whether or not the
 * file's decoder chain says so. */
void hf_newline_rule(lm_tok *t)
{
	tok_hf *h = t->hf;
	int i;
	if (!h)
		return;
	for (i = 0; i < h->n_rep; i++)
		if (strcmp(h->rep_from[i], "<n>") == 0)
			return;
	if (h->n_rep == MAX_STEPS)
		lm_fail(t->path, "decoder: more than %d Replace steps", MAX_STEPS);
	h->rep_from[h->n_rep] = lm_strdup("<n>");
	h->rep_to[h->n_rep++] = lm_strdup("\n");
}
