/* lora.c: low-rank adapters as mlx-lm trains them (tuner/lora.py, dora.py).
 *
 * A fine-tune that keeps the model's weights frozen and learns, for some
 * products y = W x, two thin matrices A [in, rank] and B [rank, out]: the
 * adapted product is y = W x + scale * (x A) B.  The pair is kept beside W
 * rather than merged into it, as the reference computes it: W stays in its
 * own dtype (or quantized), the update is float32, and one base model
 * serves any number of adapters.  DoRA further rescales each output row of
 * the adapted product by a learned magnitude m over the norm of the
 * adapted weight's row, |W + scale * B^T A^T|.
 *
 * The adapter directory: adapter_config.json (fine_tune_type, num_layers,
 * lora_parameters {rank, scale, dropout, keys}) and adapters.safetensors,
 * whose tensors are module paths ending in lora_a, lora_b (and m).  Which
 * tensor belongs to which product is the compiler's business
 * (compiler/adapter.c); here they are read, checked and applied. */
#define _GNU_SOURCE
#include "rt.h"

#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_RANK = 1 << 16, MAX_KEYS = 4096, MAX_KEY = 160 };

/* A of one module (and expert), shared by the products that view it. */
typedef struct Lora_a {
	long ad;           /* lm_ck_serial of the adapter */
	const char *name;
	long expert;
	int how;
	long in, rank;
	float *a;          /* [in, rank] */
	struct Lora_a *next;
} Lora_a;

struct lm_lora {
	long in, rank, out;
	float scale;
	const Lora_a *A;
	float *b;          /* [rank, out]: only this view's columns */
	float *dora;       /* m / |adapted row|, per output (per vocab row for a lookup), or 0 */
	int lookup;
	long ad;           /* lm_ck_serial of the adapter, which ends it */
	struct lm_lora *next;
};

/* What binding made lives until its adapter is closed (lm_lora_forget):
 * a program, or the C API, may open and close many in one process. */
static Lora_a *all_a;
static struct lm_lora *all_l;
static const Lora_a *last_a;   /* low_rank's x A is of this one */

/* ---- adapter_config.json ---- */

static json_object *field(json_object *o, const char *k)
{
	json_object *v;
	return json_object_object_get_ex(o, k, &v) ? v : NULL;
}

static int is_num(json_object *v)
{
	return v && (json_object_is_type(v, json_type_double) || json_object_is_type(v, json_type_int));
}

