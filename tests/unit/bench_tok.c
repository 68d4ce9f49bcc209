/* bench_tok: encoding speed of each tokenizer format, in MB/s on one core.
 *
 *   bench_tok [MB] NAME=PATH...
 *
 * The text is the vectors' texts (every tests/tokenizers/ * /vectors*.jsonl
 * line: prose, code, CJK, emoji, whitespace runs...), shuffled with a fixed
 * seed and repeated up to MB megabytes (default 4), then encoded in
 * documents of about 16 KB, as prompts come. */
#include "text/tok.h"
#include "rt.h"

#include <glob.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct { char *p; size_t n; } str;

static str *load_texts(int *count)
{
	glob_t g;
	str *t = NULL;
	int n = 0, cap = 0;
	size_t i;
	if (glob("tests/tokenizers/*/vectors*.jsonl", 0, NULL, &g) != 0) {
		fprintf(stderr, "bench_tok: run from the repository root\n");
		exit(2);
	}
	for (i = 0; i < g.gl_pathc; i++) {
		FILE *f = fopen(g.gl_pathv[i], "r");
		char *line = NULL;
		size_t lc = 0;
		while (f && getline(&line, &lc, f) > 0) {
			struct json_object *o = json_tokener_parse(line), *x;
			if (o && json_object_object_get_ex(o, "text", &x) && json_object_get_string_len(x)) {
				if (n == cap)
					t = realloc(t, (cap = cap ? 2 * cap : 256) * sizeof *t);
				t[n].n = json_object_get_string_len(x);
				t[n].p = malloc(t[n].n);
				memcpy(t[n].p, json_object_get_string(x), t[n].n);
				n++;
			}
			json_object_put(o);
		}
		free(line);
		if (f)
			fclose(f);
	}
	globfree(&g);
	*count = n;
	return t;
}

int main(int argc, char **argv)
{
	int n, i, a = 1, ndoc = 0;
	double mb = 4;
	str *texts = load_texts(&n);
	char *text;
	size_t len = 0, cap, *doc_end;
	unsigned long long seed = 12345;
	if (argc > 1 && strchr(argv[1], '=') == NULL)
		mb = atof(argv[a++]);
	cap = (size_t)(mb * 1e6) + 4096;
	text = malloc(cap);
	doc_end = malloc((cap / 1000 + 2) * sizeof *doc_end);
	while (len < (size_t)(mb * 1e6)) {
		str *s;
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		s = &texts[(seed >> 33) % n];
		if (len + s->n + 1 > cap)
			break;
		memcpy(text + len, s->p, s->n);
		len += s->n;
		text[len++] = '\n';
		if (ndoc == 0 ? len >= 16384 : len - doc_end[ndoc - 1] >= 16384)
			doc_end[ndoc++] = len;
	}
	doc_end[ndoc++] = len;
	printf("text: %.2f MB in %d documents, from %d vector texts\n", len / 1e6, ndoc, n);
	for (; a < argc; a++) {
		char *eq = strchr(argv[a], '=');
		lm_tok *t;
		double t0, dt;
		long long ids = 0;
		size_t start = 0;
		int d;
		if (!eq) {
			fprintf(stderr, "bench_tok: expected NAME=PATH, got %s\n", argv[a]);
			return 2;
		}
		*eq = 0;
		t = lm_tok_open(eq + 1);
		if (!t) {
			printf("%-22s (no tokenizer at %s)\n", argv[a], eq + 1);
			continue;
		}
		t0 = lm_now();
		for (d = 0; d < ndoc; d++) {
			int *out;
			ids += lm_tok_encode(t, text + start, doc_end[d] - start, 0, &out);
			free(out);
			start = doc_end[d];
		}
		dt = lm_now() - t0;
		printf("%-22s %-24s %7.2f MB/s  %5.2f bytes/token\n", argv[a], lm_tok_format(t),
		       len / 1e6 / dt, (double)len / ids);
		lm_tok_free(t);
	}
	for (i = 0; i < n; i++)
		free(texts[i].p);
	free(texts);
	free(text);
	free(doc_end);
	return 0;
}
