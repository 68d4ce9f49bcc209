/* util.c: errors, allocation and file reading for the whole runtime. */
#define _GNU_SOURCE
#include "rt.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Under the C API (api.c) an error returns to the API call that caught
 * it instead of ending the program: the innermost lm_err of this thread. */
static __thread lm_err *catcher;

lm_err *lm_err_push(lm_err *e)
{
	e->prev = catcher;
	catcher = e;
	return e;
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

static __attribute__((noreturn)) void again(int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	report(code, "", NULL, fmt, ap);
}

void lm_err_raise(const lm_err *e)
{
	again(e->code, "%s", e->msg);   /* the message has its head already */
}

void *lm_alloc(size_t n)
{
	void *p = calloc(1, n ? n : 1);
	if (!p)
		lm_bug("out of memory (%zu bytes)", n);
	return p;
}

/* MemAvailable of /proc/meminfo, read once; 0 when unknown. */
static size_t mem_available(void)
{
	/* read once; threads that race here each parse the file and store the
	 * same figure, and none sees a half-made one */
	static size_t avail = (size_t)-1;
	size_t a = __atomic_load_n(&avail, __ATOMIC_RELAXED);
	if (a == (size_t)-1) {
		FILE *f = fopen("/proc/meminfo", "r");
		char line[128];
		unsigned long long kb;
		a = 0;
		while (f && fgets(line, sizeof line, f))
			if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1)
				a = (size_t)kb * 1024;
		if (f)
			fclose(f);
		__atomic_store_n(&avail, a, __ATOMIC_RELAXED);
	}
	return a;
}

/* The buffers a run sizes (caches for --ctx, logits for -n) are checked
 * against the memory the machine has before they are zeroed: a context
 * of 2^24 tokens ends with the bytes it needs and exit 2, not an OOM kill
 * or an "internal error" after zeroing gigabytes.  What counts is what
 * malloc holds now plus the new buffer: buffers freed since (a product's
 * scratch grown, a benchmark's matrices) no longer need room. */
static void check_room(size_t n)
{
	size_t avail = mem_available();
	if (n < (1 << 20) || !avail)
		return;
	/* every large buffer asked for so far: the figure where malloc cannot
	 * say what it holds (a sanitizer's allocator reports nothing) */
	static size_t asked;
	size_t live = 0;
#if defined(__GLIBC__) && !defined(__SANITIZE_ADDRESS__)
	struct mallinfo2 m = mallinfo2();
	live = m.uordblks + m.hblkhd;     /* in the arenas, and mapped alone */
#endif
	if (!live)
		live = asked;
	asked += n;
	if (live + n > avail)
		lm_fail("memory", "the model's caches and buffers need %zu bytes, more than the %zu "
		        "this machine has available: a smaller --ctx, or fewer tokens to generate (-n)?",
		        live + n, avail);
}

size_t lm_inner_pages(const void *p, size_t n, char **a)
{
	uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE);
	uintptr_t lo = ((uintptr_t)p + pg - 1) & ~(pg - 1), hi = ((uintptr_t)p + n) & ~(pg - 1);
	*a = (char *)lo;
	return hi > lo ? hi - lo : 0;
}

/* Zeroes N bytes at P.  The whole pages of a large buffer are given back
 * to the kernel instead (private anonymous memory reads as zeros again),
 * so that a cache sized for a long context costs memory only as it fills,
 * and nothing to zero up front. */
static void zero(void *p, size_t n)
{
	char *a;
	size_t k = lm_inner_pages(p, n, &a);
	if (n < (1 << 20) || !k || madvise(a, k, MADV_DONTNEED)) {
		memset(p, 0, n);
		return;
	}
	memset(p, 0, a - (char *)p);
	memset(a + k, 0, (char *)p + n - (a + k));
}

float *lm_grow(float **buf, long *cap, long n)
{
	if (n > *cap) {
		free(*buf);
		*buf = lm_floats(n);
		*cap = n;
	}
	return *buf;
}

double lm_softplus(double v)
{
	return (v > 0 ? v : 0) + log1p(exp(-fabs(v)));
}

void *lm_alloc_aligned(size_t n)
{
	void *p = NULL;
	if (n > SIZE_MAX - 63)
		lm_fail("memory", "a buffer of %zu bytes", n);
	n = (n + 63) & ~(size_t)63;
	check_room(n);
	if (posix_memalign(&p, 64, n ? n : 64))
		lm_bug("out of memory (%zu bytes)", n);
	zero(p, n);
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

static char *read_capped(const char *path, size_t *len, size_t cap_bytes)
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
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		close(fd);
		lm_fail(path, "not a regular file");
	}
	if ((size_t)st.st_size > cap_bytes) {
		close(fd);
		lm_fail(path, "%lld bytes, more than the %zu MiB lmcc reads of a config, tokenizer, "
		        "template or index", (long long)st.st_size, cap_bytes >> 20);
	}
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
		if (n > cap_bytes) {   /* it grew since fstat */
			fclose(f);
			free(buf);
			lm_fail(path, "grew past the %zu MiB lmcc reads of a config, tokenizer, "
			        "template or index while it was read", cap_bytes >> 20);
		}
	}
	if (ferror(f))
		lm_fail(path, "read error: %s", strerror(errno));
	fclose(f);
	buf[n] = 0;
	if (len)
		*len = n;
	return buf;
}

char *lm_read_file(const char *path, size_t *len)
{
	return read_capped(path, len, SIZE_MAX);
}

char *lm_read_text(const char *path, size_t *len)
{
	return read_capped(path, len, LM_MAX_TEXT);
}

double lm_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}
