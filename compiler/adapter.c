/* adapter.c: which products an mlx-lm adapter changes, and with which of
 * its tensors (see adapter.h; the arithmetic is runtime/lora.c's).
 *
 * The reference (tuner/utils.py linear_to_lora_layers) wraps, in each of
 * the last num_layers blocks of model.layers, every module whose path
 * relative to the block is one of the keys; without keys, the keys are
 * every linear module (Linear, SwitchLinear, their quantized kinds) found
 * in any block.  A key that is a full module path wraps that module
 * wherever it is.  A wrapped Linear owns lora_a [in, rank] and lora_b
 * [rank, out] (DoRA: and m [out]); a SwitchLinear (a stack of experts)
 * lora_a [E, rank, in] and lora_b [E, out, rank]; AFM-7's FusedLinear
 * (qkv_proj) one pair per output part, lora_a.0..2 and lora_b.0..2.
 *
 * lmcc's products are views of checkpoint tensors, which may be in Hugging
 * Face's layout where mlx-lm's sanitize renames or restacks them (Kimi's
 * per-expert w1/w2/w3, Llama 4's fused gate_up_proj): module_of() maps a
 * view to the module mlx-lm computes it in, and to its rows there. */
#define _GNU_SOURCE
#include "adapter.h"
#include "../runtime/rt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_SITES_LAYER = 32 };

/* One product of the plan as a module of the reference. */
typedef struct {
	Mat *m;
	int layer;                 /* -1: the head, -2: the embedding */
	int how;                   /* LM_LORA_*: the embedding looked up, or the tied head */
	MatArr *arr;               /* a stack of experts (m is its m0), or NULL */
	int experts, top_k;        /* a stack of experts: its count; else 0 */
	char mod[MAX_TENSOR_NAME];
	const char *rel;           /* mod relative to its block */
	long row0, out, in;
	int part;                  /* fused qkv part, else -1 */
	int wrapped, normed;
} Site;

typedef struct {
	Site *s;
	int n, cap;
} Sites;

static void add(Sites *v, Mat *m, int layer, MatArr *arr, int top_k)
{
	if (m->t < 0)
		return;
	if (v->n == v->cap)
		v->s = lm_realloc(v->s, (v->cap = v->cap ? 2 * v->cap : 256) * sizeof(Site));
	v->s[v->n++] = (Site){.m = m, .layer = layer, .arr = arr, .experts = arr ? arr->n : 0,
	                      .top_k = top_k, .part = -1, .how = arr ? LM_LORA_T : LM_LORA_LINEAR};
}

/* The head, and the embedding: mlx-lm wraps it (LoRAEmbedding) when a key
 * names it, and a tied head is its as_linear, which applies the same pair
 * transposed. */
static void add_ends(Sites *v, Plan *p)
{
	if (!p->head_tied)
		add(v, &p->head, -1, NULL, 0);
	add(v, &p->embed, -2, NULL, 0);
	v->s[v->n - 1].how = LM_LORA_LOOKUP;
	if (p->head_tied) {
		add(v, &p->head, -1, NULL, 0);
		v->s[v->n - 1].how = LM_LORA_T;
	}
}

static void add_mlp(Sites *v, Mlp *m, int i)
{
	add(v, &m->gate, i, NULL, 0);
	add(v, &m->up, i, NULL, 0);
	add(v, &m->down, i, NULL, 0);
}

