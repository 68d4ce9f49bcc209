/* emit_kda.c: the gated delta-rule block (templates/kda.c): its weights,
 * the three convolution states and the recurrent state. */
#include "em.h"

#include <math.h>
#include <stdio.h>

void emit_kda(Em *e, Buf *body, const Kda *k)
{
	char what[80];
	Dict d = {0};
	long HD = (long)k->heads * k->hd, keep = (long)(k->conv - 1) * HD;
	long S = (long)k->heads * k->hd * k->hd;
	em_scratch(e, "q", HD, "queries");
	em_scratch(e, "k", HD, "keys");
	em_scratch(e, "v", HD, "values");
	em_scratch(e, "att", HD, "attention output, before o_proj");
	em_scratch(e, "low", k->hd, "KDA low-rank gate input");
	em_scratch(e, "decay", HD, "KDA forget gates");
	em_scratch(e, "beta", k->heads, "KDA write strengths");
	em_scratch(e, "ogate", HD, "KDA output gates");

	em_pmat(e, "wq", k->wq);
	em_pmat(e, "wk", k->wk);
	em_pmat(e, "wv", k->wv);
	em_pmat(e, "f_a", k->f_a);
	em_pmat(e, "f_b", k->f_b);
	em_pmat(e, "b", k->b);
	em_pmat(e, "g_a", k->g_a);
	em_pmat(e, "g_b", k->g_b);
	em_pmat(e, "wo", k->wo);
	em_pvec(e, "q_conv", k->q_conv);
	em_pvec(e, "k_conv", k->k_conv);
	em_pvec(e, "v_conv", k->v_conv);
	em_pvec(e, "a_log", k->a_log);
	em_pvec(e, "dt_bias", k->dt_bias);
	em_pvec(e, "o_norm", k->o_norm.w);

	const char *who = "qkv";
	for (int j = 0; j < 3; j++) {
		char name[16];
		snprintf(name, sizeof name, "%c_prev", who[j]);
		snprintf(what, sizeof what, "[%d, %ld]: the last inputs of the %c conv",
		         k->conv - 1, HD, who[j]);
		em_state(e, name, keep, what);
	}
	snprintf(what, sizeof what, "[%d, %d, %d]: S of each head", k->heads, k->hd, k->hd);
	em_state(e, "state", S, what);

	dset(&d, "H", "%d", k->heads);
	dset(&d, "D", "%d", k->hd);
	dset(&d, "HD", "%ld", HD);
	dset(&d, "TAPS", "%d", k->conv);
	dset(&d, "KEEP", "%d", k->conv - 1);
	dset(&d, "STATE", "%ld", S);
	dset(&d, "QK_EPS", "%s", em_flt(k->qk_eps));
	dset(&d, "QK_EPS_G", "%g", k->qk_eps);
	dset(&d, "Q_SCALE_G", "%g", k->q_scale);
	dset(&d, "K_SCALE_G", "%g", k->k_scale);
	dset(&d, "K_UNIT", "%d", fabs(k->k_scale * sqrt(k->hd) - 1) < 1e-9
	                         && fabs(k->q_scale * k->hd - 1) < 1e-9);
	dset(&d, "Q_SCALE", "%s", em_flt(k->q_scale));
	dset(&d, "K_SCALE", "%s", em_flt(k->k_scale));
	dset(&d, "EPS", "%s", em_flt(k->o_norm.eps));
	tmpl(body, "kda.c", "kda", &d);
	dfree(&d);
}
