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
#include "em.h"
#include "../runtime/rt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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


/* One of the layer's two halves: norm, block, optional post-norm, add. */
static void half(Em *e, Buf *out, const char *part, const char *P, Norm pre,
                 Norm post, const char *body)
{
	char c[48];
	Dict d = {0};
	dset(&d, "BODY", "%s", body);
	dset(&d, "PRE", "%d", pre.on);
	dset(&d, "POST", "%d", post.on);
	dset(&d, "PRE_EPS", "%s", em_flt(pre.eps));
	dset(&d, "POST_EPS", "%s", em_flt(post.eps));
	snprintf(c, sizeof c, "%s_norm", part);
	if (pre.on && pre.w.t >= 0) {
		dset(&d, "PRE_W", "L->%s", c);
		em_pvec(e, P, c, pre.w);
	} else {
		dset(&d, "PRE_W", "LM_UNWEIGHTED");
	}
	snprintf(c, sizeof c, "%s_post_norm", part);
	if (post.on && post.w.t >= 0) {
		dset(&d, "POST_W", "L->%s", c);
		em_pvec(e, P, c, post.w);
	} else {
		dset(&d, "POST_W", "LM_UNWEIGHTED");
	}
	tmpl(out, "layer.c", "half", &d);
	dfree(&d);
}

/* A layer as the emitter renders it: the text that decides its kind (its
 * struct's fields and its function's body), and what is said of it alone
 * (which of its weights carry an adapter, which are quantized how). */
typedef struct {
	char *fields, *body;
	char *adapted, *packed;
	int parts;                /* adapted weights that are parts of a fused module */
	int kind;                 /* the first layer of its kind */
} Rendered;

/* Layer i into all[i], its kind found among the layers before it. */
static void render(Em *e, Rendered *all, int i)
{
	Rendered *r = all + i;
	const Layer *l = &e->p->layers[i];
	char P[16];
	Buf body = {0}, halves = {0}, fields = {0};
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

	em_declare(&fields, "\t", "lm_mat", "", &e->mats);
	em_declare(&fields, "\t", "const float", "*", &e->vecs);
	em_declare(&fields, "\t", "float", "", &e->scalars);
	s = bdone(&e->decl);
	bprintf(&fields, "%s", s);
	free(s);
	r->fields = bdone(&fields);
	r->body = bdone(&halves);
	r->adapted = bdone(&e->adapted);
	r->packed = bdone(&e->packed);
	r->parts = e->parts;
	e->parts = 0;
	r->kind = i;
	for (int j = 0; j < i; j++)
		if (all[j].kind == j && !strcmp(all[j].fields, r->fields)
		    && !strcmp(all[j].body, r->body)) {
			r->kind = j;
			break;
		}
}

/* What a kind of layer is called: its mixer and its feed-forward block. */
static void kind_name(char *s, size_t n, const Layer *l)
{
	const Attn *a = &l->attn;
	const char *mix = "";
	switch (l->mix) {
	case MIX_MLA:
		mix = "mla";
		break;
	case MIX_KDA:
		mix = "kda";
		break;
	case MIX_MAMBA:
		mix = "mamba";
		break;
	case MIX_ATTN:
		mix = a->kv_from >= 0 ? "reuse_attn" : a->window ? "window_attn" : a->chunk ? "chunked_attn"
		      : a->rope < 0 ? "nope_attn" : "attn";
		break;
	}
	snprintf(s, n, "%s_%s", mix, l->ffn == FFN_MLP ? "mlp" : "moe");
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
			k = snprintf(s, n, "attention on an earlier layer's K/V");
		else
			k = snprintf(s, n, "%s attention%s",
			             a->window ? "sliding-window" : a->chunk ? "chunked" : "global",
			             a->rope < 0 ? " without RoPE" : "");
		break;
	case MIX_MAMBA:
		k = snprintf(s, n, "Mamba-2 state space");
		break;
	}
	snprintf(s + k, n - k, l->ffn == FFN_MLP ? ", SwiGLU MLP" : ", mixture of experts");
}

/* Names as comment lines, wrapped at 74 columns, col: where the first one
 * starts. */
static void wrap_names(Buf *w, const char *names, size_t col)
{
	char *s = strdup(names);
	int first = 1;
	for (char *c = strtok(s, ", "); c; c = strtok(NULL, ", "), first = 0) {
		if (!first && col + 2 + strlen(c) > 74) {
			bprintf(w, ",\n * ");
			col = 3;
		} else if (!first) {
			bprintf(w, ", ");
			col += 2;
		}
		bprintf(w, "%s", c);
		col += strlen(c);
	}
	free(s);
}

/* What an adapter does, the first time a kind has one; then only which of
 * the kind's weights carry one, in which layers. */
