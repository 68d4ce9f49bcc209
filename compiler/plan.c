/* plan.c: building plans (tensors, views, RoPE tables) and describing
 * them: the schedule table of `lmcc plan` and of every generated file. */
#include "adapter.h"
#include "plan.h"
#include "../runtime/rt.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int vtensor(Plan *p, InitKind init, double lo, double hi, int ndim,
                   const long *shape, const char *fmt, va_list ap)
{
	if (p->nt == p->tcap) {
		p->tcap = p->tcap ? 2 * p->tcap : 256;
		p->t = lm_realloc(p->t, p->tcap * sizeof(Tensor));
	}
	Tensor *t = &p->t[p->nt];
	memset(t, 0, sizeof *t);
	if (vsnprintf(t->name, sizeof t->name, fmt, ap) >= (int)sizeof t->name)
		lm_bug("tensor name too long: %s", t->name);
	t->init = init;
	t->lo = lo;
	t->hi = hi;
	t->ndim = ndim;
	if (ndim)    /* a scalar passes no shape */
		memcpy(t->shape, shape, ndim * sizeof(long));
	t->fan_in = ndim ? shape[ndim - 1] : 1;
	t->part = p->part;
	format_tensor(p, t);
	return p->nt++;
}

int tensor(Plan *p, InitKind init, double lo, double hi, int ndim,
           const long *shape, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int t = vtensor(p, init, lo, hi, ndim, shape, fmt, ap);
	va_end(ap);
	return t;
}

int t_matrix(Plan *p, long rows, long cols, const char *fmt, ...)
{
	long shape[2] = {rows, cols};
	va_list ap;
	va_start(ap, fmt);
	int t = vtensor(p, INIT_MATRIX, 0, 0, 2, shape, fmt, ap);
	va_end(ap);
	return t;
}

int t_vector(Plan *p, long n, double init, const char *fmt, ...)
{
	long shape[1] = {n};
	va_list ap;
	va_start(ap, fmt);
	/* norms start near their init value, not exactly on it, so that a
	 * wrong weight would show in the tests */
	int t = vtensor(p, INIT_UNIFORM, init - 0.1, init + 0.1, 1, shape, fmt, ap);
	va_end(ap);
	return t;
}

Mat mat_of(Plan *p, int t)
{
	const Tensor *x = &p->t[t];
	if (x->ndim != 2)
		lm_bug("mat_of(%s): not 2-D", x->name);
	return (Mat){.t = t, .rows = x->shape[0], .cols = x->shape[1], .ld = x->shape[1]};
}

Mat mat_rows(Plan *p, int t, long row0, long rows)
{
	Mat m = mat_of(p, t);
	if (row0 < 0 || rows < 1 || row0 + rows > m.rows)
		lm_bug("mat_rows(%s): rows %ld+%ld of %ld", p->t[t].name, row0, rows, m.rows);
	m.off = row0 * m.ld;
	m.rows = rows;
	return m;
}

MatArr mat_stack(Plan *p, int t)
{
	const Tensor *x = &p->t[t];
	if (x->ndim != 3)
		lm_bug("mat_stack(%s): not 3-D", x->name);
	long out = x->shape[1], in = x->shape[2];
	return (MatArr){.n = (int)x->shape[0], .m0 = {t, 0, 0, out, in, in}, .stride = out * in};
}

Vec vec_of(int t, double add)
{
	return (Vec){t, add};
}

Norm norm_of(int t, double eps, double add)
{
	return (Norm){1, {t, add}, eps};
}

void rope_base(double *inv_freq, int dims, double theta)
{
	for (int j = 0; j < dims / 2; j++)
		inv_freq[j] = pow(theta, -2.0 * j / dims);
}

