/* cost.c: `lmcc plan --cost`, where the time of a token goes before
 * anything runs.  Per layer: the floating-point operations one token costs
 * at a given context length (each multiply-add counts two), the weight
 * bytes it reads (the matrices it multiplies, in the checkpoint's dtype),
 * and the cache the layer holds at that length.  Decoding is bounded by
 * the bytes, prefill by the operations. */
#include "plan.h"
#include "../runtime/rt.h"

#include <stdio.h>
#include <string.h>

typedef struct {
	double flops, attn_flops, bytes;
} Cost;

/* A matrix one token multiplies: 2 rows cols operations, rows cols
 * elements read. */
static void mat(Cost *c, const Plan *p, lm_ckpt *ck, Mat m, long times)
{
	if (m.t < 0)
		return;
	long elem = 2;
	if (ck) {
		int dt = lm_ck_info(ck, p->t[m.t].name, NULL, NULL);
		if (dt >= 0)
			elem = (long)lm_dtype_size(dt);
	}
	c->flops += 2.0 * m.rows * m.cols * times;
	c->bytes += (double)m.rows * m.cols * elem * times;
}

/* Keys a query at position ctx - 1 sees. */
static long seen(long ctx, long window, long chunk)
{
	if (window && window < ctx)
		return window;
	if (chunk && chunk < ctx)
		return chunk;
	return ctx;
}

/* The mixer's own operations for the token at position ctx - 1: attention
 * over the keys it sees, or the update of a recurrent state. */
static double mix_flops(const Layer *l, long ctx)
{
	const Attn *a = &l->attn;
	const Mla *m = &l->mla;
	switch (l->mix) {
	case MIX_ATTN:
		return 2.0 * a->heads * (a->hd + a->vd) * seen(ctx, a->window, a->chunk);
	case MIX_MLA:
		/* in the latent space: scores over [latent, k_pe], values over the latent */
		return 2.0 * m->heads * (2 * m->lora + m->rope_dim) * ctx;
	case MIX_KDA:
		/* decay, S k, the rank-one write, S q: about 7 per state entry */
		return 7.0 * l->kda.heads * l->kda.hd * l->kda.hd;
	case MIX_MAMBA:
		/* decay, the B write, the C read: about 5 per state entry */
		return 5.0 * l->mamba.heads * l->mamba.hd * l->mamba.d_state;
	}
	return 0;
}

static Cost layer_cost(const Plan *p, const Layer *l, long ctx, lm_ckpt *ck)
{
	Cost c = {.attn_flops = mix_flops(l, ctx)};
	switch (l->mix) {
	case MIX_ATTN: {
		const Attn *a = &l->attn;
		mat(&c, p, ck, a->wq, 1);
		mat(&c, p, ck, a->wk, 1);
		mat(&c, p, ck, a->wv, 1);
		mat(&c, p, ck, a->wo, 1);
		break;
	}
	case MIX_MLA: {
		const Mla *m = &l->mla;
		mat(&c, p, ck, m->wq, 1);
		mat(&c, p, ck, m->wkv, 1);
		mat(&c, p, ck, m->wo, 1);
		mat(&c, p, ck, m->uk.m0, m->uk.n);
		mat(&c, p, ck, m->uv.m0, m->uv.n);
		break;
	}
	case MIX_KDA: {
		const Kda *k = &l->kda;
		Mat ms[] = {k->wq, k->wk, k->wv, k->f_a, k->f_b, k->b, k->g_a, k->g_b, k->wo};
		for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++)
			mat(&c, p, ck, ms[i], 1);
		break;
	}
	case MIX_MAMBA: {
		const Mamba *m = &l->mamba;
		Mat ms[] = {m->in_proj, m->wb, m->wc, m->wdt, m->dt_proj, m->out};
		for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++)
			mat(&c, p, ck, ms[i], 1);
		break;
	}
	}
	if (l->ffn == FFN_MLP) {
		mat(&c, p, ck, l->mlp.gate, 1);
		mat(&c, p, ck, l->mlp.up, 1);
		mat(&c, p, ck, l->mlp.down, 1);
	} else {
		const Moe *m = &l->moe;
		mat(&c, p, ck, m->router, 1);
		mat(&c, p, ck, m->gate.m0, m->top_k);
		mat(&c, p, ck, m->up.m0, m->top_k);
		mat(&c, p, ck, m->down.m0, m->top_k);
		if (m->shared) {
			mat(&c, p, ck, m->sh.gate, 1);
			mat(&c, p, ck, m->sh.up, 1);
			mat(&c, p, ck, m->sh.down, 1);
		}
	}
	c.flops += c.attn_flops;
	return c;
}

double plan_prefill_flops(const Plan *p, long depth, long n)
{
	double f = 0;
	for (int i = 0; i < p->nl; i++) {
		Cost c = layer_cost(p, &p->layers[i], 1, NULL);
		f += (c.flops - c.attn_flops) * n;
		for (long t = depth + 1; t <= depth + n; t++)
			f += mix_flops(&p->layers[i], t);
	}
	Cost h = {0};
	mat(&h, p, NULL, p->head, 1);
	return f + h.flops;
}

static void row(FILE *f, const char *name, Cost c, double cache)
{
	fprintf(f, "%-6s %12.3f %12.3f %12.2f %12.2f\n", name, c.flops / 1e6,
	        c.attn_flops / 1e6, c.bytes / 1e6, cache / 1e6);
}

void plan_cost(const Plan *p, long ctx, lm_ckpt *ck, FILE *f)
{
	fprintf(f, "cost of one token at context %ld (weights as %s):\n\n", ctx,
	        ck ? "the checkpoint stores them" : "BF16");
	fprintf(f, "%-6s %12s %12s %12s %12s\n", "layer", "MFLOP", "of which mix",
	        "weight MB", "cache MB");
	Cost all = {0};
	double cache_all = 0;
	for (int i = 0; i < p->nl; i++) {
		Cost c = layer_cost(p, &p->layers[i], ctx, ck);
		long tok, fixed;
		plan_layer_cache(&p->layers[i], &tok, &fixed);
		double cache = (double)tok * ctx + fixed;
		char name[16];
		snprintf(name, sizeof name, "%d", i);
		row(f, name, c, cache);
		all.flops += c.flops;
		all.attn_flops += c.attn_flops;
		all.bytes += c.bytes;
		cache_all += cache;
	}
	Cost h = {0};
	mat(&h, p, ck, p->head, 1);
	row(f, "head", h, 0);
	all.flops += h.flops;
	all.bytes += h.bytes;
	row(f, "total", all, cache_all);
	fprintf(f, "\nA token decoded at position %ld reads %.2f MB of weights and does %.3f\n"
	        "MFLOP; a prefill of %ld tokens does %.4g MFLOP (the head only for the last).\n"
	        "The mix column is the mixer's own work: attention over the keys a query\n"
	        "sees, or the recurrent state's update.  Norms and small vectors are left out.\n",
	        ctx, all.bytes / 1e6, all.flops / 1e6, ctx,
	        plan_prefill_flops(p, 0, ctx) / 1e6);
}
