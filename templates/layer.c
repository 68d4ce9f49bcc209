A layer: a mixer block and a feed-forward block, each reading a normalised
copy of the residual stream and adding its output back (pre-norm), with an
optional norm of the block's output before the add (post-norm, PLaMo-2).
The block bodies come from attention.c, mlp.c and the others.

@@ layer
/* ---- layer {{L}}: {{SUMMARY}} ---- */
{{DECLS}}
static void layer{{L}}(long n)
{
{{HALVES}}
}

@@ half
{{#PRE}}
	lm_rmsnorm(xn, x, n, DIM, {{PRE_W}}, 1, {{PRE_EPS}});
{{/PRE}}
{{BODY}}
{{#POST}}
	lm_rmsnorm(y, y, n, DIM, {{POST_W}}, 1, {{POST_EPS}});
{{/POST}}
	lm_add(x, x, y, n * DIM);

