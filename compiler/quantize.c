/* quantize.c: `lmcc quantize`, a float checkpoint in the Hugging Face
 * layout to what `mlx_lm.convert -q` writes, so that mlx-lm loads it as
 * its own.
 *
 * The steps are convert's, in its order:
 *   1. sanitize: the tensors take their mlx-lm names and shapes
 *      (layout.c says which move how); Baichuan-M1's head is
 *      L2-normalised row by row, in float32, back in its own dtype;
 *   2. cast: every float tensor to the config's torch_dtype (the model's
 *      cast predicate exempts a few, Kimi's A_log, dt_bias and correction
 *      bias);
 *   3. quantize the modules that multiply (Linear, Embedding, expert
 *      stacks, Kimi's per-head MultiLinear, AFM-7's FusedLinear: here the
 *      >= 2-D `weight`s that are not convolutions), unless the input width
 *      is not a multiple of the group size; bits and group per module from
 *      the model's predicate (Kimi's router: 8 bits, group 64) or a mixed
 *      recipe, which replaces it;
 *   4. save: keys sorted, metadata {"format": "mlx"}, shards of at most
 *      5 GiB, the index, config.json with `quantization` (and its copy
 *      `quantization_config`) as save_config writes it.
 * Then a quality report: the quantized model's next-token distributions
 * against the source's on a fixed stream of tokens.
 *
 * Every output tensor is a 3-D strided view [A, B, C] of one source
 * tensor (or a stack of them): element (a, b, c) is source element
 * off + a*sa + b*sb + c*sc.  Quantization runs along C, the module's
 * input. */
#define _GNU_SOURCE
#include "build.h"
#include "cfg.h"
#include "cmd.h"
#include "emit.h"
#include "layout.h"
#include "plan.h"
#include "pyjson.h"
#include "stw.h"
#include "tmpl.h"
#include "../runtime/npy.h"
#include "../runtime/rt.h"
#include "../runtime/text/tok.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char help[] =
	"usage: lmcc quantize MODEL_DIR -o OUT [--bits B] [--group-size G] [--q-mode M]\n"
	"                     [--recipe R] [--min-agreement P] [--dequantized DIR]\n"
	"Write OUT: MODEL_DIR's float checkpoint quantized as mlx_lm.convert -q\n"
	"does (MLX's group quantization, mlx-lm's tensor names), which\n"
	"both lmcc and mlx-lm load.  Ends with a quality report: top-1 agreement\n"
	"and mean KL divergence of the quantized model's next-token distribution\n"
	"against the source's, on 512 tokens (text through the tokenizer when\n"
	"MODEL_DIR has one).\n"
	"  -o OUT             the directory to create (must not exist)\n"
	"  --bits B           2, 3, 4 (default), 5, 6 or 8\n"
	"  --group-size G     32, 64 (default) or 128 inputs share a scale and bias\n"
	"  --q-mode M         affine (default: the above), or one of MLX's FP\n"
	"                     modes, no biases: mxfp4 (4-bit E2M1 values, a power\n"
	"                     of two per 32), nvfp4 (E2M1, an FP8 scale per 16) or\n"
	"                     mxfp8 (8-bit E4M3 values, a power of two per 32)\n"
	"  --recipe R         mixed_2_6, mixed_3_4, mixed_3_6 or mixed_4_6: low bits\n"
	"                     for most layers, high bits for v and down projections\n"
	"                     of some layers and for the head (as mlx-lm's recipes)\n"
	"  --min-agreement P  fail (exit 2, OUT not written) when the top-1\n"
	"                     agreement is below P (a fraction, 0 to 1)\n"
	"  --dequantized DIR  also write DIR: the source layout in float32 holding\n"
	"                     the weights the quantized ones stand for\n"
	"  --no-report        skip the quality report\n"
	"  --show-tokens      print the report's token ids on stderr\n";

#define MAX_SHARD_BYTES (5L << 30)   /* save_model's MAX_FILE_SIZE_GB */

/* ---- the output tensors ------------------------------------------------- */

typedef struct {
	char name[MAX_TENSOR_NAME];  /* mlx-lm's name of the tensor ("....weight") */
	int ndim;
	long shape[5];
	int src;                     /* plan tensor; for a stack, the first expert */
	int *stack;                  /* plan tensor of each a, or 0 */
	long A, B, C, off, sa, sb, sc;
	int dtype;                   /* LM_F32 / LM_F16 / LM_BF16 after the cast */
	double l2;                   /* > 0: rows L2-normalised with this eps (sanitize) */
	int bits, group, mode;       /* quantized when bits > 0 */
} Out;

typedef struct {
	Plan p;
	lm_ckpt *ck;
	const char *dir;
	Out *o;
	int no, cap;
	int bits, group, mode, recipe_low, recipe_high, recipe_group_given, bits_given;
	const char *recipe;
	json_object *entries;        /* per-module `quantization` entries, in order */
	Buf skipped;                 /* modules left in float, for the log */
	int nskipped;
} Q;

static Out *add_out(Q *q, const char *name)
{
	if (q->no == q->cap) {
		q->cap = q->cap ? 2 * q->cap : 256;
		q->o = lm_realloc(q->o, q->cap * sizeof *q->o);
	}
	Out *o = &q->o[q->no++];
	memset(o, 0, sizeof *o);
	snprintf(o->name, sizeof o->name, "%s", name);
	return o;
}

static Out *find_out(Q *q, const char *name)
{
	for (int i = 0; i < q->no; i++)
		if (!strcmp(q->o[i].name, name))
			return &q->o[i];
	return NULL;
}

/* The whole tensor as [1, rows, C]. */
static void view_copy(Out *o, const Tensor *t)
{
	o->ndim = t->ndim;
	memcpy(o->shape, t->shape, sizeof o->shape);
	long n = plan_tensor_numel(t);
	o->C = t->ndim ? t->shape[t->ndim - 1] : 1;
	o->A = 1;
	o->B = n / o->C;
	o->sb = o->C;
	o->sc = 1;
}

