/* emit_overview.c: the opening comment of model.c, written from the plan
 * sentence by sentence, so that it is true of this config: what the layers
 * are and which is which, how experts are routed, what each layer keeps
 * between calls, how norms and the head are placed.  Only the facts every
 * config of an architecture shares come as fixed prose, from
 * templates/overview.c. */
#include "em.h"
#include "../runtime/rt.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What the mixer of a layer is and what it keeps, as one clause. */
static void mixer(Buf *b, const Plan *p, const Layer *l)
{
	const Attn *a = &l->attn;
	switch (l->mix) {
	case MIX_ATTN:
		if (a->window)
			bprintf(b, "sliding-window attention (a token sees the last %ld positions)", a->window);
		else if (a->chunk)
			bprintf(b, "chunked attention (a token sees its own chunk of %ld)", a->chunk);
		else
			bprintf(b, "causal attention over the whole context");
		bprintf(b, ", %d query heads of %d on %d K/V head%s", a->heads, a->hd, a->kv_heads,
		        a->kv_heads > 1 ? "s" : "");
		if (a->rope >= 0)
			bprintf(b, ", RoPE (%s)", p->ropes[a->rope].note);
		else
			bprintf(b, ", no RoPE");
		if (a->qk != QK_NONE)
			bprintf(b, ", q%s RMS-normalised per head%s", a->kv_from >= 0 ? "" : " and k",
			        a->rope < 0 ? "" : a->qk_before_rope ? " before RoPE" : " after RoPE");
		if (a->kv_conv)
			bprintf(b, ", a %d-tap causal convolution on raw K and V", a->kv_conv);
		if (a->temp_tuning)
			bprintf(b, ", queries scaled up with the log of their position");
		if (a->fake8)
			bprintf(b, ", K and V rounded to 8 bits (fake 8-bit)");
		if (a->kv_from >= 0)
			bprintf(b, "; no K/V of its own: it reads layer %d's cache (KV reuse)", a->kv_from);
		else if (a->window || a->chunk)
			bprintf(b, "; it caches at most %ld tokens", a->window ? a->window : a->chunk);
		else
			bprintf(b, "; it caches every token's K and V");
		break;
	case MIX_MLA:
		bprintf(b, "latent attention (MLA), %d heads: it caches one latent of %d%s per token",
		        l->mla.heads, l->mla.lora, l->mla.rope_dim ? " and a shared key part" : "");
		bprintf(b, ", no RoPE");
		break;
	case MIX_KDA:
		bprintf(b, "delta-rule attention (KDA), %d heads of %d: a fixed state of [%d, %d] per "
		        "head instead of a cache", l->kda.heads, l->kda.hd, l->kda.hd, l->kda.hd);
		break;
	case MIX_MAMBA:
		bprintf(b, "a Mamba-2 state space mixer, %d heads of %d: a fixed state of %d per "
		        "channel instead of a cache", l->mamba.heads, l->mamba.hd, l->mamba.d_state);
		break;
	}
}

/* The feed-forward block, and for a mixture of experts its routing rule. */
static void ffn(Buf *b, const Layer *l)
{
	const Moe *m = &l->moe;
	if (l->ffn == FFN_MLP) {
		bprintf(b, "a SwiGLU MLP of width %ld", l->mlp.inter);
		return;
	}
	bprintf(b, "a mixture of %d SwiGLU experts of width %ld, %d per token", m->experts,
	        m->inter, m->top_k);
	if (m->shared)
		bprintf(b, ", plus a shared expert every token goes through");
	switch (m->route) {
	case ROUTE_TOP1_SIGMOID_IN:
		bprintf(b, "; the expert of the largest router logit is chosen, and the sigmoid of "
		        "that logit scales the token before the expert");
		break;
	case ROUTE_GROUPED:
		bprintf(b, "; experts are chosen on %s(logits)%s", m->softmax ? "softmax" : "sigmoid",
		        m->bias.t >= 0 ? " plus a load-balancing correction bias" : "");
		if (m->groups > 1 && m->topk_group < m->groups)
			bprintf(b, " within the best %d of %d groups", m->topk_group, m->groups);
		bprintf(b, ", and weighted by their %sscores%s", m->bias.t >= 0 ? "unbiased " : "",
		        m->renorm && m->top_k > 1 ? ", renormalised to sum to 1" : "");
		if (m->scaling != 1)
			bprintf(b, ", times %g", m->scaling);
		break;
	}
}

/* Which norms the layers have and which offsets their weights are stored
 * relative to, when any. */
