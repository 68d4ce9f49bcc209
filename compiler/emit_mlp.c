/* emit_mlp.c: the dense SwiGLU feed-forward block (templates/mlp.c). */
#include "em.h"

#include <stdio.h>

void emit_mlp(Em *e, Buf *body, const Mlp *m)
{
	Dict d = {0};
	dset(&d, "I", "%ld", m->inter);
	em_scratch(e, "gate", m->inter, "MLP gate, then silu(gate) * up");
	em_scratch(e, "up", m->inter, "MLP up projection");
	em_pmat(e, "gate", m->gate);
	em_pmat(e, "up", m->up);
	em_pmat(e, "down", m->down);
	tmpl(body, "mlp.c", "swiglu", &d);
	dfree(&d);
}
