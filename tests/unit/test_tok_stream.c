/* test_tok_stream: streamed decoding on crafted id sequences: 4-byte
 * characters split over byte tokens, invalid byte runs, special tokens
 * between bytes, SentencePiece's dummy prefix, HF's Strip, AFM's <n>.
 *
 * Each case gives ids ("N" an id, "b:XX" the byte token of XX, "t:TEXT" the
 * ids of TEXT), the text they decode to, and optionally what each push
 * returns ('|' between pushes, then the flush).  The checks: the whole
 * decode is the text; the pushes and the flush add up to it; no push ends
 * inside a UTF-8 character.  Prints PASS/FAIL lines. */
#include "text/tok_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define T "tests/tokenizers/"
static const struct {
	const char *name, *path, *items, *text, *pushes;
} CASES[] = {
	{ "tiktoken-4byte", T "llama4", "b:F0 b:9F b:98 b:80", "\xF0\x9F\x98\x80", "|||\xF0\x9F\x98\x80|" },
	{ "tiktoken-bad-run", T "llama4", "b:E3 b:81 t:A", "\xEF\xBF\xBD" "A", NULL },
	{ "tiktoken-bad-lead", T "llama4", "b:F0 b:80", "\xEF\xBF\xBD\xEF\xBF\xBD", NULL },
	{ "tiktoken-cut-end", T "llama4", "b:E3 b:81", "\xEF\xBF\xBD", "||\xEF\xBF\xBD" },
	{ "tiktoken-special-between", T "llama4", "b:E3 200008 b:81",
	  "\xEF\xBF\xBD<|eot|>\xEF\xBF\xBD", NULL },
	{ "kimi-4byte", T "kimi_linear", "b:F0 b:9F b:98 b:80 t:!", "\xF0\x9F\x98\x80!", NULL },
	{ "spm-dummy-prefix", T "afm7_standin_llama2/tokenizer.model", "t:Hello t:world", "Hello world", NULL },
	{ "spm-control-first", T "afm7_standin_llama2/tokenizer.model", "1 t:Hello", "<s>Hello", NULL },
	{ "spm-space-piece", T "afm7_standin_llama2/tokenizer.model", "29871 t:Hello", " Hello", "| Hello|" },
	{ "spm-4byte", T "afm7_standin_llama2/tokenizer.model", "b:F0 b:9F b:98 b:80", "\xF0\x9F\x98\x80",
	  "|||\xF0\x9F\x98\x80|" },
	{ "spm-bad-run", T "afm7_standin_llama2/tokenizer.model", "b:E3 b:81 t:A",
	  "\xEF\xBF\xBD\xEF\xBF\xBD A", NULL },
	{ "hf-run-held", T "afm7_standin_llama2", "b:F0 b:9F b:98 b:80", "\xF0\x9F\x98\x80",
	  "||||\xF0\x9F\x98\x80" },
	{ "hf-bad-run", T "afm7_standin_llama2", "b:E3 b:81 b:82 b:E3 t:x",
	  "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD x", NULL },
	{ "hf-strip", T "afm7_standin_llama2", "29871 t:Hello", " Hello", "| Hello|" },
	{ "hf-strip-once", T "afm7_standin_llama2", "t:Hello t:world", "Hello world", NULL },
	{ "afm-newline", T "afm7_newline", "15043 32000 3186", "Hello\n world", "Hello|\n| world|" },
	{ "afm-newlines", T "afm7_newline", "t:\n\n", "\n\n", NULL },
	{ "plamo-4byte", T "plamo2_standin_llmjp", "b:F0 b:9F b:98 b:80", "\xF0\x9F\x98\x80",
	  "|||\xF0\x9F\x98\x80|" },
	{ "plamo-bad-run", T "plamo2_standin_llmjp", "b:E3 b:81 t:A", "\xEF\xBF\xBD" "A", NULL },
	{ "baichuan-renamed", T "baichuan_m1", "71 t:hi 3", "<B_SYS>hi<unk>", NULL },
	{ "baichuan-bytes", T "baichuan_m1", "b:F0 b:9F b:98 b:80", "\xF0\x9F\x98\x80", NULL },
};

static void show(tok_buf *o, const char *s, size_t n)
{
	size_t i;
	for (i = 0; i < n; i++) {
		unsigned char c = s[i];
		char b[8];
		if (c >= 0x20 && c < 0x7f && c != '\\') {
			buf_putc(o, c);
		} else {
			snprintf(b, sizeof b, "\\x%02X", c);
			buf_puts(o, b);
		}
	}
}

int main(void)
{
	unsigned k;
	int fails = 0;
	for (k = 0; k < sizeof CASES / sizeof *CASES; k++) {
		lm_tok *t = lm_tok_open(CASES[k].path);
		tok_ints ids = { 0 };
		char *items = strdup(CASES[k].items), *it, *save = NULL, *whole;
		tok_buf got = { 0 }, pushes = { 0 }, why = { 0 };
		size_t wn, n;
		int i, ok = 1;
		lm_detok *d;
		const char *p;
		if (!t) {
			printf("FAIL stream-case:%s: no tokenizer at %s\n", CASES[k].name, CASES[k].path);
			fails++;
			continue;
		}
		for (it = strtok_r(items, " ", &save); it; it = strtok_r(NULL, " ", &save)) {
			if (it[0] == 'b' && it[1] == ':') {
				ints_push(&ids, t->byte_id[strtol(it + 2, NULL, 16)]);
			} else if (it[0] == 't' && it[1] == ':') {
				int *e, m = lm_tok_encode(t, it + 2, strlen(it + 2), 0, &e);
				for (i = 0; i < m; i++)
					ints_push(&ids, e[i]);
				free(e);
			} else {
				ints_push(&ids, atoi(it));
			}
		}
		whole = lm_tok_decode(t, ids.p, ids.n, &wn);
		d = lm_detok_new(t);
		for (i = 0; i <= ids.n; i++) {
			p = i < ids.n ? lm_detok_push(d, ids.p[i], &n) : lm_detok_flush(d, &n);
			if (!utf8_valid(p, n)) {
				ok = 0;
				buf_puts(&why, "a push split a character; ");
			}
			buf_put(&got, p, n);
			buf_put(&pushes, p, n);
			if (i < ids.n)
				buf_putc(&pushes, '|');
		}
		if (wn != strlen(CASES[k].text) || memcmp(whole, CASES[k].text, wn) != 0) {
			ok = 0;
			buf_puts(&why, "whole decode is \"");
			show(&why, whole, wn);
			buf_puts(&why, "\"; ");
		}
		if (got.n != wn || (wn && memcmp(got.p, whole, wn) != 0)) {
			ok = 0;
			buf_puts(&why, "stream is \"");
			show(&why, got.p, got.n);
			buf_puts(&why, "\"; ");
		}
		if (CASES[k].pushes && (pushes.n != strlen(CASES[k].pushes)
					|| memcmp(pushes.p, CASES[k].pushes, pushes.n) != 0)) {
			ok = 0;
			buf_puts(&why, "pushes are \"");
			show(&why, pushes.p, pushes.n);
			buf_puts(&why, "\"; ");
		}
		if (ok)
			printf("PASS stream-case:%s\n", CASES[k].name);
		else
			printf("FAIL stream-case:%s: %s\n", CASES[k].name, buf_cstr(&why));
		fails += !ok;
		lm_detok_free(d);
		lm_tok_free(t);
		free(whole);
		free(items);
		free(ids.p);
		free(got.p);
		free(pushes.p);
		free(why.p);
	}
	return fails != 0;
}
