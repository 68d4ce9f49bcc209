The dense feed-forward block.

@@ swiglu
	/* SwiGLU MLP, width {{I}}: down(silu(gate(x)) * up(x)). */
	lm_matmul(gate, xn, n, L->gate);
	lm_matmul(up, xn, n, L->up);
	lm_swiglu(gate, gate, up, n * {{I}});
	lm_matmul(y, gate, n, L->down);