/* Every product of layer i. */
static void layer_sites(Sites *v, Layer *l, int i)
{
	switch (l->mix) {
	case MIX_ATTN:
		add(v, &l->attn.wq, i, NULL, 0);
		add(v, &l->attn.wk, i, NULL, 0);
		add(v, &l->attn.wv, i, NULL, 0);
		add(v, &l->attn.wo, i, NULL, 0);
		break;
	case MIX_MLA:                /* uk, uv: MultiLinear, never wrapped */
		add(v, &l->mla.wq, i, NULL, 0);
		add(v, &l->mla.wkv, i, NULL, 0);
		add(v, &l->mla.wo, i, NULL, 0);
		break;
	case MIX_KDA: {
		Kda *k = &l->kda;
		Mat *ms[] = {&k->wq, &k->wk, &k->wv, &k->f_a, &k->f_b, &k->b, &k->g_a, &k->g_b, &k->wo};
		for (size_t j = 0; j < sizeof ms / sizeof ms[0]; j++)
			add(v, ms[j], i, NULL, 0);
		break;
	}
	case MIX_MAMBA: {
		Mamba *m = &l->mamba;
		Mat *ms[] = {&m->in_proj, &m->wb, &m->wc, &m->wdt, &m->dt_proj, &m->out};
		for (size_t j = 0; j < sizeof ms / sizeof ms[0]; j++)
			add(v, ms[j], i, NULL, 0);
		break;
	}
	}
	if (l->ffn == FFN_MLP) {
		add_mlp(v, &l->mlp, i);
	} else {
		Moe *m = &l->moe;
		add(v, &m->router, i, NULL, 0);
		add(v, &m->gate.m0, i, &m->gate, m->top_k);
		add(v, &m->up.m0, i, &m->up, m->top_k);
		add(v, &m->down.m0, i, &m->down, m->top_k);
		if (m->shared)
			add_mlp(v, &m->sh, i);
	}
}

/* Hugging Face names mlx-lm's sanitize changes: the first match applies. */
static const struct { const char *from, *to; } renames[] = {
	{".block_sparse_moe.experts.0.w1", ".mlp.switch_mlp.gate_proj"},
	{".block_sparse_moe.experts.0.w2", ".mlp.switch_mlp.down_proj"},
	{".block_sparse_moe.experts.0.w3", ".mlp.switch_mlp.up_proj"},
	{".block_sparse_moe.", ".mlp."},
};

static void replace(char *s, size_t n, const char *at, const char *from, const char *to)
{
	char tail[MAX_TENSOR_NAME];
	snprintf(tail, sizeof tail, "%s", at + strlen(from));
	snprintf(s + (at - s), n - (at - s), "%s%s", to, tail);
}

static int ends_with(const char *s, const char *suf)
{
	size_t a = strlen(s), b = strlen(suf);
	return a >= b && !strcmp(s + a - b, suf);
}

/* The module of the reference a site's view computes, and its rows there. */
static void module_of(const Plan *p, Site *s)
{
	const Tensor *t = &p->t[s->m->t];
	const Mat *m = s->m;
	snprintf(s->mod, sizeof s->mod, "%s", t->name);
	if (ends_with(s->mod, ".weight"))
		s->mod[strlen(s->mod) - 7] = 0;
	for (size_t j = 0; j < sizeof renames / sizeof renames[0]; j++) {
		char *at = strstr(s->mod, renames[j].from);
		if (at) {
			replace(s->mod, sizeof s->mod, at, renames[j].from, renames[j].to);
			break;
		}
	}
	s->in = m->cols;
	if (m->tr && t->ndim == 3) {
		/* a stack stored [E, in, out] (Llama 4): gate_up_proj is two
		 * modules, gate_proj and up_proj, of half the outputs each */
		s->out = t->shape[2];
		s->row0 = m->off;
		if (ends_with(s->mod, ".experts.gate_up_proj")) {
			s->out /= 2;
			char *at = strstr(s->mod, ".gate_up_proj");
			replace(s->mod, sizeof s->mod, at, ".gate_up_proj",
			        m->off >= s->out ? ".up_proj" : ".gate_proj");
			s->row0 = m->off % s->out;
		}
	} else {
		s->out = t->ndim == 3 ? t->shape[1] : t->shape[0];
		s->row0 = (m->off % (s->out * m->ld)) / m->ld;
	}
	/* relative to the block: after the first "...layers.<n>." */
	s->rel = s->mod;
	for (const char *c = s->mod; (c = strstr(c, "layers.")); c++) {
		const char *d = c + 7;
		if (*d < '0' || *d > '9')
			continue;
		while (*d >= '0' && *d <= '9')
			d++;
		if (*d == '.') {
			s->rel = d + 1;
			break;
		}
	}
}

/* AFM-7's qkv_proj is a FusedLinear: one pair per output part. */
static int fused(const Plan *p, const Site *s)
{
	return !strcmp(p->arch, "afm7") && !strcmp(s->rel, "self_attn.qkv_proj");
}

