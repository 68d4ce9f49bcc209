/* emit.c: the frame of the generated model.c (see emit.h).
 *
 * The output is one file: the head (overview, schedule, constants), then
 * per layer its weights, caches and a function running it, then create(),
 * forward() and the entry points.  Code text comes from templates/; this
 * file decides which parts, in which order, with which constants, and
 * writes the mechanical lists (declarations, bindings, allocations).
 *
 * What blocks register (weights, states, scratch) is kept by em.c. */
#define _GNU_SOURCE
#include "adapter.h"
#include "emit.h"
#include "../runtime/rt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *dbl(double v)
{
	static char s[48];
	snprintf(s, 40, "%.17g", v);
	if (!strpbrk(s, ".eEn"))
		strcat(s, ".0");
	return s;
}

/* ---- layers ---- */

static void set_trimmed(Dict *d, const char *key, Buf *b)
{
	char *s = bdone(b);
	size_t n = strlen(s);
	while (n && s[n - 1] == '\n')
		s[--n] = 0;
	dset(d, key, "%s", s);
	free(s);
}


static void summary(char *s, size_t n, const Layer *l)
{
	const Attn *a = &l->attn;
	size_t k = 0;
	switch (l->mix) {
	case MIX_MLA:
		k = snprintf(s, n, "latent attention (MLA)");
		break;
	case MIX_KDA:
		k = snprintf(s, n, "delta-rule attention (KDA)");
		break;
	case MIX_ATTN:
		if (a->kv_from >= 0)
			k = snprintf(s, n, "attention on layer %d's K/V", a->kv_from);
		else
			k = snprintf(s, n, "%s attention%s",
			             a->window ? "sliding-window" : a->chunk ? "chunked" : "global",
			             a->rope < 0 ? " without RoPE" : "");
		break;
	case MIX_MAMBA:
		k = snprintf(s, n, "Mamba-2 state space");
		break;
	default:
		lm_bug("mixer %d has no emitter", l->mix);
	}
	snprintf(s + k, n - k, l->ffn == FFN_MLP ? ", SwiGLU MLP" : ", mixture of experts");
}

/* One of the layer's two halves: norm, block, optional post-norm, add. */
static void half(Em *e, Buf *out, const char *part, const char *P, Norm pre,
                 Norm post, const char *body)
{
	char c[48];
	Dict d = {0};
	dset(&d, "P", "%s", P);
	dset(&d, "BODY", "%s", body);
	dset(&d, "PRE", "%d", pre.on);
	dset(&d, "POST", "%d", post.on);
	dset(&d, "PRE_W", "%s_%s_norm", P, part);
	dset(&d, "POST_W", "%s_%s_post_norm", P, part);
	dset(&d, "PRE_EPS", "%s", em_flt(pre.eps));
	dset(&d, "POST_EPS", "%s", em_flt(post.eps));
	if (pre.on && pre.w.t >= 0) {
		snprintf(c, sizeof c, "%s_%s_norm", P, part);
		em_vec(e, c, pre.w);
	} else {
		dset(&d, "PRE_W", "0");
	}
	if (post.on && post.w.t >= 0) {
		snprintf(c, sizeof c, "%s_%s_post_norm", P, part);
		em_vec(e, c, post.w);
	} else {
		dset(&d, "POST_W", "0");
	}
	tmpl(out, "layer.c", "half", &d);
	dfree(&d);
}

/* What an adapter does, the first time a layer has one; then only which
 * of the layer's weights carry one. */
static void lora_note(Em *e, Buf *out, int layer)
{
	char *names = bdone(&e->adapted);
	const Adapter *ad = e->p->ad;
	Dict d = {0};
	Buf w = {0};           /* the names, wrapped as comment lines */
	size_t col = 40;
	for (char *c = strtok(names, ", "); c; c = strtok(NULL, ", ")) {
		if (w.n)
			bprintf(&w, col + strlen(c) > 70 ? ",\n * " : ", ");
		col = col + strlen(c) > 70 ? 3 : col + 2;
		bprintf(&w, "%s", c);
		col += strlen(c);
	}
	set_trimmed(&d, "NAMES", &w);
	dset(&d, "KIND", "%s", ad->cfg.dora ? "DoRA" : "LoRA");
	dset(&d, "DORA", "%d", ad->cfg.dora);
	dset(&d, "RANK", "%ld", ad->cfg.rank);
	dset(&d, "SCALE", "%g", ad->cfg.scale);
	dset(&d, "PARTS", "%d", e->parts > 0);
	dset(&d, "FIRST", "%d", e->explained - 1);
	tmpl(out, "lora.c", e->explained ? "again" : "first", &d);
	dfree(&d);
	free(names);
	if (!e->explained)
		e->explained = layer + 1;
	e->parts = 0;
}

