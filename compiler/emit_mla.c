/* emit_mla.c: the latent attention block (templates/mla.c): its weights,
 * the per-head halves of kv_b_proj as views, and its latent cache. */
#include "em.h"
#include "../runtime/rt.h"

#include <stdio.h>

void emit_mla(Em *e, Buf *body, const Mla *m)
{
	Dict d = {0};
	long kvd = (long)m->lora + m->rope_dim, qhd = (long)m->nope + m->rope_dim;
	em_scratch(e, "q", m->heads * qhd, "queries");
	em_scratch(e, "kv", kvd, "MLA cache rows: latent, k_pe");
	em_scratch(e, "qlat", m->heads * kvd, "MLA queries in the latent space");
	em_scratch(e, "olat", (long)m->heads * m->lora, "MLA attention output, latent");
	em_scratch(e, "att", (long)m->heads * m->vd, "attention output, before o_proj");

	em_pmat(e, "wq", m->wq);
	em_pmat(e, "wkv", m->wkv);
	em_pmat(e, "wo", m->wo);
	em_pvec(e, "kv_norm", m->kv_norm.w);
	em_pmatarr(e, "uk", &m->uk);
	em_pmatarr(e, "uv", &m->uv);
	em_kv(e, "LM_KV_LATENT", "ctx", kvd, m->lora);

	int recurrent = 0;
	for (int j = 0; j < e->p->nl; j++)
		recurrent |= e->p->layers[j].mix == MIX_KDA || e->p->layers[j].mix == MIX_MAMBA;
	dset(&d, "RECURRENT", "%d", recurrent);
	dset(&d, "H", "%d", m->heads);
	dset(&d, "LORA", "%d", m->lora);
	dset(&d, "R", "%d", m->rope_dim);
	dset(&d, "NOPE", "%d", m->nope);
	dset(&d, "VD", "%d", m->vd);
	dset(&d, "QHD", "%ld", qhd);
	dset(&d, "KVD", "%ld", kvd);
	dset(&d, "QLAT", "%ld", m->heads * kvd);
	dset(&d, "OLAT", "%ld", (long)m->heads * m->lora);
	dset(&d, "CACHE_B", "%ld", kvd * 4);
	dset(&d, "FULL_B", "%ld", (long)m->heads * (qhd + m->vd) * 4);
	/* templates/mla.c's count: expanding costs this much per cached key
	 * and saves this much per (query, key) pair */
	long per_key = ((long)m->nope + m->vd) * m->lora;
	long per_pair = 2L * m->lora - m->nope - m->vd;
	dset(&d, "EXPAND", "%d", per_pair > 0);
	dset(&d, "EXPAND_KEY", "%ld", per_key);
	dset(&d, "PAIR_SAVED", "%ld", per_pair);
	dset(&d, "BREAK_EVEN", "%ld", per_pair > 0 ? per_key / per_pair + 1 : 0);
	dset(&d, "SCALE", "%s", em_flt(m->scale));
	dset(&d, "EPS", "%s", em_flt(m->kv_norm.eps));
	tmpl(body, "mla.c", "mla", &d);
	dfree(&d);
}
