/* st.c: the safetensors checkpoint, mapped and checked.
 *
 * A safetensors file is an 8-byte little-endian header length N, N bytes of
 * JSON mapping each tensor name to {dtype, shape, data_offsets: [begin,
 * end]} (offsets relative to the data after the header), then the data.
 * Files come from the internet: every length, offset, dtype and shape is
 * checked before anything points into the mapping, and a bad file stops the
 * program with one line naming the file and the tensor.
 *
 * Weights stay in the mapping in their own dtype (lm_ck_mat); only small
 * vectors and derived matrices are converted to float32 copies, which the
 * checkpoint owns and frees with it. */
#define _GNU_SOURCE
#include "rt.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

enum { MAX_HEADER = 256 << 20, MAX_NDIM = 8, MAX_SHARDS = 4096 };
#define MAX_ELEMS (1L << 40)

typedef struct {
	char *name;
	int file, dtype, ndim;       /* dtype -1: a kind lmcc does not read */
	long shape[MAX_NDIM];
	long numel;
	const unsigned char *data;
} Tensor;

typedef struct {
	char *path;
	unsigned char *map;
	size_t size;
} File;

struct lm_ckpt {
	char *where;                 /* the file that names the tensors */
	File *files;
	int nfiles;
	Tensor *t;
	long nt, cap;                /* open-addressed table, cap a power of 2 */
	void **owned;                /* float32 copies handed out */
	long nowned;
};

size_t lm_dtype_size(int dtype)
{
	return dtype == LM_F32 ? 4 : 2;
}

float lm_bf16_to_f32(uint16_t h)
{
	uint32_t u = (uint32_t)h << 16;
	float f;
	memcpy(&f, &u, 4);
	return f;
}

uint16_t lm_f32_to_bf16(float f)
{
	uint32_t u;
	memcpy(&u, &f, 4);
	if ((u & 0x7fffffff) > 0x7f800000)
		return (uint16_t)((u >> 16) | 0x40);   /* quiet NaN */
	u += 0x7fff + ((u >> 16) & 1);
	return (uint16_t)(u >> 16);
}

float lm_f16_to_f32(uint16_t h)
{
	uint32_t sign = (uint32_t)(h & 0x8000) << 16;
	uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff, u;
	float f;
	if (exp == 0) {
		/* zero or subnormal: man * 2^-24 */
		f = ldexpf((float)man, -24);
		return sign ? -f : f;
	}
	if (exp == 31)
		u = sign | 0x7f800000 | (man << 13);
	else
		u = sign | ((exp + 112) << 23) | (man << 13);
	memcpy(&f, &u, 4);
	return f;
}

float lm_load_f32(const void *p, int dtype, size_t i)
{
	uint16_t h;
	float f;
	if (dtype == LM_F32) {
		memcpy(&f, (const char *)p + 4 * i, 4);
		return f;
	}
	memcpy(&h, (const char *)p + 2 * i, 2);
	return dtype == LM_BF16 ? lm_bf16_to_f32(h) : lm_f16_to_f32(h);
}

static uint64_t hash(const char *s)
{
	uint64_t h = 1469598103934665603ull;
	while (*s)
		h = (h ^ (unsigned char)*s++) * 1099511628211ull;
	return h;
}

static Tensor *slot(lm_ckpt *ck, const char *name)
{
	uint64_t i = hash(name) & (ck->cap - 1);
	while (ck->t[i].name && strcmp(ck->t[i].name, name))
		i = (i + 1) & (ck->cap - 1);
	return &ck->t[i];
}

static void grow(lm_ckpt *ck)
{
	Tensor *old = ck->t;
	long oldcap = ck->cap;
	ck->cap = oldcap ? oldcap * 2 : 1024;
	ck->t = lm_alloc(ck->cap * sizeof(Tensor));
	for (long i = 0; i < oldcap; i++)
		if (old[i].name)
			*slot(ck, old[i].name) = old[i];
	free(old);
}

static int parse_dtype(const char *s)
{
	if (!strcmp(s, "F32"))
		return LM_F32;
	if (!strcmp(s, "F16"))
		return LM_F16;
	if (!strcmp(s, "BF16"))
		return LM_BF16;
	return -1;
}

static size_t other_dtype_size(const char *s)
{
	static const struct { const char *n; size_t sz; } k[] = {
		{"F64", 8}, {"I64", 8}, {"U64", 8}, {"I32", 4}, {"U32", 4},
		{"I16", 2}, {"U16", 2}, {"I8", 1}, {"U8", 1}, {"BOOL", 1},
		{"F8_E4M3", 1}, {"F8_E5M2", 1},
	};
	for (size_t i = 0; i < sizeof k / sizeof k[0]; i++)
		if (!strcmp(s, k[i].n))
			return k[i].sz;
	return 0;
}