static void norms(Buf *b, const Plan *p)
{
	int post = 0, off = 0;
	for (int i = 0; i < p->nl; i++) {
		const Layer *l = &p->layers[i];
		post |= l->post_mix.on || l->post_ffn.on;
		off |= l->pre_mix.w.add != 0 || l->post_mix.w.add != 0 || l->post_ffn.w.add != 0;
	}
	bprintf(b, "Each block reads an RMS-normalised copy of the residual stream and adds its "
	        "output back");
	if (post)
		bprintf(b, "; the output is RMS-normalised again before the add (post-norm)");
	bprintf(b, ".");
	if (off) {
		const Layer *l = &p->layers[0];
		bprintf(b, "  Norm weights are stored relative to an offset, added at load: %g before "
		        "a block, %g after the mixer, %g after the feed-forward block, %g for the "
		        "final norm.", l->pre_mix.w.add, l->post_mix.w.add, l->post_ffn.w.add,
		        p->final.w.add);
	}
}

/* Text as comment lines " * ...", wrapped at 76 columns.  Lines join into
 * paragraphs; a blank line ends one, and so does a line starting "- ",
 * which begins a list item whose lines are indented under it. */
static void wrap(Buf *out, const char *text)
{
	const char *s = text;
	while (*s) {
		if (*s == '\n') {
			bprintf(out, " *\n");
			s++;
			continue;
		}
		int item = !strncmp(s, "- ", 2);
		const char *lead = item ? " *   " : " * ";
		size_t col = strlen(lead);
		bprintf(out, "%s", lead);
		int gap = 0;                      /* spaces before the next word */
		for (;;) {
			size_t wl = strcspn(s, " \n");
			if (gap && col + gap + wl > 76) {
				bprintf(out, "\n%s", item ? " *     " : " * ");
				col = item ? 7 : 3;
			} else if (gap) {
				bprintf(out, "%.*s", gap, "  ");
				col += gap;
			}
			bput(out, s, wl);
			col += wl;
			s += wl;
			gap = s[0] == ' ' && s[1] == ' ' ? 2 : 1;    /* two after a sentence */
			while (*s == ' ')
				s++;
			if (*s == '\n' && s[1] && s[1] != '\n' && strncmp(s + 1, "- ", 2)) {
				gap = s[-1] == '.' ? 2 : 1;   /* the paragraph goes on */
				s++;
			}
			else if (*s == '\n' || !*s)
				break;
		}
		bprintf(out, "\n");
		if (*s)
			s++;
	}
}

void emit_overview(const Plan *p, Buf *out)
{
	Buf t = {0};
	int n = p->nl;
	char **desc = lm_alloc(n * sizeof *desc);
	int *list = lm_alloc(n * sizeof *list), kinds = 0;
	char **ffns = lm_alloc(n * sizeof *ffns);
	for (int i = 0; i < n; i++) {
		Buf d = {0};
		ffn(&d, &p->layers[i]);
		ffns[i] = bdone(&d);
		mixer(&d, p, &p->layers[i]);
		bprintf(&d, "; then %s", ffns[i]);
		desc[i] = bdone(&d);
		int j;
		for (j = 0; j < i && strcmp(desc[j], desc[i]); j++)
			;
		kinds += j == i;
	}

	tmpl(&t, "overview.c", p->arch, &(Dict){0});
	bprintf(&t, "\nThis config: %d layer%s on a residual stream of %ld, a vocabulary of %ld.",
	        n, n > 1 ? "s" : "", p->hidden, p->vocab);
	if (kinds == 1)
		bprintf(&t, "  Every layer is the same:\n");
	else
		bprintf(&t, "  The layers are of %d kinds:\n", kinds);
	for (int i = 0; i < n; i++) {
		int k = 0, j;
		for (j = 0; j < i && strcmp(desc[j], desc[i]); j++)
			;
		if (j < i)
			continue;
		for (j = i; j < n; j++)
			if (!strcmp(desc[j], desc[i]))
				list[k++] = j;
		bprintf(&t, "- ");
		if (kinds > 1) {
			em_layers(&t, list, k);
			bprintf(&t, ": ");
		}
		/* a feed-forward block described before is only named */
		for (j = 0; j < i && strcmp(ffns[j], ffns[i]); j++)
			;
		if (j < i && strcmp(desc[j], desc[i]))
			bprintf(&t, "%.*sthen the same %s as layer %d.\n",
			        (int)(strlen(desc[i]) - strlen(ffns[i]) - 5), desc[i],
			        p->layers[i].ffn == FFN_MLP ? "MLP" : "mixture of experts", j);
		else
			bprintf(&t, "%s.\n", desc[i]);
	}
	bprintf(&t, "\n");
	norms(&t, p);
	if (p->head_l2 > 0)
		bprintf(&t, "  The head's rows are L2-normalised (NormHead)%s: a logit is the cosine of "
		        "the final hidden state with a row, scaled by the state's length.",
		        p->head_tied ? ", and the head is the embedding (tied)" : "");
	else if (p->head_tied)
		bprintf(&t, "  The output head is the embedding matrix (tied).");
	else
		bprintf(&t, "  The output head is a matrix of its own.");
	bprintf(&t, "\n");
	char *s = bdone(&t);
	wrap(out, s);
	free(s);
	for (int i = 0; i < n; i++) {
		free(desc[i]);
		free(ffns[i]);
	}
	free(desc);
	free(ffns);
	free(list);
}
