/* fuse.c: `lmcc fuse MODEL_DIR --adapter DIR -o OUT [--dequantize]`: the
 * adapter merged into the weights, as mlx-lm's fuse does (tuner/lora.py
 * and dora.py, fuse()): W + scale * B^T A^T for each adapted module (per
 * part for AFM-7's fused qkv, per expert for a stack), and for DoRA each
 * row of that then scaled to its magnitude m.
 *
 * A quantized module is dequantized as MLX's dequantize returns it (an
 * affine one in its scales' dtype, an FP-mode one, whose scales are
 * bytes, in bfloat16), merged, and quantized again in its own mode, bits
 * and group size, its config entries kept; with --dequantize every
 * quantized module is written as float in that dtype instead, and the
 * config loses its quantization, as mlx_lm.fuse --dequantize does.
 *
 * The update is rounded as the reference rounds it: the product in
 * float32, cast to the weight's dtype, added in that dtype.  The fused
 * checkpoint otherwise keeps the base's own layout (names, shapes and
 * dtypes): lmcc reads it as it read the base, and mlx-lm's sanitize turns
 * it into its modules as it does the base. */
#define _GNU_SOURCE
#include "adapter.h"
#include "build.h"
#include "cmd.h"
#include "plan.h"
#include "pyjson.h"
#include "tmpl.h"
#include "../runtime/opt.h"
#include "../runtime/rt.h"

#include <dirent.h>
#include <errno.h>
#include <json-c/json.h>
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

/* What becomes of a tensor of the base. */
enum { COPY, MERGED, QWORDS, QSCALES, QBIASES, DEQUANT, DROPPED };

typedef struct {
	const char *name;
	int kind;
	const Tensor *t;             /* the plan's tensor (a quantized module's weight) */
	int dtype;                   /* written in (LM_F32, LM_F16, LM_BF16, LM_U32) */
	int ndim;
	long shape[8];
	size_t bytes;
} Out;

typedef struct {
	Plan *p;
	lm_ckpt *base, *ad;
	Hit *hit;
	int nhit, ntensors, deq;
	double scale;
	const Tensor *qt;            /* the module requantized last, and its parts */
	uint32_t *qw;
	float *qs, *qb;
	int qdt;
} Fuse;

static void collect(void *ctx, const Mat *m, const MatArr *arr, const Lora *l)
{
	Fuse *f = ctx;
	if (l->how == LM_LORA_T && l->ndim == 2)
		return;         /* a tied head: the embedding's pair, merged there */
	f->hit = lm_realloc(f->hit, (f->nhit + 1) * sizeof(Hit));
	f->hit[f->nhit++] = (Hit){*m, arr, l};
}

/* The tensor expert e of hit h is in. */
static const char *hit_tensor(const Fuse *f, const Hit *h, int e)
{
	return h->arr && h->arr->pattern[0] ? lm_name(h->arr->pattern, e) : f->p->t[h->m.t].name;
}

/* The adapter on tensor `name`, or NULL. */
static const Lora *adapted(const Fuse *f, const char *name)
{
	for (int i = 0; i < f->nhit; i++)
		for (int e = 0; e < (f->hit[i].arr ? f->hit[i].arr->n : 1); e++)
			if (!strcmp(hit_tensor(f, &f->hit[i], e), name))
				return f->hit[i].l;
	return NULL;
}

/* The dtype of DoRA's m / |row| * row for a weight of dtype dt: MLX
 * promotes two different float dtypes to float32. */
