/* emit_attn.c: the attention block (templates/attention.c).
 *
 * The template holds each step; this file strings together the ones a
 * layer's plan asks for, in the order the architecture applies them (q/k
 * norms go before RoPE in PLaMo-2 and after it in AFM-7 and Llama 4), and
 * declares the weights and the cache the steps use. */
#include "em.h"
#include "../runtime/rt.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

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
		snprintf(s, n, "%s RMS-normalised per head%s\n\t * (eps %g, one weight of %d "
		         "shared by every head): this bounds the\n\t * attention logits.",
		         who, when, a->qk_eps, a->hd);
		break;
	case QK_PLAIN:
		snprintf(s, n, "%s RMS-normalised per head%s, without weight\n\t * (eps %g).",
		         who, when, a->qk_eps);
		break;
	case QK_PER_HEAD:
		snprintf(s, n, "%s RMS-normalised per head%s (eps %g),\n\t * each head with "
		         "its own weight.", who, when, a->qk_eps);
		break;
	case QK_NONE:
		s[0] = 0;
	}
}

/* The per-head q/k norm weights, when the norm has any. */
static void qk_weights(Em *e, Dict *d, const Attn *a, int own)
{
	long rows = a->qk == QK_PER_HEAD ? 0 : 1;
	dset(d, "QW", "%s", a->qk == QK_PLAIN ? "LM_UNWEIGHTED" : "L->q_norm");
	dset(d, "QWROWS", "%ld", rows ? rows : a->heads);
	if (a->qk != QK_PLAIN)
		em_pvec(e, "q_norm", a->qn);
	dset(d, "KW", "%s", a->qk == QK_PLAIN || !own ? "LM_UNWEIGHTED" : "L->k_norm");
	dset(d, "KWROWS", "%ld", rows ? rows : a->kv_heads);
	if (a->qk != QK_PLAIN && own)
		em_pvec(e, "k_norm", a->kn);
}

/* The K/V convolution's filters, one per K/V head in the checkpoint,
 * repeated for every channel of the head, and its state. */
static void kv_conv(Em *e, const Attn *a, long kvd)
{
	const char *names[2] = {"conv_k", "conv_v"};
	const Vec w[2] = {a->conv_k, a->conv_v};
	long state = (a->kv_conv - 1) * kvd;
	for (int j = 0; j < 2; j++) {
		em_decl_vec(e, names[j]);
		bprintf(&e->bind, "\tL->%s = lm_state_own(&state, lm_repeat_rows(", names[j]);
		em_vec_expr(e, names[j], w[j]);
		bprintf(&e->bind, ", %d, %d, %d));\n", a->kv_heads, a->kv_conv, a->hd);
	}
	char what[64];
	snprintf(what, sizeof what, "[%d, %ld]: the last raw keys", a->kv_conv - 1, kvd);
	em_state(e, "k_prev", state, what);
	snprintf(what, sizeof what, "[%d, %ld]: the last raw values", a->kv_conv - 1, kvd);
	em_state(e, "v_prev", state, what);
}