/* The view [A, B, C] of plan tensor src: (a, b, c) at off + a*sa + b*sb + c*sc. */
static Out *view3(Out *o, int src, long A, long B, long C, long off, long sa, long sb, long sc)
{
	o->src = src;
	o->ndim = 3;
	o->shape[0] = o->A = A;
	o->shape[1] = o->B = B;
	o->shape[2] = o->C = C;
	o->off = off;
	o->sa = sa;
	o->sb = sb;
	o->sc = sc;
	return o;
}

/* Step 1: every tensor of the plan, under its mlx-lm name and shape. */
static void sanitize(Q *q)
{
	Plan *p = &q->p;
	char name[MAX_TENSOR_NAME];
	for (int i = 0; i < p->nt; i++) {
		const Tensor *t = &p->t[i];
		long layer, expert;
		const LayoutRule *r = layout_match(p->arch, t->name, &layer, &expert);
		int kind = r ? (int)r->kind : -1;
		if (kind == MAP_DROP)
			continue;
		layout_name(p->arch, t->name, 0, name, sizeof name);
		Out *o;
		switch (kind) {
		case MAP_STACK: {
			/* expert e is row block e of [E, out, in] */
			o = find_out(q, name);
			long E = p->layers[layer].moe.experts;
			if (!o) {
				o = view3(add_out(q, name), i, E, t->shape[0], t->shape[1], 0, 0, t->shape[1], 1);
				o->stack = lm_alloc(E * sizeof *o->stack);
				for (long e = 0; e < E; e++)
					o->stack[e] = -1;
			}
			if (expert < 0 || expert >= E || t->ndim != 2)
				lm_bug("%s: expert %ld of %ld", t->name, expert, E);
			o->stack[expert] = i;
			break;
		}
		case MAP_SPLIT_T: {
			/* [E, in, 2 * out]: half k, transposed to [E, out, in] */
			long E = t->shape[0], in = t->shape[1], out = t->shape[2] / 2;
			for (int k = 0; k < 2; k++) {
				layout_name(p->arch, t->name, k, name, sizeof name);
				view3(add_out(q, name), i, E, out, in, k * out, in * 2 * out, 1, 2 * out);
			}
			break;
		}
		case MAP_T: {
			/* [E, in, out] to [E, out, in] */
			long E = t->shape[0], in = t->shape[1], out = t->shape[2];
			view3(add_out(q, name), i, E, out, in, 0, in * out, 1, out);
			break;
		}
		case MAP_KV_B: {
			/* per head h: embed_q[h] [lora, nope] is the key rows
			 * transposed, unembed_out[h] [v, lora] the value rows */
			const Mla *m = &p->layers[layer].mla;
			long per = (long)(m->nope + m->vd) * m->lora;
			layout_name(p->arch, t->name, 0, name, sizeof name);
			view3(add_out(q, name), i, m->heads, m->lora, m->nope, 0, per, 1, m->lora);
			layout_name(p->arch, t->name, 1, name, sizeof name);
			view3(add_out(q, name), i, m->heads, m->vd, m->lora, (long)m->nope * m->lora, per,
			      m->lora, 1);
			break;
		}
		case MAP_CONV:
			/* [C, 1, K] -> [C, K, 1]: the same bytes, another shape */
			o = add_out(q, name);
			o->src = i;
			view_copy(o, t);
			if (t->ndim == 3 && t->shape[2] != 1) {
				o->shape[1] = t->shape[2];
				o->shape[2] = t->shape[1];
				if (t->shape[1] != 1)
					lm_bug("%s: a conv with %ld input channels per group", t->name, t->shape[1]);
			}
			o->C = o->shape[o->ndim - 1];
			o->B = plan_tensor_numel(t) / o->C;
			o->sb = o->C;
			break;
		default:
			/* MAP_RENAME or no rule: the same data */
			o = add_out(q, name);
			o->src = i;
			view_copy(o, t);
			/* mlx-lm's sanitize L2-normalises Baichuan's lm_head before
			 * anything else (the loader must then not do it again) */
			if (p->head_l2 > 0 && !p->head_tied && i == p->head.t)
				o->l2 = p->head_l2;
			break;
		}
	}
	for (int i = 0; i < q->no; i++)
		for (long a = 0; q->o[i].stack && a < q->o[i].A; a++)
			if (q->o[i].stack[a] < 0)
				lm_bug("%s: expert %ld missing from the plan", q->o[i].name, a);
}

/* ---- which modules, how many bits ---------------------------------------- */

/* Modules with to_quantized in mlx-lm: in these models exactly the >= 2-D
 * weights that are not convolutions. */
static int quantizable(const Q *q, const Out *o)
{
	size_t n = strlen(o->name);
	if (o->ndim < 2 || n < 7 || strcmp(o->name + n - 7, ".weight"))
		return 0;
	long layer, expert;
	const LayoutRule *r = layout_match(q->p.arch, q->p.t[o->src].name, &layer, &expert);
	return !r || r->kind != MAP_CONV;
}

/* The model's cast_predicate: tensors kept in their stored dtype. */
static int keeps_dtype(const char *arch, const char *name)
{
	if (strcmp(arch, "kimi_linear"))
		return 0;
	size_t n = strlen(name);
	return strstr(name, "e_score_correction_bias")
	       || (n >= 5 && !strcmp(name + n - 5, "A_log"))
	       || (n >= 7 && !strcmp(name + n - 7, "dt_bias"));
}

static int ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);
	return n >= k && !strcmp(s + n - k, suffix);
}

/* mlx-lm's mixed recipes (convert.py): the layer index is the first
 * numeric component of a down_proj's path; layers in the first and last
 * eighth, and every third in between, get more bits for v and down
 * projections; the head always does. */