static void lora_note(Em *e, Buf *out, const Rendered *r, const int *list, int n)
{
	const Adapter *ad = e->p->ad;
	Buf w = {0};
	int parts = 0;
	for (int i = 0; i < n; i++) {
		const char *names = r[list[i]].adapted;
		int j, again = 0, group[MAX_LAYERS], ng = 0;
		if (!*names)
			continue;
		for (j = 0; j < i; j++)
			again |= !strcmp(r[list[j]].adapted, names);
		if (again)
			continue;
		for (j = i; j < n; j++)
			if (!strcmp(r[list[j]].adapted, names)) {
				group[ng++] = list[j];
				parts |= r[list[j]].parts > 0;
			}
		if (w.n)
			bprintf(&w, ";\n * ");
		size_t line = w.n;
		em_layers(&w, group, ng);
		bprintf(&w, ": ");
		wrap_names(&w, names, (w.n - line) + (line ? 3 : 36));
	}
	if (!w.n)
		return;
	Dict d = {0};
	char *s = bdone(&w);
	dset(&d, "NAMES", "%s", s);
	free(s);
	dset(&d, "KIND", "%s", ad->cfg.dora ? "DoRA" : "LoRA");
	dset(&d, "DORA", "%d", ad->cfg.dora);
	dset(&d, "RANK", "%ld", ad->cfg.rank);
	dset(&d, "SCALE", "%g", ad->cfg.scale);
	dset(&d, "PARTS", "%d", parts);
	tmpl(out, "lora.c", e->explained ? "again" : "first", &d);
	dfree(&d);
	e->explained = 1;
}

/* A comment naming a layer's quantized products by format (list: lines
 * "FORMAT name"), "Q4G64: wq, wo; Q8G64: router". */
static void packed(Buf *out, const char *s)
{
	const char *fmts[MAX_FORMATS];
	int nf = 0;
	for (const char *l = s; *l; l = strchr(l, '\n') + 1) {    /* in order of first use */
		int j;
		for (j = 0; j < nf && strncmp(fmts[j], l, strcspn(l, " ") + 1); j++)
			;
		if (j == nf && nf < MAX_FORMATS)
			fmts[nf++] = l;
	}
	size_t col = 2 + out->n;
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
}

/* The quantized products of a kind's layers, one comment per set of
 * layers stored alike. */
static void packed_note(Buf *out, const Rendered *r, const int *list, int n)
{
	for (int i = 0; i < n; i++) {
		const char *s = r[list[i]].packed;
		int j, again = 0, group[MAX_LAYERS], ng = 0;
		for (j = 0; j < i; j++)
			again |= !strcmp(r[list[j]].packed, s);
		if (!*s || again)
			continue;
		for (j = i; j < n; j++)
			if (!strcmp(r[list[j]].packed, s))
				group[ng++] = list[j];
		Buf line = {0};
		bprintf(&line, "/* Quantized, ");
		em_layers(&line, group, ng);
		bprintf(&line, ":");
		packed(&line, s);
		char *t = bdone(&line);
		bprintf(out, "%s */\n", t);
		free(t);
	}
}

/* Every kind of layer: its struct, its instances and its function, in
 * order of first use; calls: forward()'s straight-line schedule, steps:
 * step()'s. */
static void layers(Em *e, Buf *code, Buf *calls, Buf *steps)
{
	const Plan *p = e->p;
	Rendered *r = lm_alloc(p->nl * sizeof *r);
	char (*names)[48] = lm_alloc(p->nl * sizeof *names);
	int *list = lm_alloc(p->nl * sizeof *list);
	/* what create() binds next is layer i's: another pipeline stage's
	 * layer is checked but not read (lm_stage_bind) */
	for (int i = 0; i < p->nl; i++) {
		bprintf(&e->bind, "\tlm_stage_bind(%d);\n", i);
		bprintf(&e->alloc, "\tlm_stage_bind(%d);\n", i);
		render(e, r, i);
	}
	bprintf(&e->alloc, "\tlm_stage_bind(LM_STAGE_SHARED);\n");
	for (int k = 0; k < p->nl; k++) {
		if (r[k].kind != k)
			continue;
		char base[40], sum[160];
		int n = 0, same = 0;
		kind_name(base, sizeof base, &p->layers[k]);
		for (int j = 0; j < k; j++)
			if (r[j].kind == j && !strncmp(names[j], base, strlen(base))
			    && (!names[j][strlen(base)] || names[j][strlen(base)] == '_'))
				same++;
		if (same)
			snprintf(names[k], sizeof names[k], "%s_%d", base, same + 1);
		else
			snprintf(names[k], sizeof names[k], "%s", base);
		for (int i = k; i < p->nl; i++)
			if (r[i].kind == k)
				list[n++] = i;

		Dict d = {0};
		Buf b = {0}, inst = {0};
		summary(sum, sizeof sum, &p->layers[k]);
		dset(&d, "SUMMARY", "%s", sum);
		dset(&d, "KIND", "%s", names[k]);
		dset(&d, "COUNT", n > 1 ? "%d layers" : "%d layer", n);
		bprintf(&b, "%s", r[k].fields);
		set_trimmed(&d, "FIELDS", &b);
		for (int i = 0; i < n; i++)
			bprintf(&inst, "%sl%d", i ? ", " : "", list[i]);
		bprintf(&b, "%s_layer", names[k]);
		char *type = bdone(&b);
		em_declare(&b, "static ", type, "", &inst);
		free(type);
		set_trimmed(&d, "INSTANCES", &b);
		lora_note(e, &b, r, list, n);
		packed_note(&b, r, list, n);
		set_trimmed(&d, "NOTES", &b);
		bprintf(&b, "%s", r[k].body);
		set_trimmed(&d, "HALVES", &b);
		tmpl(code, "layer.c", "layer", &d);
		dfree(&d);
	}
	for (int i = 0; i < p->nl; i++)
		bprintf(calls, "\t\tif (lm_stage_has(%d))\n\t\t\t%s(&l%d, b);\n", i, names[r[i].kind], i);
	for (int i = 0; i < p->nl; i++)
		bprintf(steps, "\t%s(&l%d, n);\n", names[r[i].kind], i);
	for (int i = 0; i < p->nl; i++) {
		free(r[i].fields);
		free(r[i].body);
		free(r[i].adapted);
		free(r[i].packed);
	}
	free(r);
	free(names);
	free(list);
}