/* A comment naming the layer's quantized products by format (list: lines
 * "FORMAT name"), "Q4G64: l0_wq, l0_wo; Q8G64: l0_router"; the list is
 * emptied. */
static void packed(Buf *out, Buf *list)
{
	if (!list->n)
		return;
	char *s = bdone(list);
	const char *fmts[MAX_FORMATS];
	int nf = 0;
	for (const char *l = s; *l; l = strchr(l, '\n') + 1) {    /* in order of first use */
		int j;
		for (j = 0; j < nf && strncmp(fmts[j], l, strcspn(l, " ") + 1); j++)
			;
		if (j == nf && nf < MAX_FORMATS)
			fmts[nf++] = l;
	}
	size_t col = 2;
	bprintf(out, "/*");
	for (int j = 0; j < nf; j++) {
		int k = (int)strcspn(fmts[j], " "), first = 1;
		for (const char *l = s; *l; l = strchr(l, '\n') + 1) {
			if (strncmp(l, fmts[j], k + 1))
				continue;
			char item[128];
			int m = (int)strcspn(l + k + 1, "\n");
			if (first)
				snprintf(item, sizeof item, " %.*s: %.*s", k, l, m, l + k + 1);
			else
				snprintf(item, sizeof item, " %.*s", m, l + k + 1);
			bprintf(out, "%s", first ? (j ? ";" : "") : ",");
			if (col + strlen(item) > 74) {
				bprintf(out, "\n *");
				col = 2;
			}
			bprintf(out, "%s", item);
			col += strlen(item) + 1;
			first = 0;
		}
	}
	bprintf(out, " */\n");
	free(s);
}

static void layer(Em *e, Buf *code, Buf *calls, int i)
{
	const Layer *l = &e->p->layers[i];
	char P[16], sum[160];
	Buf body = {0}, halves = {0};
	snprintf(P, sizeof P, "l%d", i);

	switch (l->mix) {
	case MIX_ATTN:
		emit_attention(e, &body, i, &l->attn);
		break;
	case MIX_MAMBA:
		emit_mamba(e, &body, i, &l->mamba);
		break;
	case MIX_MLA:
		emit_mla(e, &body, i, &l->mla);
		break;
	case MIX_KDA:
		emit_kda(e, &body, i, &l->kda);
		break;
	default:
		lm_bug("mixer %d has no emitter", l->mix);
	}
	char *s = bdone(&body);
	half(e, &halves, "mix", P, l->pre_mix, l->post_mix, s);
	free(s);

	switch (l->ffn) {
	case FFN_MLP:
		emit_mlp(e, &body, P, &l->mlp);
		break;
	case FFN_MOE:
		emit_moe(e, &body, P, &l->moe);
		break;
	}
	s = bdone(&body);
	half(e, &halves, "ffn", P, l->pre_ffn, l->post_ffn, s);
	free(s);

	Buf decls = {0};
	if (e->adapted.n)
		lora_note(e, &decls, i);
	packed(&decls, &e->packed);
	em_declare(&decls, "lm_mat", "", &e->mats);
	em_declare(&decls, "const float", "*", &e->vecs);
	em_declare(&decls, "float", "", &e->scalars);
	s = bdone(&e->decl);
	bprintf(&decls, "%s", s);
	free(s);

	Dict d = {0};
	summary(sum, sizeof sum, l);
	dset(&d, "L", "%d", i);
	dset(&d, "SUMMARY", "%s", sum);
	s = bdone(&decls);
	dset(&d, "DECLS", "%s", s);
	free(s);
	set_trimmed(&d, "HALVES", &halves);
	tmpl(code, "layer.c", "layer", &d);
	dfree(&d);
	bprintf(calls, "\t\tlayer%d(b);\n", i);
}