static int in_list(const char *list, const char *s)
{
	size_t n = strlen(s);
	for (const char *c = list; c && *c;) {
		const char *e = strchr(c, ',');
		size_t k = e ? (size_t)(e - c) : strlen(c);
		if (k == n && !strncmp(c, s, n))
			return 1;
		c += k + (e != NULL);
	}
	return 0;
}

/* The tensors a wrapped site reads, with their shapes. */
static void expect(const Adapter *ad, const Site *s, Lora *l)
{
	long r = ad->cfg.rank;
	memset(l, 0, sizeof *l);
	snprintf(l->module, sizeof l->module, "%s", s->mod);
	l->part = s->part;
	l->layer = s->layer;
	l->row0 = s->part >= 0 ? 0 : s->row0;
	l->how = s->how;
	l->normed = s->normed;
	if (s->part >= 0) {
		snprintf(l->a, sizeof l->a, "%s.lora_a.%d", s->mod, s->part);
		snprintf(l->b, sizeof l->b, "%s.lora_b.%d", s->mod, s->part);
	} else {
		snprintf(l->a, sizeof l->a, "%s.lora_a", s->mod);
		snprintf(l->b, sizeof l->b, "%s.lora_b", s->mod);
	}
	long out = s->part >= 0 ? s->m->rows : s->out;
	l->mlen = out;
	if (s->experts) {
		l->ndim = 3;
		l->ashape[0] = l->bshape[0] = s->experts;
		l->ashape[1] = r;
		l->ashape[2] = s->in;
		l->bshape[1] = out;
		l->bshape[2] = r;
	} else if (s->how == LM_LORA_LOOKUP) {   /* [vocab, r], [r, dims] */
		l->ndim = 2;
		l->ashape[0] = l->mlen = s->out;
		l->ashape[1] = l->bshape[0] = r;
		l->bshape[1] = s->in;
	} else if (s->how == LM_LORA_T) {        /* the tied head: lora_b is its A */
		snprintf(l->a, sizeof l->a, "%s.lora_b", s->mod);
		snprintf(l->b, sizeof l->b, "%s.lora_a", s->mod);
		l->ndim = 2;
		l->ashape[0] = l->bshape[1] = r;
		l->ashape[1] = s->in;
		l->bshape[0] = out;
	} else {
		l->ndim = 2;
		l->ashape[0] = s->in;
		l->ashape[1] = r;
		l->bshape[0] = r;
		l->bshape[1] = out;
	}
	if (ad->cfg.dora)
		snprintf(l->m, sizeof l->m, "%s.m", s->mod);
	long per = s->how == LM_LORA_LOOKUP ? (r + r * s->in + ad->cfg.dora) * 4
	         : (s->in * r + r * s->m->rows + (ad->cfg.dora ? s->m->rows : 0)) * 4;
	l->bytes = s->experts ? per * s->top_k : per;
}

/* Is name one of l's tensors?  Then its expected shape. */
static int names(const Lora *l, const char *name, int *ndim, long *shape)
{
	if (!strcmp(name, l->a) || !strcmp(name, l->b)) {
		*ndim = l->ndim;
		memcpy(shape, !strcmp(name, l->a) ? l->ashape : l->bshape, sizeof l->ashape);
		return 1;
	}
	if (l->m[0] && !strcmp(name, l->m)) {
		*ndim = 1;
		shape[0] = l->ndim == 2 ? l->mlen : 0;
		return 1;
	}
	return 0;
}

/* What lay allocates for itself, freed by its caller whether it fails or not. */
typedef struct {
	char *cfgpath, *keys;
	Sites v;
	Lora *want;
	int *site;
} Lay;

