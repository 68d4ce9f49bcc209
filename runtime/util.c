/* util.c: errors, allocation and file reading for the whole runtime. */
#define _GNU_SOURCE
#include "rt.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Under the C API (api.c) an error returns to the API call that caught
 * it instead of ending the program: the innermost lm_err of this thread. */
static __thread lm_err *catcher;

void lm_err_push(lm_err *e)
{
	e->prev = catcher;
	catcher = e;
}

void lm_err_pop(lm_err *e)
{
	catcher = e->prev;
}

static __attribute__((noreturn)) void report(int code, const char *head, const char *where, const char *fmt, va_list ap)
{
	if (catcher) {
		lm_err *e = catcher;
		int k = snprintf(e->msg, sizeof e->msg, "%s%s%s", head, where ? where : "", where ? ": " : "");
		if (k < (int)sizeof e->msg)
			vsnprintf(e->msg + k, sizeof e->msg - k, fmt, ap);
		e->code = code;
		catcher = e->prev;
		longjmp(e->jb, 1);
	}
	fflush(stdout);
	fprintf(stderr, "lmcc: %s", head);
	if (where)
		fprintf(stderr, "%s: ", where);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	exit(code);
}

void lm_fail(const char *where, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	report(2, "", where, fmt, ap);
}

void lm_bug(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	report(1, "internal error: ", NULL, fmt, ap);
}

void *lm_alloc(size_t n)
{
	void *p = calloc(1, n ? n : 1);
	if (!p)
		lm_bug("out of memory (%zu bytes)", n);
	return p;
}

void *lm_alloc_aligned(size_t n)
{
	void *p = NULL;
	n = (n + 63) & ~(size_t)63;
	if (posix_memalign(&p, 64, n ? n : 64))
		lm_bug("out of memory (%zu bytes)", n);
	memset(p, 0, n);
	return p;
}

void *lm_realloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p)
		lm_bug("out of memory (%zu bytes)", n);
	return p;
}

char *lm_strdup(const char *s)
{
	size_t n = strlen(s) + 1;
	return memcpy(lm_alloc(n), s, n);
}

char *lm_path(const char *dir, const char *name)
{
	size_t n = strlen(dir) + strlen(name) + 2;
	char *p = lm_alloc(n);
	snprintf(p, n, "%s/%s", dir, name);
	return p;
}

char *lm_read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t cap = 0, n = 0;
	if (!f)
		return NULL;
	for (;;) {
		if (n + 1 >= cap) {
			cap = cap ? cap * 2 : 65536;
			buf = lm_realloc(buf, cap);
		}
		size_t got = fread(buf + n, 1, cap - n - 1, f);
		n += got;
		if (got == 0)
			break;
	}
	if (ferror(f))
		lm_fail(path, "read error: %s", strerror(errno));
	fclose(f);
	buf[n] = 0;
	if (len)
		*len = n;
	return buf;
}

double lm_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}
