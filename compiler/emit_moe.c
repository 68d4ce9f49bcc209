/* emit_moe.c: the mixture-of-experts block (templates/moe.c): the router,
 * the routing rule as a constant lm_router, the experts bound one view
 * each, and the shared expert, an ordinary SwiGLU MLP every token goes
 * through. */
#include "emit.h"

#include <stdio.h>

void emit_moe(Em *e, Buf *body, const char *P, const Moe *m)
{
	char c[48];
	Dict d = {0};
	dset(&d, "P", "%s", P);
	dset(&d, "E", "%d", m->experts);
	dset(&d, "K", "%d", m->top_k);
	dset(&d, "I", "%ld", m->inter);
	dset(&d, "TOP1", "%d", m->route == ROUTE_TOP1_SIGMOID_IN);
	dset(&d, "GROUPED", "%d", m->route == ROUTE_GROUPED);
	dset(&d, "RULE", "%s", m->route == ROUTE_GROUPED ? "LM_ROUTE_GROUPED"
	                                                   : "LM_ROUTE_TOP1_SIGMOID_IN");
	dset(&d, "SOFTMAX", "%d", m->softmax);
	dset(&d, "GROUPS", "%d", m->groups);
	dset(&d, "TOPK_GROUP", "%d", m->topk_group);
	dset(&d, "DROPPED", "%d", m->groups - m->topk_group);
	dset(&d, "RENORM", "%d", m->renorm);
	dset(&d, "SCALING", "%s", em_flt(m->scaling));
	dset(&d, "BIAS", "%s_bias", P);
	dset(&d, "SHARED", "%d", m->shared);
	dset(&d, "SI", "%ld", m->sh.inter);
	em_scratch(e, "router", m->experts, "router logits");
	em_scratch(e, "sel_w", m->top_k, "routing weights of the chosen experts");
	em_scratch_ints(e, "sel", m->top_k, "the chosen experts");
	snprintf(c, sizeof c, "%s_router", P);
	em_mat(e, c, m->router);
	if (m->bias.t >= 0) {
		snprintf(c, sizeof c, "%s_bias", P);
		em_vec(e, c, m->bias);
	} else {
		dset(&d, "BIAS", "0");
	}
	snprintf(c, sizeof c, "%s_gate_e", P);
	em_matarr(e, c, &m->gate);
	snprintf(c, sizeof c, "%s_up_e", P);
	em_matarr(e, c, &m->up);
	snprintf(c, sizeof c, "%s_down_e", P);
	em_matarr(e, c, &m->down);
	if (m->shared) {
		em_scratch(e, "gate", m->sh.inter, "MLP gate, then silu(gate) * up");
		em_scratch(e, "up", m->sh.inter, "MLP up projection");
		em_scratch(e, "y2", e->p->hidden, "a second block output");
		snprintf(c, sizeof c, "%s_sh_gate", P);
		em_mat(e, c, m->sh.gate);
		snprintf(c, sizeof c, "%s_sh_up", P);
		em_mat(e, c, m->sh.up);
		snprintf(c, sizeof c, "%s_sh_down", P);
		em_mat(e, c, m->sh.down);
	}
	tmpl(body, "moe.c", "moe", &d);
	dfree(&d);
}
