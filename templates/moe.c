The mixture-of-experts block: a router scores every expert for each token,
a few experts are chosen and applied, and a shared expert, when the model
has one, adds its output for every token.

@@ moe
	/* Mixture of experts: {{E}} SwiGLU experts of width {{I}}, {{K}} chosen
	 * per token by a router{{#SHARED}}, plus a shared expert of width {{SI}}
	 * that every token goes through{{/SHARED}}.  Only the chosen experts'
	 * weights are read, which is what makes a large model cheap per token.
{{#TOP1}}
	 * Routing, top-1 with the sigmoid on the input: the expert with the
	 * largest router logit is chosen, the token is scaled by sigmoid(logit)
	 * *before* it enters the expert, and the expert's output is added as
	 * it is.  With one expert per token
	 * there is nothing to normalise the score against, so the sigmoid
	 * alone gates the expert: a token the router is unsure of enters it
	 * attenuated, and the shared expert carries the rest.  A SwiGLU expert
	 * is not linear in its input, so scaling the input is not the same as
	 * scaling the output: the model was trained this way round. */
{{/TOP1}}
{{#GROUPED}}
	 * Routing, grouped top-k: scores are {{#SOFTMAX}}softmax{{/SOFTMAX}}{{^SOFTMAX}}sigmoid{{/SOFTMAX}}(logits).  The top {{K}} are
	 * chosen on {{#HAS_BIAS}}score + a learned correction bias, which balances the load
	 * across experts without changing their weights{{/HAS_BIAS}}{{^HAS_BIAS}}the scores{{/HAS_BIAS}}{{#DROPPED}}; the {{GROUPS}} groups of
	 * experts are ranked by the sum of their two best, and the {{DROPPED}}
	 * lowest groups are excluded (their scores set to 0){{/DROPPED}}.  The chosen
	 * experts are weighted by their {{#HAS_BIAS}}unbiased {{/HAS_BIAS}}scores{{#RENORM}}, renormalised to sum
	 * to 1{{/RENORM}}, times {{SCALING_G}}. */
{{/GROUPED}}
{{#TOP1}}
	static const lm_router route = {
		.rule = LM_ROUTE_TOP1_SIGMOID_IN, .experts = {{E}}, .top_k = {{K}},
	};
{{/TOP1}}
{{#GROUPED}}
	static const lm_router route = {
		.rule = LM_ROUTE_GROUPED, .experts = {{E}}, .top_k = {{K}},
		.softmax = {{SOFTMAX}}, .groups = {{GROUPS}}, .topk_group = {{TOPK_GROUP}},
		.renorm = {{RENORM}}, .scaling = {{SCALING}},
	};
{{/GROUPED}}
	lm_matmul(router, xn, n, L->router);
	lm_route(router, n, &route, {{BIAS}}, sel, sel_w);
	lm_moe(y, xn, n, DIM, L->gate_e, L->up_e, L->down_e, sel, sel_w, {{K}},
	       {{#TOP1}}LM_MOE_SCALE_INPUT{{/TOP1}}{{^TOP1}}LM_MOE_WEIGHT_OUTPUT{{/TOP1}});
{{#SHARED}}
	lm_matmul(gate, xn, n, L->sh_gate);
	lm_matmul(up, xn, n, L->sh_up);
	lm_swiglu(gate, gate, up, n * {{SI}});
	lm_matmul(y2, gate, n, L->sh_down);
	lm_add(y, y, y2, n * DIM);
{{/SHARED}}