/* A JSON integer that fits in [lo, hi], else -1 (the callers' bounds are
 * all >= 0). */
static long json_long(json_object *o, long lo, long hi)
{
	if (!o || !json_object_is_type(o, json_type_int))
		return -1;
	int64_t v = json_object_get_int64(o);
	if (v < lo || v > hi)
		return -1;
	return (long)v;
}

static void add_file(lm_ckpt *ck, const char *path)
{
	int fd = open(path, O_RDONLY);
	struct stat st;
	if (fd < 0)
		lm_fail(path, "cannot open: %s", strerror(errno));
	if (fstat(fd, &st) || !S_ISREG(st.st_mode))
		lm_fail(path, "not a regular file");
	size_t size = (size_t)st.st_size;
	unsigned char *map = NULL;
	if (size > 0) {
		map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
		if (map == MAP_FAILED)
			lm_fail(path, "cannot map: %s", strerror(errno));
	}
	close(fd);
	if (size < 8)
		lm_fail(path, "truncated: %zu bytes, shorter than the 8-byte header length", size);
	uint64_t hlen = 0;
	for (int i = 7; i >= 0; i--)
		hlen = hlen << 8 | map[i];
	if (hlen < 2 || hlen > MAX_HEADER || hlen > size - 8)
		lm_fail(path, "header length %llu does not fit the file (%zu bytes): truncated or not safetensors",
		        (unsigned long long)hlen, size);
	size_t dlen = size - 8 - hlen;
	const unsigned char *data = map + 8 + hlen;

	json_tokener *tok = json_tokener_new_ex(64);
	json_object *root = json_tokener_parse_ex(tok, (const char *)map + 8, (int)hlen);
	enum json_tokener_error jerr = json_tokener_get_error(tok);
	json_tokener_free(tok);
	if (!root || jerr != json_tokener_success || !json_object_is_type(root, json_type_object))
		lm_fail(path, "header is not a JSON object%s%s",
		        jerr != json_tokener_success ? ": " : "",
		        jerr != json_tokener_success ? json_tokener_error_desc(jerr) : "");

	int fi = ck->nfiles++;
	ck->files = lm_realloc(ck->files, ck->nfiles * sizeof(File));
	ck->files[fi] = (File){lm_strdup(path), map, size};

	json_object_object_foreach(root, name, val) {
		if (!strcmp(name, "__metadata__"))
			continue;
		json_object *jd, *js, *jo;
		if (!json_object_is_type(val, json_type_object)
		    || !json_object_object_get_ex(val, "dtype", &jd)
		    || !json_object_is_type(jd, json_type_string)
		    || !json_object_object_get_ex(val, "shape", &js)
		    || !json_object_is_type(js, json_type_array)
		    || !json_object_object_get_ex(val, "data_offsets", &jo)
		    || !json_object_is_type(jo, json_type_array)
		    || json_object_array_length(jo) != 2)
			lm_fail(path, "tensor '%s': needs dtype, shape and data_offsets [begin, end]", name);
		const char *ds = json_object_get_string(jd);
		int dtype = parse_dtype(ds);
		size_t esize = dtype >= 0 ? lm_dtype_size(dtype) : other_dtype_size(ds);
		if (!esize)
			lm_fail(path, "tensor '%s': unknown dtype '%.20s'", name, ds);
		int ndim = (int)json_object_array_length(js);
		if (ndim > MAX_NDIM)
			lm_fail(path, "tensor '%s': %d dimensions, at most %d", name, ndim, MAX_NDIM);
		Tensor t = {.file = fi, .dtype = dtype, .ndim = ndim, .numel = 1};
		for (int d = 0; d < ndim; d++) {
			long v = json_long(json_object_array_get_idx(js, d), 0, MAX_ELEMS);
			if (v < 0)
				lm_fail(path, "tensor '%s': shape[%d] is not an integer in [0, 2^40]", name, d);
			t.shape[d] = v;
			t.numel *= v;
			if (t.numel > MAX_ELEMS)
				lm_fail(path, "tensor '%s': more than 2^40 elements", name);
		}
		long b = json_long(json_object_array_get_idx(jo, 0), 0, MAX_ELEMS * 8);
		long e = json_long(json_object_array_get_idx(jo, 1), 0, MAX_ELEMS * 8);
		if (b < 0 || e < 0 || b > e)
			lm_fail(path, "tensor '%s': data_offsets are not integers 0 <= begin <= end", name);
		if ((size_t)e > dlen)
			lm_fail(path, "tensor '%s': data_offsets [%ld, %ld] past the end of the data (%zu bytes): truncated file?",
			        name, b, e, dlen);
		if ((size_t)(e - b) != (size_t)t.numel * esize)
			lm_fail(path, "tensor '%s': %ld bytes for %ld elements of %s", name, e - b, t.numel, ds);
		t.data = data + b;
		if (2 * (ck->nt + 1) > ck->cap)
			grow(ck);
		Tensor *s = slot(ck, name);
		if (s->name)
			lm_fail(path, "tensor '%s' appears twice", name);
		t.name = lm_strdup(name);
		*s = t;
		ck->nt++;
	}
	json_object_put(root);
}

