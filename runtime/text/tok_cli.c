/* tok_cli.c: `lmcc tokenize DIR [TEXT]` and `lmcc detokenize DIR IDS`
 * (DESIGN.md, "Command line"). */
#define _GNU_SOURCE
#include "tok_int.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char TOKENIZE_USAGE[] =
	"usage: lmcc tokenize DIR [TEXT] [--bos]\n"
	"Prints the token ids of TEXT, comma separated.  Without TEXT, reads JSON\n"
	"lines {\"text\": ...} on stdin and prints one JSON array of ids per line.\n"
	"DIR holds the model's tokenizer files (it may also name the file itself).\n"
	"  --bos   add BOS where the model's tokenizer config adds it\n";

static const char DETOKENIZE_USAGE[] =
	"usage: lmcc detokenize DIR IDS\n"
	"Prints the text of the comma-separated token IDS, as it is (no newline added).\n"
	"DIR holds the model's tokenizer files (it may also name the file itself).\n";

static lm_tok *open_or_fail(const char *dir)
{
	lm_tok *t = lm_tok_open(dir);
	if (!t)
		lm_fail(dir, "no tokenizer here (tokenizer.json, tokenizer.jsonl, tiktoken.model, "
			"tokenizer.model or a *.model file)");
	return t;
}

static void print_ids(const int *ids, int n, const char *sep, const char *open, const char *close)
{
	int i;
	fputs(open, stdout);
	for (i = 0; i < n; i++)
		printf("%s%d", i ? sep : "", ids[i]);
	fputs(close, stdout);
}

static int tokenize_stdin(lm_tok *t, int bos)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	int no = 0;
	struct json_tokener *tk = json_tokener_new();
	while ((len = getline(&line, &cap, stdin)) >= 0) {
		struct json_object *o, *text;
		int *ids, n;
		size_t i;
		no++;
		for (i = 0; i < (size_t)len && strchr(" \t\r\n", line[i]); i++)
			;
		if (i == (size_t)len)
			continue;       /* a blank line */
		json_tokener_reset(tk);
		o = json_tokener_parse_ex(tk, line, (int)len);
		if (!o || !json_object_object_get_ex(o, "text", &text)
		    || !json_object_is_type(text, json_type_string))
			lm_fail("stdin", "line %d: expected a JSON object {\"text\": \"...\"}", no);
		n = lm_tok_encode(t, json_object_get_string(text), json_object_get_string_len(text), bos, &ids);
		print_ids(ids, n, ", ", "[", "]\n");
		free(ids);
		json_object_put(o);
	}
	json_tokener_free(tk);
	free(line);
	return 0;
}

static int tokenize(int argc, char **argv)
{
	const char *pos[2];
	int npos = 0, bos = 0, i;
	lm_tok *t;
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			fputs(TOKENIZE_USAGE, stdout);
			return 0;
		}
		if (strcmp(argv[i], "--bos") == 0)
			bos = 1;
		else if (argv[i][0] == '-' && argv[i][1] == '-')
			lm_fail("tokenize", "unknown option %s (see lmcc tokenize --help)", argv[i]);
		else if (npos < 2)
			pos[npos++] = argv[i];
		else
			lm_fail("tokenize", "too many arguments (see lmcc tokenize --help)");
	}
	if (npos < 1) {
		fputs(TOKENIZE_USAGE, stderr);
		return 2;
	}
	t = open_or_fail(pos[0]);
	if (npos == 2) {
		int *ids, n = lm_tok_encode(t, pos[1], strlen(pos[1]), bos, &ids);
		print_ids(ids, n, ",", "", "\n");
		free(ids);
	} else {
		tokenize_stdin(t, bos);
	}
	lm_tok_free(t);
	return fflush(stdout) == 0 ? 0 : 1;
}

static int detokenize(int argc, char **argv)
{
	const char *pos[2];
	int npos = 0, i, n = 0, *ids;
	lm_tok *t;
	const char *s;
	char *text;
	size_t len;
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			fputs(DETOKENIZE_USAGE, stdout);
			return 0;
		}
		if (argv[i][0] == '-' && argv[i][1] == '-')
			lm_fail("detokenize", "unknown option %s (see lmcc detokenize --help)", argv[i]);
		if (npos == 2)
			lm_fail("detokenize", "too many arguments (see lmcc detokenize --help)");
		pos[npos++] = argv[i];
	}
	if (npos != 2) {
		fputs(DETOKENIZE_USAGE, stderr);
		return 2;
	}
	t = open_or_fail(pos[0]);
	ids = lm_alloc((strlen(pos[1]) / 2 + 2) * sizeof *ids);
	for (s = pos[1]; *s;) {
		char *end;
		long v;
		while (*s == ' ' || *s == ',')
			s++;
		if (!*s)
			break;
		errno = 0;
		v = strtol(s, &end, 10);
		if (end == s || errno || v < 0 || v >= lm_tok_n_vocab(t) || (*end && *end != ',' && *end != ' '))
			lm_fail("detokenize", "'%.*s' is not a token id in [0, %d)",
				(int)strcspn(s, ", "), s, lm_tok_n_vocab(t));
		ids[n++] = (int)v;
		s = end;
	}
	text = lm_tok_decode(t, ids, n, &len);
	fwrite(text, 1, len, stdout);
	free(text);
	free(ids);
	lm_tok_free(t);
	return fflush(stdout) == 0 ? 0 : 1;
}

int lm_tok_cli(int argc, char **argv)
{
	if (argc >= 1 && strcmp(argv[0], "tokenize") == 0)
		return tokenize(argc, argv);
	if (argc >= 1 && strcmp(argv[0], "detokenize") == 0)
		return detokenize(argc, argv);
	lm_bug("lm_tok_cli: argv[0] must be tokenize or detokenize");
}
