/* fuse.c: `lmcc fuse MODEL_DIR --adapter DIR -o OUT`: the adapter merged
 * into the weights, as mlx-lm's fuse does (tuner/lora.py and dora.py,
 * fuse()): W + scale * B^T A^T for each adapted module (per part for
 * AFM-7's fused qkv, per expert for a stack), and for DoRA each row of
 * that then scaled to its magnitude m.
 *
 * The fused checkpoint keeps the base's own layout (names, shapes and
 * dtypes): lmcc reads it as it read the base, and mlx-lm's sanitize turns
 * it into its modules as it does the base.  The sums are done in double
 * and rounded once to the weight's dtype. */
#define _GNU_SOURCE
#include "adapter.h"
#include "build.h"
#include "cmd.h"
#include "plan.h"
#include "tmpl.h"
#include "../runtime/opt.h"
#include "../runtime/rt.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* An adapted product: its view, its stack of experts or NULL, its Lora. */
typedef struct {
	Mat m;
	const MatArr *arr;
	const Lora *l;
} Hit;

typedef struct {
	Plan *p;
	lm_ckpt *base, *ad;
	Hit *hit;
	int nhit, ntensors;
	double scale;
} Fuse;

static void collect(void *ctx, const Mat *m, const MatArr *arr, const Lora *l)
{
	Fuse *f = ctx;
	f->hit = lm_realloc(f->hit, (f->nhit + 1) * sizeof(Hit));
	f->hit[f->nhit++] = (Hit){*m, arr, l};
}

/* Element (r, c) of a view, in its tensor. */
static long at(const Mat *m, long r, long c)
{
	return m->off + (m->tr ? c * m->ld + r : r * m->ld + c);
}

static float *widened(lm_ckpt *ad, const char *name)
{
	const char *dn;
	size_t bytes;
	int ndim;
	long shape[8], n = 1;
	int dt = lm_ck_info(ad, name, &ndim, shape);
	const void *data = lm_ck_raw(ad, name, &dn, &bytes);
	for (int d = 0; d < ndim; d++)
		n *= shape[d];
	float *v = lm_alloc(n * sizeof(float));
	for (long i = 0; i < n; i++)
		v[i] = lm_load_f32(data, dt, i);
	return v;
}

/* Expert e's (or the only) rows of hit h, merged into w. */
static void apply(Fuse *f, const Hit *h, int e, double *w)
{
	const Mat *m = &h->m;
	const Lora *l = h->l;
	float *A = widened(f->ad, l->a), *B = widened(f->ad, l->b);
	float *M = l->m[0] ? widened(f->ad, l->m) : NULL;
	long r = l->ashape[1], in = m->cols, mod_out = l->bshape[1];
	long shift = h->arr && !h->arr->pattern[0] ? e * h->arr->stride : 0;
	double *row = lm_alloc(in * sizeof(double));
	for (long j = 0; j < m->rows; j++) {
		double ss = 0;
		for (long c = 0; c < in; c++) {
			double u = 0;
			for (long k = 0; k < r; k++)
				u += l->ndim == 3
				     ? (double)B[((long)e * mod_out + l->row0 + j) * r + k] * A[((long)e * r + k) * in + c]
				     : (double)B[k * mod_out + l->row0 + j] * A[c * r + k];
			row[c] = w[shift + at(m, j, c)] + f->scale * u;
			ss += row[c] * row[c];
		}
		double g = M ? M[l->row0 + j] / sqrt(ss) : 1;
		for (long c = 0; c < in; c++)
			w[shift + at(m, j, c)] = g * row[c];
	}
	free(row);
	free(A);
	free(B);
	free(M);
}