/* A shard name from the index: a plain file name in the same directory. */
static int safe_shard_name(const char *s)
{
	if (!*s || *s == '.' || strlen(s) > 255)
		return 0;
	for (; *s; s++)
		if (*s == '/' || *s == '\\')
			return 0;
	return 1;
}

lm_ckpt *lm_ck_open(const char *dir)
{
	lm_ckpt *ck = lm_alloc(sizeof *ck);
	char *single = lm_path(dir, "model.safetensors");
	char *index = lm_path(dir, "model.safetensors.index.json");
	if (access(single, F_OK) == 0) {
		ck->where = single;
		add_file(ck, single);
		free(index);
		return ck;
	}
	free(single);
	size_t len;
	char *text = lm_read_file(index, &len);
	if (!text)
		lm_fail(dir, "no model.safetensors and no model.safetensors.index.json");
	ck->where = index;
	json_object *root = json_tokener_parse(text), *map;
	free(text);
	if (!root || !json_object_object_get_ex(root, "weight_map", &map)
	    || !json_object_is_type(map, json_type_object))
		lm_fail(index, "field 'weight_map': missing or not an object");
	/* Each distinct shard once, in the order the index first names it. */
	char **seen = NULL;
	int nseen = 0;
	json_object_object_foreach(map, name, val) {
		if (!json_object_is_type(val, json_type_string))
			lm_fail(index, "field 'weight_map.%s': not a file name", name);
		const char *f = json_object_get_string(val);
		if (!safe_shard_name(f))
			lm_fail(index, "field 'weight_map.%s': '%.64s' is not a file name in the model directory", name, f);
		int i;
		for (i = 0; i < nseen && strcmp(seen[i], f); i++)
			;
		if (i < nseen)
			continue;
		if (nseen >= MAX_SHARDS)
			lm_fail(index, "more than %d shards", MAX_SHARDS);
		seen = lm_realloc(seen, (nseen + 1) * sizeof *seen);
		seen[nseen++] = lm_strdup(f);
	}
	for (int i = 0; i < nseen; i++) {
		char *p = lm_path(dir, seen[i]);
		add_file(ck, p);
		free(p);
		free(seen[i]);
	}
	free(seen);
	json_object_put(root);
	return ck;
}

void lm_ck_close(lm_ckpt *ck)
{
	if (!ck)
		return;
	for (int i = 0; i < ck->nfiles; i++) {
		munmap(ck->files[i].map, ck->files[i].size);
		free(ck->files[i].path);
	}
	for (long i = 0; i < ck->cap; i++)
		free(ck->t[i].name);
	for (long i = 0; i < ck->nowned; i++)
		free(ck->owned[i]);
	free(ck->owned);
	free(ck->files);
	free(ck->t);
	free(ck->where);
	free(ck);
}

int lm_ck_info(lm_ckpt *ck, const char *name, int *ndim, long *shape)
{
	Tensor *t = slot(ck, name);
	if (!t->name)
		return -1;
	if (ndim)
		*ndim = t->ndim;
	if (shape)
		memcpy(shape, t->shape, t->ndim * sizeof(long));
	return t->dtype < 0 ? -2 : t->dtype;
}

static void shape_str(char *buf, size_t n, int ndim, const long *shape)
{
	size_t k = snprintf(buf, n, "[");
	for (int d = 0; d < ndim && k < n; d++)
		k += snprintf(buf + k, n - k, "%s%ld", d ? ", " : "", shape[d]);
	if (k < n)
		snprintf(buf + k, n - k, "]");
}

/* The tensor the model needs, with exactly this shape. */
static Tensor *need(lm_ckpt *ck, const char *name, int ndim, const long *shape)
{
	Tensor *t = slot(ck, name);
	char want[256], got[256];
	if (!t->name)
		lm_fail(ck->where, "tensor '%s' is missing", name);
	if (t->dtype < 0)
		lm_fail(ck->files[t->file].path, "tensor '%s': dtype is not F32, F16 or BF16", name);
	int same = t->ndim == ndim;
	for (int d = 0; same && d < ndim; d++)
		same = t->shape[d] == shape[d];
	if (!same) {
		shape_str(want, sizeof want, ndim, shape);
		shape_str(got, sizeof got, t->ndim, t->shape);
		lm_fail(ck->files[t->file].path, "tensor '%s': shape %s, expected %s", name, got, want);
	}
	return t;
}