static int recipe_bits(Q *q, const char *path, int loc)
{
	char parts[MAX_TENSOR_NAME];
	snprintf(parts, sizeof parts, "%s", path);
	long index = 0;
	int k = 0;
	for (char *s = strtok(parts, "."); s; s = strtok(NULL, "."), k++)
		if (k == loc) {
			char *end;
			index = strtol(s, &end, 10);
			if (*end || !*s)
				lm_fail(q->dir, "--recipe %s: module '%s' has no layer index at component %d",
				        q->recipe, path, loc);
		}
	long nl = q->p.nl;
	int more = index < nl / 8 || index >= 7 * nl / 8 || (index - nl / 8) % 3 == 2;
	if ((strstr(path, "v_proj") || strstr(path, "v_a_proj") || strstr(path, "v_b_proj")) && more)
		return q->recipe_high;
	if (strstr(path, "down_proj") && more)
		return q->recipe_high;
	if (strstr(path, "lm_head"))
		return q->recipe_high;
	return q->recipe_low;
}

static void entry(Q *q, const char *path, int group, int bits, int with_mode)
{
	json_object *e = json_object_new_object();
	json_object_object_add(e, "group_size", group ? json_object_new_int(group) : NULL);
	json_object_object_add(e, "bits", json_object_new_int(bits));
	if (with_mode)
		json_object_object_add(e, "mode", json_object_new_string("affine"));
	json_object_object_add(q->entries, path, e);
}

/* Step 3's choices, per module, as quantize_model's predicate makes them. */
static void choose(Q *q)
{
	int loc = -1;
	if (q->recipe) {
		for (int i = 0; i < q->no && loc < 0; i++)
			if (strstr(q->o[i].name, "down_proj")) {
				char parts[MAX_TENSOR_NAME];
				snprintf(parts, sizeof parts, "%s", q->o[i].name);
				int k = 0;
				for (char *s = strtok(parts, "."); s; s = strtok(NULL, "."), k++)
					if (*s >= '0' && *s <= '9') {
						loc = k;
						break;
					}
			}
		if (loc < 0)
			lm_fail(q->dir, "--recipe %s: the model has no down_proj with a layer index", q->recipe);
	}
	for (int i = 0; i < q->no; i++) {
		Out *o = &q->o[i];
		if (!quantizable(q, o))
			continue;
		char path[MAX_TENSOR_NAME];
		snprintf(path, sizeof path, "%.*s", (int)strlen(o->name) - 7, o->name);
		/* FusedLinear.to_quantized takes no mode: its entry has none,
		 * which is what lets mlx-lm load an AFM-7 checkpoint */
		int fused = !strcmp(q->p.arch, "afm7") && ends_with(path, "qkv_proj");
		int bits = q->bits, group = q->group, mode = q->mode;
		if (fused || (!strcmp(q->p.arch, "kimi_linear") && ends_with(path, "mlp.gate")))
			mode = LM_AFFINE;
		if (fused && group < 32)
			group = 32;        /* nvfp4's 16 is no affine group */
		if (o->C % q->group) {
			bits = 0;
		} else if (q->p.head_l2 > 0 && q->p.head_tied && o->src == q->p.embed.t) {
			/* a tied NormHead (Baichuan-M1) normalises the embedding's
			 * float rows when read; the reference has no head then */
			bprintf(&q->skipped, "%s%s [the tied, row-normalised head]", q->nskipped++ ? ", " : "", path);
			continue;
		} else if (q->recipe) {
			bits = recipe_bits(q, path, loc);
			entry(q, path, q->recipe_group_given ? group : 0, bits, !fused);
		} else if (!strcmp(q->p.arch, "kimi_linear") && ends_with(path, "mlp.gate")) {
			bits = 8;          /* kimi_linear's quant_predicate: the router */
			group = 64;
			entry(q, path, group, bits, 0);
		} else if (fused) {
			entry(q, path, group, bits, 0);
		}
		if (bits && o->C % group) {
			/* a per-module group that does not divide the input (the
			 * reference would fail in mx.quantize): float, no entry */
			json_object_object_del(q->entries, path);
			bits = 0;
		}
		if (!bits) {
			bprintf(&q->skipped, "%s%s [%ld inputs, not a multiple of the group]",
			        q->nskipped++ ? ", " : "", path, o->C);
			continue;
		}
		o->bits = bits;
		o->group = group;
		o->mode = mode;
	}
}

/* ---- the data --------------------------------------------------------------- */

static const char *dtype_name(int dtype)
{
	return dtype == LM_F32 ? "F32" : dtype == LM_F16 ? "F16" : "BF16";
}

static void store(void *dst, long i, float f, int dtype)
{
	if (dtype == LM_F32)
		((float *)dst)[i] = f;
	else
		((uint16_t *)dst)[i] = dtype == LM_BF16 ? lm_f32_to_bf16(f) : lm_f32_to_f16(f);
}

typedef struct {
	const void *data;
	int dtype;
} Src;

static Src src_of(Q *q, int t)
{
	const Tensor *pt = &q->p.t[t];
	long n = plan_tensor_numel(pt);
	lm_mat m = lm_ck_mat(q->ck, pt->name, pt->ndim, pt->shape, 0, 0, 1, n, n);
	return (Src){m.data, m.dtype};
}

/* Row (a, b) of o, as the cast leaves it (steps 1 and 2). */
static void row_of(Q *q, const Out *o, const Src *src, long a, long b, float *w)
{
	Src s = src[o->stack ? a : 0];
	long base = o->stack ? b * o->sb : o->off + a * o->sa + b * o->sb;
	for (long c = 0; c < o->C; c++)
		w[c] = lm_load_f32(s.data, s.dtype, base + c * o->sc);
	if (o->l2 > 0) {
		double ss = 0;
		for (long c = 0; c < o->C; c++)
			ss += (double)w[c] * w[c];
		float norm = (float)sqrt(ss) + (float)o->l2;
		for (long c = 0; c < o->C; c++)
			w[c] = lm_round_to(w[c] / norm, s.dtype);
	}
	for (long c = 0; c < o->C; c++)
		w[c] = lm_round_to(w[c], o->dtype);
}

/* A quantized module: its packed words, scales and biases (in o->dtype). */
typedef struct {
	Q *q;
	const Out *o;
	const Src *src;
	uint32_t *packed;
	void *scales, *biases;
	float *deq;                  /* dequantized rows, when asked for */
	int written;                 /* of the three parts */
} Job;

