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
	lm_matmul(q, xn, n, {{P}}_wq);
	lm_matmul(k, xn, n, {{P}}_wk);
	lm_matmul(v, xn, n, {{P}}_wv);

	/* Short causal convolutions ({{TAPS}} taps, one filter per channel,
	 * then SiLU) give q, k and v a little local context before the
	 * recurrence; {{P}}_*_prev carry their last {{KEEP}} inputs across calls. */
	lm_causal_conv(q, q, n, {{HD}}, {{P}}_q_conv, {{TAPS}}, {{P}}_q_prev, 1);
	lm_causal_conv(k, k, n, {{HD}}, {{P}}_k_conv, {{TAPS}}, {{P}}_k_prev, 1);
	lm_causal_conv(v, v, n, {{HD}}, {{P}}_v_conv, {{TAPS}}, {{P}}_v_prev, 1);

	/* q and k RMS-normalised per head without weight (eps {{QK_EPS_G}}),
	 * then q scaled by {{Q_SCALE_G}} and k by {{K_SCALE_G}}.{{#K_UNIT}}  k then has unit length,
	 * so a write moves S's recall for k a share beta of the way to v;
	 * q's extra 1/sqrt({{D}}) is attention's usual score scale.{{/K_UNIT}} */
	lm_rmsnorm(q, q, n * {{H}}, {{D}}, 0, 1, {{QK_EPS}});
	lm_scale(q, n * {{HD}}, {{Q_SCALE}});
	lm_rmsnorm(k, k, n * {{H}}, {{D}}, 0, 1, {{QK_EPS}});
	lm_scale(k, n * {{HD}}, {{K_SCALE}});

	/* The forget gate, per channel, from a rank-{{D}} projection:
	 * g = exp(-exp(A_log[h]) * softplus(f_b(f_a(x)) + dt_bias)), and the
	 * write strength beta = sigmoid(b(x)), one per head. */
	lm_matmul(low, xn, n, {{P}}_f_a);
	lm_matmul(decay, low, n, {{P}}_f_b);
	lm_decay(decay, n, {{H}}, {{D}}, {{P}}_a_log, {{P}}_dt_bias);
	lm_matmul(beta, xn, n, {{P}}_b);
	lm_sigmoid(beta, n * {{H}});
	lm_gated_delta(att, q, k, v, decay, beta, n, {{H}}, {{D}}, {{D}}, {{P}}_state);

	/* Output: RMSNorm per head (o_norm), times a sigmoid gate from another
	 * rank-{{D}} projection of the input, then o_proj. */
	lm_rmsnorm(att, att, n * {{H}}, {{D}}, {{P}}_o_norm, 1, {{EPS}});
	lm_matmul(low, xn, n, {{P}}_g_a);
	lm_matmul(ogate, low, n, {{P}}_g_b);
	lm_sigmoid(ogate, n * {{HD}});
	lm_mul(att, att, ogate, n * {{HD}});
	lm_matmul(y, att, n, {{P}}_wo);
