/* tok_pre.c: the pre-tokenizer regexes, through PCRE2.
 *
 * The patterns come from tiktoken (Rust regex / fancy-regex) and HF
 * tokenizers (Oniguruma-like).  Two of their constructs mean something else,
 * or nothing, in PCRE2, so the pattern is rewritten before compiling:
 *
 *  - \s.  Rust's \s is the Unicode White_Space property.  PCRE2's \s under
 *    PCRE2_UCP also matches U+180E (MONGOLIAN VOWEL SEPARATOR), which left
 *    White_Space in Unicode 6.3.  So \s becomes the explicit White_Space set
 *    below and \S its complement.
 *
 *  - [X&&[^Y]], class intersection (Kimi's pattern).  PCRE2 has no class
 *    intersection.  A character is in X && not-Y exactly when it is not in
 *    Y and is in X, which is what (?:(?![Y])[X]) says: the negative
 *    lookahead tests the character the class then consumes, and consumes
 *    nothing itself, so the group still matches exactly one character and
 *    quantifiers after it mean the same.  The Kimi vectors check this.
 *
 *  - \p{Han}, a script.  PCRE2 (10.40 on) reads \p{Script} as the Script
 *    Extensions property, which puts CJK punctuation such as U+300D into
 *    Han; tiktoken and the Kimi reference use the Script property, where
 *    that mark is Common (the vector "「こんにちは」と彼は言った。" has "」と"
 *    as one piece).  So a script name X becomes \p{sc:X}.  Names of one or
 *    two letters are general categories (L, Lu, N, Nd...) and stay. */
#define _GNU_SOURCE /* memmem */
#include "tok_int.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

/* Unicode White_Space, as the inside of a PCRE2 class. */
static const char WS[] =
	"\\t\\n\\x{0B}\\f\\r \\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}"
	"\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}";

struct tok_re {
	pcre2_code *code;
	pcre2_match_data *md;
	pcre2_match_context *mc;
	pcre2_jit_stack *stack;
	int jit;
};

/* Copies \p{NAME} or \P{NAME} at S (S[1] is p or P), making a script name
 * mean the Script property; returns the length read. */
static size_t property(tok_buf *o, const char *s, size_t n, const char *where)
{
	const char *end = memchr(s, '}', n);
	size_t len;
	if (n < 4 || s[2] != '{' || !end)
		lm_fail(where, "pre-tokenizer regex: \\%c without {NAME}", s[1]);
	len = end - (s + 3);
	buf_put(o, s, 3);
	if (len > 2 && !memchr(s + 3, ':', len) && !memchr(s + 3, '=', len)
	    && !(len == 3 && memcmp(s + 3, "Any", 3) == 0))
		buf_puts(o, "sc:");
	buf_put(o, s + 3, len + 1);
	return len + 4;
}

/* Copies the inside of a class (between its brackets), expanding \s. */
static void class_body(tok_buf *o, const char *s, size_t n, const char *where)
{
	size_t i;
	for (i = 0; i < n; i++) {
		if (s[i] == '\\' && i + 1 < n && (s[i + 1] == 'p' || s[i + 1] == 'P')) {
			i += property(o, s + i, n - i, where) - 1;
		} else if (s[i] == '\\' && i + 1 < n) {
			if (s[i + 1] == 's')
				buf_puts(o, WS);
			else if (s[i + 1] == 'S')
				lm_fail(where, "pre-tokenizer regex: \\S inside a class is not supported");
			else
				buf_put(o, s + i, 2);
			i++;
		} else if (s[i] == '[') {
			lm_fail(where, "pre-tokenizer regex: nested class at offset %zu is not supported", i);
		} else {
			buf_putc(o, s[i]);
		}
	}
}

/* The end of the class opened at S[0] == '[' (index of its ']'), allowing
 * one level of nesting for the intersection form. */
static size_t class_end(const char *s, size_t n, const char *where)
{
	size_t i = 1;
	int depth = 1;
	if (i < n && s[i] == '^')
		i++;
	if (i < n && s[i] == ']')
		i++;            /* a leading ] is literal */
	for (; i < n; i++) {
		if (s[i] == '\\')
			i++;
		else if (s[i] == '[')
			depth++;
		else if (s[i] == ']' && --depth == 0)
			return i;
	}
	lm_fail(where, "pre-tokenizer regex: unterminated class");
}

