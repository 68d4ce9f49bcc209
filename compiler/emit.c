/* emit.c: a Plan as C source.
 *
 * The output is one file: the head (overview, schedule, constants), then
 * per layer its weights, caches and a function running it, then create(),
 * forward() and the entry points.  Code text comes from templates/; this
 * file decides which parts, in which order, with which constants, and
 * writes the mechanical lists (declarations, bindings, allocations).
 *
 * Nothing from a config or a checkpoint reaches the source as text: names
 * of tensors are built by the compiler from fixed patterns and still go
 * through cstr(), numbers are printed from checked values. */
#include "emit.h"
#include "tmpl.h"
#include "../runtime/rt.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
	const Plan *p;
	Buf decl;                 /* the current layer's declarations */
	Buf bind, alloc, reset;   /* bodies of create() and reset() */
	Buf code;                 /* layer functions */
	Buf calls;                /* forward()'s calls of them */
	long q, k, v, att, inter; /* widest scratch row each buffer needs */
} Em;

/* ---- printing values ---- */

/* A C string literal of s: anything but [A-Za-z0-9._-] is escaped. */
static void cstr(Buf *b, const char *s)
{
	bput(b, "\"", 1);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
		    || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'
		    || c == '/')
			bput(b, (char *)&c, 1);
		else
			bprintf(b, "\\%03o", c);
	}
	bput(b, "\"", 1);
}

/* A float literal that reads back to the same float. */
static const char *flt(double v)
{
	static char ring[8][40];
	static int k;
	char *s = ring[k++ % 8];
	snprintf(s, 32, "%.9g", (double)(float)v);
	if (!strpbrk(s, ".eEn"))
		strcat(s, ".0");
	strcat(s, "f");
	return s;
}

static const char *dbl(double v)
{
	static char ring[4][40];
	static int k;
	char *s = ring[k++ % 4];
	snprintf(s, 32, "%.17g", v);
	if (!strpbrk(s, ".eEn"))
		strcat(s, ".0");
	return s;
}

static void shape(Buf *b, const Tensor *t)
{
	if (!t->ndim) {
		bprintf(b, "0, 0");
		return;
	}
	bprintf(b, "%d, SHAPE(", t->ndim);
	for (int d = 0; d < t->ndim; d++)
		bprintf(b, "%s%ld", d ? ", " : "", t->shape[d]);
	bprintf(b, ")");
}

/* ---- weights ---- */

static void bind_mat(Em *e, const char *c, Mat m)
{
	const Tensor *t = &e->p->t[m.t];
	bprintf(&e->decl, "static lm_mat %s;\n", c);
	bprintf(&e->bind, "\t%s = lm_ck_mat(ck, ", c);
	cstr(&e->bind, t->name);
	bprintf(&e->bind, ", ");
	shape(&e->bind, t);
	bprintf(&e->bind, ", %ld, %d, %ld, %ld, %ld);\n", m.off, m.tr, m.rows, m.cols, m.ld);
}

static void vec_call(Em *e, Vec v)
{
	const Tensor *t = &e->p->t[v.t];
	bprintf(&e->bind, "lm_ck_vec(ck, ");
	cstr(&e->bind, t->name);
	bprintf(&e->bind, ", ");
	shape(&e->bind, t);
	bprintf(&e->bind, ", %s)", flt(v.add));
}

static void bind_vec(Em *e, const char *c, Vec v)
{
	bprintf(&e->decl, "static const float *%s;\n", c);
	bprintf(&e->bind, "\t%s = ", c);
	vec_call(e, v);
	bprintf(&e->bind, ";\n");
}

static void bind_scalar(Em *e, const char *c, Vec v)
{
	bprintf(&e->decl, "static float %s;\n", c);
	bprintf(&e->bind, "\t%s = ", c);
	vec_call(e, v);
	bprintf(&e->bind, "[0];\n");
}

/* A norm's weight, or nothing when it has none. */
static const char *norm_arg(Em *e, const char *c, Norm n)
{
	if (n.w.t < 0)
		return "0";
	bind_vec(e, c, n.w);
	return c;
}

/* ---- blocks ---- */

static void mask_note(char *s, size_t n, const Attn *a)
{
	if (a->window)
		snprintf(s, n, "sliding window: a token sees the last %ld positions,\n"
		         "\t * itself included, and the cache keeps only those", a->window);
	else if (a->chunk)
		snprintf(s, n, "chunked: a token sees the earlier tokens of its own\n"
		         "\t * chunk of %ld positions, and the cache keeps only that chunk", a->chunk);
	else
		snprintf(s, n, "causal: a token sees every earlier token");
}