int rope_add(Plan *p, int style, int dims, const double *inv_freq, const char *note)
{
	for (int i = 0; i < p->nropes; i++) {
		Rope *r = &p->ropes[i];
		if (r->style == style && r->dims == dims
		    && !memcmp(r->inv_freq, inv_freq, dims / 2 * sizeof(double)))
			return i;
	}
	if (p->nropes == MAX_ROPES)
		lm_bug("more than %d RoPE tables", MAX_ROPES);
	Rope *r = &p->ropes[p->nropes];
	r->style = style;
	r->dims = dims;
	memcpy(r->inv_freq, inv_freq, dims / 2 * sizeof(double));
	snprintf(r->note, sizeof r->note, "%s", note);
	return p->nropes++;
}

/* Sizes are products of config fields: they saturate at PLAN_SIZE_MAX
 * rather than wrap, and plan_check refuses a plan that reaches it. */
static long smul(long a, long b)
{
	long r;
	if (a < 0 || b < 0 || __builtin_mul_overflow(a, b, &r) || r > PLAN_SIZE_MAX)
		return PLAN_SIZE_MAX;
	return r;
}

static long sadd(long a, long b)   /* both in [0, PLAN_SIZE_MAX]: no wrap */
{
	return a + b > PLAN_SIZE_MAX ? PLAN_SIZE_MAX : a + b;
}

long plan_tensor_numel(const Tensor *t)
{
	long n = 1;
	for (int d = 0; d < t->ndim; d++)
		n = smul(n, t->shape[d]);
	return n;
}

long plan_params(const Plan *p)
{
	long n = 0;
	for (int i = 0; i < p->nt; i++)
		n = sadd(n, plan_tensor_numel(&p->t[i]));
	return n;
}

/* What one token reads: every routed expert it is not sent to is left
 * out, and so is an input embedding that is not also the head (a token
 * reads one row of it). */
long plan_active_params(const Plan *p)
{
	long n = plan_params(p);
	for (int i = 0; i < p->nl; i++) {
		const Moe *m = &p->layers[i].moe;
		if (p->layers[i].ffn != FFN_MOE)
			continue;
		long per = sadd(sadd(smul(m->gate.m0.rows, m->gate.m0.cols), smul(m->up.m0.rows, m->up.m0.cols)),
		                smul(m->down.m0.rows, m->down.m0.cols));
		n -= smul(m->experts - m->top_k, per);
	}
	if (p->head.t != p->embed.t)
		n -= smul(p->vocab, p->hidden) - p->hidden;
	return n;
}

/* Float32 bytes each layer's cache adds per token, and what it holds
 * whatever the length. */
static void layer_cache(const Layer *l, long *tok, long *fixed)
{
	*tok = *fixed = 0;
	switch (l->mix) {
	case MIX_ATTN: {
		const Attn *a = &l->attn;
		long per = smul(smul(a->kv_heads, (long)a->hd + a->vd), 4);
		long bound = a->window ? a->window : a->chunk;
		if (a->kv_from >= 0)
			break;
		if (bound)
			*fixed = smul(per, bound);
		else
			*tok = per;
		if (a->kv_conv)
			*fixed = sadd(*fixed, smul(a->kv_conv - 1, per));
		break;
	}
	case MIX_MLA:
		*tok = smul((long)l->mla.lora + l->mla.rope_dim, 4);
		break;
	case MIX_KDA: {
		long hd = l->kda.hd, heads = l->kda.heads;
		*fixed = smul(sadd(smul(smul(heads, hd), hd), smul(smul(3, l->kda.conv - 1), smul(heads, hd))), 4);
		break;
	}
	case MIX_MAMBA: {
		long hh = smul(l->mamba.heads, l->mamba.hd);
		*fixed = smul(sadd(smul(hh, l->mamba.d_state), smul(l->mamba.d_conv - 1, hh)), 4);
		break;
	}
	}
}

void plan_layer_cache(const Layer *l, long *per_token, long *fixed)
{
	layer_cache(l, per_token, fixed);
}

