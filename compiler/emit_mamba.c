/* emit_mamba.c: the Mamba-2 state space block (templates/mamba.c): its
 * weights, its two states (the convolution's last inputs and the scan's
 * state, both zero at position 0) and its scratch buffers. */
#include "em.h"

#include <stdio.h>

/* Norm `key` (B, C or DT) of the block: its weight bound as P_name. */
static void norm(Em *e, Dict *d, const char *key, const char *name, Norm nm)
{
	char k[16];
	snprintf(k, sizeof k, "%s_NORM", key);
	dset(d, k, "%d", nm.on);
	snprintf(k, sizeof k, "%s_W", key);
	if (nm.on && nm.w.t >= 0)
		dset(d, k, "L->%s", name);
	else
		dset(d, k, "LM_UNWEIGHTED");
	snprintf(k, sizeof k, "%s_EPS", key);
	dset(d, k, "%s", em_flt(nm.eps));
	if (nm.on && nm.w.t >= 0)
		em_pvec(e, name, nm.w);
}

void emit_mamba(Em *e, Buf *body, const Mamba *m)
{
	Dict d = {0};
	long W = (long)m->heads * m->hd, bc = (long)m->groups * m->d_state;
	long conv_state = (long)(m->d_conv - 1) * W;
	long ssm_state = W * m->d_state;
	dset(&d, "HEADS", "%d", m->heads);
	dset(&d, "HD", "%d", m->hd);
	dset(&d, "DS", "%d", m->d_state);
	dset(&d, "GROUPS", "%d", m->groups);
	dset(&d, "SHARED_BC", "%d", m->groups == 1);
	dset(&d, "W", "%ld", W);
	dset(&d, "BC", "%ld", bc);
	dset(&d, "TAPS", "%d", m->d_conv);
	dset(&d, "DT_IN", "%ld", m->wdt.rows);
	dset(&d, "DT_MIN", "%s", em_flt(m->dt_min));
	dset(&d, "DT_MAX", "%s", em_flt(m->dt_max));
	dset(&d, "DT_RANGE", "%g, %g", m->dt_min, m->dt_max);
	if (m->groups == 1)
		dset(&d, "BC_ROWS", "n");
	else
		dset(&d, "BC_ROWS", "n * %d", m->groups);
	dset(&d, "BYHEAD", "%d", m->zx_by_head);
	if (m->zx_by_head) {
		dset(&d, "SPLIT_ROWS", "n * %d", m->heads);
		dset(&d, "SPLIT_W", "%d", m->hd);
	} else {
		dset(&d, "SPLIT_ROWS", "n");
		dset(&d, "SPLIT_W", "%ld", W);
	}
	dset(&d, "ANY_NORM", "%d", m->b_norm.on || m->c_norm.on || m->dt_norm.on);

	em_scratch(e, "zx", 2 * W, "Mamba in_proj output: gate z and input x");
	em_scratch(e, "z", W, "Mamba gate");
	em_scratch(e, "xs", W, "Mamba input x, then its convolution");
	em_scratch(e, "ssm_b", bc, "Mamba B: where a token enters the state");
	em_scratch(e, "ssm_c", bc, "Mamba C: where the output reads the state");
	em_scratch(e, "dt_in", m->wdt.rows, "Mamba step size, before dt_proj");
	em_scratch(e, "dt", m->heads, "Mamba step size per head, before softplus");
	em_scratch(e, "ssm_y", W, "Mamba scan output, then gated by silu(z)");

	const struct { const char *name; Mat m; } mats[] = {
		{"in_proj", m->in_proj}, {"wb", m->wb}, {"wc", m->wc},
		{"wdt", m->wdt}, {"dt_proj", m->dt_proj}, {"out", m->out},
	};
	for (size_t j = 0; j < sizeof mats / sizeof mats[0]; j++)
		em_pmat(e, mats[j].name, mats[j].m);
	const struct { const char *name; Vec v; } vecs[] = {
		{"conv", m->conv}, {"a_log", m->a_log}, {"dt_bias", m->dt_bias}, {"d", m->d},
	};
	for (size_t j = 0; j < sizeof vecs / sizeof vecs[0]; j++)
		em_pvec(e, vecs[j].name, vecs[j].v);
	norm(e, &d, "B", "b_norm", m->b_norm);
	norm(e, &d, "C", "c_norm", m->c_norm);
	norm(e, &d, "DT", "dt_norm", m->dt_norm);

	char what[80];
	snprintf(what, sizeof what, "[%d, %ld]: the last inputs", m->d_conv - 1, W);
	em_state(e, "conv_state", conv_state, what);
	snprintf(what, sizeof what, "[%d, %d, %d]", m->heads, m->hd, m->d_state);
	em_state(e, "ssm_state", ssm_state, what);
	tmpl(body, "mamba.c", "mamba", &d);
	dfree(&d);
}