static void qk_note(char *s, size_t n, const Attn *a)
{
	const char *when = a->rope < 0 ? "" : a->qk_before_rope ? ", before RoPE" : ", after RoPE";
	const char *who = a->kv_from >= 0 ? "q is" : "q and k are";
	switch (a->qk) {
	case QK_SHARED:
		snprintf(s, n, "%s RMS-normalised per head%s (eps %g, one weight of %d\n"
		         "\t * shared by every head): this bounds the attention logits.",
		         who, when, a->qk_eps, a->hd);
		break;
	case QK_PLAIN:
		snprintf(s, n, "%s RMS-normalised per head%s, without weight (eps %g).",
		         who, when, a->qk_eps);
		break;
	case QK_PER_HEAD:
		snprintf(s, n, "%s RMS-normalised per head%s (eps %g), each head with\n"
		         "\t * its own weight.", who, when, a->qk_eps);
		break;
	case QK_NONE:
		s[0] = 0;
	}
}

static long maxl(long a, long b)
{
	return a > b ? a : b;
}

static void attention(Em *e, Buf *body, int i, const Attn *a)
{
	const Plan *p = e->p;
	char P[16], c[48], note[400];
	snprintf(P, sizeof P, "l%d", i);
	Dict d = {0};
	int own = a->kv_from < 0;
	long qd = (long)a->heads * a->hd, kvd = (long)a->kv_heads * a->hd;
	e->q = maxl(e->q, qd);
	e->att = maxl(e->att, (long)a->heads * a->vd);
	if (own) {
		e->k = maxl(e->k, kvd);
		e->v = maxl(e->v, (long)a->kv_heads * a->vd);
	}
	dset(&d, "P", "%s", P);
	dset(&d, "H", "%d", a->heads);
	dset(&d, "KVH", "%d", a->kv_heads);
	dset(&d, "HD", "%d", a->hd);
	dset(&d, "VD", "%d", a->vd);
	dset(&d, "QD", "%ld", qd);
	dset(&d, "KVD", "%ld", kvd);
	dset(&d, "GQA", "%d", a->heads != a->kv_heads);
	dset(&d, "GROUP", "%d", a->heads / a->kv_heads);
	dset(&d, "OWN", "%d", own);
	dset(&d, "FROM", "%d", a->kv_from);
	dset(&d, "BQ", "%d", a->bq.t >= 0);
	dset(&d, "BO", "%d", a->bo.t >= 0);
	mask_note(note, sizeof note, a);
	dset(&d, "MASK_NOTE", "%s", note);

	snprintf(c, sizeof c, "%s_wq", P);
	bind_mat(e, c, a->wq);
	if (own) {
		snprintf(c, sizeof c, "%s_wk", P);
		bind_mat(e, c, a->wk);
		snprintf(c, sizeof c, "%s_wv", P);
		bind_mat(e, c, a->wv);
	}
	snprintf(c, sizeof c, "%s_wo", P);
	bind_mat(e, c, a->wo);
	if (a->bq.t >= 0) {
		snprintf(c, sizeof c, "%s_bq", P);
		bind_vec(e, c, a->bq);
		snprintf(c, sizeof c, "%s_bk", P);
		bind_vec(e, c, a->bk);
		snprintf(c, sizeof c, "%s_bv", P);
		bind_vec(e, c, a->bv);
	}
	if (a->bo.t >= 0) {
		snprintf(c, sizeof c, "%s_bo", P);
		bind_vec(e, c, a->bo);
	}
	tmpl(body, "attention.c", "proj", &d);

	if (a->kv_conv) {
		/* one filter per K/V head in the checkpoint; every channel of
		 * the head uses it */
		dset(&d, "TAPS", "%d", a->kv_conv);
		const char *names[2] = {"conv_k", "conv_v"};
		const Vec w[2] = {a->conv_k, a->conv_v};
		for (int j = 0; j < 2; j++) {
			bprintf(&e->decl, "static const float *%s_%s;\n", P, names[j]);
			bprintf(&e->bind, "\t%s_%s = lm_repeat_rows(", P, names[j]);
			vec_call(e, w[j]);
			bprintf(&e->bind, ", %d, %d, %d);\n", a->kv_heads, a->kv_conv, a->hd);
		}
		bprintf(&e->decl, "static float *%s_k_prev, *%s_v_prev;\n", P, P);
		bprintf(&e->alloc, "\t%s_k_prev = lm_floats(%ld);\n\t%s_v_prev = lm_floats(%ld);\n",
		        P, (a->kv_conv - 1) * kvd, P, (a->kv_conv - 1) * kvd);
		bprintf(&e->reset, "\tlm_zero(%s_k_prev, %ld);\n\tlm_zero(%s_v_prev, %ld);\n",
		        P, (a->kv_conv - 1) * kvd, P, (a->kv_conv - 1) * kvd);
		tmpl(body, "attention.c", "kvconv", &d);
	}

	char qkn[400];
	qk_note(qkn, sizeof qkn, a);
	dset(&d, "QK_NOTE", "%s", qkn);
	dset(&d, "QK_EPS", "%s", flt(a->qk_eps));
	if (a->qk != QK_NONE) {
		long rows = a->qk == QK_PER_HEAD ? 0 : 1;
		snprintf(c, sizeof c, "%s_q_norm", P);
		dset(&d, "QW", "%s", a->qk == QK_PLAIN ? "0" : c);
		dset(&d, "QWROWS", "%ld", rows ? rows : a->heads);
		if (a->qk != QK_PLAIN)
			bind_vec(e, c, a->qn);
		snprintf(c, sizeof c, "%s_k_norm", P);
		dset(&d, "KW", "%s", a->qk == QK_PLAIN || !own ? "0" : c);
		dset(&d, "KWROWS", "%ld", rows ? rows : a->kv_heads);
		if (a->qk != QK_PLAIN && own)
			bind_vec(e, c, a->kn);
	}
	if (a->qk != QK_NONE && a->qk_before_rope)
		tmpl(body, "attention.c", "qknorm", &d);
	if (a->rope >= 0) {
		const Rope *r = &p->ropes[a->rope];
		dset(&d, "ROPE", "%d", a->rope);
		dset(&d, "ROPE_NOTE", "%s", r->note);
		dset(&d, "RD", "%d", r->dims);
		dset(&d, "STYLE", "%s", r->style == ROPE_HALF ? "LM_ROPE_HALF" : "LM_ROPE_INTERLEAVED");
		tmpl(body, "attention.c", "rope", &d);
	}
	if (a->qk != QK_NONE && !a->qk_before_rope)
		tmpl(body, "attention.c", "qknorm", &d);
	if (a->fake8) {
		snprintf(c, sizeof c, "%s_k_scale", P);
		bind_scalar(e, c, a->kscale);
		snprintf(c, sizeof c, "%s_v_scale", P);
		bind_scalar(e, c, a->vscale);
		tmpl(body, "attention.c", "fake8", &d);
	}

	if (own) {
		long cap = a->window ? a->window : a->chunk;
		bprintf(&e->decl, "static lm_kv %s_kv;\n", P);
		if (cap)
			bprintf(&e->alloc, "\tlm_kv_init(&%s_kv, LM_KV_RING, %ld, %ld, %ld);\n",
			        P, cap, kvd, (long)a->kv_heads * a->vd);
		else
			bprintf(&e->alloc, "\tlm_kv_init(&%s_kv, LM_KV_FULL, ctx, %ld, %ld);\n",
			        P, kvd, (long)a->kv_heads * a->vd);
		bprintf(&e->reset, "\tlm_kv_reset(&%s_kv);\n", P);
		dset(&d, "CACHE", "%s_kv", P);
	} else {
		dset(&d, "CACHE", "l%d_kv", a->kv_from);
	}
	dset(&d, "SCALE", "%s", flt(a->scale));
	dset(&d, "WINDOW", "%ld", a->window);
	dset(&d, "CHUNK", "%ld", a->chunk);
	tmpl(body, "attention.c", "attend", &d);
	dfree(&d);
}

