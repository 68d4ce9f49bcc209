/* stw.c: writing safetensors files.  The format is the one st.c reads: an
 * 8-byte little-endian header length, the JSON header (padded with spaces
 * to a multiple of 8, so every tensor's data stays aligned), the data. */
#define _GNU_SOURCE
#include "stw.h"
#include "tmpl.h"
#include "../runtime/rt.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct Stw {
	FILE *f;
	char *path, *tmp;
	long left, size;             /* data bytes still due; file size */
	Progress *prog;
};

long stw_bytes(const StwTensor *t)
{
	long n = !strcmp(t->dtype, "F32") || !strcmp(t->dtype, "U32") ? 4 : !strcmp(t->dtype, "U8") ? 1 : 2;
	for (int d = 0; d < t->ndim; d++)
		n *= t->shape[d];
	return n;
}

void progress_start(Progress *p, const char *what, long total)
{
	*p = (Progress){what, lm_now(), 0, 0, total};
	p->last = p->t0;
}

void progress_add(Progress *p, long bytes)
{
	p->done += bytes;
	double now = lm_now();
	if (now - p->last > 1.0 && p->total > 0) {
		fprintf(stderr, "lmcc: %s: %.2f of %.2f GB (%.0f%%)\r", p->what, p->done / 1e9,
		        p->total / 1e9, 100.0 * p->done / p->total);
		p->last = now;
	}
}

void progress_end(Progress *p)
{
	if (p->last > p->t0)
		fputc('\n', stderr);
	p->last = p->t0;
}

Stw *stw_create(const char *path, const char *format, const StwTensor *t, int n,
                Progress *prog)
{
	Buf h = {0};
	long off = 0;
	bprintf(&h, "{\"__metadata__\":{\"format\":\"%s\"}", format);
	for (int i = 0; i < n; i++) {
		long bytes = stw_bytes(&t[i]);
		bprintf(&h, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[", t[i].name, t[i].dtype);
		for (int d = 0; d < t[i].ndim; d++)
			bprintf(&h, "%s%ld", d ? "," : "", t[i].shape[d]);
		bprintf(&h, "],\"data_offsets\":[%ld,%ld]}", off, off + bytes);
		off += bytes;
	}
	bprintf(&h, "}");
	while (h.n % 8)
		bput(&h, " ", 1);

	Stw *w = lm_alloc(sizeof *w);
	w->path = lm_strdup(path);
	if (asprintf(&w->tmp, "%s.partial", path) < 0)
		lm_bug("out of memory");
	w->f = fopen(w->tmp, "wb");
	if (!w->f)
		lm_fail(w->tmp, "cannot create: %s", strerror(errno));
	unsigned char len[8];
	for (int i = 0; i < 8; i++)
		len[i] = (unsigned char)((uint64_t)h.n >> (8 * i));
	if (fwrite(len, 1, 8, w->f) != 8 || fwrite(h.s, 1, h.n, w->f) != h.n)
		lm_fail(w->tmp, "write error: %s", strerror(errno));
	w->left = off;
	w->size = 8 + h.n + off;
	w->prog = prog;
	free(h.s);
	return w;
}

void stw_write(Stw *w, const void *data, size_t bytes)
{
	if ((long)bytes > w->left)
		lm_bug("%s: more data than the header holds", w->path);
	if (fwrite(data, 1, bytes, w->f) != bytes)
		lm_fail(w->tmp, "write error: %s", strerror(errno));
	w->left -= bytes;
	if (w->prog)
		progress_add(w->prog, bytes);
}

long stw_close(Stw *w)
{
	if (w->left)
		lm_bug("%s: %ld bytes short of its header", w->path, w->left);
	if (fclose(w->f))
		lm_fail(w->tmp, "write error: %s", strerror(errno));
	if (rename(w->tmp, w->path))
		lm_fail(w->path, "cannot rename %s: %s", w->tmp, strerror(errno));
	long size = w->size;
	free(w->tmp);
	free(w->path);
	free(w);
	return size;
}