static void ropes(const Plan *p, Buf *out)
{
	for (int i = 0; i < p->nropes; i++) {
		const Rope *r = &p->ropes[i];
		bprintf(out, "\n/* RoPE frequencies, %s:\n"
		        " * pair j of a head turns by position * rope%d[j]. */\n"
		        "static const double rope%d[%d] = {", r->note, i, i, r->dims / 2);
		for (int j = 0; j < r->dims / 2; j++)
			bprintf(out, "%s%s,", j % 4 ? " " : "\n\t", dbl(r->inv_freq[j]));
		bprintf(out, "\n};\n");
	}
}

/* Embedding, head and final norm: declared in the head part. */
static void ends(Em *e)
{
	const Plan *p = e->p;
	const Tensor *ht = &p->t[p->head.t];
	em_mat(e, "embed", p->embed);
	if (p->head_l2 > 0) {
		/* the stored rows stay as they are (in their dtype, mapped); the
		 * normalisation is one factor per row, applied to the products */
		if (p->head_tied)
			bprintf(&e->bind, "\thead = embed;\n");
		else
			em_mat(e, "head", p->head);
		bprintf(&e->bind, "\thead_scale = lm_ck_row_scale(ck, ");
		em_cstr(&e->bind, ht->name);
		bprintf(&e->bind, ", ");
		em_shape(&e->bind, ht);
		bprintf(&e->bind, ", %ld, %ld, %ld, %ld, %s);\n", p->head.off, p->head.rows,
		        p->head.cols, p->head.ld, em_flt(p->head_l2));
	} else if (p->head_tied) {
		bprintf(&e->bind, "\thead = embed;    /* tied: the embedding is the head */\n");
	} else {
		em_mat(e, "head", p->head);
	}
	bprintf(&e->bind, "\tfinal_norm = ");
	if (p->final.w.t >= 0)
		em_vec_expr(e, p->final.w);
	else
		bprintf(&e->bind, "0");
	bprintf(&e->bind, ";\n");
	free(bdone(&e->mats));
	free(bdone(&e->packed));
}

static void em_cstr_or_0(Buf *b, const char *s)
{
	if (s)
		em_cstr(b, s);
	else
		bprintf(b, "0");
}

/* config.json as the readers saw it: field, value, default; and which
 * field is the position limit. */
static const char *config_table(const Plan *p, Buf *b)
{
	const char *limit = NULL;
	for (int i = 0; i < p->ncfg; i++) {
		const CfgField *f = &p->cfg[i];
		const char *last = strrchr(f->path, '.');
		last = last ? last + 1 : f->path;
		if (f->val && p->max_ctx && !limit
		    && (!strcmp(last, "max_position_embeddings") || !strcmp(last, "model_max_length")))
			limit = f->path;
		bprintf(b, "\t");
		em_cstr(b, f->path);
		bprintf(b, ", ");
		em_cstr_or_0(b, f->val);
		bprintf(b, ", ");
		em_cstr_or_0(b, f->dflt);
		bprintf(b, ",\n");
	}
	bprintf(b, "\t0\n};");
	return limit;
}