void plan_cache(const Plan *p, long *per_token, long *fixed)
{
	*per_token = *fixed = 0;
	for (int i = 0; i < p->nl; i++) {
		long t, f;
		layer_cache(&p->layers[i], &t, &f);
		*per_token = sadd(*per_token, t);
		*fixed = sadd(*fixed, f);
	}
}

void plan_check(const Plan *p, const char *config_path)
{
	long tok, fixed, params = plan_params(p);
	plan_cache(p, &tok, &fixed);
	if (params >= PLAN_SIZE_MAX)
		lm_fail(config_path, "the model would have 2^50 parameters or more");
	if (tok >= PLAN_SIZE_MAX || fixed >= PLAN_SIZE_MAX)
		lm_fail(config_path, "the model's cache would take 2^50 bytes or more (%s)",
		        tok >= PLAN_SIZE_MAX ? "per token" : "whatever the length");
}

static void mixer_cols(const Plan *p, const Layer *l, char *mix, char *mask,
                       char *heads, size_t n)
{
	switch (l->mix) {
	case MIX_ATTN: {
		const Attn *a = &l->attn;
		if (a->kv_from >= 0)
			snprintf(mix, n, "kv-reuse of %d", a->kv_from);
		else
			snprintf(mix, n, "attention%s%s%s", a->rope < 0 ? " nope" : "",
			         a->kv_conv ? " kvconv" : "", a->temp_tuning ? " temp" : "");
		if (a->window)
			snprintf(mask, n, "window %ld", a->window);
		else if (a->chunk)
			snprintf(mask, n, "chunk %ld", a->chunk);
		else
			snprintf(mask, n, "causal");
		snprintf(heads, n, "%d/%d x %d", a->heads, a->kv_heads, a->hd);
		break;
	}
	case MIX_MLA:
		snprintf(mix, n, "mla nope");     /* k_pe is never rotated (plan.h) */
		snprintf(mask, n, "causal");
		snprintf(heads, n, "%d x %d+%d", l->mla.heads, l->mla.nope, l->mla.rope_dim);
		break;
	case MIX_KDA:
		snprintf(mix, n, "kda");
		snprintf(mask, n, "-");
		snprintf(heads, n, "%d x %d", l->kda.heads, l->kda.hd);
		break;
	case MIX_MAMBA:
		snprintf(mix, n, "mamba2");
		snprintf(mask, n, "-");
		snprintf(heads, n, "%d x %d", l->mamba.heads, l->mamba.hd);
		break;
	}
	(void)p;
}

/* ---- what a token reads ---- */

/* Stored bytes of a view (BF16 when the plan has no checkpoint). */
static long mat_bytes(const Plan *p, const Mat *m)
{
	if (m->t < 0)
		return 0;
	const Tensor *t = &p->t[m->t];
	long n = m->rows * m->cols;
	if (t->bits)
		return n * t->bits / 8 + (t->mode == LM_AFFINE ? 2 : 1) * (n / t->group) * t->ssize;
	return n * (t->esize ? t->esize : 2);
}

/* A short name of a view's storage: "q4/64", "mxfp4", "bf16", "f32". */
static const char *mat_format(const Plan *p, const Mat *m, char *buf, size_t n)
{
	const Tensor *t = &p->t[m->t];
	if (t->bits && t->mode != LM_AFFINE)
		snprintf(buf, n, "%s", lm_qmode_name(t->mode));
	else if (t->bits)
		snprintf(buf, n, "q%d/%d", t->bits, t->group);
	else
		snprintf(buf, n, "%s", t->esize == 4 ? "f32" : t->esize == 2 ? "bf16" : "-");
	return buf;
}

typedef struct {
	long bytes;
	char fmts[64];
	int lo, hi;          /* fewest and most bits of the quantized views */
	char flt[16];        /* a float storage among them */
} Reads;