static void quantize_rows(void *ctx, long r0, long r1)
{
	Job *j = ctx;
	const Out *o = j->o;
	long C = o->C, ng = C / o->group, words = C * o->bits / 32;
	float *w = lm_alloc(C * sizeof *w), *s = lm_alloc(ng * 4), *b = lm_alloc(ng * 4);
	for (long r = r0; r < r1; r++) {
		row_of(j->q, o, j->src, r / o->B, r % o->B, w);
		uint32_t *pk = j->packed + r * words;
		if (o->mode != LM_AFFINE) {
			uint8_t *sb = (uint8_t *)j->scales + r * ng;
			lm_fp_quantize(w, C, o->mode, o->dtype, pk, sb);
			/* the twin reads the row as the kernels do */
			lm_mat W = {.data = pk, .dtype = LM_Q, .rows = 1, .cols = C, .ld = words,
			            .bits = o->bits, .group = o->group, .sdtype = LM_U8,
			            .mode = o->mode, .scales = sb, .sld = ng};
			if (j->deq)
				lm_qrow(j->deq + r * C, &W, 0);
			continue;
		}
		lm_affine_quantize(w, C, o->bits, o->group, pk, s, b);
		for (long g = 0; g < ng; g++) {
			store(j->scales, r * ng + g, s[g], o->dtype);
			store(j->biases, r * ng + g, b[g], o->dtype);
			s[g] = lm_round_to(s[g], o->dtype);
			b[g] = lm_round_to(b[g], o->dtype);
		}
		if (j->deq)
			lm_affine_dequantize(pk, s, b, C, o->bits, o->group, j->deq + r * C);
	}
	free(w);
	free(s);
	free(b);
}

/* ---- the files ------------------------------------------------------------------ */

/* The tensors as saved: each quantized module's weight (U32), scales and
 * biases, everything else as it is, sorted by name. */
typedef struct {
	StwTensor t;
	int out;                     /* index in Q.o */
	int part;                    /* 0 the data (float or packed), 1 scales, 2 biases */
} Saved;

static int by_name(const void *a, const void *b)
{
	return strcmp(((const Saved *)a)->t.name, ((const Saved *)b)->t.name);
}

static Saved *saved_list(Q *q, int *n)
{
	Saved *s = lm_alloc(3 * q->no * sizeof *s);
	int k = 0;
	for (int i = 0; i < q->no; i++) {
		const Out *o = &q->o[i];
		int parts = !o->bits ? 1 : o->mode == LM_AFFINE ? 3 : 2;
		for (int part = 0; part < parts; part++) {
			Saved *v = &s[k++];
			v->out = i;
			v->part = part;
			v->t.ndim = o->ndim;
			memcpy(v->t.shape, o->shape, sizeof o->shape);
			v->t.dtype = dtype_name(o->dtype);
			snprintf(v->t.name, sizeof v->t.name, "%s", o->name);
			if (!o->bits)
				continue;
			size_t base = strlen(o->name) - 7;
			if (part == 0) {
				v->t.dtype = "U32";
				v->t.shape[o->ndim - 1] = o->C * o->bits / 32;
			} else {
				snprintf(v->t.name + base, sizeof v->t.name - base, part == 1 ? ".scales" : ".biases");
				v->t.shape[o->ndim - 1] = o->C / o->group;
				if (o->mode != LM_AFFINE)
					v->t.dtype = "U8";
			}
		}
	}
	qsort(s, k, sizeof *s, by_name);
	*n = k;
	return s;
}

/* The dequantized twin (--dequantized): the plan's tensors in float32. */
typedef struct {
	float **t;                   /* per plan tensor, or 0 */
} Twin;

static void twin_put(Q *q, Twin *tw, const Out *o, long a, long b, const float *w)
{
	int t = o->stack ? o->stack[a] : o->src;
	if (!tw->t[t])
		tw->t[t] = lm_alloc(plan_tensor_numel(&q->p.t[t]) * sizeof(float));
	long base = o->stack ? b * o->sb : o->off + a * o->sa + b * o->sb;
	for (long c = 0; c < o->C; c++)
		tw->t[t][base + c * o->sc] = w[c];
}

/* get_total_parameters counts the parameters of leaf modules only: not
 * those held by a block beside its children (AFM-7's quant_key_scale,
 * Kimi's A_log, PLaMo-2's D, Baichuan's conv_k), whose names do not end
 * in weight or bias. */
static int counted(const char *name)
{
	return ends_with(name, ".weight") || ends_with(name, ".bias");
}

