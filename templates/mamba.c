The Mamba-2 state space mixer: projections, the causal convolution, the
selective scan (lm_ssm) and the gated output.  Its memory of the past is a
fixed-size state per layer, carried across calls, instead of a K/V cache.

@@ mamba
	/* Mamba-2 state space mixer: {{HEADS}} heads of {{HD}} channels.  Each
	 * channel keeps a state of {{DS}} numbers (L->ssm_state, [{{HEADS}}, {{HD}}, {{DS}}]):
	 * what the layer remembers of every earlier token, in a size that does
	 * not grow with the context, where attention keeps every key.
	 *
	 * in_proj makes a gate z and an input x for each head; its rows are
	 * {{#BYHEAD}}[z | x] for each head in turn{{/BYHEAD}}{{^BYHEAD}}all of z, then all of x{{/BYHEAD}}. */
	lm_matmul(zx, xn, n, L->in_proj);
	lm_split_rows(z, xs, zx, {{SPLIT_ROWS}}, {{SPLIT_W}}, {{SPLIT_W}});

	/* A causal depthwise convolution over time: each channel of x becomes
	 * a learned blend of its last {{TAPS}} values (L->conv_state keeps the
	 * earlier ones across calls), then SiLU.  It gives the scan a view of
	 * the immediate neighbourhood. */
	for (long r = 0, m; (m = lm_seq_rows(&state, r, n)) > 0; r += m)   /* per sequence */
		lm_causal_conv(xs + r * {{W}}, xs + r * {{W}}, m, {{W}}, L->conv, {{TAPS}}, L->conv_state,
		               LM_CONV_SILU);

	/* From the convolved x, for each token: B ({{DS}}), the direction in
	 * which the token is written into the state; C ({{DS}}), the direction in
	 * which the output reads it; and dt, the token's step size (from {{DT_IN}}
	 * numbers, projected to one per head){{#ANY_NORM}}.  B, C and dt's input are
	 * RMS-normalised, each with its own weight{{/ANY_NORM}}.  {{#SHARED_BC}}One B and one C
	 * serve every head.{{/SHARED_BC}}{{^SHARED_BC}}The heads form {{GROUPS}} groups, each with its own B and C.{{/SHARED_BC}} */
	lm_matmul(ssm_b, xs, n, L->wb);
	lm_matmul(ssm_c, xs, n, L->wc);
	lm_matmul(dt_in, xs, n, L->wdt);
{{#B_NORM}}
	lm_rmsnorm(ssm_b, ssm_b, {{BC_ROWS}}, {{DS}}, {{B_W}}, 1, {{B_EPS}});
{{/B_NORM}}
{{#C_NORM}}
	lm_rmsnorm(ssm_c, ssm_c, {{BC_ROWS}}, {{DS}}, {{C_W}}, 1, {{C_EPS}});
{{/C_NORM}}
{{#DT_NORM}}
	lm_rmsnorm(dt_in, dt_in, n, {{DT_IN}}, {{DT_W}}, 1, {{DT_EPS}});
{{/DT_NORM}}
	lm_matmul(dt, dt_in, n, L->dt_proj);

	/* The selective scan, for each token and head:
	 *   step  = clip(softplus(dt + dt_bias), {{DT_RANGE}})
	 *   state = exp(-exp(A_log) * step) * state + step * x B
	 *   y     = state C + D * x
	 * where x B is the outer product [{{HD}}, {{DS}}] of the head's inputs and B.
	 * A = -exp(A_log) is negative, so the state fades; a large step
	 * forgets more of the past and takes in more of this token, and since
	 * dt depends on the token, the layer decides per token what to keep.
	 * D lets x skip the state. */
	static const lm_ssm_dims dims = {
		.heads = {{HEADS}}, .hd = {{HD}}, .d_state = {{DS}}, .groups = {{GROUPS}},
		.dt_min = {{DT_MIN}}, .dt_max = {{DT_MAX}},
	};
	for (long r = 0, m; (m = lm_seq_rows(&state, r, n)) > 0; r += m)   /* per sequence */
		lm_ssm(ssm_y + r * {{W}}, xs + r * {{W}}, dt + r * {{HEADS}}, ssm_b + r * {{BC}},
		       ssm_c + r * {{BC}}, m, &dims, L->a_log, L->dt_bias, L->d, L->ssm_state);

	/* The output, gated by silu(z), back to the hidden size by out_proj. */
	lm_swiglu(ssm_y, z, ssm_y, n * {{W}});
	lm_matmul(y, ssm_y, n, L->out);