static void mlp(Em *e, Buf *body, const char *P, const Mlp *m)
{
	char c[48];
	Dict d = {0};
	dset(&d, "P", "%s", P);
	dset(&d, "I", "%ld", m->inter);
	e->inter = maxl(e->inter, m->inter);
	snprintf(c, sizeof c, "%s_gate", P);
	bind_mat(e, c, m->gate);
	snprintf(c, sizeof c, "%s_up", P);
	bind_mat(e, c, m->up);
	snprintf(c, sizeof c, "%s_down", P);
	bind_mat(e, c, m->down);
	tmpl(body, "mlp.c", "swiglu", &d);
	dfree(&d);
}

/* ---- layers ---- */

static void summary(char *s, size_t n, const Layer *l)
{
	const Attn *a = &l->attn;
	size_t k = 0;
	switch (l->mix) {
	case MIX_ATTN:
		if (a->kv_from >= 0)
			k = snprintf(s, n, "attention reusing layer %d's K/V", a->kv_from);
		else
			k = snprintf(s, n, "%s attention",
			             a->window ? "sliding-window" : a->chunk ? "chunked" : "global");
		break;
	default:
		lm_bug("mixer %d not emitted yet", l->mix);
	}
	if (l->ffn == FFN_MLP)
		snprintf(s + k, n - k, ", SwiGLU MLP");
	else
		snprintf(s + k, n - k, ", mixture of experts");
}

