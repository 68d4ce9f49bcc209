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
static void half(Em *e, Buf *out, const char *part, Norm pre,
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
		em_pvec(e, c, pre.w);
	} else {
		dset(&d, "PRE_W", "LM_UNWEIGHTED");
	}
	snprintf(c, sizeof c, "%s_post_norm", part);
	if (post.on && post.w.t >= 0) {
		dset(&d, "POST_W", "L->%s", c);
		em_pvec(e, c, post.w);
	} else {
		dset(&d, "POST_W", "LM_UNWEIGHTED");
	}
	tmpl(out, "layer.c", "half", &d);
	dfree(&d);
}

/* A layer as the emitter renders it: the text that decides its kind (its
 * struct's fields and its function's body), its binding (the body of its
 * bind_ function: layers of a kind that bind alike share one), and what is
 * said of it alone (which of its weights carry an adapter, which are
 * quantized how). */
typedef struct {
	char *fields, *body, *bind;
	char *adapted, *packed;
	int parts;                /* adapted weights that are parts of a fused module */
	int kind;                 /* the first layer of its kind */
	int binder;               /* the first layer of its kind that binds alike */
	long shift;               /* its index less its tensors' */
} Rendered;

/* Layer i into all[i], its kind found among the layers before it. */
static void render(Em *e, Rendered *all, int i)
{
	Rendered *r = all + i;
	const Layer *l = &e->p->layers[i];
	Buf body = {0}, halves = {0}, fields = {0};
	e->layer = i;

	switch (l->mix) {
	case MIX_ATTN:
		emit_attention(e, &body, &l->attn);
		break;
	case MIX_MAMBA:
		emit_mamba(e, &body, &l->mamba);
		break;
	case MIX_MLA:
		emit_mla(e, &body, &l->mla);
		break;
	case MIX_KDA:
		emit_kda(e, &body, &l->kda);
		break;
	default:
		lm_bug("mixer %d has no emitter", l->mix);
	}
	char *s = bdone(&body);
	half(e, &halves, "mix", l->pre_mix, l->post_mix, s);
	free(s);

	switch (l->ffn) {
	case FFN_MLP:
		emit_mlp(e, &body, &l->mlp);
		break;
	case FFN_MOE:
		emit_moe(e, &body, &l->moe);
		break;
	}
	s = bdone(&body);
	half(e, &halves, "ffn", l->pre_ffn, l->post_ffn, s);
	free(s);

	em_declare(&fields, "\t", "lm_mat", "", &e->mats);
	em_declare(&fields, "\t", "const float", "*", &e->vecs);
	em_declare(&fields, "\t", "float", "", &e->scalars);
	s = bdone(&e->decl);
	bprintf(&fields, "%s", s);
	free(s);
	r->fields = bdone(&fields);
	r->body = bdone(&halves);
	s = bdone(&e->alloc);          /* the caches after the weights */
	bprintf(&e->bind, "%s", s);
	free(s);
	r->bind = bdone(&e->bind);
	r->shift = e->shift;
	e->layer = -1;
	e->shift = 0;
	r->adapted = bdone(&e->adapted);
	r->packed = bdone(&e->packed);
	r->parts = e->parts;
	e->parts = 0;
	r->kind = r->binder = i;
	for (int j = 0; j < i; j++)
		if (all[j].kind == j && !strcmp(all[j].fields, r->fields)
		    && !strcmp(all[j].body, r->body)) {
			r->kind = j;
			break;
		}
	for (int j = r->kind; j < i; j++)
		if (all[j].kind == r->kind && all[j].binder == j && !strcmp(all[j].bind, r->bind)) {
			r->binder = j;
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

/* The comments of the kinds written so far: each explanation is written
 * once, beside the first copy of its code. */
typedef struct {
	char **text;
	int *kind;           /* the first layer of the kind that has it */
	int n;
} Said;

/* body with every comment of two lines or more that an earlier kind's body
 * already holds word for word replaced: the first of them from each such
 * kind by a pointer to that kind's function, the others by nothing.  The
 * comments it says first join said. */
static char *once(const char *body, Said *said, int kind, char (*names)[48])
{
	Buf out = {0};
	int pointed[MAX_LAYERS] = {0}, first = said->n;
	for (const char *l = body; *l; ) {
		size_t ind = strspn(l, "\t"), n = strcspn(l, "\n");
		const char *end = strncmp(l + ind, "/*", 2) ? NULL : strstr(l, "*/");
		if (!end || end[2] != '\n' || !memchr(l, '\n', end - l)) {
			bput(&out, l, n + (l[n] == '\n'));
			l += n + (l[n] == '\n');
			continue;
		}
		size_t len = end + 3 - l;
		int j;
		for (j = 0; j < first && (strlen(said->text[j]) != len || strncmp(said->text[j], l, len)); j++)
			;
		if (j == first) {
			said->text = lm_realloc(said->text, (said->n + 1) * sizeof *said->text);
			said->kind = lm_realloc(said->kind, (said->n + 1) * sizeof *said->kind);
			Buf c = {0};
			bput(&c, l, len);
			said->text[said->n] = bdone(&c);
			said->kind[said->n++] = kind;
			bput(&out, l, len);
		} else if (!pointed[said->kind[j]]++) {
			bprintf(&out, "%.*s/* As in %s() above. */\n", (int)ind, l, names[said->kind[j]]);
		}
		l += len;
	}
	return bdone(&out);
}

/* Whether line l (n bytes) is one of text's lines. */
static int has_line(const char *text, const char *l, size_t n)
{
	for (const char *m = text; *m; ) {
		size_t k = strcspn(m, "\n");
		if (k == n && !strncmp(l, m, n))
			return 1;
		m += k + (m[k] == '\n');
	}
	return 0;
}

/* The fields ("wq, wv") bound on lines one of two bindings has and the
 * other lacks (a line without a field belongs to the field before), into
 * out. */
static void differ(Buf *out, const char *a, const char *b)
{
	char list[512] = ",";
	for (int pass = 0; pass < 2; pass++) {
		const char *x = pass ? b : a, *other = pass ? a : b;
		char cur[48] = "";
		for (const char *l = x; *l; ) {
			size_t n = strcspn(l, "\n");
			const char *f = strstr(l, "L->");
			if (f && f < l + n)
				snprintf(cur, sizeof cur, ",%.*s,", (int)strspn(f + 3,
				         "abcdefghijklmnopqrstuvwxyz_0123456789"), f + 3);
			if (*cur && !has_line(other, l, n) && !strstr(list, cur)
			    && strlen(list) + strlen(cur) < sizeof list) {
				bprintf(out, "%s%.*s", list[1] ? ", " : "", (int)strlen(cur) - 2, cur + 1);
				strcat(list, cur + 1);
			}
			l += n + (l[n] == '\n');
		}
	}
}

/* The binding functions of kind k (its layers: list[n]): one per set of
 * its layers that bind alike; their names into bnames. */
static void binders(Em *e, Buf *code, const Rendered *r, const char *kind, int k,
                    const int *list, int n, char (*bnames)[64])
{
	for (int b = 0; b < n; b++) {
		int j = list[b], group[MAX_LAYERS], ng = 0;
		if (r[j].binder != j)
			continue;
		for (int i = 0; i < n; i++)
			if (r[list[i]].binder == j)
				group[ng++] = list[i];
		if (j == k)
			snprintf(bnames[j], sizeof bnames[j], "bind_%s", kind);
		else
			snprintf(bnames[j], sizeof bnames[j], "bind_%s_l%d", kind, j);
		Dict d = {0};
		Buf t = {0};
		dset(&d, "FIRST", "%d", !e->bound);
		dset(&d, "APART", "%d", j != k);
		dset(&d, "KIND_LAYER", "%d", k);
		dset(&d, "S", "%s", ng > 1 ? "" : "s");
		differ(&t, r[k].bind, r[j].bind);
		set_trimmed(&d, "FIELDS", &t);
		dset(&d, "SHIFT", "%ld", r[j].shift);
		em_layers(&t, group, ng);
		t.s[0] = 'L';
		set_trimmed(&d, "LAYERS", &t);
		dset(&d, "KIND", "%s", kind);
		dset(&d, "BINDER", "%s", bnames[j]);
		bprintf(&t, "%s", r[j].bind);
		set_trimmed(&d, "BIND", &t);
		tmpl(code, "layer.c", "bind", &d);
		dfree(&d);
		e->bound = 1;
	}
}

/* Every kind of layer: its struct, its instances, its function and its
 * binding, in order of first use; calls: forward()'s straight-line
 * schedule, steps: step()'s.  create()'s body (e->bind) gains a binding
 * call per layer. */
static void layers(Em *e, Buf *code, Buf *calls, Buf *steps)
{
	const Plan *p = e->p;
	Rendered *r = lm_alloc(p->nl * sizeof *r);
	char (*names)[48] = lm_alloc(p->nl * sizeof *names);
	char (*bnames)[64] = lm_alloc(p->nl * sizeof *bnames);
	int *list = lm_alloc(p->nl * sizeof *list);
	char *ends = bdone(&e->bind);
	Said said = {0};
	for (int i = 0; i < p->nl; i++)
		render(e, r, i);
	bprintf(&e->bind, "%s", ends);
	free(ends);
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
		char *body = once(r[k].body, &said, k, names);
		bprintf(&b, "%s", body);
		free(body);
		set_trimmed(&d, "HALVES", &b);
		tmpl(code, "layer.c", "layer", &d);
		dfree(&d);
		binders(e, code, r, names[k], k, list, n, bnames);
	}
	for (int i = 0; i < p->nl; i++) {
		bprintf(&e->bind, "\t%s(&l%d, %d, ck, ad, ctx);\n", bnames[r[i].binder], i, i);
		bprintf(calls, "\t\tif (lm_stage_has(%d))\n\t\t\t%s(&l%d, b);\n", i, names[r[i].kind], i);
	}
	bprintf(&e->bind, "\tlm_stage_bind(LM_STAGE_SHARED);\n");
	for (int i = 0; i < p->nl; i++)
		bprintf(steps, "\t%s(&l%d, n);\n", names[r[i].kind], i);
	for (int i = 0; i < p->nl; i++) {
		free(r[i].fields);
		free(r[i].body);
		free(r[i].bind);
		free(r[i].adapted);
		free(r[i].packed);
	}
	for (int j = 0; j < said.n; j++)
		free(said.text[j]);
	free(said.text);
	free(said.kind);
	free(r);
	free(names);
	free(bnames);
	free(list);
}

static void ropes(const Plan *p, Buf *out)
{
	for (int i = 0; i < p->nropes; i++) {
		const Rope *r = &p->ropes[i];
		bprintf(out, "/* RoPE over %d dims of a head: pair j turns by position * rope%d[j].\n"
		        " * Frequencies: %s. */\n"
		        "static const double rope%d[%d] = {", r->dims, i, r->note, i, r->dims / 2);
		for (int j = 0; j < r->dims / 2; j++)
			bprintf(out, "%s%s,", j % 4 ? " " : "\n\t", em_num(r->inv_freq[j], 0));
		bprintf(out, "\n};\n\n");
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
	bprintf(&e->bind, "\tlm_stage_bind(%s);\n", p->head_tied ? "LM_STAGE_ENDS" : "-1");
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
	Em e = {.p = p, .layer = -1};
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
			bprintf(&e.alloc, "\t%s = lm_state_own(&state, lm_alloc(MAXB * %ld * sizeof(int)));\n",
			        e.scratch[j].name, e.scratch[j].width);
		else
			bprintf(&e.alloc, "\t%s = lm_state_own(&state, lm_floats(MAXB * %ld));\n", e.scratch[j].name,
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
	bput(&out, code.s, code.n);
	free(code.s);

	if (weights_dir)
		em_cstr(&b, weights_dir);
	else
		bprintf(&b, "0");
	set_trimmed(&d, "WEIGHTS", &b);
	dset(&d, "FAST", "%d", p->fast);
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
	set_trimmed(&d, "CALLS", &calls);
	set_trimmed(&d, "STEPS", &steps);
	tmpl(&out, "model.c", "tail", &d);
	dfree(&d);
	return bdone(&out);
}