static int fused_dtype(const Fuse *f, const char *name, int dt)
{
	const Lora *l = adapted(f, name);
	return !l || !l->m[0] || lm_ck_info(f->ad, l->m, NULL, NULL) == dt ? dt : LM_F32;
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

/* Expert e's (or the only) rows of hit h, merged into w, whose values are
 * of dtype dt, in the reference's order of operations: scale times the
 * factor it scales (B, or an embedding's A), rounded to float32, the
 * product in float32 (here in double, rounded to float32), cast to dt and
 * added in dt.  For DoRA, |row| is then MLX's norm in dt (squares summed
 * one by one, each step rounded to dt), and the row is scaled to m /
 * |row| in the promoted dtype. */
static void apply(Fuse *f, const Hit *h, int e, float *w, int dt)
{
	const Mat *m = &h->m;
	const Lora *l = h->l;
	float *A = widened(f->ad, l->a), *B = widened(f->ad, l->b);
	float *M = l->m[0] ? widened(f->ad, l->m) : NULL;
	long r = l->ashape[1], in = m->cols, mod_out = l->bshape[1];
	long shift = h->arr && !h->arr->pattern[0] ? e * h->arr->stride : 0;
	float s = (float)f->scale, *row = lm_alloc(in * sizeof(float));
	int od = fused_dtype(f, hit_tensor(f, h, e), dt);
	for (long j = 0; j < m->rows; j++) {
		float ss = 0;
		for (long c = 0; c < in; c++) {
			double u = 0;
			for (long k = 0; k < r; k++)
				u += l->ndim == 3
				     ? (double)(s * B[((long)e * mod_out + l->row0 + j) * r + k]) * A[((long)e * r + k) * in + c]
				     : l->how == LM_LORA_LOOKUP ? (double)(s * A[j * r + k]) * B[k * in + c]
				     : (double)(s * B[k * mod_out + l->row0 + j]) * A[c * r + k];
			float d = lm_round_to((float)u, dt);
			row[c] = lm_round_to(w[shift + at(m, j, c)] + d, dt);
			ss = lm_round_to(ss + lm_round_to(row[c] * row[c], dt), dt);
		}
		float g = M ? lm_round_to(M[l->row0 + j] / lm_round_to(sqrtf(ss), dt), od) : 1;
		for (long c = 0; c < in; c++)
			w[shift + at(m, j, c)] = M ? lm_round_to(g * row[c], od) : row[c];
	}
	free(row);
	free(A);
	free(B);
	free(M);
}

/* The module path of a quantized module's tensor name, or NULL. */
static const char *module(char *buf, const char *name, const char *suffix)
{
	size_t n = strlen(name), s = strlen(suffix);
	if (n <= s || n - s >= MAX_TENSOR_NAME || strcmp(name + n - s, suffix))
		return NULL;
	snprintf(buf, MAX_TENSOR_NAME, "%.*s", (int)(n - s), name);
	return buf;
}

static const Tensor *plan_tensor(const Plan *p, const char *name)
{
	for (int i = 0; i < p->nt; i++)
		if (!strcmp(p->t[i].name, name))
			return &p->t[i];
	return NULL;
}

/* Quantized module W as MLX's dequantize returns it, in dtype dt: an
 * affine code times its scale rounded to dt, then plus its bias rounded
 * to dt (MLX multiplies, then adds); an FP code times its scale has too
 * few significant bits to round (2 or 4 bits times a power of two or an
 * E4M3) but where it under- or overflows. */
static void dequantize(float *w, const lm_mat *W, int dt)
{
	lm_mat S = *W;
	void *zero = NULL;
	if (W->mode == LM_AFFINE)
		S.biases = zero = calloc((size_t)(W->rows * W->sld), lm_dtype_size(W->sdtype));
	for (long r = 0; r < W->rows; r++) {
		float *row = w + r * W->cols;
		lm_qrow(row, &S, r);
		for (long c = 0; c < W->cols; c++) {
			row[c] = lm_round_to(row[c], dt);
			if (zero)
				row[c] = lm_round_to(row[c] + lm_load_f32(W->biases, W->sdtype,
				                                             r * W->sld + c / W->group), dt);
		}
	}
	free(zero);
}

/* Tensor t's values as float32 in *dt, with every adapter on it merged.
 * MLX's dequantize returns an affine module in its scales' dtype and an
 * FP-mode one (uint8 scales) in bfloat16, whatever the model's dtype:
 * the update is added in that dtype. */
static float *values(Fuse *f, const Tensor *t, int *dt)
{
	long numel = plan_tensor_numel(t);
	float *w = lm_alloc(numel * sizeof(float));
	if (t->bits) {
		char path[MAX_TENSOR_NAME];
		long in = t->shape[t->ndim - 1], rows = numel / in;
		module(path, t->name, ".weight");
		lm_mat W = lm_ck_qmat(f->base, path, t->ndim, t->shape, 0, rows, in, t->bits, t->group,
		                      t->mode);
		*dt = t->mode == LM_AFFINE ? W.sdtype : LM_BF16;
		dequantize(w, &W, *dt);
	} else {
		const char *dn;
		size_t bytes;
		const void *data = lm_ck_raw(f->base, t->name, &dn, &bytes);
		*dt = lm_ck_info(f->base, t->name, NULL, NULL);
		for (long k = 0; k < numel; k++)
			w[k] = lm_load_f32(data, *dt, k);
	}
	for (int i = 0; i < f->nhit; i++) {
		const Hit *h = &f->hit[i];
		for (int e = 0; e < (h->arr ? h->arr->n : 1); e++)
			if (!strcmp(hit_tensor(f, h, e), t->name))
				apply(f, h, e, w, *dt);
	}
	*dt = fused_dtype(f, t->name, *dt);
	return w;
}

/* Quantized module t merged and quantized again as MLX's from_linear does
 * (its mode, bits and group size, computing in the merged weight's
 * dtype), kept until its last part is written. */
static void requantize(Fuse *f, const Tensor *t)
{
	if (f->qt == t)
		return;
	free(f->qw);
	free(f->qs);
	free(f->qb);
	float *w = values(f, t, &f->qdt);
	long in = t->shape[t->ndim - 1], rows = plan_tensor_numel(t) / in;
	long words = in * t->bits / 32, groups = in / t->group;
	f->qw = lm_alloc(rows * words * 4);
	f->qs = lm_alloc(rows * groups * sizeof(float));
	f->qb = lm_alloc(rows * groups * sizeof(float));
	for (long r = 0; r < rows; r++) {
		if (t->mode != LM_AFFINE)
			lm_fp_quantize(w + r * in, in, t->mode, f->qdt, f->qw + r * words,
			               (uint8_t *)f->qs + r * groups);
		else
			lm_affine_quantize(w + r * in, in, t->bits, t->group, f->qw + r * words,
			                   f->qs + r * groups, f->qb + r * groups);
	}
	free(w);
	f->qt = t;
	f->ntensors++;
}

static void put(FILE *out, const float *w, long numel, int dtype)
{
	for (long i = 0; i < numel; i++) {
		if (dtype == LM_F32) {
			fwrite(&w[i], 4, 1, out);
		} else {
			uint16_t h = dtype == LM_BF16 ? lm_f32_to_bf16(w[i]) : lm_f32_to_f16(w[i]);
			fwrite(&h, 2, 1, out);
		}
	}
}

static const char *dtype_name(int dt)
{
	return dt == LM_F32 ? "F32" : dt == LM_F16 ? "F16" : dt == LM_BF16 ? "BF16"
	       : dt == LM_U8 ? "U8" : "U32";
}

/* What becomes of base tensor `name`. */
static Out plan_out(Fuse *f, const char *name)
{
	Out o = {.name = name, .kind = COPY};
	const char *dn;
	o.dtype = lm_ck_info(f->base, name, &o.ndim, o.shape);
	lm_ck_raw(f->base, name, &dn, &o.bytes);
	static const char *const parts[] = {".weight", ".scales", ".biases"};
	char path[MAX_TENSOR_NAME], w[MAX_TENSOR_NAME + 8], s[MAX_TENSOR_NAME + 8];
	for (int k = 0; k < 3; k++) {
		if (!module(path, name, parts[k]))
			continue;
		snprintf(w, sizeof w, "%s.weight", path);
		snprintf(s, sizeof s, "%s.scales", path);
		const Tensor *t = plan_tensor(f->p, w);
		if (!t || !t->bits || lm_ck_info(f->base, s, NULL, NULL) < 0)
			break;
		o.t = t;
		/* MLX's dequantize: to the scales' dtype, bfloat16 in an FP mode */
		int sdt = lm_ck_info(f->base, s, NULL, NULL), merged = adapted(f, w) != NULL;
		int dt = fused_dtype(f, w, t->mode == LM_AFFINE ? sdt : LM_BF16);
		if (f->deq) {
			o.kind = k ? DROPPED : DEQUANT;
			o.dtype = dt;
			o.ndim = t->ndim;
			memcpy(o.shape, t->shape, sizeof t->shape);
			o.bytes = plan_tensor_numel(t) * lm_dtype_size(o.dtype);
		} else if (merged) {
			o.kind = QWORDS + k;
			if (k && t->mode == LM_AFFINE) {
				o.dtype = dt;
				o.bytes = o.bytes / lm_dtype_size(sdt) * lm_dtype_size(o.dtype);
			}
		}
		return o;
	}
	const Tensor *t = plan_tensor(f->p, name);
	if (t && !t->bits && adapted(f, name)) {
		o.kind = MERGED;
		o.t = t;
		int dt = fused_dtype(f, name, o.dtype);
		o.bytes = o.bytes / lm_dtype_size(o.dtype) * lm_dtype_size(dt);
		o.dtype = dt;
	}
	return o;
}

static void write_out(Fuse *f, FILE *out, const Out *o)
{
	const char *dn;
	size_t bytes;
	const void *data = lm_ck_raw(f->base, o->name, &dn, &bytes);
	int dt;
	float *w;
	switch (o->kind) {
	case COPY:
		fwrite(data, 1, bytes, out);
		break;
	case MERGED:
	case DEQUANT:
		w = values(f, o->t, &dt);
		put(out, w, plan_tensor_numel(o->t), o->dtype);
		free(w);
		f->ntensors += adapted(f, o->t->name) != NULL;
		break;
	case QWORDS:
		requantize(f, o->t);
		fwrite(f->qw, 1, o->bytes, out);
		break;
	case QSCALES:
	case QBIASES:
		requantize(f, o->t);
		if (o->dtype == LM_U8)      /* an FP mode's scale bytes */
			fwrite(f->qs, 1, o->bytes, out);
		else
			put(out, o->kind == QSCALES ? f->qs : f->qb, (long)(o->bytes / lm_dtype_size(o->dtype)), o->dtype);
		break;
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
	Out *o = lm_alloc(n * sizeof *o);
	for (long i = 0; i < n; i++)
		o[i] = plan_out(f, names[i]);
	Buf h = {0};
	bprintf(&h, "{\"__metadata__\":{\"format\":\"mlx\"}");
	size_t off = 0;
	for (long i = 0; i < n; i++) {
		if (o[i].kind == DROPPED)
			continue;
		bprintf(&h, ",\"");
		for (const char *c = names[i]; *c; c++)    /* names are JSON strings */
			bprintf(&h, *c == '"' || *c == '\\' ? "\\%c" : (unsigned char)*c < 0x20 ? "\\u%04x" : "%c", *c);
		bprintf(&h, "\":{\"dtype\":\"%s\",\"shape\":[", dtype_name(o[i].dtype));
		for (int d = 0; d < o[i].ndim; d++)
			bprintf(&h, "%s%ld", d ? "," : "", o[i].shape[d]);
		bprintf(&h, "],\"data_offsets\":[%zu,%zu]}", off, off + o[i].bytes);
		off += o[i].bytes;
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
	for (long i = 0; i < n; i++)
		write_out(f, out, &o[i]);
	if (ferror(out) | fclose(out))
		lm_fail(path, "write error: %s", strerror(errno));
	free(h.s);
	free(o);
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

/* Baichuan-M1's sanitize L2-normalises a float lm_head's rows on every
 * load: a merged head written in float would be normalised again, which
 * undoes the update (the reference's own fuse writes such a head). */
static void refuse_normhead(const Fuse *f, const char *adapter)
{
	for (int i = 0; i < f->nhit; i++) {
		const Lora *l = f->hit[i].l;
		if (l->layer >= 0 || strcmp(f->p->arch, "baichuan_m1")
		    || (f->p->t[f->hit[i].m.t].bits && !f->deq))
			continue;
		lm_fail(adapter, "module '%s': the adapter cannot be fused into a float head: "
		        "Baichuan-M1 L2-normalises lm_head's rows each time it loads a float one, "
		        "which would undo the update (run it with --adapter instead%s)", l->module,
		        f->p->t[f->hit[i].m.t].bits ? ", or fuse without --dequantize" : "");
	}
}

/* OUT/config.json without quantization, as mlx_lm.fuse --dequantize
 * writes it. */
static void unquantized_config(const char *dir, const char *out)
{
	char *path = lm_path(dir, "config.json");
	json_object *cfg = json_object_from_file(path);
	if (!cfg || !json_object_is_type(cfg, json_type_object))
		lm_fail(path, "not a JSON object");
	json_object_object_del(cfg, "quantization");
	json_object_object_del(cfg, "quantization_config");
	py_json_file(out, "config.json", cfg);
	json_object_put(cfg);
	free(path);
}

static const lm_opt fuse_opts[] = {
	{"adapter", 'a', "DIR", "the LoRA/DoRA adapter directory (mlx-lm's)"},
	{"adapter-path", 'a', "DIR", NULL},
	{"output", 'o', "DIR", "where to write the fused model (required)"},
	{"save-path", 'o', "DIR", NULL},
	{"dequantize", 'd', NULL, "write every quantized module as float (in its scales'\ndtype; bfloat16 in an FP mode) and drop the config's\nquantization"},
	{"help", 'h', NULL, "this text"},
	{0},
};

int cmd_fuse(int argc, char **argv)
{
	lm_optp o;
	const char *v, *adapter = NULL, *out = NULL;
	int k, deq = 0;
	lm_opt_init(&o, argc, argv, fuse_opts, "fuse");
	while ((k = lm_opt_next(&o, &v)) != -1) {
		if (k == 'h') {
			printf("usage: lmcc fuse MODEL_DIR --adapter ADAPTER_DIR -o OUT [--dequantize]\n"
			       "Merge an mlx-lm LoRA/DoRA adapter into the weights, as mlx_lm.fuse does,\n"
			       "and write the model to OUT (same layout and dtypes as MODEL_DIR, which\n"
			       "lmcc and mlx-lm both load).  A quantized module is dequantized, merged\n"
			       "and quantized again with its own mode, bits and group size.\n\n");
			lm_opt_help(stdout, fuse_opts);
			return 0;
		}
		if (k == 'a')
			adapter = v;
		else if (k == 'o')
			out = v;
		else if (k == 'd')
			deq = 1;
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

	Fuse f = {.p = &p, .base = lm_ck_open(dir), .scale = p.ad->cfg.scale, .deq = deq};
	lm_adapter a;
	f.ad = lm_adapter_open(adapter, &a, NULL);
	free((char *)a.keys);
	adapter_each(&p, collect, &f);
	refuse_normhead(&f, adapter);
	make_dirs(out);
	char *path = lm_path(out, "model.safetensors");
	write_checkpoint(&f, path);
	copy_others(dir, out);
	if (deq)
		unquantized_config(dir, out);
	fprintf(stderr, "lmcc: fuse: %s merged into %d tensors of %s: wrote %s in %.2f s\n",
	        adapter, f.ntensors, dir, path, lm_now() - t0);
	free(f.hit);
	free(path);
	lm_ck_close(f.base);
	lm_ck_close(f.ad);
	plan_free(&p);
	return 0;
}
