/* test_tok_api: what the run loop relies on, per model family: detection,
 * vocabulary size, BOS as each config says, stop ids, end of turn in chat,
 * chat rendering through the model's own config, and no tokenizer -> NULL.
 * Prints PASS/FAIL lines. */
#include "text/tok.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int fails;

static void check(int ok, const char *name, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
#include <stdarg.h>
static void check(int ok, const char *name, const char *fmt, ...)
{
	va_list ap;
	if (ok) {
		printf("PASS api:%s\n", name);
		return;
	}
	fails++;
	printf("FAIL api:%s: ", name);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
}

#define T "tests/tokenizers/"

static const struct {
	const char *name, *path, *format;
	int n_vocab, bos, bos_added;      /* bos: expected id, -1 none; added by encode(add_bos) */
	int stop[3], eot;                 /* stop ids (0 ends), an end-of-turn id (-1 none) */
} FAM[] = {
	{ "llama4", T "llama4", "tiktoken/llama4", 202048, 200000, 1, { 200001, 200007, 200008 }, 200008 },
	{ "kimi", T "kimi_linear", "tiktoken/kimi", 163842, 163584, 0, { 163586 }, 163586 },
	{ "llama3", T "llama3", "tiktoken/llama3", 128256, 128000, 1, { 0 }, 128009 },
	{ "baichuan", T "baichuan_m1", "sentencepiece/bpe", 133120, 1, 0, { 2 }, 51 },
	{ "llama2-hf", T "afm7_standin_llama2", "hf/bpe", 32000, 1, 1, { 2 }, -1 },
	{ "llama2-spm", T "afm7_standin_llama2/tokenizer.model", "sentencepiece/bpe", 32000, 1, 0, { 2 }, -1 },
	{ "afm7", T "afm7_newline", "hf/bpe", 32003, 1, 0, { 32002 }, 32002 },
	{ "plamo", T "plamo2_standin_llmjp", "plamo/unigram", 98452, 1, 0, { 2 }, -1 },
	{ "llmjp-spm", T "plamo2_standin_llmjp/llm-jp-tokenizer-100k.ver3.1.model",
	  "sentencepiece/unigram", 98452, 1, 0, { 2 }, -1 },
};

/* The conversation of tests/tokenizers/chat/cases/<template>.multi.json. */
static const lm_chat_msg MULTI[] = {
	{ "system", "You are terse." }, { "user", "What is 2+2?" },
	{ "assistant", "4." }, { "user", "And 3+3?" },
};

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *b;
	long n;
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	b = calloc(1, n + 1);
	if (fread(b, 1, n, f) != (size_t)n)
		n = 0;
	fclose(f);
	return b;
}

static void chat_case(const char *name, const char *dir, const char *expected_file)
{
	lm_tok *t = lm_tok_open(dir);
	char *got = lm_tok_chat(t, MULTI, 4, 1), *want = slurp(expected_file);
	check(got && want && strcmp(got, want) == 0, name, "rendering differs from %s: got \"%s\"",
	      expected_file, got ? got : "(no template)");
	free(got);
	free(want);
	lm_tok_free(t);
}

int main(void)
{
	unsigned k;
	char name[128];
	for (k = 0; k < sizeof FAM / sizeof *FAM; k++) {
		lm_tok *t = lm_tok_open(FAM[k].path);
		int *ids, n, i, stops_ok = 1;
		if (!t) {
			check(0, FAM[k].name, "no tokenizer at %s", FAM[k].path);
			continue;
		}
		snprintf(name, sizeof name, "%s:format", FAM[k].name);
		check(strcmp(lm_tok_format(t), FAM[k].format) == 0 && lm_tok_n_vocab(t) == FAM[k].n_vocab, name,
		      "format %s, %d ids; want %s, %d", lm_tok_format(t), lm_tok_n_vocab(t), FAM[k].format,
		      FAM[k].n_vocab);
		n = lm_tok_encode(t, "Hi", 2, 1, &ids);
		snprintf(name, sizeof name, "%s:bos", FAM[k].name);
		check(lm_tok_bos_id(t) == FAM[k].bos && (n > 0 && ids[0] == FAM[k].bos) == FAM[k].bos_added, name,
		      "bos id %d, first id with add_bos %d", lm_tok_bos_id(t), n ? ids[0] : -1);
		free(ids);
		snprintf(name, sizeof name, "%s:stop", FAM[k].name);
		for (i = 0; i < 3 && FAM[k].stop[i]; i++)
			stops_ok &= lm_tok_is_eos(t, FAM[k].stop[i], 0);
		stops_ok &= !lm_tok_is_eos(t, 100, 0) && !lm_tok_is_eos(t, 100, 1);
		if (FAM[k].eot >= 0)
			stops_ok &= lm_tok_is_eos(t, FAM[k].eot, 1);
		check(stops_ok, name, "stop ids or end of turn wrong");
		lm_tok_free(t);
	}

	/* Chat through the configs the models ship: Baichuan's
	 * tokenizer_config.json chat_template, AFM's (afm7_newline). */
	chat_case("chat:baichuan_m1", T "baichuan_m1", T "chat/cases/baichuan_m1.multi.out");
	chat_case("chat:afm7", T "afm7_newline", T "chat/cases/afm7.multi.out");
	{
		lm_tok *t = lm_tok_open(T "llama4");
		char *c = lm_tok_chat(t, MULTI, 4, 1);
		check(c == NULL, "chat:none", "a model without a template rendered \"%s\"", c);
		free(c);
		lm_tok_free(t);
	}
	/* AFM: the rendered chat encodes with <turn_start> and <n> as tokens:
	 * three turns, and four <n> (after each role, and the newline of "Hi\nthere"). */
	{
		lm_tok *t = lm_tok_open(T "afm7_newline");
		lm_chat_msg m[] = { { "user", "Hi\nthere" } };
		char *c = lm_tok_chat(t, m, 1, 1);
		int *ids, n = lm_tok_encode(t, c, strlen(c), 0, &ids), i, starts = 0, nl = 0;
		for (i = 0; i < n; i++) {
			starts += ids[i] == 32001;
			nl += ids[i] == 32000;
		}
		check(n > 0 && ids[0] == 32001 && starts == 3 && nl == 4, "chat:afm7-encode",
		      "%d ids, %d <turn_start>, %d <n>", n, starts, nl);
		free(ids);
		free(c);
		lm_tok_free(t);
	}
	mkdir("tests/tmp", 0777);
	mkdir("tests/tmp/empty_dir", 0777);
	check(lm_tok_open("tests/tmp/empty_dir") == NULL, "open:empty", "a directory with no tokenizer opened");
	return fails != 0;
}