char *re_rewrite(const char *p, const char *where)
{
	/* one buffer a thread, reused: a pattern that fails midway (lm_fail)
	 * leaves it reachable here, not lost */
	static __thread tok_buf o;
	size_t n = strlen(p), i;
	o.n = 0;
	for (i = 0; i < n; i++) {
		if (p[i] == '\\' && i + 1 < n && (p[i + 1] == 'p' || p[i + 1] == 'P')) {
			i += property(&o, p + i, n - i, where) - 1;
		} else if (p[i] == '\\' && i + 1 < n) {
			if (p[i + 1] == 's') {
				buf_putc(&o, '[');
				buf_puts(&o, WS);
				buf_putc(&o, ']');
			} else if (p[i + 1] == 'S') {
				buf_puts(&o, "[^");
				buf_puts(&o, WS);
				buf_putc(&o, ']');
			} else {
				buf_put(&o, p + i, 2);
			}
			i++;
		} else if (p[i] == '[') {
			size_t e = i + class_end(p + i, n - i, where);
			const char *body = p + i + 1, *amp;
			size_t bn = e - i - 1;
			amp = memmem(body, bn, "&&", 2);
			if (amp) {
				/* [X&&[^Y]] -> (?:(?![Y])[X]) */
				size_t xn = amp - body;
				const char *y = amp + 2;
				size_t yn = bn - xn - 2;
				if (body[0] == '^' || yn < 4 || y[0] != '[' || y[1] != '^' || y[yn - 1] != ']')
					lm_fail(where, "pre-tokenizer regex: only [X&&[^Y]] intersections are supported");
				buf_puts(&o, "(?:(?![");
				class_body(&o, y + 2, yn - 3, where);
				buf_puts(&o, "])[");
				class_body(&o, body, xn, where);
				buf_puts(&o, "])");
			} else {
				buf_putc(&o, '[');
				class_body(&o, body, bn, where);
				buf_putc(&o, ']');
			}
			i = e;
		} else {
			buf_putc(&o, p[i]);
		}
	}
	return lm_strdup(buf_cstr(&o));
}

tok_re *re_new(const char *pattern, const char *where)
{
	tok_re *re;
	char *pat;
	int err;
	PCRE2_SIZE off;
	/* A pattern comes from the file: PCRE2 checks its UTF-8 too (no
	 * PCRE2_NO_UTF_CHECK here), but the rewriting before reads it first. */
	if (!utf8_valid(pattern, strlen(pattern)))
		lm_fail(where, "pre-tokenizer regex is not valid UTF-8");
	pat = re_rewrite(pattern, where);
	pcre2_code *code = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP,
					 &err, &off, NULL);
	free(pat);
	if (!code) {
		PCRE2_UCHAR msg[256];
		pcre2_get_error_message(err, msg, sizeof msg);
		lm_fail(where, "pre-tokenizer regex: %s at offset %zu", (char *)msg, (size_t)off);
	}
	re = lm_alloc(sizeof *re);
	re->code = code;
	re->jit = pcre2_jit_compile(re->code, PCRE2_JIT_COMPLETE) == 0;
	re->md = pcre2_match_data_create_from_pattern(re->code, NULL);
	/* A repeated group that is not possessive (Kimi's lookahead classes)
	 * keeps a backtracking frame per character: give the JIT room, and the
	 * interpreter a heap, for pieces of tens of thousands of characters. */
	re->mc = pcre2_match_context_create(NULL);
	re->stack = pcre2_jit_stack_create(32 * 1024, 16 * 1024 * 1024, NULL);
	if (!re->mc || !re->stack || !re->md)
		lm_bug("out of memory (pcre2)");
	pcre2_jit_stack_assign(re->mc, NULL, re->stack);
	pcre2_set_heap_limit(re->mc, 1024 * 1024);   /* KiB: 1 GiB */
	/* and a bound on the steps of one match (PCRE2's default, made ours):
	 * a regex that backtracks without end fails in a fraction of a second */
	pcre2_set_match_limit(re->mc, 10000000);
	return re;
}

void re_free(tok_re *re)
{
	if (!re)
		return;
	pcre2_match_data_free(re->md);
	pcre2_match_context_free(re->mc);
	pcre2_jit_stack_free(re->stack);
	pcre2_code_free(re->code);
	free(re);
}

static __thread char split_error[384];   /* per thread: servers encode in several */

const char *re_split_failed(void)
{
	return split_error[0] ? split_error : NULL;
}

void re_split_reset(void)
{
	split_error[0] = 0;
}

void re_split(tok_re *re, const char *s, size_t n, re_piece_fn fn, void *ctx)
{
	PCRE2_SIZE at = 0;
	if (split_error[0])
		return;
	/* The text was made valid UTF-8 once (lm_tok_encode); checking it again
	 * at every match would make the loop quadratic. */
	while (at < n) {
		int rc = re->jit
			? pcre2_jit_match(re->code, (PCRE2_SPTR)s, n, at, PCRE2_NO_UTF_CHECK, re->md, re->mc)
			: PCRE2_ERROR_JIT_STACKLIMIT;
		PCRE2_SIZE *ov;
		if (rc == PCRE2_ERROR_JIT_STACKLIMIT)   /* the interpreter keeps its frames on the heap */
			rc = pcre2_match(re->code, (PCRE2_SPTR)s, n, at, PCRE2_NO_UTF_CHECK, re->md, re->mc);
		if (rc == PCRE2_ERROR_NOMATCH)
			return;
		if (rc < 0) {
			PCRE2_UCHAR msg[256];
			pcre2_get_error_message(rc, msg, sizeof msg);
			snprintf(split_error, sizeof split_error,
				 "pre-tokenizer regex on a piece of %zu bytes: %s", n - at, (char *)msg);
			return;
		}
		ov = pcre2_get_ovector_pointer(re->md);
		if (ov[1] > ov[0])
			fn(ctx, s + ov[0], ov[1] - ov[0]);
		if (ov[1] > at)
			at = ov[1];
		else    /* an empty match: step over one character */
			at += utf8_lead_len((unsigned char)s[at]);
	}
}