/* Tensor `name` with every adapter on it merged, as double; or NULL. */
static double *fused(Fuse *f, const char *name, long numel)
{
	double *w = NULL;
	for (int i = 0; i < f->nhit; i++) {
		const Hit *h = &f->hit[i];
		int experts = h->arr ? h->arr->n : 1;
		for (int e = 0; e < experts; e++) {
			const char *t = h->arr && h->arr->pattern[0] ? lm_name(h->arr->pattern, e)
			                                            : f->p->t[h->m.t].name;
			if (strcmp(t, name))
				continue;
			int dt = lm_ck_info(f->base, name, NULL, NULL);
			if (dt < 0 || dt == LM_U32)
				lm_fail(lm_ck_where(f->base), "tensor '%s': lmcc fuses adapters into F32, F16 "
				        "and BF16 weights (a quantized base is not fused yet)", name);
			if (!w) {
				const char *dn;
				size_t bytes;
				const void *data = lm_ck_raw(f->base, name, &dn, &bytes);
				w = lm_alloc(numel * sizeof(double));
				for (long k = 0; k < numel; k++)
					w[k] = lm_load_f32(data, dt, k);
				f->ntensors++;
			}
			apply(f, h, e, w);
		}
	}
	return w;
}

static void put(FILE *out, const double *w, long numel, int dtype)
{
	for (long i = 0; i < numel; i++) {
		float x = (float)w[i];
		if (dtype == LM_F32) {
			fwrite(&x, 4, 1, out);
		} else {
			uint16_t h = dtype == LM_BF16 ? lm_f32_to_bf16(x) : lm_f32_to_f16(x);
			fwrite(&h, 2, 1, out);
		}
	}
}