static void layer(Em *e, int i)
{
	const Layer *l = &e->p->layers[i];
	char P[16], c[48], sum[160];
	Buf body = {0};
	Dict d = {0};
	snprintf(P, sizeof P, "l%d", i);
	dset(&d, "P", "%s", P);
	dset(&d, "L", "%d", i);

	/* the mixer */
	switch (l->mix) {
	case MIX_ATTN:
		attention(e, &body, i, &l->attn);
		break;
	default:
		lm_bug("mixer %d not emitted yet", l->mix);
	}
	char *mix = bdone(&body);
	dset(&d, "BODY", "%s", mix);
	free(mix);
	dset(&d, "PRE", "%d", l->pre_mix.on);
	dset(&d, "POST", "%d", l->post_mix.on);
	dset(&d, "EPS", "%s", flt(l->pre_mix.eps));
	snprintf(c, sizeof c, "%s_mix_norm", P);
	if (l->pre_mix.on)
		norm_arg(e, c, l->pre_mix);
	snprintf(c, sizeof c, "%s_mix_post_norm", P);
	if (l->post_mix.on)
		norm_arg(e, c, l->post_mix);
	Buf mixer = {0};
	tmpl(&mixer, "layer.c", "mixer", &d);

	/* the feed-forward block */
	switch (l->ffn) {
	case FFN_MLP:
		mlp(e, &body, P, &l->mlp);
		break;
	default:
		lm_bug("feed-forward %d not emitted yet", l->ffn);
	}
	char *ffn = bdone(&body);
	dset(&d, "BODY", "%s", ffn);
	free(ffn);
	dset(&d, "PRE", "%d", l->pre_ffn.on);
	dset(&d, "POST", "%d", l->post_ffn.on);
	dset(&d, "EPS", "%s", flt(l->pre_ffn.eps));
	snprintf(c, sizeof c, "%s_ffn_norm", P);
	if (l->pre_ffn.on)
		norm_arg(e, c, l->pre_ffn);
	snprintf(c, sizeof c, "%s_ffn_post_norm", P);
	if (l->post_ffn.on)
		norm_arg(e, c, l->post_ffn);
	tmpl(&mixer, "layer.c", "ffn", &d);

	summary(sum, sizeof sum, l);
	dset(&d, "SUMMARY", "%s", sum);
	char *decls = bdone(&e->decl);
	dset(&d, "DECLS", "%s", decls);
	free(decls);
	tmpl(&e->code, "layer.c", "begin", &d);
	bput(&e->code, mixer.s, mixer.n);
	free(mixer.s);
	tmpl(&e->code, "layer.c", "end", &d);
	bprintf(&e->calls, "\t\tlayer%d(b);\n", i);
	dfree(&d);
}

static void ropes(Em *e, Buf *out)
{
	for (int i = 0; i < e->p->nropes; i++) {
		const Rope *r = &e->p->ropes[i];
		bprintf(out, "\n/* RoPE frequencies, %s: pair j of a head turns\n"
		        " * by position * rope%d[j]. */\nstatic const double rope%d[%d] = {",
		        r->note, i, i, r->dims / 2);
		for (int j = 0; j < r->dims / 2; j++)
			bprintf(out, "%s%s,", j % 4 ? " " : "\n\t", dbl(r->inv_freq[j]));
		bprintf(out, "\n};\n");
	}
}