static void ropes(const Plan *p, Buf *out)
{
	for (int i = 0; i < p->nropes; i++) {
		const Rope *r = &p->ropes[i];
		bprintf(out, "\n/* RoPE frequencies, %s:\n"
		        " * pair j of a head turns by position * rope%d[j]. */\n"
		        "static const double rope%d[%d] = {", r->note, i, i, r->dims / 2);
		for (int j = 0; j < r->dims / 2; j++)
			bprintf(out, "%s%s,", j % 4 ? " " : "\n\t", em_num(r->inv_freq[j], 0));
		bprintf(out, "\n};\n");
	}
}

/* Embedding, head and final norm: declared in the head part. */
static void ends(Em *e)
{
	const Plan *p = e->p;
	const Tensor *ht = &p->t[p->head.t];
	if (adapter_of(p, p->embed))
		bprintf(&e->bind, "\t/* an adapter on the embedding: lm_embed adds scale * A[tok] B to\n"
		        "\t * each row it looks up%s */\n", p->head_tied ? "; the tied head gets the same "
		        "pair transposed,\n\t * x B^T A^T, as the reference's as_linear" : "");
	bprintf(&e->bind, "\tlm_stage_bind(-1);\n");
	em_mat(e, "embed", p->embed);
	bprintf(&e->bind, "\tlm_stage_bind(LAYERS);\n");
	if (p->head_l2 > 0) {
		/* the stored rows stay as they are (in their dtype, mapped); the
		 * normalisation is one factor per row, applied to the products */
		bprintf(&e->bind, "\thead_scale = lm_ck_row_scale(ck, ");
		em_cstr(&e->bind, ht->name);
		bprintf(&e->bind, ", ");
		em_shape(&e->bind, ht);
		bprintf(&e->bind, ", %ld, %ld, %ld, %ld, %s);\n", p->head.off, p->head.rows,
		        p->head.cols, p->head.ld, em_flt(p->head_l2));
	}
	if (p->head_tied) {
		bprintf(&e->bind, "\thead = embed;    /* tied: the embedding is the head */\n");
		em_lora(e, "head", p->head);
	} else {
		em_mat(e, "head", p->head);
	}
	free(bdone(&e->adapted));
	bprintf(&e->bind, "\tfinal_norm = ");
	if (p->final.w.t >= 0)
		em_vec_expr(e, "final_norm", p->final.w);
	else
		bprintf(&e->bind, "LM_UNWEIGHTED");
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
	Buf out = {0}, code = {0}, calls = {0}, steps = {0}, b = {0};
	Dict d = {0};

	ends(&e);
	layers(&e, &code, &calls, &steps);
	lm_part *parts = lm_alloc((p->nl + 2) * sizeof *parts);
	plan_parts(p, parts);
	for (int i = 0; i < p->nl + 2; i++) {
		char what[24];
		snprintf(what, sizeof what, i == 0 ? "embedding" : i > p->nl ? "head" : "layer %d", i - 1);
		bprintf(&b, "\t{%ld, %ld, %ld, %ld, %d},\t/* %s */\n", parts[i].read,
		        parts[i].weights, parts[i].cache, parts[i].fixed, parts[i].joined, what);
	}
	free(parts);
	set_trimmed(&d, "PARTS", &b);

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

	emit_overview(p, &b);
	set_trimmed(&d, "OVERVIEW", &b);
	dset(&d, "NAME", "%s", p->name);
	dset(&d, "TITLE", "%s", p->title);
	dset(&d, "PARAMS", "%ld", plan_params(p));
	dset(&d, "VOCAB", "%ld", p->vocab);
	dset(&d, "DIM", "%ld", p->hidden);
	dset(&d, "MAXB", "%d", 256);
	dset(&d, "LAYERS", "%d", p->nl);
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
	for (int j = 0; j < e.noff; j++)
		bprintf(&b, "#define %s %s\n", e.off[j].name, em_flt(e.off[j].add));
	set_trimmed(&d, "OFFSETS", &b);
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
	set_trimmed(&d, "STEPS", &steps);
	tmpl(&out, "model.c", "tail", &d);
	dfree(&d);
	return bdone(&out);
}