/* Format f into the list fmts ("bf16 q4/64") unless it is there already. */
static void add_format(char *fmts, size_t size, const char *f)
{
	const char *s = fmts;
	size_t n = strlen(f);
	while ((s = strstr(s, f)) && ((s > fmts && s[-1] != ' ') || (s[n] && s[n] != ' ')))
		s++;
	if (!s) {
		size_t k = strlen(fmts);
		snprintf(fmts + k, size - k, "%s%s", k ? " " : "", f);
	}
}

/* Add `count` reads of m: its bytes, its format among the layer's. */
static void reads(const Plan *p, Reads *r, const Mat *m, long count)
{
	char f[16];
	if (m->t < 0)
		return;
	r->bytes += count * mat_bytes(p, m);
	mat_format(p, m, f, sizeof f);
	int b = p->t[m->t].bits;
	if (b && (!r->lo || b < r->lo))
		r->lo = b;
	if (b > r->hi)
		r->hi = b;
	if (!b)
		snprintf(r->flt, sizeof r->flt, "%s", f);
	add_format(r->fmts, sizeof r->fmts, f);
}

/* The weights one token reads in layer l (only the experts it is routed
 * to; norms and other vectors, small and read as float32, left out). */
static Reads layer_reads(const Plan *p, const Layer *l, int every_expert)
{
	int k = every_expert ? l->moe.experts : l->moe.top_k;
	Reads r = {0};
	switch (l->mix) {
	case MIX_ATTN:
		reads(p, &r, &l->attn.wq, 1);
		reads(p, &r, &l->attn.wk, 1);
		reads(p, &r, &l->attn.wv, 1);
		reads(p, &r, &l->attn.wo, 1);
		break;
	case MIX_MLA:
		reads(p, &r, &l->mla.wq, 1);
		reads(p, &r, &l->mla.wkv, 1);
		reads(p, &r, &l->mla.wo, 1);
		reads(p, &r, &l->mla.uk.m0, l->mla.uk.n);
		reads(p, &r, &l->mla.uv.m0, l->mla.uv.n);
		break;
	case MIX_KDA: {
		const Kda *k = &l->kda;
		const Mat *m[] = {&k->wq, &k->wk, &k->wv, &k->f_a, &k->f_b, &k->b, &k->g_a, &k->g_b, &k->wo};
		for (size_t i = 0; i < sizeof m / sizeof m[0]; i++)
			reads(p, &r, m[i], 1);
		break;
	}
	case MIX_MAMBA: {
		const Mamba *a = &l->mamba;
		const Mat *m[] = {&a->in_proj, &a->wb, &a->wc, &a->wdt, &a->dt_proj, &a->out};
		for (size_t i = 0; i < sizeof m / sizeof m[0]; i++)
			reads(p, &r, m[i], 1);
		break;
	}
	}
	const Mlp *mlp = l->ffn == FFN_MLP ? &l->mlp : l->moe.shared ? &l->moe.sh : NULL;
	if (mlp) {
		reads(p, &r, &mlp->gate, 1);
		reads(p, &r, &mlp->up, 1);
		reads(p, &r, &mlp->down, 1);
	}
	if (l->ffn == FFN_MOE) {
		reads(p, &r, &l->moe.router, 1);
		reads(p, &r, &l->moe.gate.m0, k);
		reads(p, &r, &l->moe.up.m0, k);
		reads(p, &r, &l->moe.down.m0, k);
	}
	return r;
}

long plan_read_bytes(const Plan *p)
{
	long n = 0;
	for (int i = 0; i < p->nl; i++)
		n += layer_reads(p, &p->layers[i], 0).bytes;
	Mat row = p->embed;
	row.rows = 1;
	n += mat_bytes(p, &p->head) + (p->head.t == p->embed.t ? 0 : mat_bytes(p, &row));
	return n;
}

