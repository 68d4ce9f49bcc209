/* util.c: errors, allocation and file reading for the whole runtime. */
#define _GNU_SOURCE
#include "rt.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

void lm_fail(const char *where, const char *fmt, ...)
{
	va_list ap;
	fflush(stdout);
	fputs("lmcc: ", stderr);
	if (where)
		fprintf(stderr, "%s: ", where);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

void lm_bug(const char *fmt, ...)
{
	va_list ap;
	fflush(stdout);
	fputs("lmcc: internal error: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
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
	/* O_NONBLOCK and a regular file only: a FIFO in place of config.json
	 * would block the open (and the read) forever */
	int fd = open(path, O_RDONLY | O_NONBLOCK);
	struct stat st;
	FILE *f;
	char *buf = NULL;
	size_t cap = 0, n = 0;
	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) || !S_ISREG(st.st_mode))
		lm_fail(path, "not a regular file");
	f = fdopen(fd, "rb");
	if (!f)
		lm_fail(path, "cannot read: %s", strerror(errno));
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