/* Writes the shards of the saved tensors into dir; returns the bytes. */
static long write_weights(Q *q, const char *dir, Twin *tw, long *params)
{
	int n;
	Saved *s = saved_list(q, &n);
	long total = 0;
	for (int i = 0; i < n; i++)
		total += stw_bytes(&s[i].t);
	/* save_model's shards: a new one when the next tensor would pass 5 GiB */
	int *shard = lm_alloc(n * sizeof *shard), nshards = 1;
	long size = 0;
	for (int i = 0; i < n; i++) {
		long b = stw_bytes(&s[i].t);
		if (size + b > MAX_SHARD_BYTES && size > 0) {
			nshards++;
			size = 0;
		}
		shard[i] = nshards - 1;
		size += b;
	}

	Progress prog;
	progress_start(&prog, "quantize", total);
	json_object *map = json_object_new_object();
	*params = 0;
	Job *jobs = lm_alloc(q->no * sizeof *jobs);     /* a module's parts, until written */
	for (int f = 0, i = 0; f < nshards; f++) {
		char fname[64];
		if (nshards > 1)
			snprintf(fname, sizeof fname, "model-%05d-of-%05d.safetensors", f + 1, nshards);
		else
			snprintf(fname, sizeof fname, "model.safetensors");
		int first = i;
		while (i < n && shard[i] == f)
			i++;
		StwTensor *st = lm_alloc((i - first) * sizeof *st);
		for (int k = first; k < i; k++)
			st[k - first] = s[k].t;
		char *path = lm_path(dir, fname);
		Stw *w = stw_create(path, "mlx", st, i - first, &prog);
		for (int k = first; k < i; k++) {
			const Out *o = &q->o[s[k].out];
			json_object_object_add(map, s[k].t.name, json_object_new_string(fname));
			Src src[1] = {{0}};
			Src *srcs = src;
			if (o->stack) {
				srcs = lm_alloc(o->A * sizeof *srcs);
				for (long a = 0; a < o->A; a++)
					srcs[a] = src_of(q, o->stack[a]);
			} else {
				src[0] = src_of(q, o->src);
			}
			if (!o->bits) {
				long bytes = stw_bytes(&s[k].t);
				void *buf = lm_alloc(bytes);
				float *row = lm_alloc(o->C * sizeof *row);
				for (long r = 0; r < o->A * o->B; r++) {
					row_of(q, o, srcs, r / o->B, r % o->B, row);
					for (long c = 0; c < o->C; c++)
						store(buf, r * o->C + c, row[c], o->dtype);
					if (tw)
						twin_put(q, tw, o, r / o->B, r % o->B, row);
				}
				stw_write(w, buf, bytes);
				if (counted(o->name))
					*params += bytes / lm_dtype_size(o->dtype);
				free(buf);
				free(row);
			} else {
				Job *j = &jobs[s[k].out];
				long rows = o->A * o->B, ng = o->C / o->group;
				if (!j->packed) {
					*j = (Job){q, o, srcs, lm_alloc(rows * o->C * o->bits / 8),
					           lm_alloc(rows * ng * 4), lm_alloc(rows * ng * 4), NULL, 0};
					if (tw)
						j->deq = lm_alloc(rows * o->C * sizeof(float));
					lm_parallel(rows, 1, quantize_rows, j);
					if (tw)
						for (long r = 0; r < rows; r++)
							twin_put(q, tw, o, r / o->B, r % o->B, j->deq + r * o->C);
					free(j->deq);
					j->deq = NULL;
					*params += rows * o->C;
				}
				size_t es = o->mode == LM_AFFINE ? lm_dtype_size(o->dtype) : 1;
				if (s[k].part == 0)
					stw_write(w, j->packed, rows * o->C * o->bits / 8);
				else
					stw_write(w, s[k].part == 1 ? j->scales : j->biases, rows * ng * es);
				/* the parts sort biases, scales, weight: free after the last */
				if (++j->written == (o->mode == LM_AFFINE ? 3 : 2)) {
					free(j->packed);
					free(j->scales);
					free(j->biases);
				}
			}
			if (srcs != src)
				free(srcs);
		}
		stw_close(w);
		free(path);
		free(st);
	}
	progress_end(&prog);

	/* model.safetensors.index.json, as save_model writes it */
	json_object *idx = json_object_new_object(), *meta = json_object_new_object();
	json_object_object_add(meta, "total_size", json_object_new_int64(total));
	json_object_object_add(meta, "total_parameters", json_object_new_int64(*params));
	json_object_object_add(idx, "metadata", meta);
	json_object_object_add(idx, "weight_map", map);
	py_json_file(dir, "model.safetensors.index.json", idx);
	json_object_put(idx);
	free(jobs);
	free(shard);
	free(s);
	return total;
}

/* config.json as save_config writes it: the source's, less _name_or_path
 * and vision_config, plus quantization and its copy quantization_config,
 * top-level keys sorted. */
static int by_key(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void write_config(Q *q, json_object *src, const char *dir)
{
	json_object *quant = json_object_new_object();
	json_object_object_add(quant, "group_size", json_object_new_int(q->group));
	json_object_object_add(quant, "bits", json_object_new_int(q->bits));
	json_object_object_add(quant, "mode", json_object_new_string(lm_qmode_name(q->mode)));
	json_object_object_foreach(q->entries, k, v)
		json_object_object_add(quant, k, json_object_get(v));
	json_object_object_del(src, "_name_or_path");
	json_object_object_del(src, "vision_config");
	json_object_object_add(src, "quantization", quant);
	json_object_object_add(src, "quantization_config", json_object_get(quant));

	int n = json_object_object_length(src), nk = 0;
	char **keys = lm_alloc(n * sizeof *keys);
	json_object_object_foreach(src, key, val) {
		(void)val;
		keys[nk++] = key;
	}
	qsort(keys, n, sizeof *keys, by_key);
	json_object *sorted = json_object_new_object();
	for (int i = 0; i < n; i++) {
		json_object *v;
		json_object_object_get_ex(src, keys[i], &v);
		json_object_object_add(sorted, keys[i], json_object_get(v));
	}
	py_json_file(dir, "config.json", sorted);
	free(keys);
	json_object_put(sorted);
}

/* The cast dtype of convert: torch_dtype, else text_config.dtype, if it
 * names a float type; -1 keeps each tensor's own. */
static int cast_dtype(json_object *cfg)
{
	json_object *v = NULL, *tc;
	if (!json_object_object_get_ex(cfg, "torch_dtype", &v) || !v)
		if (json_object_object_get_ex(cfg, "text_config", &tc) && json_object_is_type(tc, json_type_object))
			json_object_object_get_ex(tc, "dtype", &v);
	const char *s = v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : "";
	return !strcmp(s, "float32") ? LM_F32 : !strcmp(s, "float16") ? LM_F16
	       : !strcmp(s, "bfloat16") ? LM_BF16 : -1;
}

/* The files mlx-lm takes along with a model (utils.py's allow patterns),
 * but for the config and the weights, which are written anew. */
static int taken_along(const char *f)
{
	static const char *const ext[] = {".json", ".py", ".tiktoken", ".txt", ".jsonl", ".jinja"};
	if (f[0] == '.' || !strcmp(f, "config.json") || !strcmp(f, "model.safetensors.index.json"))
		return 0;
	if (!strcmp(f, "tokenizer.model") || !strcmp(f, "tiktoken.model"))
		return 1;
	for (size_t i = 0; i < sizeof ext / sizeof ext[0]; i++)
		if (ends_with(f, ext[i]))
			return 1;
	return 0;
}

static void copy_file(const char *from, const char *to)
{
	size_t len;
	char *data = lm_read_file(from, &len);
	if (!data)
		lm_fail(from, "cannot read: %s", strerror(errno));
	FILE *f = fopen(to, "wb");
	if (!f || fwrite(data, 1, len, f) != len || fclose(f))
		lm_fail(to, "cannot write: %s", strerror(errno));
	free(data);
}

static int copy_along(const char *from, const char *to)
{
	DIR *d = opendir(from);
	if (!d)
		lm_fail(from, "cannot open: %s", strerror(errno));
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		char *src = lm_path(from, e->d_name);
		struct stat st;
		if (taken_along(e->d_name) && !stat(src, &st) && S_ISREG(st.st_mode)) {
			char *dst = lm_path(to, e->d_name);
			copy_file(src, dst);
			free(dst);
			n++;
		}
		free(src);
	}
	closedir(d);
	return n;
}

