The dense feed-forward block.

@@ swiglu
	/* SwiGLU MLP, width {{I}}: down(silu(gate(x)) * up(x)). */
	lm_matmul(gate, xn, n, {{P}}_gate);
	lm_matmul(up, xn, n, {{P}}_up);
	lm_swiglu(gate, gate, up, n * {{I}});
	lm_matmul(y, gate, n, {{P}}_down);
