/* test_tok: checks one tokenizer against a vectors file.
 *
 *   test_tok PATH VECTORS NAME [--roundtrip all|nospecial|none] [--key ids]
 *            [--except TEXT]...
 *
 * PATH is a tokenizer directory or file, VECTORS a jsonl file of
 * {"text", "ids"} lines (ids without BOS).  Prints one line per check:
 *   encode:NAME     every text encodes to exactly its ids
 *   decode:NAME     decoding the ids gives the text back (where the format
 *                   is lossless: "nospecial" exempts lines holding a special
 *                   token's text, "none" skips the check; --except names
 *                   one text whose decoding is known to differ)
 *   stream:NAME     pushing the ids one at a time gives the whole decode,
 *                   and no push ends inside a UTF-8 character */
#include "text/tok.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void show_text(FILE *f, const char *s)
{
	struct json_object *o = json_object_new_string(s);
	fputs(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE), f);
	json_object_put(o);
}

static void show_ids(const int *ids, int n)
{
	int i;
	putchar('[');
	for (i = 0; i < n; i++)
		printf(i ? ",%d" : "%d", ids[i]);
	putchar(']');
}

/* Whether S[0..N) is whole UTF-8 characters (a push must never split one). */
static int whole_utf8(const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0;
	while (i < n) {
		int k = s[i] < 0x80 ? 1 : s[i] < 0xC0 ? 0 : s[i] < 0xE0 ? 2 : s[i] < 0xF0 ? 3 : s[i] < 0xF8 ? 4 : 0;
		int j;
		if (!k || i + k > n)
			return 0;
		for (j = 1; j < k; j++)
			if ((s[i + j] & 0xC0) != 0x80)
				return 0;
		i += k;
	}
	return 1;
}

/* Streams IDS through a detokenizer; returns 1 when it matches WHOLE. */
static int stream_ok(lm_tok *t, const int *ids, int n, const char *whole, size_t wn, char **why)
{
	lm_detok *d = lm_detok_new(t);
	char *acc = malloc(wn + 64 * (size_t)n + 64);
	size_t an = 0, k;
	int i, ok = 1;
	const char *p;
	*why = "differs from the whole decode";
	for (i = 0; i < n; i++) {
		p = lm_detok_push(d, ids[i], &k);
		if (!whole_utf8(p, k)) {
			ok = 0;
			*why = "a push split a UTF-8 character";
		}
		memcpy(acc + an, p, k);
		an += k;
	}
	p = lm_detok_flush(d, &k);
	memcpy(acc + an, p, k);
	an += k;
	if (an != wn || memcmp(acc, whole, wn) != 0)
		ok = 0;
	free(acc);
	lm_detok_free(d);
	return ok;
}