static int by_name(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Every tensor of the base, in name order, the fused ones rewritten. */
static void write_checkpoint(Fuse *f, const char *path)
{
	long n = lm_ck_count(f->base), it = 0, k = 0;
	const char **names = lm_alloc(n * sizeof *names), *s;
	while ((s = lm_ck_next(f->base, &it)))
		names[k++] = s;
	qsort(names, n, sizeof *names, by_name);
	Buf h = {0};
	bprintf(&h, "{\"__metadata__\":{\"format\":\"mlx\"}");
	size_t off = 0;
	for (long i = 0; i < n; i++) {
		const char *dn;
		size_t bytes;
		int ndim;
		long shape[8];
		lm_ck_raw(f->base, names[i], &dn, &bytes);
		lm_ck_info(f->base, names[i], &ndim, shape);
		bprintf(&h, ",\"");
		for (const char *c = names[i]; *c; c++)    /* names are JSON strings */
			bprintf(&h, *c == '"' || *c == '\\' ? "\\%c" : (unsigned char)*c < 0x20 ? "\\u%04x" : "%c", *c);
		bprintf(&h, "\":{\"dtype\":\"%s\",\"shape\":[", dn);
		for (int d = 0; d < ndim; d++)
			bprintf(&h, "%s%ld", d ? "," : "", shape[d]);
		bprintf(&h, "],\"data_offsets\":[%zu,%zu]}", off, off + bytes);
		off += bytes;
	}
	bprintf(&h, "}");
	while (h.n % 8)
		bprintf(&h, " ");
	FILE *out = fopen(path, "wb");
	if (!out)
		lm_fail(path, "cannot write: %s", strerror(errno));
	uint64_t hl = h.n;
	unsigned char le[8];
	for (int i = 0; i < 8; i++)
		le[i] = (unsigned char)(hl >> (8 * i));
	fwrite(le, 1, 8, out);
	fwrite(h.s, 1, h.n, out);
	for (long i = 0; i < n; i++) {
		const char *dn;
		size_t bytes;
		int ndim;
		long shape[8], numel = 1;
		const void *data = lm_ck_raw(f->base, names[i], &dn, &bytes);
		int dt = lm_ck_info(f->base, names[i], &ndim, shape);
		for (int d = 0; d < ndim; d++)
			numel *= shape[d];
		double *w = fused(f, names[i], numel);
		if (w)
			put(out, w, numel, dt);
		else
			fwrite(data, 1, bytes, out);
		free(w);
	}
	if (ferror(out) | fclose(out))
		lm_fail(path, "write error: %s", strerror(errno));
	free(h.s);
	free(names);
}

/* The other files of the model directory (config, tokenizer, template). */
static void copy_others(const char *from, const char *to)
{
	DIR *d = opendir(from);
	if (!d)
		lm_fail(from, "cannot open: %s", strerror(errno));
	struct dirent *e;
	while ((e = readdir(d))) {
		const char *n = e->d_name;
		size_t len = strlen(n);
		if (n[0] == '.' || (len > 12 && !strcmp(n + len - 12, ".safetensors"))
		    || !strcmp(n, "model.safetensors.index.json"))
			continue;
		char *src = lm_path(from, n), *dst = lm_path(to, n);
		struct stat st;
		if (!stat(src, &st) && S_ISREG(st.st_mode)) {
			size_t size;
			char *text = lm_read_file(src, &size);
			if (text) {
				FILE *o = fopen(dst, "wb");
				if (!o || fwrite(text, 1, size, o) != size || fclose(o))
					lm_fail(dst, "cannot write");
				free(text);
			}
		}
		free(src);
		free(dst);
	}
	closedir(d);
}

static const lm_opt fuse_opts[] = {
	{"adapter", 'a', "DIR", "the LoRA/DoRA adapter directory (mlx-lm's)"},
	{"adapter-path", 'a', "DIR", NULL},
	{"output", 'o', "DIR", "where to write the fused model (required)"},
	{"save-path", 'o', "DIR", NULL},
	{"dequantize", 'd', NULL, "mlx_lm.fuse's flag, accepted (a quantized base is not\nfused yet; a float base is written as it is stored)"},
	{"help", 'h', NULL, "this text"},
	{0},
};

int cmd_fuse(int argc, char **argv)
{
	lm_optp o;
	const char *v, *adapter = NULL, *out = NULL;
	int k;
	lm_opt_init(&o, argc, argv, fuse_opts, "fuse");
	while ((k = lm_opt_next(&o, &v)) != -1) {
		if (k == 'h') {
			printf("usage: lmcc fuse MODEL_DIR --adapter ADAPTER_DIR -o OUT [--dequantize]\n"
			       "Merge an mlx-lm LoRA/DoRA adapter into the weights, as mlx_lm.fuse does,\n"
			       "and write the model to OUT (same layout and dtypes as MODEL_DIR, which\n"
			       "lmcc and mlx-lm both load).\n\n");
			lm_opt_help(stdout, fuse_opts);
			return 0;
		}
		if (k == 'a')
			adapter = v;
		else if (k == 'o')
			out = v;
	}
	if (o.npos != 1)
		lm_fail(NULL, "fuse: needs one MODEL_DIR (see lmcc fuse --help)");
	if (!adapter)
		lm_fail(NULL, "fuse: needs --adapter ADAPTER_DIR");
	if (!out)
		lm_fail(NULL, "fuse: needs -o OUT");
	const char *dir = o.pos[0];
	double t0 = lm_now();
	Plan p;
	char *cfg = lm_path(dir, "config.json");
	plan_read(&p, cfg, dir, 1);
	free(cfg);
	adapter_read(&p, adapter);

	Fuse f = {.p = &p, .base = lm_ck_open(dir), .scale = p.ad->cfg.scale};
	lm_adapter a;
	f.ad = lm_adapter_open(adapter, &a, NULL);
	free((char *)a.keys);
	adapter_each(&p, collect, &f);
	make_dirs(out);
	char *path = lm_path(out, "model.safetensors");
	write_checkpoint(&f, path);
	copy_others(dir, out);
	fprintf(stderr, "lmcc: fuse: %s merged into %d tensors of %s: wrote %s in %.2f s\n",
	        adapter, f.ntensors, dir, path, lm_now() - t0);
	free(f.hit);
	free(path);
	lm_ck_close(f.base);
	lm_ck_close(f.ad);
	plan_free(&p);
	return 0;
}