static void head_bind(Em *e)
{
	const Plan *p = e->p;
	const Tensor *ht = &p->t[p->head.t];
	char c[16] = "embed";
	bind_mat(e, c, p->embed);
	if (p->head_l2 > 0) {
		bprintf(&e->bind, "\t/* the head's rows, L2-normalised once: row / (|row| + %g) */\n",
		        p->head_l2);
		bprintf(&e->bind, "\thead = lm_ck_mat_f32(ck, ");
		cstr(&e->bind, ht->name);
		bprintf(&e->bind, ", ");
		shape(&e->bind, ht);
		bprintf(&e->bind, ", %ld, %ld, %ld, %ld, %s);\n", p->head.off, p->head.rows,
		        p->head.cols, p->head.ld, flt(p->head_l2));
	} else if (p->head_tied) {
		bprintf(&e->bind, "\thead = embed;    /* tied: the embedding is the head */\n");
	} else {
		strcpy(c, "head");
		bind_mat(e, c, p->head);
	}
	bprintf(&e->bind, "\tfinal_norm = ");
	if (p->final.w.t >= 0)
		vec_call(e, p->final.w);
	else
		bprintf(&e->bind, "0");
	bprintf(&e->bind, ";\n");
	free(bdone(&e->decl));        /* declared in the head part */
}

char *emit_model(const Plan *p, const char *weights_dir)
{
	Em e = {.p = p};
	Buf out = {0}, sched = {0}, scratch = {0};
	Dict d = {0};

	head_bind(&e);
	for (int i = 0; i < p->nl; i++)
		layer(&e, i);

	/* the schedule table, as comment lines */
	char *tab;
	size_t tlen;
	FILE *f = open_memstream(&tab, &tlen);
	plan_print(p, f, " *   ");
	fclose(f);
	bput(&sched, tab, tlen && tab[tlen - 1] == '\n' ? tlen - 1 : tlen);
	free(tab);

	struct { const char *name; long n; const char *what; } bufs[] = {
		{"q", e.q, "queries"}, {"k", e.k, "keys"}, {"v", e.v, "values"},
		{"att", e.att, "attention output, before o_proj"},
		{"gate", e.inter, "MLP gate, then silu(gate) * up"}, {"up", e.inter, "MLP up"},
	};
	for (size_t j = 0; j < sizeof bufs / sizeof bufs[0]; j++) {
		if (!bufs[j].n)
			continue;
		bprintf(&scratch, "static float *%s;   /* %s: [MAXB, %ld] */\n",
		        bufs[j].name, bufs[j].what, bufs[j].n);
		bprintf(&e.alloc, "\t%s = lm_floats(MAXB * %ld);\n", bufs[j].name, bufs[j].n);
	}

	char params[64];
	snprintf(params, sizeof params, "%ld", plan_params(p));
	Buf ov = {0};
	tmpl(&ov, "overview.c", p->arch, &d);
	if (ov.n && ov.s[ov.n - 1] == '\n')
		ov.s[--ov.n] = 0;
	dset(&d, "NAME", "%s", p->name);
	dset(&d, "TITLE", "%s", p->title);
	dset(&d, "OVERVIEW", "%s", ov.s ? ov.s : " *");
	free(ov.s);
	dset(&d, "SCHEDULE", "%s", sched.s);
	dset(&d, "PARAMS", "%s", params);
	dset(&d, "VOCAB", "%ld", p->vocab);
	dset(&d, "DIM", "%ld", p->hidden);
	dset(&d, "MAXB", "%d", 256);
	char *s = bdone(&scratch);
	dset(&d, "SCRATCH", "%s", s);
	free(s);
	tmpl(&out, "model.c", "head", &d);
	ropes(&e, &out);
	bput(&out, "\n", 1);
	bput(&out, e.code.s, e.code.n);

	Buf w = {0};
	if (weights_dir)
		cstr(&w, weights_dir);
	else
		bprintf(&w, "0");
	s = bdone(&w);
	dset(&d, "WEIGHTS", "%s", s);
	free(s);
	dset(&d, "MAX_CTX", "%ld", p->max_ctx);
	dset(&d, "EPS", "%s", flt(p->final.eps));
#define TAKE(key, buf) do { char *t_ = bdone(buf); \
		if (t_[0] && t_[strlen(t_) - 1] == '\n') t_[strlen(t_) - 1] = 0; \
		dset(&d, key, "%s", t_); free(t_); } while (0)
	TAKE("BIND", &e.bind);
	TAKE("ALLOC", &e.alloc);
	TAKE("RESET", &e.reset);
	TAKE("CALLS", &e.calls);
#undef TAKE
	tmpl(&out, "model.c", "tail", &d);
	dfree(&d);
	free(sched.s);
	free(e.code.s);
	return bdone(&out);
}