static void *own(lm_ckpt *ck, size_t bytes)
{
	void *p = lm_alloc_aligned(bytes);
	ck->owned = lm_realloc(ck->owned, (ck->nowned + 1) * sizeof(void *));
	ck->owned[ck->nowned++] = p;
	return p;
}

/* The last element a view touches must lie inside the tensor. */
static void check_view(lm_ckpt *ck, Tensor *t, long off, int tr, long rows,
                       long cols, long ld)
{
	long inner = tr ? rows : cols, outer = tr ? cols : rows;
	if (off < 0 || rows < 1 || cols < 1 || ld < inner
	    || off + (outer - 1) * ld + inner > t->numel)
		lm_bug("view of '%s' out of bounds (off %ld, %ldx%ld, ld %ld, numel %ld)",
		       t->name, off, rows, cols, ld, t->numel);
}

lm_mat lm_ck_mat(lm_ckpt *ck, const char *name, int ndim, const long *shape,
                 long off, int tr, long rows, long cols, long ld)
{
	Tensor *t = need(ck, name, ndim, shape);
	check_view(ck, t, off, tr, rows, cols, ld);
	size_t es = lm_dtype_size(t->dtype);
	if ((uintptr_t)t->data % es) {
		/* A header whose length is not a multiple of the element size
		 * leaves the data misaligned: copy the tensor, once for all
		 * the views of it (the experts of a stack). */
		unsigned char *c = own(ck, t->numel * es);
		memcpy(c, t->data, t->numel * es);
		t->data = c;
	}
	return (lm_mat){t->data + off * es, t->dtype, tr, rows, cols, ld};
}

const float *lm_ck_vec(lm_ckpt *ck, const char *name, int ndim,
                       const long *shape, float add)
{
	Tensor *t = need(ck, name, ndim, shape);
	float *v = own(ck, t->numel * sizeof(float));
	for (long i = 0; i < t->numel; i++)
		v[i] = lm_load_f32(t->data, t->dtype, i) + add;
	return v;
}

typedef struct {
	const Tensor *t;
	long off, cols, ld;
	float eps, *s;
} RowScale;

static void row_scale(void *ctx, long r0, long r1)
{
	const RowScale *j = ctx;
	for (long r = r0; r < r1; r++) {
		double ss = 0;
		for (long c = 0; c < j->cols; c++) {
			double w = lm_load_f32(j->t->data, j->t->dtype, j->off + r * j->ld + c);
			ss += w * w;
		}
		j->s[r] = (float)(1 / (sqrt(ss) + j->eps));
	}
}

const float *lm_ck_row_scale(lm_ckpt *ck, const char *name, int ndim,
                            const long *shape, long off, long rows, long cols,
                            long ld, float eps)
{
	Tensor *t = need(ck, name, ndim, shape);
	check_view(ck, t, off, 0, rows, cols, ld);
	RowScale j = {t, off, cols, ld, eps, own(ck, rows * sizeof(float))};
	lm_parallel(rows, 64, row_scale, &j);
	return j.s;
}

const char *lm_name(const char *pattern, long i)
{
	static char buf[512];
	snprintf(buf, sizeof buf, pattern, i);
	return buf;
}

/* FNV-1a, 64 bits: a fingerprint, not a defence against forgery. */
uint64_t lm_hash(uint64_t h, const void *p, size_t n)
{
	const unsigned char *b = p;
	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 0x100000001b3ull;
	return h;
}

uint64_t lm_ck_fingerprint(const lm_ckpt *ck)
{
	/* every header (names, dtypes, shapes, offsets) and 16 samples of 4
	 * KB of each file's data: weights that differ only in their values
	 * (another seed of lmcc init) differ there */
	uint64_t h = 0xcbf29ce484222325ull;
	for (int i = 0; i < ck->nfiles; i++) {
		const File *f = &ck->files[i];
		uint64_t hlen = 0;
		for (int j = 7; j >= 0; j--)
			hlen = hlen << 8 | f->map[j];
		h = lm_hash(h, f->map, 8 + hlen);
		size_t data = f->size - 8 - hlen, piece = data < 4096 ? data : 4096;
		for (int s = 0; s < 16 && piece; s++)
			h = lm_hash(h, f->map + 8 + hlen + (data - piece) / 15 * s, piece);
	}
	return h;
}