static void lay(Plan *p, const char *dir, Adapter *ad, lm_ckpt *ck, Lay *t)
{
	const char *file = lm_ck_where(ck);
	t->cfgpath = lm_path(dir, "adapter_config.json");
	ad->dir = realpath(dir, NULL);
	if (!ad->dir)
		lm_fail(dir, "cannot resolve the adapter directory");

	for (int i = 0; i < p->nl; i++)
		layer_sites(&t->v, &p->layers[i], i);
	int nblock = t->v.n;
	add_ends(&t->v, p);
	for (int j = 0; j < t->v.n; j++)
		module_of(p, &t->v.s[j]);
	for (int j = 0; j < nblock; j++) {
		Site *s = &t->v.s[j];
		if (!fused(p, s))
			continue;
		s->part = 0;            /* the views of the tensor before this one */
		for (int k = 0; k < nblock; k++)
			s->part += t->v.s[k].m->t == s->m->t && t->v.s[k].m->off < s->m->off;
	}

	/* default keys: every module of every block */
	t->keys = ad->cfg.keys ? lm_strdup(ad->cfg.keys) : NULL;
	if (!t->keys) {
		size_t len = 1;
		for (int j = 0; j < nblock; j++)
			len += strlen(t->v.s[j].rel) + 1;
		t->keys = lm_alloc(len);
		for (int j = 0; j < nblock; j++)
			if (!in_list(t->keys, t->v.s[j].rel)) {
				if (*t->keys)
					strcat(t->keys, ",");
				strcat(t->keys, t->v.s[j].rel);
			}
	}
	long nl = ad->cfg.num_layers;
	int first = nl <= 0 || nl >= p->nl ? 0 : p->nl - (int)nl;
	for (int j = 0; j < t->v.n; j++) {
		Site *s = &t->v.s[j];
		s->wrapped = (s->layer >= first && in_list(t->keys, s->rel)) || in_list(t->keys, s->mod);
	}
	const Tensor *et = &p->t[p->embed.t];
	for (int j = nblock; j < t->v.n; j++) {
		Site *s = &t->v.s[j];
		if (s->how == LM_LORA_T)        /* the tied head: as the embedding */
			s->wrapped = t->v.s[j - 1].wrapped;
		if (!s->wrapped || s->how != LM_LORA_LOOKUP)
			continue;
		if (ad->cfg.dora && et->bits)
			lm_fail(t->cfgpath, "field 'fine_tune_type': DoRA on the quantized embedding '%s', which "
			        "the reference cannot run (DoRAEmbedding takes the packed words for the "
			        "weights: its check is for QuantizedLinear)", s->mod);
		if (p->head_tied && p->head_l2 > 0)
			lm_fail(t->cfgpath, "field 'lora_parameters.keys': '%s' is the embedding of a tied "
			        "Baichuan-M1, which the reference cannot run (it has no head then)", s->mod);
	}
	for (int j = nblock; j < t->v.n; j++)
		if (t->v.s[j].layer == -1 && p->head_l2 > 0)
			t->v.s[j].normed = 1;

	/* the tensors each wrapped site expects */
	t->want = lm_alloc((t->v.n + 1) * sizeof *t->want);
	t->site = lm_alloc((t->v.n + 1) * sizeof *t->site);
	int nw = 0;
	for (int j = 0; j < t->v.n; j++) {
		Site *s = &t->v.s[j];
		if (!s->wrapped)
			continue;
		if (ad->cfg.dora && (s->experts || s->part >= 0))
			lm_fail(t->cfgpath, "field 'fine_tune_type': DoRA on %s, %s", s->mod,
			        s->experts ? "a stack of experts, which the reference refuses "
			                     "(SwitchLinear doesn't support DoRA)"
			                   : "AFM-7's fused qkv_proj, where the reference's DoRALinear "
			                     "returns one array instead of three parts");
		expect(ad, s, &t->want[nw]);
		t->site[nw++] = j;
	}

	/* every tensor of the file must be one of those, of its shape */
	long it = 0;
	const char *name;
	while ((name = lm_ck_next(ck, &it))) {
		int ndim, found = 0;
		long shape[8] = {0};
		for (int k = 0; k < nw && !found; k++)
			found = names(&t->want[k], name, &ndim, shape);
		if (found) {
			int gnd;
			long got[8];
			int dt = lm_ck_info(ck, name, &gnd, got);
			int same = gnd == ndim;
			for (int d = 0; same && d < ndim; d++)
				same = got[d] == shape[d];
			if (dt != LM_F32 && dt != LM_F16 && dt != LM_BF16)
				lm_fail(file, "tensor '%s': dtype is not F32, F16 or BF16", name);
			if (!same) {
				char g[128], w[128];
				lm_shape_str(g, sizeof g, gnd, got);
				lm_shape_str(w, sizeof w, ndim, shape);
				lm_fail(file, "tensor '%s': shape %s, but the model's module wants %s "
				        "(rank %ld)", name, g, w, ad->cfg.rank);
			}
			continue;
		}
		/* why not: its leaf, its module */
		char mod[MAX_TENSOR_NAME + 16];
		snprintf(mod, sizeof mod, "%s", name);
		char *dot = strrchr(mod, '.');
		if (dot && dot[1] >= '0' && dot[1] <= '9' && dot > mod) {
			*dot = 0;       /* lora_a.0: a part of a fused module */
			dot = strrchr(mod, '.');
		}
		const char *leaf = dot ? dot + 1 : mod;
		if (strcmp(leaf, "lora_a") && strcmp(leaf, "lora_b") && strcmp(leaf, "m"))
			lm_fail(file, "tensor '%s': not an adapter parameter (names end in lora_a, "
			        "lora_b or, for DoRA, m)", name);
		if (dot)
			*dot = 0;
		int known = -1;
		for (int j = 0; j < t->v.n && known < 0; j++)
			if (!strcmp(t->v.s[j].mod, mod))
				known = j;
		if (known < 0)
			lm_fail(file, "tensor '%s': this model has no linear module '%s'", name, mod);
		if (!t->v.s[known].wrapped) {
			char blocks[64];
			if (nl > 0 && nl < p->nl)
				snprintf(blocks, sizeof blocks, "the last %ld of %d blocks", nl, p->nl);
			else
				snprintf(blocks, sizeof blocks, "all %d blocks", p->nl);
			lm_fail(file, "tensor '%s': module '%s' gets no adapter under %s (%s, %s keys)",
			        name, mod, t->cfgpath, blocks, ad->cfg.keys ? "its" : "the default");
		}
		lm_fail(file, "tensor '%s': the adapter on '%s' has %s", name, mod,
		        fused(p, &t->v.s[known]) ? "one lora_a.N, lora_b.N per part (N = 0, 1, 2)"
		        : ad->cfg.dora ? "lora_a, lora_b and m" : "lora_a and lora_b");
	}

	/* a wrapped module with none of its tensors stays as it is (as the
	 * reference's zero lora_b leaves it); one with some of them is broken */
	for (int k = 0; k < nw; k++) {
		Lora *l = &t->want[k];
		int have = (lm_ck_info(ck, l->a, NULL, NULL) != -1) + (lm_ck_info(ck, l->b, NULL, NULL) != -1);
		int need = 2;
		if (l->m[0]) {
			have += lm_ck_info(ck, l->m, NULL, NULL) != -1;
			need = 3;
		}
		if (!have)
			continue;
		if (have < need) {
			const char *miss = lm_ck_info(ck, l->a, NULL, NULL) == -1 ? l->a
			                 : lm_ck_info(ck, l->b, NULL, NULL) == -1 ? l->b : l->m;
			lm_fail(file, "tensor '%s' is missing (the file has other tensors of '%s')",
			        miss, l->module);
		}
		ad->l = lm_realloc(ad->l, (ad->n + 1) * sizeof(Lora));
		ad->l[ad->n] = *l;
		ad->per_token += l->bytes;
		for (int i = 0; i < ad->n && l->how != LM_LORA_LOOKUP; i++)
			if (!strcmp(ad->l[i].a, l->a)) {   /* views of one module read A once */
				ad->per_token -= l->ashape[l->ndim - 2] * l->ashape[l->ndim - 1] * 4
				                 * (l->ndim == 3 ? t->v.s[t->site[k]].top_k : 1);
				break;
			}
		t->v.s[t->site[k]].m->lora = ++ad->n;
	}
}