/* ---- the quality report ----------------------------------------------------------- */

/* Enough plain text for 512 tokens of any of the tokenizers; repeated if
 * one needs more. */
static const char report_text[] =
	"It was the best of times, it was the worst of times, it was the age of "
	"wisdom, it was the age of foolishness, it was the epoch of belief, it was "
	"the epoch of incredulity, it was the season of Light, it was the season of "
	"Darkness, it was the spring of hope, it was the winter of despair, we had "
	"everything before us, we had nothing before us, we were all going direct "
	"to Heaven, we were all going direct the other way.\n\n"
	"A language model reads a stream of tokens and, at every position, gives a "
	"distribution over the next one. Quantizing its weights to a few bits each "
	"changes those distributions a little; how little is what this text is "
	"here to measure. The numbers 3.14159, 2.71828 and 1.41421 appear, as do "
	"lists: apples, pears, plums; code: for (int i = 0; i < n; i++) sum += x[i];\n"
	"The quick brown fox jumps over the lazy dog. Pack my box with five dozen "
	"liquor jugs. How vexingly quick daft zebras jump! Sphinx of black quartz, "
	"judge my vow. Il était une fois une petite fille de village, la plus jolie "
	"qu'on eût su voir. Es war einmal ein kleines süßes Mädchen. 昔々、ある所に"
	"おじいさんとおばあさんが住んでいました。 Жили-были дед да баба.\n\n"
	"In the beginning the Universe was created. This has made a lot of people "
	"very angry and been widely regarded as a bad move. Far out in the "
	"uncharted backwaters of the unfashionable end of the western spiral arm of "
	"the Galaxy lies a small unregarded yellow sun. Orbiting this at a distance "
	"of roughly ninety-two million miles is an utterly insignificant little "
	"blue green planet whose ape-descended life forms are so amazingly "
	"primitive that they still think digital watches are a pretty neat idea.\n";

enum { REPORT_TOKENS = 512 };

static int *report_tokens(const Plan *p, const char *dir, long *n, const char **how)
{
	long want = REPORT_TOKENS;
	if (p->max_ctx > 0 && p->max_ctx < want)
		want = p->max_ctx;
	int *ids = lm_alloc(want * sizeof *ids);
	lm_tok *tok = lm_tok_open(dir);
	long k = 0;
	if (tok && lm_tok_n_vocab(tok) <= p->vocab) {
		while (k < want) {
			int *t, m = lm_tok_encode(tok, report_text, strlen(report_text), k == 0, &t);
			for (int i = 0; i < m && k < want; i++)
				ids[k++] = t[i];
			free(t);
			if (m == 0)
				break;
		}
		*how = "text through the tokenizer";
	}
	if (k < want) {
		uint64_t s = 12345;
		for (k = 0; k < want; k++) {
			s = s * 6364136223846793005ull + 1442695040888963407ull;
			ids[k] = (int)((s >> 33) % (uint64_t)p->vocab);
		}
		*how = "deterministic ids";
	}
	lm_tok_free(tok);
	*n = want;
	return ids;
}

/* The logits [n, vocab] of the model in dir at every position of ids,
 * through the JIT path `lmcc run` takes. */
static float *run_logits(const char *dir, const char *label, const int *ids, long n,
                         const char *tmp, long *vocab)
{
	Plan p;
	char *cfg = lm_path(dir, "config.json");
	plan_read(&p, cfg, dir, 1);
	if (label)
		snprintf(p.name, sizeof p.name, "%s", label);
	char *weights = realpath(dir, NULL);
	if (!weights)
		lm_fail(dir, "cannot open: %s", strerror(errno));
	char *src = emit_model(&p, weights);
	Buf toks = {0};
	for (long i = 0; i < n; i++)
		bprintf(&toks, "%s%d", i ? "," : "", ids[i]);
	char *out = lm_path(tmp, "logits.npy");
	char *argv[] = {"run", "--tokens", toks.s, "--logits-out", out, NULL};
	fflush(stdout);
	int saved = dup(1), null = open("/dev/null", O_WRONLY);
	dup2(null, 1);                    /* the run prints no ids: -n 0 */
	int rc = run_tcc(src, 5, argv);
	fflush(stdout);
	dup2(saved, 1);
	close(saved);
	close(null);
	if (rc)
		lm_bug("the run of %s exited %d", dir, rc);
	lm_npy a = lm_npy_read(out);
	if (a.type != LM_NPY_F32 || a.ndim != 2 || a.shape[0] != n)
		lm_bug("%s: unexpected logits", out);
	*vocab = a.shape[1];
	unlink(out);
	free(out);
	free(toks.s);
	free(src);
	free(weights);
	free(cfg);
	plan_free(&p);
	return a.data;
}

typedef struct {
	long n;
	double agree, kl;
	const char *how;
} Report;

/* Top-1 agreement and mean KL(source || quantized) of the next-token
 * distributions, in double. */