char *emit_model(const Plan *p, const char *weights_dir)
{
	Em e = {.p = p};
	Buf out = {0}, code = {0}, calls = {0}, b = {0};
	Dict d = {0};

	ends(&e);
	for (int i = 0; i < p->nl; i++)
		layer(&e, &code, &calls, i);

	/* the schedule table, as comment lines */
	char *tab;
	size_t tlen;
	FILE *f = open_memstream(&tab, &tlen);
	plan_print(p, f, " *   ");
	fclose(f);
	bput(&b, tab, tlen);
	free(tab);
	set_trimmed(&d, "SCHEDULE", &b);

	for (int j = 0; j < e.nscratch; j++) {
		int ints = e.scratch[j].ints;
		bprintf(&b, "static %s *%s;%*s/* %s: [MAXB, %ld] */\n", ints ? "int" : "float",
		        e.scratch[j].name, (int)(8 - strlen(e.scratch[j].name)), "",
		        e.scratch[j].what, e.scratch[j].width);
		if (ints)
			bprintf(&e.alloc, "\t%s = lm_alloc(MAXB * %ld * sizeof(int));\n",
			        e.scratch[j].name, e.scratch[j].width);
		else
			bprintf(&e.alloc, "\t%s = lm_floats(MAXB * %ld);\n", e.scratch[j].name,
			        e.scratch[j].width);
	}
	set_trimmed(&d, "SCRATCH", &b);

	tmpl(&b, "overview.c", p->arch, &d);
	set_trimmed(&d, "OVERVIEW", &b);
	dset(&d, "NAME", "%s", p->name);
	dset(&d, "TITLE", "%s", p->title);
	dset(&d, "PARAMS", "%ld", plan_params(p));
	dset(&d, "VOCAB", "%ld", p->vocab);
	dset(&d, "DIM", "%ld", p->hidden);
	dset(&d, "MAXB", "%d", 256);
	dset(&d, "HEAD_L2", "%d", p->head_l2 > 0);
	for (int j = 0; j < e.nfmt; j++) {
		char f[16];
		static const char *const mode[] = {"LM_AFFINE", "LM_MXFP4", "LM_NVFP4", "LM_MXFP8"};
		em_format(f, e.fmt[j].bits, e.fmt[j].group, e.fmt[j].mode);
		bprintf(&b, "\t%s_BITS = %d, %s_GROUP = %d, %s_MODE = %s,%*s/* %ld matri%s */\n", f,
		        e.fmt[j].bits, f, e.fmt[j].group, f, mode[e.fmt[j].mode],
		        (int)(12 - strlen(f) - strlen(mode[e.fmt[j].mode])), "",
		        e.fmt[j].mats, e.fmt[j].mats == 1 ? "x" : "ces");
	}
	set_trimmed(&d, "FORMATS", &b);
	int fp = 0;
	for (int j = 0; j < e.nfmt; j++)
		fp |= e.fmt[j].mode != LM_AFFINE;
	dset(&d, "FP", "%d", fp);
	dset(&d, "HEAD_EPS", "%g", p->head_l2);
	tmpl(&out, "model.c", "head", &d);
	ropes(p, &out);
	bput(&out, "\n", 1);
	bput(&out, code.s, code.n);
	free(code.s);

	if (weights_dir)
		em_cstr(&b, weights_dir);
	else
		bprintf(&b, "0");
	set_trimmed(&d, "WEIGHTS", &b);
	if (p->ad) {
		Dict a = {0};
		em_cstr(&b, p->ad->dir);
		set_trimmed(&d, "ADAPTER_DIR", &b);
		if (p->ad->cfg.keys)
			em_cstr(&b, p->ad->cfg.keys);
		else
			bprintf(&b, "0");
		set_trimmed(&a, "KEYS", &b);
		dset(&a, "DORA", "%d", p->ad->cfg.dora);
		dset(&a, "NUM_LAYERS", "%ld", p->ad->cfg.num_layers);
		dset(&a, "RANK", "%ld", p->ad->cfg.rank);
		dset(&a, "SCALE", "%s", em_flt(p->ad->cfg.scale));
		dset(&a, "TENSORS", "%ld", p->ad->cfg.tensors);
		tmpl(&b, "lora.c", "constants", &a);
		dfree(&a);
		char *decl = bdone(&b);
		dset(&d, "ADAPTER_DECL", "%s", decl);     /* with its blank line */
		free(decl);
		dset(&d, "LORA", "&adapter");
	} else {
		dset(&d, "ADAPTER_DECL", "%s", "");
		dset(&d, "ADAPTER_DIR", "0");
		dset(&d, "LORA", "0");
	}
	dset(&d, "MAX_CTX", "%ld", p->max_ctx);
	const char *limit = config_table(p, &b);
	set_trimmed(&d, "CONFIG", &b);
	em_cstr_or_0(&b, limit);
	set_trimmed(&d, "MAX_CTX_FIELD", &b);
	for (int i = 0; i < p->ndrops; i++) {
		bprintf(&b, "\t");
		em_cstr(&b, p->drops[i].glob);
		bprintf(&b, ",\t/* %s */\n", p->drops[i].why);
	}
	set_trimmed(&d, "DROPS", &b);
	dset(&d, "ARCH", "%s", p->arch);
	dset(&d, "EPS", "%s", em_flt(p->final.eps));
	set_trimmed(&d, "BIND", &e.bind);
	set_trimmed(&d, "ALLOC", &e.alloc);
	set_trimmed(&d, "RESET", &e.reset);
	set_trimmed(&d, "CALLS", &calls);
	tmpl(&out, "model.c", "tail", &d);
	dfree(&d);
	return bdone(&out);
}
