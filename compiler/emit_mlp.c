/* emit_mlp.c: the dense SwiGLU feed-forward block (templates/mlp.c). */
#include "emit.h"

#include <stdio.h>

void emit_mlp(Em *e, Buf *body, const char *P, const Mlp *m)
{
	char c[48];
	Dict d = {0};
	dset(&d, "P", "%s", P);
	dset(&d, "I", "%ld", m->inter);
	em_scratch(e, "gate", m->inter, "MLP gate, then silu(gate) * up");
	em_scratch(e, "up", m->inter, "MLP up projection");
	snprintf(c, sizeof c, "%s_gate", P);
	em_mat(e, c, m->gate);
	snprintf(c, sizeof c, "%s_up", P);
	em_mat(e, c, m->up);
	snprintf(c, sizeof c, "%s_down", P);
	em_mat(e, c, m->down);
	tmpl(body, "mlp.c", "swiglu", &d);
	dfree(&d);
}