static Report compare(const float *ref, const float *got, long n, long V)
{
	Report r = {n, 0, 0, NULL};
	for (long t = 0; t < n; t++) {
		const float *a = ref + t * V, *b = got + t * V;
		long ia = 0, ib = 0;
		double ma = a[0], mb = b[0];
		for (long v = 1; v < V; v++) {
			if (a[v] > ma) ma = a[v], ia = v;
			if (b[v] > mb) mb = b[v], ib = v;
		}
		double za = 0, zb = 0;
		for (long v = 0; v < V; v++) {
			za += exp(a[v] - ma);
			zb += exp(b[v] - mb);
		}
		double la = ma + log(za), lb = mb + log(zb), kl = 0;
		for (long v = 0; v < V; v++) {
			double lpa = a[v] - la, lpb = b[v] - lb;
			kl += exp(lpa) * (lpa - lpb);
		}
		r.agree += ia == ib;
		r.kl += kl;
	}
	r.agree /= n;
	r.kl /= n;
	return r;
}

/* ---- the command ------------------------------------------------------------------- */

static char *tmp_dir;                 /* removed at exit unless renamed */

static void remove_dir(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
			char *f = lm_path(dir, e->d_name);
			struct stat st;
			if (!lstat(f, &st) && S_ISDIR(st.st_mode))
				remove_dir(f);
			else
				unlink(f);
			free(f);
		}
	closedir(d);
	rmdir(dir);
}

static void cleanup(void)
{
	if (tmp_dir)
		remove_dir(tmp_dir);
}

static int takes_value(const char *flag)
{
	static const char *const f[] = {"-o", "--bits", "--q-bits", "--group-size", "--q-group-size", "--q-mode",
	                                 "--recipe", "--quant-predicate", "--min-agreement", "--dequantized"};
	for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
		if (!strcmp(flag, f[i]))
			return 1;
	return 0;
}

static long int_arg(const char *flag, const char *v)
{
	char *end;
	long x = strtol(v, &end, 10);
	if (!*v || *end)
		lm_fail(NULL, "%s: '%s' is not an integer", flag, v);
	return x;
}