int main(int argc, char **argv)
{
	const char *path, *vec, *name, *rt = "all", *key = "ids", *except[16];
	int n_except = 0;
	lm_tok *t;
	FILE *f;
	char *line = NULL;
	size_t cap = 0;
	int i, nline = 0, bad_enc = 0, bad_dec = 0, bad_str = 0, n_dec = 0;
	char first_enc[4096] = "", first_dec[4096] = "", first_str[4096] = "";
	if (argc < 4) {
		fprintf(stderr, "usage: test_tok PATH VECTORS NAME [--roundtrip all|nospecial|none] [--key K]\n");
		return 2;
	}
	path = argv[1];
	vec = argv[2];
	name = argv[3];
	for (i = 4; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--roundtrip") == 0)
			rt = argv[i + 1];
		else if (strcmp(argv[i], "--key") == 0)
			key = argv[i + 1];
		else if (strcmp(argv[i], "--except") == 0 && n_except < 16)
			except[n_except++] = argv[i + 1];
	}
	t = lm_tok_open(path);
	if (!t) {
		printf("FAIL encode:%s: no tokenizer in %s\n", name, path);
		return 1;
	}
	f = fopen(vec, "r");
	if (!f) {
		printf("FAIL encode:%s: cannot open %s\n", name, vec);
		return 1;
	}
	while (getline(&line, &cap, f) > 0) {
		struct json_object *o = json_tokener_parse(line), *jt, *ji, *js;
		const char *text;
		int *ids, n, want_n, j, same;
		char *dec;
		size_t dn;
		if (!o || !json_object_object_get_ex(o, "text", &jt) || !json_object_object_get_ex(o, "ids", &ji)) {
			printf("FAIL encode:%s: bad vectors line %d\n", name, nline + 1);
			return 1;
		}
		if (json_object_object_get_ex(o, key, &js))
			ji = js;
		nline++;
		text = json_object_get_string(jt);
		n = lm_tok_encode(t, text, json_object_get_string_len(jt), 0, &ids);
		want_n = json_object_array_length(ji);
		same = n == want_n;
		for (j = 0; same && j < n; j++)
			same = ids[j] == json_object_get_int(json_object_array_get_idx(ji, j));
		if (!same && bad_enc++ == 0) {
			FILE *m = fmemopen(first_enc, sizeof first_enc - 1, "w");
			fputs("text=", m);
			show_text(m, text);
			fprintf(m, " want=%s got=", json_object_to_json_string_ext(ji, JSON_C_TO_STRING_PLAIN));
			fclose(m);
			/* ids appended below, through stdout formatting */
			{
				size_t l = strlen(first_enc);
				int w;
				for (j = 0; j < n && l < sizeof first_enc - 16; j++) {
					w = snprintf(first_enc + l, sizeof first_enc - l, j ? ",%d" : "[%d", ids[j]);
					l += w;
				}
				snprintf(first_enc + l, sizeof first_enc - l, n ? "]" : "[]");
			}
		}
		/* Decode the expected ids, so decoding is checked even when encoding is wrong. */
		{
			int *want = malloc(sizeof(int) * (want_n + 1));
			char *why;
			for (j = 0; j < want_n; j++)
				want[j] = json_object_get_int(json_object_array_get_idx(ji, j));
			dec = lm_tok_decode(t, want, want_n, &dn);
			if (strcmp(rt, "none") != 0) {
				int exempt = strcmp(rt, "nospecial") == 0 && strchr(text, '<') && strchr(text, '>'), e;
				for (e = 0; e < n_except; e++)
					exempt |= strcmp(text, except[e]) == 0;
				if (!exempt) {
					n_dec++;
					if ((dn != (size_t)json_object_get_string_len(jt) || memcmp(dec, text, dn) != 0)
					    && bad_dec++ == 0) {
						FILE *m = fmemopen(first_dec, sizeof first_dec - 1, "w");
						fputs("text=", m);
						show_text(m, text);
						fputs(" got=", m);
						show_text(m, dec);
						fclose(m);
					}
				}
			}
			if (!stream_ok(t, want, want_n, dec, dn, &why) && bad_str++ == 0) {
				FILE *m = fmemopen(first_str, sizeof first_str - 1, "w");
				fprintf(m, "%s: text=", why);
				show_text(m, text);
				fclose(m);
			}
			free(want);
			free(dec);
		}
		free(ids);
		json_object_put(o);
	}
	fclose(f);
	free(line);
	if (bad_enc)
		printf("FAIL encode:%s: %d of %d lines differ; first: %s\n", name, bad_enc, nline, first_enc);
	else
		printf("PASS encode:%s (%d lines)\n", name, nline);
	if (strcmp(rt, "none") != 0) {
		if (bad_dec)
			printf("FAIL decode:%s: %d of %d round trips differ; first: %s\n", name, bad_dec, n_dec, first_dec);
		else
			printf("PASS decode:%s (%d round trips)\n", name, n_dec);
	}
	if (bad_str)
		printf("FAIL stream:%s: %d of %d lines; first: %s\n", name, bad_str, nline, first_str);
	else
		printf("PASS stream:%s (%d lines)\n", name, nline);
	lm_tok_free(t);
	(void)show_ids;
	return 0;
}