void emit_attention(Em *e, Buf *body, const Attn *a)
{
	const Plan *p = e->p;
	char note[400];
	Dict d = {0};
	int own = a->kv_from < 0;
	long qd = (long)a->heads * a->hd, kvd = (long)a->kv_heads * a->hd;
	long kvv = (long)a->kv_heads * a->vd;
	em_scratch(e, "q", qd, "queries");
	em_scratch(e, "att", (long)a->heads * a->vd, "attention output, before o_proj");
	if (own) {
		em_scratch(e, "k", kvd, "keys");
		em_scratch(e, "v", kvv, "values");
	}
	dset(&d, "H", "%d", a->heads);
	dset(&d, "KVH", "%d", a->kv_heads);
	dset(&d, "HD", "%d", a->hd);
	dset(&d, "VD", "%d", a->vd);
	dset(&d, "QD", "%ld", qd);
	dset(&d, "KVD", "%ld", kvd);
	dset(&d, "GQA", "%d", a->heads != a->kv_heads);
	dset(&d, "KVS", "%d", a->kv_heads > 1);
	dset(&d, "GROUP", "%d", a->heads / a->kv_heads);
	dset(&d, "OWN", "%d", own);
	dset(&d, "FROM", "%d", a->kv_from);
	dset(&d, "BQ", "%d", a->bq.t >= 0);
	dset(&d, "BO", "%d", a->bo.t >= 0);
	mask_note(note, sizeof note, a);
	dset(&d, "MASK_NOTE", "%s", note);

	em_pmat(e, "wq", a->wq);
	if (own) {
		em_pmat(e, "wk", a->wk);
		em_pmat(e, "wv", a->wv);
	}
	em_pmat(e, "wo", a->wo);
	if (a->bq.t >= 0) {
		em_pvec(e, "bq", a->bq);
		em_pvec(e, "bk", a->bk);
		em_pvec(e, "bv", a->bv);
	}
	if (a->bo.t >= 0) {
		em_pvec(e, "bo", a->bo);
	}
	tmpl(body, "attention.c", "proj", &d);
	dset(&d, "AD", "%ld", (long)a->heads * a->vd);
	dset(&d, "KVV", "%ld", kvv);
	tmpl(body, "attention.c", "seqs", &d);

	if (a->kv_conv) {
		dset(&d, "TAPS", "%d", a->kv_conv);
		kv_conv(e, a, kvd);
		tmpl(body, "attention.c", "kvconv", &d);
	}

	qk_note(note, sizeof note, a);
	dset(&d, "QK_NOTE", "%s", note);
	dset(&d, "QK_EPS", "%s", em_flt(a->qk_eps));
	if (a->qk != QK_NONE)
		qk_weights(e, &d, a, own);
	if (a->qk != QK_NONE && a->qk_before_rope)
		tmpl(body, "attention.c", "qknorm", &d);
	if (a->rope >= 0) {
		const Rope *r = &p->ropes[a->rope];
		dset(&d, "ROPE", "%d", a->rope);
		dset(&d, "ROPE_NOTE", "%s", r->note);
		dset(&d, "RD", "%d", r->dims);
		dset(&d, "STYLE", "%s", r->style == ROPE_HALF ? "LM_ROPE_HALF" : "LM_ROPE_INTERLEAVED");
		tmpl(body, "attention.c", "rope", &d);
	} else {
		dset(&d, "GLOBAL", "%d", !a->window && !a->chunk);
		tmpl(body, "attention.c", "nope", &d);
	}
	if (a->qk != QK_NONE && !a->qk_before_rope)
		tmpl(body, "attention.c", "qknorm", &d);
	if (a->temp_tuning) {
		dset(&d, "FLOOR", "%s", em_num(a->floor_scale, 0));
		dset(&d, "ATTN_SCALE", "%s", em_num(a->attn_scale, 0));
		dset(&d, "FLOOR_G", "%g", a->floor_scale);
		dset(&d, "ATTN_SCALE_G", "%g", a->attn_scale);
		tmpl(body, "attention.c", "temperature", &d);
	}
	if (a->fake8) {
		em_pscalar(e, "k_scale", a->kscale);
		em_pscalar(e, "v_scale", a->vscale);
		tmpl(body, "attention.c", "fake8", &d);
	}

	if (own) {
		long cap = a->window ? a->window : a->chunk;
		char ring[64];   /* a ring never longer than the context */
		snprintf(ring, sizeof ring, "ctx < %ld ? ctx : %ld", cap, cap);
		if (cap)
			em_kv(e, "LM_KV_RING", ring, kvd, kvv);
		else
			em_kv(e, "LM_KV_FULL", "ctx", kvd, kvv);
		dset(&d, "CACHE", "&L->kv");
	} else {
		bprintf(&e->decl, "\tlm_kv *kv_from;   /* the cache this layer reads */\n");
		bprintf(&e->bind, "\tL->kv_from = &l%d.kv;\n", a->kv_from);
		dset(&d, "CACHE", "L->kv_from");
	}
	dset(&d, "SCALE", "%s", em_flt(a->scale));
	double sq = 1 / ((double)a->scale * a->scale);     /* the scale as 1/sqrt(sq) */
	if (fabs(sq - round(sq)) < 1e-3 * sq)
		dset(&d, "SCALE_NOTE", "1/sqrt(%.0f)", round(sq));
	else
		dset(&d, "SCALE_NOTE", "%s", "");
	dset(&d, "WINDOW", "%ld", a->window);
	dset(&d, "CHUNK", "%ld", a->chunk);
	tmpl(body, "attention.c", "attend", &d);
	dfree(&d);
}
