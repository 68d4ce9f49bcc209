/* npy.c: the NumPy .npy files the run loop reads (token ids) and writes
 * (logits), and the tests read (expected logits).
 *
 * Format: "\x93NUMPY", version (1, 2 or 3), a little-endian header length
 * (2 bytes in version 1, 4 after), then a Python dict literal such as
 * {'descr': '<f4', 'fortran_order': False, 'shape': (40, 256), } and the
 * raw data.  Only little-endian C-order arrays are accepted. */
#include "rt.h"
#include "npy.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *after(const char *h, const char *key)
{
	const char *p = strstr(h, key);
	return p ? p + strlen(key) : NULL;
}

lm_npy lm_npy_read(const char *path)
{
	size_t len;
	char *buf = lm_read_file(path, &len);
	lm_npy a = {0};
	if (!buf)
		lm_fail(path, "cannot open: %s", strerror(errno));
	unsigned char *u = (unsigned char *)buf;
	if (len < 10 || memcmp(buf, "\x93NUMPY", 6))
		lm_fail(path, "not a .npy file");
	size_t hlen, off;
	if (u[6] == 1) {
		hlen = u[8] | (size_t)u[9] << 8;
		off = 10;
	} else if (u[6] == 2 || u[6] == 3) {
		if (len < 12)
			lm_fail(path, "truncated .npy header");
		hlen = u[8] | (size_t)u[9] << 8 | (size_t)u[10] << 16 | (size_t)u[11] << 24;
		off = 12;
	} else {
		lm_fail(path, ".npy version %d is not 1, 2 or 3", u[6]);
	}
	if (hlen > len - off || hlen > 1 << 20)
		lm_fail(path, "truncated .npy header");
	char *h = lm_alloc(hlen + 1);
	memcpy(h, buf + off, hlen);
	const char *d = after(h, "'descr':"), *f = after(h, "'fortran_order':"),
	           *s = after(h, "'shape':");
	if (!d || !f || !s)
		lm_fail(path, ".npy header lacks descr, fortran_order or shape");
	while (*d == ' ')
		d++;
	if (!strncmp(d, "'<i4'", 5))
		a.type = LM_NPY_I32;
	else if (!strncmp(d, "'<i8'", 5))
		a.type = LM_NPY_I64;
	else if (!strncmp(d, "'<f4'", 5))
		a.type = LM_NPY_F32;
	else
		lm_fail(path, "field 'descr': only <i4, <i8 and <f4 arrays are read");
	while (*f == ' ')
		f++;
	if (strncmp(f, "False", 5))
		lm_fail(path, "field 'fortran_order': Fortran-order arrays are not read");
	while (*s == ' ')
		s++;
	if (*s++ != '(')
		lm_fail(path, "field 'shape': not a tuple");
	size_t count = 1;
	for (;;) {
		while (*s == ' ' || *s == ',')
			s++;
		if (*s == ')')
			break;
		char *end;
		long v = strtol(s, &end, 10);
		if (end == s || v < 0 || v > (1L << 40) || a.ndim == 4)
			lm_fail(path, "field 'shape': not a tuple of at most 4 sizes");
		a.shape[a.ndim++] = v;
		count *= (size_t)v;
		if (count > (1UL << 40))
			lm_fail(path, "field 'shape': too many elements");
		s = end;
	}
	free(h);
	size_t es = a.type == LM_NPY_I64 ? 8 : 4;
	if (len - off - hlen < count * es)
		lm_fail(path, "truncated: %zu data bytes, shape needs %zu",
		        len - off - hlen, count * es);
	a.count = count;
	a.data = lm_alloc(count * es);
	memcpy(a.data, buf + off + hlen, count * es);
	free(buf);
	return a;
}

static void header(FILE *f, const char *descr, int ndim, const long *shape)
{
	char h[256];
	int k = snprintf(h, sizeof h, "{'descr': '%s', 'fortran_order': False, 'shape': (", descr);
	for (int i = 0; i < ndim; i++)
		k += snprintf(h + k, sizeof h - k, "%ld,%s", shape[i], i + 1 < ndim ? " " : "");
	k += snprintf(h + k, sizeof h - k, "), }");
	/* pad with spaces so that the data starts on a 64-byte boundary */
	int total = 10 + k + 1;
	int pad = (64 - total % 64) % 64;
	unsigned short hl = (unsigned short)(k + pad + 1);
	fwrite("\x93NUMPY\x01\x00", 1, 8, f);
	fputc(hl & 0xff, f);
	fputc(hl >> 8, f);
	fwrite(h, 1, k, f);
	for (int i = 0; i < pad; i++)
		fputc(' ', f);
	fputc('\n', f);
}

FILE *lm_npy_create_f32(const char *path, int ndim, const long *shape)
{
	FILE *f = fopen(path, "wb");
	if (!f)
		lm_fail(path, "cannot create: %s", strerror(errno));
	header(f, "<f4", ndim, shape);
	return f;
}
