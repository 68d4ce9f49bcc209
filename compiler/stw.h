/* stw.h: writing safetensors files (stw.c), for `lmcc init` and
 * `lmcc quantize`.
 *
 * The header is written first, from the list of tensors; their bytes then
 * follow in that order, in as many stw_write calls as suit the caller.  The
 * file is written as PATH.partial and renamed to PATH by stw_close, so a
 * reader never sees half a checkpoint. */
#ifndef STW_H
#define STW_H
#include <stddef.h>

typedef struct {
	char name[256];
	const char *dtype;           /* "F32", "F16", "BF16" or "U32" */
	int ndim;
	long shape[5];
} StwTensor;

long stw_bytes(const StwTensor *t);

/* A progress line on stderr ("lmcc: WHAT: 1.20 of 3.40 GB (35%)"), at most
 * once a second, across any number of files. */
typedef struct {
	const char *what;
	double t0, last;
	long done, total;
} Progress;
void progress_start(Progress *p, const char *what, long total);
void progress_add(Progress *p, long bytes);
void progress_end(Progress *p);   /* ends the line if one was shown */

typedef struct Stw Stw;
/* format is the header's metadata "format" ("pt", "mlx"); prog may be 0. */
Stw *stw_create(const char *path, const char *format, const StwTensor *t, int n,
                Progress *prog);
void stw_write(Stw *w, const void *data, size_t bytes);
/* Checks that every byte the header promised was written; returns the
 * file's size. */
long stw_close(Stw *w);
#endif
