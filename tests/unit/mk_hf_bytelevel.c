/* mk_hf_bytelevel: writes a Hugging Face byte-level tokenizer.json for a
 * tiktoken rank file, the way transformers' TikTokenConverter does, so
 * that the tokenizer.json code path (which Llama 4 ships, in a file too
 * large to keep in the tests) can be checked against the rank file's
 * vectors.
 *
 *   mk_hf_bytelevel RANK_DIR OUT.json
 *
 * vocab: every rank's bytes through GPT-2's bytes_to_unicode; merges: for
 * every token, each split into two tokens, ordered by the token's rank (then
 * the left part's), so that merging the lowest merge first is merging the
 * lowest-ranked concatenation first; added_tokens: the special tokens;
 * pre_tokenizer: Split(family regex, Isolated) + ByteLevel(no prefix, no
 * regex); decoder ByteLevel; post_processor: BOS when the family adds it. */
#include "text/tok_int.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static unsigned cp_of[256];

static char *mapped(const char *s, size_t n)
{
	tok_buf b = { 0 };
	size_t i;
	for (i = 0; i < n; i++)
		utf8_put(&b, cp_of[(unsigned char)s[i]]);
	return buf_cstr(&b);
}

typedef struct { int rank, left, right; } merge;

static int by_rank(const void *a, const void *b)
{
	const merge *x = a, *y = b;
	if (x->rank != y->rank)
		return x->rank < y->rank ? -1 : 1;
	return x->left < y->left ? -1 : x->left > y->left;
}

int main(int argc, char **argv)
{
	lm_tok *t;
	struct json_object *root, *model, *vocab, *merges, *added, *pre, *steps, *o, *p;
	merge *m = NULL;
	size_t nm = 0, cap = 0;
	int id, b, k = 0;
	FILE *f;
	if (argc != 3) {
		fprintf(stderr, "usage: mk_hf_bytelevel RANK_DIR OUT.json\n");
		return 2;
	}
	for (b = 0; b < 256; b++) {
		int printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174;
		cp_of[b] = printable ? (unsigned)b : 256u + k++;
	}
	t = lm_tok_open(argv[1]);
	if (!t || t->algo != ALGO_RANK) {
		fprintf(stderr, "mk_hf_bytelevel: %s: not a rank file\n", argv[1]);
		return 2;
	}
	vocab = json_object_new_object();
	for (id = 0; id < t->n_base; id++) {
		const char *s = piece_text(t, id);
		size_t n = t->piece[id].len, i;
		char *name = mapped(s, n);
		json_object_object_add(vocab, name, json_object_new_int(id));
		free(name);
		for (i = 1; i < n; i++) {
			int l = map_get(&t->text, t, s, i), r = map_get(&t->text, t, s + i, n - i);
			if (l < 0 || r < 0)
				continue;
			if (nm == cap)
				m = realloc(m, (cap = cap ? 2 * cap : 1 << 16) * sizeof *m);
			m[nm++] = (merge){ id, l, r };
		}
	}
	qsort(m, nm, sizeof *m, by_rank);
	merges = json_object_new_array_ext(nm);
	for (size_t i = 0; i < nm; i++) {
		struct json_object *pair = json_object_new_array();
		char *l = mapped(piece_text(t, m[i].left), t->piece[m[i].left].len);
		char *r = mapped(piece_text(t, m[i].right), t->piece[m[i].right].len);
		json_object_array_add(pair, json_object_new_string(l));
		json_object_array_add(pair, json_object_new_string(r));
		json_object_array_add(merges, pair);
		free(l);
		free(r);
	}
	added = json_object_new_array();
	for (id = 0; id < t->n; id++) {
		if (t->piece[id].special != SP_SPLIT)
			continue;
		o = json_object_new_object();
		json_object_object_add(o, "id", json_object_new_int(id));
		json_object_object_add(o, "content", json_object_new_string_len(special_text(t, id), t->piece[id].slen));
		json_object_object_add(o, "special", json_object_new_boolean(1));
		json_object_array_add(added, o);
	}
	/* The fixed parts; the pattern, vocab, merges and added tokens go in. */
	root = json_tokener_parse(
		"{\"version\": \"1.0\", \"normalizer\": null,"
		" \"pre_tokenizer\": {\"type\": \"Sequence\", \"pretokenizers\": ["
		"  {\"type\": \"Split\", \"pattern\": {}, \"behavior\": \"Isolated\", \"invert\": false},"
		"  {\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"use_regex\": false}]},"
		" \"decoder\": {\"type\": \"ByteLevel\"},"
		" \"model\": {\"type\": \"BPE\", \"ignore_merges\": true, \"byte_fallback\": false}}");
	json_object_object_get_ex(root, "pre_tokenizer", &pre);
	json_object_object_get_ex(pre, "pretokenizers", &steps);
	json_object_object_get_ex(json_object_array_get_idx(steps, 0), "pattern", &p);
	json_object_object_add(p, "Regex", json_object_new_string(t->pattern));
	json_object_object_get_ex(root, "model", &model);
	json_object_object_add(model, "vocab", vocab);
	json_object_object_add(model, "merges", merges);
	json_object_object_add(root, "added_tokens", added);
	if (t->add_bos && t->bos >= 0) {
		struct json_object *single = json_object_new_array(), *sp = json_object_new_object(), *e;
		json_object_object_add(sp, "id", json_object_new_string(special_text(t, t->bos)));
		e = json_object_new_object();
		json_object_object_add(e, "SpecialToken", sp);
		json_object_array_add(single, e);
		o = json_object_new_object();
		json_object_object_add(o, "type", json_object_new_string("TemplateProcessing"));
		json_object_object_add(o, "single", single);
		json_object_object_add(root, "post_processor", o);
	}
	f = fopen(argv[2], "w");
	if (!f || fputs(json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE), f) < 0
	    || fclose(f) != 0) {
		fprintf(stderr, "mk_hf_bytelevel: cannot write %s\n", argv[2]);
		return 2;
	}
	json_object_put(root);
	free(m);
	lm_tok_free(t);
	return 0;
}