static void lay_free(Lay *t)
{
	free(t->want);
	free(t->site);
	free(t->keys);
	free(t->v.s);
	free(t->cfgpath);
	free(t);
}

void adapter_read(Plan *p, const char *dir)
{
	Adapter *ad = lm_alloc(sizeof *ad);
	Lay *t = lm_alloc(sizeof *t);   /* on the heap: it changes after lm_catch */
	lm_ckpt *volatile ck = NULL;
	lm_err err;
	if (lm_catch(&err)) {   /* closed, so that a caller that goes on no longer watches it */
		lm_ck_close(ck);
		lay_free(t);
		free(ad->dir);
		free(ad->l);
		free((char *)ad->cfg.keys);
		free(ad);
		lm_err_raise(&err);
	}
	ck = lm_adapter_open(dir, &ad->cfg, NULL);
	lay(p, dir, ad, ck, t);
	lm_err_pop(&err);
	lm_ck_close(ck);
	lay_free(t);
	p->ad = ad;
}

void adapter_free(Plan *p)
{
	if (!p->ad)
		return;
	free(p->ad->dir);
	free((char *)p->ad->cfg.keys);
	free(p->ad->l);
	free(p->ad);
	p->ad = NULL;
}

void adapter_each(Plan *p, void (*fn)(void *ctx, const Mat *m, const MatArr *arr,
                                       const Lora *l), void *ctx)
{
	Sites v = {0};
	for (int i = 0; i < p->nl; i++)
		layer_sites(&v, &p->layers[i], i);
	add_ends(&v, p);
	for (int j = 0; j < v.n; j++)
		if (adapter_of(p, *v.s[j].m))
			fn(ctx, v.s[j].m, v.s[j].arr, adapter_of(p, *v.s[j].m));
	free(v.s);
}

