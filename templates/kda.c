The gated delta-rule block (KDA): a linear-attention layer whose memory is
a fixed-size matrix per head, updated token by token, instead of a cache
that grows with the context.  The kernels are in runtime/delta.c.

@@ kda
	/* Delta-rule attention (KDA), {{H}} heads of {{D}}.  Each head keeps a
	 * state S of [{{D}}, {{D}}]: an associative memory from keys to values,
	 * S k being what it recalls for key k.  For each token:
	 *   S = S * diag(g)               forget: each key channel i keeps a
	 *                                 share g_i of what it held, g_i in (0, 1)
	 *   S = S + beta (v - S k) k^T    delta rule: write v at k, minus what
	 *                                 S already recalled there, so a key
	 *                                 rewritten replaces its value instead
	 *                                 of piling up
	 *   o = S q                       read the memory with the query
	 * The gate is per channel (KDA's refinement of Gated DeltaNet, whose
	 * g is one scalar per head), so a head can keep some features
	 * for long and let others fade within a few tokens.  The state,
	 * {{STATE}} floats, and the last {{KEEP}} inputs of the three
	 * convolutions are all this layer carries from earlier tokens. */
	lm_matmul(q, xn, n, L->wq);
	lm_matmul(k, xn, n, L->wk);
	lm_matmul(v, xn, n, L->wv);

	/* Short causal convolutions ({{TAPS}} taps, one filter per channel,
	 * then SiLU) give q, k and v a little local context before the
	 * recurrence; L->q_prev, k_prev and v_prev carry their last {{KEEP}} inputs across calls. */
	for (long r = 0, m; (m = lm_seq_rows(&state, r, n)) > 0; r += m) {   /* per sequence */
		long o = r * {{HD}};
		lm_causal_conv(q + o, q + o, m, {{HD}}, L->q_conv, {{TAPS}}, L->q_prev, LM_CONV_SILU);
		lm_causal_conv(k + o, k + o, m, {{HD}}, L->k_conv, {{TAPS}}, L->k_prev, LM_CONV_SILU);
		lm_causal_conv(v + o, v + o, m, {{HD}}, L->v_conv, {{TAPS}}, L->v_prev, LM_CONV_SILU);
	}

	/* q and k RMS-normalised per head without weight (eps {{QK_EPS_G}}),
	 * then q scaled by {{Q_SCALE_G}} and k by {{K_SCALE_G}}.{{#K_UNIT}}  k then has unit length,
	 * so a write moves S's recall for k a share beta of the way to v;
	 * q's extra 1/sqrt({{D}}) is attention's usual score scale.{{/K_UNIT}} */
	lm_rmsnorm(q, q, n * {{H}}, {{D}}, LM_UNWEIGHTED, 1, {{QK_EPS}});
	lm_scale(q, n * {{HD}}, {{Q_SCALE}});
	lm_rmsnorm(k, k, n * {{H}}, {{D}}, LM_UNWEIGHTED, 1, {{QK_EPS}});
	lm_scale(k, n * {{HD}}, {{K_SCALE}});

	/* The forget gate, per channel, from a rank-{{D}} projection:
	 * g = exp(-exp(A_log[h]) * softplus(f_b(f_a(x)) + dt_bias)), and the
	 * write strength beta = sigmoid(b(x)), one per head. */
	lm_matmul(low, xn, n, L->f_a);
	lm_matmul(decay, low, n, L->f_b);
	lm_decay(decay, n, {{H}}, {{D}}, L->a_log, L->dt_bias);
	lm_matmul(beta, xn, n, L->b);
	lm_sigmoid(beta, n * {{H}});
	for (long r = 0, m; (m = lm_seq_rows(&state, r, n)) > 0; r += m) {   /* per sequence */
		long o = r * {{HD}};
		lm_gated_delta(att + o, q + o, k + o, v + o, decay + o, beta + r * {{H}}, m, {{H}}, {{D}},
		               {{D}}, L->state);
	}

	/* Output: RMSNorm per head (o_norm), times a sigmoid gate from another
	 * rank-{{D}} projection of the input, then o_proj. */
	lm_rmsnorm(att, att, n * {{H}}, {{D}}, L->o_norm, 1, {{EPS}});
	lm_matmul(low, xn, n, L->g_a);
	lm_matmul(ogate, low, n, L->g_b);
	lm_sigmoid(ogate, n * {{HD}});
	lm_mul(att, att, ogate, n * {{HD}});
	lm_matmul(y, att, n, L->wo);
