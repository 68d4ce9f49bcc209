/* emit_moe.c: the mixture-of-experts block (templates/moe.c): the router,
 * the routing rule as a constant lm_router, the experts bound one view
 * each, and the shared expert, an ordinary SwiGLU MLP every token goes
 * through. */
#include "em.h"

#include <stdio.h>

void emit_moe(Em *e, Buf *body, const Moe *m)
{
	Dict d = {0};
	dset(&d, "E", "%d", m->experts);
	dset(&d, "K", "%d", m->top_k);
	dset(&d, "I", "%ld", m->inter);
	dset(&d, "TOP1", "%d", m->route == ROUTE_TOP1_SIGMOID_IN);
	dset(&d, "GROUPED", "%d", m->route == ROUTE_GROUPED);
	dset(&d, "SOFTMAX", "%d", m->softmax);
	dset(&d, "GROUPS", "%d", m->groups);
	dset(&d, "TOPK_GROUP", "%d", m->topk_group);
	dset(&d, "DROPPED", "%d", m->groups - m->topk_group);
	dset(&d, "RENORM", "%d", m->renorm);
	dset(&d, "SCALING", "%s", em_flt(m->scaling));
	dset(&d, "SCALING_G", "%g", m->scaling);
	dset(&d, "BIAS", "L->bias");
	dset(&d, "SHARED", "%d", m->shared);
	dset(&d, "HAS_BIAS", "%d", m->bias.t >= 0);
	dset(&d, "SI", "%ld", m->sh.inter);
	em_scratch(e, "router", m->experts, "router logits");
	em_scratch(e, "sel_w", m->top_k, "routing weights of the chosen experts");
	em_scratch_ints(e, "sel", m->top_k, "the chosen experts");
	em_pmat(e, "router", m->router);
	if (m->bias.t >= 0) {
		em_pvec(e, "bias", m->bias);
	} else {
		dset(&d, "BIAS", "0 /* no bias */");
	}
	em_pmatarr(e, "gate_e", &m->gate);
	em_pmatarr(e, "up_e", &m->up);
	em_pmatarr(e, "down_e", &m->down);
	if (m->shared) {
		em_scratch(e, "gate", m->sh.inter, "MLP gate, then silu(gate) * up");
		em_scratch(e, "up", m->sh.inter, "MLP up projection");
		em_scratch(e, "y2", e->p->hidden, "a second block output");
		em_pmat(e, "sh_gate", m->sh.gate);
		em_pmat(e, "sh_up", m->sh.up);
		em_pmat(e, "sh_down", m->sh.down);
	}
	tmpl(body, "moe.c", "moe", &d);
	dfree(&d);
}