const Lora *adapter_of(const Plan *p, Mat m)
{
	return p->ad && m.lora > 0 && m.lora <= p->ad->n ? &p->ad->l[m.lora - 1] : NULL;
}

void adapter_print(const Plan *p, FILE *f, const char *prefix)
{
	const Adapter *ad = p->ad;
	long params = 0;
	int layers = 0, last = -3;
	for (int k = 0; k < ad->n; k++) {
		const Lora *l = &ad->l[k];
		if (k && !strcmp(l->module, ad->l[k - 1].module) && l->part < 0)
			continue;       /* another view of the same module: counted once */
		long a = 1, b = 1;
		for (int d = 0; d < l->ndim; d++) {
			a *= l->ashape[d];
			b *= l->bshape[d];
		}
		params += a + b + (l->m[0] ? l->bshape[1] : 0);
	}
	fprintf(f, "%sadapter: %s, rank %ld, scale %g, %s keys, from %s\n", prefix,
	        ad->cfg.dora ? "DoRA" : "LoRA", ad->cfg.rank, ad->cfg.scale,
	        ad->cfg.keys ? "explicit" : "default", ad->dir);
	for (int k = 0; k < ad->n; k++) {
		const Lora *l = &ad->l[k];
		if (k && !strcmp(l->module, ad->l[k - 1].module) && l->layer == ad->l[k - 1].layer)
			continue;
		if (l->layer != last) {
			if (last != -3)
				fprintf(f, "\n");
			if (l->layer >= 0)
				fprintf(f, "%s  layer %3d:", prefix, l->layer);
			else
				fprintf(f, "%s  %-10s", prefix, l->layer == -1 ? "head:" : "embedding:");
			last = l->layer;
			layers += l->layer >= 0;
		}
		const char *rel = l->module;
		for (const char *c = l->module; (c = strstr(c, "layers.")); c++) {
			const char *d = c + 7;
			while (*d >= '0' && *d <= '9')
				d++;
			if (d > c + 7 && *d == '.') {
				rel = d + 1;
				break;
			}
		}
		fprintf(f, " %s%s", rel, l->part >= 0 ? " (a pair per part)" : l->ndim == 3 ? " (experts)"
		        : l->how == LM_LORA_T ? " (tied: its pair transposed)" : "");
	}
	if (last != -3)
		fprintf(f, "\n");
	fprintf(f, "%sadapter parameters: %ld (float32: %ld bytes) on %d layers; rank %ld, scale %g "
	        "on every adapted module\n", prefix, params, 4 * params, layers, ad->cfg.rank, ad->cfg.scale);
	fprintf(f, "%sadapter bytes per token: %ld (float32, read beside the weights)\n", prefix,
	        ad->per_token);
}