void plan_parts(const Plan *p, lm_part *parts)
{
	Mat row = p->embed;
	row.rows = 1;
	parts[0] = (lm_part){.read = mat_bytes(p, &row), .weights = mat_bytes(p, &p->embed)};
	for (int i = 0; i < p->nl; i++) {
		const Layer *l = &p->layers[i];
		lm_part *t = &parts[i + 1];
		*t = (lm_part){.read = layer_reads(p, l, 0).bytes, .weights = layer_reads(p, l, 1).bytes};
		plan_layer_cache(l, &t->cache, &t->fixed);
		/* a layer reading layer j's cache, and those between, stay with j */
		if (l->mix == MIX_ATTN && l->attn.kv_from >= 0)
			for (int k = l->attn.kv_from + 1; k <= i; k++)
				parts[k + 1].joined = 1;
	}
	parts[p->nl + 1] = (lm_part){.read = mat_bytes(p, &p->head), .weights = mat_bytes(p, &p->head)};
}

void plan_formats(const Plan *p, char *buf, size_t n)
{
	char f[16];
	*buf = 0;
	for (int i = 0; i < p->nl; i++) {
		Reads r = layer_reads(p, &p->layers[i], 0);
		for (char *w = strtok(r.fmts, " "); w; w = strtok(NULL, " "))
			add_format(buf, n, w);
	}
	if (p->head.t >= 0)
		add_format(buf, n, mat_format(p, &p->head, f, sizeof f));
}

void plan_print(const Plan *p, FILE *f, const char *pre)
{
	fprintf(f, "%s%-5s  %-22s %-10s %-13s %-20s %-12s %-10s %s\n", pre, "layer", "mixer",
	        "mask", "heads/kv x hd", "feed-forward", "weights", "read/token", "cache (float32)");
	for (int i = 0; i < p->nl; i++) {
		const Layer *l = &p->layers[i];
		char mix[64], mask[32], heads[48], ffn[48], cache[96], a[32];
		mixer_cols(p, l, mix, mask, heads, 32);
		if (l->ffn == FFN_MLP)
			snprintf(ffn, sizeof ffn, "swiglu %ld", l->mlp.inter);
		else
			snprintf(ffn, sizeof ffn, "moe %d of %d%s", l->moe.top_k,
			         l->moe.experts, l->moe.shared ? " +shared" : "");
		long tok, fixed;
		layer_cache(l, &tok, &fixed);
		if (l->mix == MIX_ATTN && l->attn.kv_from >= 0)
			snprintf(cache, sizeof cache, "reads layer %d", l->attn.kv_from);
		else if (tok) {
			lm_bytes_str(a, sizeof a, tok);
			snprintf(cache, sizeof cache, "%s/token", a);
		} else {
			lm_bytes_str(a, sizeof a, fixed);
			snprintf(cache, sizeof cache, "%s fixed", a);
		}
		if (l->mix == MIX_ATTN && l->attn.kv_readers) {
			size_t k = strlen(cache);
			snprintf(cache + k, sizeof cache - k, ", read by %d more", l->attn.kv_readers);
		}
		Reads r = layer_reads(p, l, 0);
		lm_bytes_str(a, sizeof a, r.bytes);
		if (strlen(r.fmts) > 12)      /* a mixed recipe: the range of bits */
			snprintf(r.fmts, sizeof r.fmts, "q%d-%d%s%s", r.lo, r.hi, *r.flt ? " " : "", r.flt);
		fprintf(f, "%s%5d  %-22s %-10s %-13s %-20s %-12s %-10s %s\n", pre, i, mix, mask,
		        heads, ffn, r.fmts, a, cache);
	}
}

void plan_drop(Plan *p, const char *glob, const char *why)
{
	if (p->ndrops == MAX_DROPS)
		lm_bug("more than %d drops", MAX_DROPS);
	p->drops[p->ndrops++] = (Drop){glob, why};
}

void plan_free(Plan *p)
{
	adapter_free(p);
	for (int i = 0; i < p->ncfg; i++) {
		free(p->cfg[i].path);
		free(p->cfg[i].val);
		free(p->cfg[i].dflt);
	}
	free(p->cfg);
	free(p->layers);
	free(p->t);
	memset(p, 0, sizeof *p);
}