static int by_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A key is a module path: letters, digits, '_' and '.' */
static int key_ok(const char *s)
{
	size_t n = strlen(s);
	if (!n || n >= MAX_KEY || s[0] == '.' || s[n - 1] == '.')
		return 0;
	for (; *s; s++)
		if (!(*s == '_' || *s == '.' || (*s >= '0' && *s <= '9')
		      || (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z')))
			return 0;
	return 1;
}

static char *read_keys(const char *path, json_object *v)
{
	if (!v)
		return NULL;
	if (!json_object_is_type(v, json_type_array))
		lm_fail(path, "field 'lora_parameters.keys': not a list of module names");
	size_t n = json_object_array_length(v), len = 1;
	if (n < 1 || n > MAX_KEYS)
		lm_fail(path, "field 'lora_parameters.keys': %zu keys, expected 1 to %d", n, MAX_KEYS);
	for (size_t i = 0; i < n; i++) {   /* all checked before anything is allocated */
		json_object *s = json_object_array_get_idx(v, i);
		if (!json_object_is_type(s, json_type_string) || !key_ok(json_object_get_string(s)))
			lm_fail(path, "field 'lora_parameters.keys[%zu]': not a module path (letters, digits, '_', '.')", i);
	}
	char **k = lm_alloc(n * sizeof *k);
	for (size_t i = 0; i < n; i++) {
		k[i] = (char *)json_object_get_string(json_object_array_get_idx(v, i));
		len += strlen(k[i]) + 1;
	}
	qsort(k, n, sizeof *k, by_str);
	char *out = lm_alloc(len);
	for (size_t i = 0; i < n; i++) {
		if (i && !strcmp(k[i], k[i - 1]))
			continue;
		if (*out)
			strcat(out, ",");
		strcat(out, k[i]);
	}
	free(k);
	return out;
}

/* *ROOT: the parsed file, which the caller puts (also when this fails) */
static void read_config(const char *path, lm_adapter *a, json_object *volatile *rootp)
{
	size_t len;
	char *text = lm_read_text(path, &len);
	if (!text)
		lm_fail(path, "cannot open: no adapter_config.json in the adapter directory");
	json_tokener *tok = json_tokener_new_ex(32);
	json_object *root = json_tokener_parse_ex(tok, text, (int)len);
	int ok = json_tokener_get_error(tok) == json_tokener_success;
	json_tokener_free(tok);
	free(text);
	*rootp = root;
	if (!ok || !root || !json_object_is_type(root, json_type_object))
		lm_fail(path, "not a JSON object");
	memset(a, 0, sizeof *a);

	json_object *v = field(root, "fine_tune_type");
	const char *type = v ? json_object_get_string(v) : "lora";
	if (v && !json_object_is_type(v, json_type_string))
		lm_fail(path, "field 'fine_tune_type': not a string");
	if (!strcmp(type, "dora"))
		a->dora = 1;
	else if (!strcmp(type, "full"))
		lm_fail(path, "field 'fine_tune_type': \"full\" fine-tunes every weight: that is a "
		        "checkpoint, not an adapter (lmcc applies lora and dora)");
	else if (strcmp(type, "lora"))
		lm_fail(path, "field 'fine_tune_type': expected \"lora\" or \"dora\", got \"%.40s\"", type);

	v = field(root, "num_layers");
	if (!v || !json_object_is_type(v, json_type_int))
		lm_fail(path, "field 'num_layers': missing or not an integer");
	int64_t nl = json_object_get_int64(v);
	if (nl < -(1L << 30) || nl > (1L << 30))
		lm_fail(path, "field 'num_layers': %lld is out of range", (long long)nl);
	a->num_layers = nl <= 0 ? 0 : (long)nl;   /* the reference: layers[-max(n, 0):] */

	json_object *lp = field(root, "lora_parameters");
	if (!lp || !json_object_is_type(lp, json_type_object))
		lm_fail(path, "field 'lora_parameters': missing or not an object");
	v = field(lp, "rank");
	if (!v || !json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 1
	    || json_object_get_int64(v) > MAX_RANK)
		lm_fail(path, "field 'lora_parameters.rank': missing or not an integer in [1, %d]", MAX_RANK);
	a->rank = (long)json_object_get_int64(v);
	v = field(lp, "scale");
	if (!is_num(v) || !isfinite(json_object_get_double(v)) || fabs(json_object_get_double(v)) > 1e9)
		lm_fail(path, "field 'lora_parameters.scale': missing or not a finite number");
	a->scale = (float)json_object_get_double(v);
	v = field(lp, "dropout");   /* training only; still it must be sane */
	if (v && (!is_num(v) || !(json_object_get_double(v) >= 0 && json_object_get_double(v) < 1)))
		lm_fail(path, "field 'lora_parameters.dropout': not a number in [0, 1)");
	v = field(lp, "keys");
	a->keys = read_keys(path, v && !json_object_is_type(v, json_type_null) ? v : NULL);
}

static void differs(const char *path, const char *f, const char *got, const char *want)
{
	lm_fail(path, "field '%s': %s, but this program was built for an adapter with %s "
	        "(build it again with this adapter)", f, got, want);
}

lm_ckpt *lm_adapter_open(const char *dir, lm_adapter *a, const lm_adapter *want)
{
	char *cfg = lm_path(dir, "adapter_config.json");
	char *st = lm_path(dir, "adapters.safetensors");
	lm_ckpt *volatile ck = NULL;             /* volatile: read after a longjmp */
	json_object *volatile root = NULL;
	/* a failure closes what was opened: the C API goes on, and a stale
	 * change watch on the adapter would end it when the file next changed */
	lm_err err;
	if (lm_catch(&err)) {
		free(cfg);
		free(st);
		free((void *)a->keys);
		a->keys = NULL;
		if (root)
			json_object_put(root);
		lm_ck_close(ck);
		lm_err_raise(&err);
	}
	a->keys = NULL;
	read_config(cfg, a, &root);
	json_object_put(root);
	root = NULL;
	ck = lm_ck_open_file(st);
	a->tensors = lm_ck_count(ck);
	if (want) {
		char g[64], w[64];
		if (a->dora != want->dora)
			differs(cfg, "fine_tune_type", a->dora ? "dora" : "lora", want->dora ? "dora" : "lora");
		if (a->num_layers != want->num_layers) {
			snprintf(g, sizeof g, a->num_layers ? "%ld" : "all blocks", a->num_layers);
			snprintf(w, sizeof w, want->num_layers ? "%ld" : "all blocks", want->num_layers);
			differs(cfg, "num_layers", g, w);
		}
		if (a->rank != want->rank) {
			snprintf(g, sizeof g, "%ld", a->rank);
			snprintf(w, sizeof w, "%ld", want->rank);
			differs(cfg, "lora_parameters.rank", g, w);
		}
		if (a->scale != want->scale) {
			snprintf(g, sizeof g, "%g", a->scale);
			snprintf(w, sizeof w, "%g", want->scale);
			differs(cfg, "lora_parameters.scale", g, w);
		}
		if (strcmp(a->keys ? a->keys : "", want->keys ? want->keys : ""))
			differs(cfg, "lora_parameters.keys", a->keys ? a->keys : "the default keys",
			        want->keys ? want->keys : "the default keys");
		if (a->tensors != want->tensors) {
			snprintf(g, sizeof g, "%ld tensors", a->tensors);
			snprintf(w, sizeof w, "%ld", want->tensors);
			lm_fail(st, "%s, but this program was built for an adapter with %s", g, w);
		}
	}
	lm_err_pop(&err);
	free(cfg);
	free(st);
	return ck;
}

void lm_adapter_done(lm_ckpt *ad)
{
	const char *first, *file;
	if (lm_ck_unused(ad, NULL, &first, &file))
		lm_fail(file, "tensor '%s': not an adapter of a module this program was built with", first);
}

/* ---- binding ---- */

/* Row r of W as float32: the float dtypes, or MLX's dequantized groups. */
static void row_of(const lm_mat *W, long r, float *dst)
{
	if (W->dtype == LM_Q) {
		lm_qrow(dst, W, r);
		return;
	}
	for (long c = 0; c < W->cols; c++)
		dst[c] = lm_load_f32(W->data, W->dtype, W->tr ? (size_t)c * W->ld + r
		                                               : (size_t)r * W->ld + c);
}

/* A as [in, rank] float32, read once per module and expert. */
static const Lora_a *shared_a(lm_ckpt *ad, const char *name, lm_mat va, int how, long expert,
                              long in, long r)
{
	int t = how == LM_LORA_T;
	for (Lora_a *s = all_a; s; s = s->next)
		if (s->ad == lm_ck_serial(ad) && s->expert == expert && (s->how == LM_LORA_T) == t && !strcmp(s->name, name))
			return s;
	Lora_a *s = lm_alloc(sizeof *s);
	*s = (Lora_a){lm_ck_serial(ad), lm_strdup(name), expert, how, in, r, lm_floats(in * r), all_a};
	for (long i = 0; i < in; i++)
		for (long k = 0; k < r; k++)
			s->a[i * r + k] = lm_load_f32(va.data, va.dtype, t ? (size_t)k * in + i : (size_t)i * r + k);
	return all_a = s;
}

const struct lm_lora *lm_lora_of(lm_ckpt *ad, lm_mat W, const char *a, const char *b,
                                 int ndim, int how, const long *ashape, const long *bshape,
                                 const char *m, long expert, long row0, float scale,
                                 const float *rs)
{
	int t = how == LM_LORA_T, look = how == LM_LORA_LOOKUP, stack = ndim == 3;
	long in = look ? W.rows : W.cols, out = look ? W.cols : W.rows;
	long r = t ? ashape[ndim - 2] : ashape[1], a_in = t ? ashape[ndim - 1] : ashape[0];
	long mod_out = t ? bshape[ndim - 2] : bshape[1], b_r = t ? bshape[ndim - 1] : bshape[0];
	if (a_in != in || b_r != r || row0 + out > mod_out || (stack && !t) || (look && (rs || row0))
	    || (stack && (expert >= ashape[0] || expert >= bshape[0])))
		lm_bug("adapter %s does not fit its product", a);
	/* views of this expert's matrices, read in place and widened once */
	long ea = stack ? expert * r * in : 0, eb = stack ? expert * mod_out * r : 0;
	lm_mat va = t ? lm_ck_mat(ad, a, ndim, ashape, ea, 0, r, in, in)
	              : lm_ck_mat(ad, a, ndim, ashape, 0, 0, in, r, r);
	lm_mat vb = t ? lm_ck_mat(ad, b, ndim, bshape, eb, 0, mod_out, r, r)
	              : lm_ck_mat(ad, b, ndim, bshape, 0, 0, r, mod_out, mod_out);
	struct lm_lora *l = lm_alloc(sizeof *l);
	l->ad = lm_ck_serial(ad);
	l->next = all_l;
	all_l = l;
	l->in = in;
	l->rank = r;
	l->out = out;
	l->scale = scale;
	l->lookup = look;
	l->A = shared_a(ad, a, va, how, expert, in, r);
	l->b = lm_floats(r * out);
	const float *A = l->A->a;
	for (long k = 0; k < r; k++)
		for (long j = 0; j < out; j++)
			l->b[k * out + j] = lm_load_f32(vb.data, vb.dtype, t ? (size_t)(row0 + j) * r + k
			                                                     : (size_t)k * mod_out + row0 + j);
	if (m) {
		/* per row of the adapted weight (of the embedding, for a lookup):
		 * m / |W row + scale * the update's row| */
		long rows = look ? in : out, cols = look ? out : in, ms[1] = {look ? in : mod_out};
		const float *M = lm_ck_vec(ad, m, 1, ms, 0);
		float *w = lm_floats(cols);
		l->dora = lm_floats(rows);
		for (long j = 0; j < rows; j++) {
			double ss = 0;
			row_of(&W, j, w);
			for (long i = 0; i < cols; i++) {
				double u = 0;
				for (long k = 0; k < r; k++)
					u += look ? (double)A[j * r + k] * l->b[k * out + i]
					          : (double)l->b[k * out + j] * A[i * r + k];
				double v = w[i] * (rs ? rs[j] : 1) + scale * u;
				ss += v * v;
			}
			l->dora[j] = (float)(M[row0 + j] / sqrt(ss));
		}
		free(w);
	}
	/* the caller scales the rows afterwards: the update is divided first */
	for (long k = 0; rs && k < r; k++)
		for (long j = 0; j < out; j++)
			l->b[k * out + j] /= rs[j];
	return l;
}

void lm_lora_forget(const lm_ckpt *ad)
{
	if (!ad)
		return;
	long serial = lm_ck_serial(ad);
	for (struct lm_lora **p = &all_l, *l; (l = *p);)
		if (l->ad == serial) {
			*p = l->next;
			free(l->b);
			free(l->dora);
			free(l);
		} else
			p = &l->next;
	for (Lora_a **p = &all_a, *a; (a = *p);)
		if (a->ad == serial) {
			*p = a->next;
			if (last_a == a)
				last_a = NULL;
			free((void *)a->name);
			free(a->a);
			free(a);
		} else
			p = &a->next;
}

/* ---- applying ---- */

static float *grow(float **buf, long *cap, long n)
{
	if (n > *cap) {
		free(*buf);
		*buf = lm_floats(n);
		*cap = n;
	}
	return *buf;
}

/* x A [n, rank].  The views of one module (q, k, v of a fused qkv_proj)
 * are products of the same x, one after the other: the last x A is kept
 * with a copy of its x, and taken again when A and x are the same. */
static const float *low_rank(const Lora_a *A, const float *x, long n)
{
	static float *xc, *u;
	static long cx, cu, last;
	size_t bytes = (size_t)n * A->in * sizeof(float);
	if (last_a == A && last == n && !memcmp(xc, x, bytes))
		return u;
	grow(&xc, &cx, n * A->in);
	grow(&u, &cu, n * A->rank);
	memcpy(xc, x, bytes);
	lm_sgemm(0, 0, n, A->rank, A->in, 1.0f, x, A->in, A->a, A->rank, 0.0f, u, A->rank);
	last_a = A;
	last = n;
	return u;
}

void lm_lora(float *y, const float *x, long n, const struct lm_lora *l)
{
	static float *z;
	static long cz;
	if (l->lookup)
		lm_bug("an embedding's adapter applied to a product");
	const float *u = low_rank(l->A, x, n);
	grow(&z, &cz, n * l->out);
	lm_sgemm(0, 0, n, l->out, l->rank, 1.0f, u, l->rank, l->b, l->out, 0.0f, z, l->out);
	for (long t = 0; t < n; t++) {
		float *yt = y + t * l->out;
		const float *zt = z + t * l->out;
		for (long j = 0; j < l->out; j++)
			yt[j] += l->scale * zt[j];
		if (l->dora)
			for (long j = 0; j < l->out; j++)
				yt[j] *= l->dora[j];
	}
}

void lm_lora_lookup(float *x, const int *tok, long n, const struct lm_lora *l)
{
	for (long t = 0; t < n; t++) {
		const float *a = l->A->a + (size_t)tok[t] * l->rank;
		float *xt = x + t * l->out;
		for (long j = 0; j < l->out; j++) {
			float z = 0;
			for (long k = 0; k < l->rank; k++)
				z += a[k] * l->b[k * l->out + j];
			xt[j] += l->scale * z;
			if (l->dora)
				xt[j] *= l->dora[tok[t]];
		}
	}
}