int cmd_quantize(int argc, char **argv)
{
	const char *dir = NULL, *out = NULL, *deq_dir = NULL;
	double min_agree = -1;
	int report = 1, show = 0;
	Q q = {.bits = 4, .group = 64};
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			fputs(help, stdout);
			return 0;
		} else if (!strcmp(a, "-o") && v) {
			out = v;
			i++;
		} else if ((!strcmp(a, "--bits") || !strcmp(a, "--q-bits")) && v) {
			q.bits = (int)int_arg(a, v);
			if (q.bits < 2 || q.bits > 8 || q.bits == 7)
				lm_fail(NULL, "%s: %s is not 2, 3, 4, 5, 6 or 8", a, v);
			q.bits_given = 1;
			i++;
		} else if (!strcmp(a, "--q-mode") && v) {
			q.mode = lm_qmode_parse(v);
			if (q.mode < 0)
				lm_fail(NULL, "--q-mode: '%s' is not affine, mxfp4, nvfp4 or mxfp8", v);
			i++;
		} else if ((!strcmp(a, "--group-size") || !strcmp(a, "--q-group-size")) && v) {
			q.group = (int)int_arg(a, v);
			q.recipe_group_given = 1;
			i++;
		} else if ((!strcmp(a, "--recipe") || !strcmp(a, "--quant-predicate")) && v) {
			static const char *const r[] = {"mixed_2_6", "mixed_3_4", "mixed_3_6", "mixed_4_6"};
			static const int low[] = {2, 3, 3, 4}, high[] = {6, 4, 6, 6};
			for (int k = 0; k < 4; k++)
				if (!strcmp(v, r[k])) {
					q.recipe = r[k];
					q.recipe_low = low[k];
					q.recipe_high = high[k];
				}
			if (!q.recipe)
				lm_fail(NULL, "%s: '%s' is not mixed_2_6, mixed_3_4, mixed_3_6 or mixed_4_6", a, v);
			i++;
		} else if (!strcmp(a, "--min-agreement") && v) {
			char *end;
			min_agree = strtod(v, &end);
			if (!*v || *end || !(min_agree >= 0 && min_agree <= 1))
				lm_fail(NULL, "--min-agreement: '%s' is not a fraction between 0 and 1", v);
			i++;
		} else if (!strcmp(a, "--dequantized") && v) {
			deq_dir = v;
			i++;
		} else if (!strcmp(a, "--no-report")) {
			report = 0;
		} else if (!strcmp(a, "--show-tokens")) {
			show = 1;
		} else if (a[0] != '-' && !dir) {
			dir = a;
		} else if (!v && takes_value(a)) {
			lm_fail(NULL, "quantize: %s needs a value (see lmcc quantize --help)", a);
		} else {
			lm_fail(NULL, "quantize: unexpected argument '%s' (see lmcc quantize --help)", a);
		}
	}
	if (!dir || !out)
		lm_fail(NULL, "quantize: needs MODEL_DIR and -o OUT (see lmcc quantize --help)");
	if (q.mode != LM_AFFINE) {
		/* MLX's quantize takes the mode's own bits and group size only */
		int b = q.mode == LM_MXFP8 ? 8 : 4, g = q.mode == LM_NVFP4 ? 16 : 32;
		const char *m = lm_qmode_name(q.mode);
		if (q.recipe)
			lm_fail(NULL, "--recipe %s: mlx-lm's recipes are affine only (--q-mode %s)", q.recipe, m);
		if (q.bits_given && q.bits != b)
			lm_fail(NULL, "--bits %d: --q-mode %s has %d bits", q.bits, m, b);
		if (q.recipe_group_given && q.group != g)
			lm_fail(NULL, "--group-size %d: --q-mode %s has groups of %d", q.group, m, g);
		q.bits = b;
		q.group = g;
	} else if (q.group != 32 && q.group != 64 && q.group != 128) {
		lm_fail(NULL, "--group-size: %d is not 32, 64 or 128", q.group);
	}
	if (min_agree >= 0 && !report)
		lm_fail(NULL, "--min-agreement needs the quality report (drop --no-report)");
	struct stat st;
	if (!stat(out, &st))
		lm_fail(out, "exists; give a new directory");
	if (deq_dir && !stat(deq_dir, &st))
		lm_fail(deq_dir, "exists; give a new directory");

	double t0 = lm_now();
	char *cpath = lm_path(dir, "config.json");
	q.dir = dir;
	plan_read(&q.p, cpath, dir, 1);
	if (q.p.layout != LAYOUT_HF)
		lm_fail(dir, "the checkpoint is in mlx-lm's layout; lmcc quantize reads the Hugging Face layout");
	json_object *cfg = json_object_from_file(cpath);
	if (!cfg || !json_object_is_type(cfg, json_type_object))
		lm_fail(cpath, "cannot read the config");
	if (json_object_object_get_ex(cfg, "quantization", NULL)
	    || json_object_object_get_ex(cfg, "quantization_config", NULL))
		lm_fail(cpath, "field 'quantization': the model is quantized already");
	q.ck = lm_ck_open(dir);
	sanitize(&q);
	int cast = cast_dtype(cfg);
	for (int i = 0; i < q.no; i++) {
		Out *o = &q.o[i];
		int own = lm_ck_info(q.ck, q.p.t[o->src].name, NULL, NULL);
		if (own < 0)
			lm_fail(dir, "tensor '%s' is missing or not F32, F16 or BF16", q.p.t[o->src].name);
		o->dtype = cast >= 0 && !keeps_dtype(q.p.arch, o->name) ? cast : own;
	}
	q.entries = json_object_new_object();
	choose(&q);

	/* everything goes to a sibling of OUT, renamed at the very end */
	char *slash = strrchr(out, '/');
	if (asprintf(&tmp_dir, "%.*s.quantize-XXXXXX", (int)strlen(out), out) < 0 || !mkdtemp(tmp_dir))
		lm_fail(out, "cannot create a directory beside it: %s", strerror(errno));
	(void)slash;
	atexit(cleanup);
	mode_t mask = umask(0);          /* mkdtemp's 0700 would outlive the rename */
	umask(mask);
	chmod(tmp_dir, 0777 & ~mask);
	char *twin_dir = NULL;
	Twin tw = {0};
	if (deq_dir) {
		tw.t = lm_alloc(q.p.nt * sizeof *tw.t);
		twin_dir = lm_path(tmp_dir, "dequantized");
		make_dirs(twin_dir);
	}

	long params;
	long bytes = write_weights(&q, tmp_dir, tw.t ? &tw : NULL, &params);
	write_config(&q, cfg, tmp_dir);
	int copied = copy_along(dir, tmp_dir);
	long nq = 0;
	for (int i = 0; i < q.no; i++)
		nq += q.o[i].bits > 0;
	fprintf(stderr, "lmcc: quantize: %ld modules quantized (%d bits, group %d%s%s), %.3f bits per weight, "
	        "%.3f GB; %d files taken along\n", nq, q.bits, q.group, q.recipe ? ", recipe " : "",
	        q.recipe ? q.recipe : "", bytes * 8.0 / params, bytes / 1e9, copied);
	if (q.nskipped)
		fprintf(stderr, "lmcc: quantize: left in float: %s\n",
		        q.skipped.s);

	if (tw.t) {
		/* the source layout, float32, the dequantized weights */
		StwTensor *t = lm_alloc(q.p.nt * sizeof *t);
		for (int i = 0; i < q.p.nt; i++) {
			snprintf(t[i].name, sizeof t[i].name, "%s", q.p.t[i].name);
			t[i].dtype = "F32";
			t[i].ndim = q.p.t[i].ndim;
			memcpy(t[i].shape, q.p.t[i].shape, sizeof t[i].shape);
		}
		char *tp = lm_path(twin_dir, "model.safetensors");
		Stw *w = stw_create(tp, "pt", t, q.p.nt, NULL);
		for (int i = 0; i < q.p.nt; i++) {
			long n = plan_tensor_numel(&q.p.t[i]);
			if (!tw.t[i])
				lm_bug("%s: not in the dequantized checkpoint", q.p.t[i].name);
			stw_write(w, tw.t[i], n * sizeof(float));
			free(tw.t[i]);
		}
		stw_close(w);
		char *cdst = lm_path(twin_dir, "config.json");
		copy_file(cpath, cdst);
		copy_along(dir, twin_dir);
		free(cdst);
		free(tp);
		free(t);
		free(tw.t);
	}

	if (report) {
		Report r;
		long n, V1, V2;
		int *ids = report_tokens(&q.p, dir, &n, &r.how);
		fprintf(stderr, "lmcc: quantize: quality on %ld tokens (%s): the source model, then the quantized one\n",
		        n, r.how);
		if (show) {
			fprintf(stderr, "lmcc: quantize: report token ids: ");
			for (long i = 0; i < n; i++)
				fprintf(stderr, "%s%d", i ? "," : "", ids[i]);
			fputc('\n', stderr);
		}
		float *ref = run_logits(dir, NULL, ids, n, tmp_dir, &V1);
		float *got = run_logits(tmp_dir, "quantized", ids, n, tmp_dir, &V2);
		if (V1 != V2)
			lm_bug("the quantized model has %ld logits, the source %ld", V2, V1);
		Report c = compare(ref, got, n, V1);
		fprintf(stderr, "lmcc: quantize: top-1 agreement %.2f%% (%ld of %ld), mean KL divergence %.3g nats\n",
		        100 * c.agree, lround(c.agree * n), n, c.kl);
		free(ref);
		free(got);
		free(ids);
		if (min_agree >= 0 && c.agree < min_agree)
			lm_fail(out, "not written: top-1 agreement %.4f is below --min-agreement %g", c.agree, min_agree);
	}
	if (twin_dir && rename(twin_dir, deq_dir))
		lm_fail(deq_dir, "cannot rename %s: %s", twin_dir, strerror(errno));
	if (rename(tmp_dir, out))
		lm_fail(out, "cannot rename %s: %s", tmp_dir, strerror(errno));
	free(tmp_dir);
	tmp_dir = NULL;
	fprintf(stderr, "lmcc: quantize: wrote %s in %.1f s\n", out, lm_now() - t0);
	free(twin_dir);
	free(cpath);
	json_object_put(cfg);
	json_object_put(q.entries);
	lm_ck_close(q.ck);
	plan_free(&q.p);
	return 0;
}
