A layer: a mixer block and a feed-forward block, each read from a
normalised copy of the residual stream and added back to it (pre-norm),
with an optional norm of the block's output before the add (post-norm,
PLaMo-2).  The block bodies come from attention.c, mlp.c and the others.

@@ begin
/* ---- layer {{L}}: {{SUMMARY}} ---- */
{{DECLS}}
static void layer{{L}}(long n)
{
@@ mixer
{{#PRE}}
	lm_rmsnorm(xn, x, n, DIM, {{P}}_mix_norm, 1, {{EPS}});
{{/PRE}}
{{BODY}}
{{#POST}}
	lm_rmsnorm(y, y, n, DIM, {{P}}_mix_post_norm, 1, {{EPS}});
{{/POST}}
	lm_add(x, x, y, n * DIM);

@@ ffn
{{#PRE}}
	lm_rmsnorm(xn, x, n, DIM, {{P}}_ffn_norm, 1, {{EPS}});
{{/PRE}}
{{BODY}}
{{#POST}}
	lm_rmsnorm(y, y, n, DIM, {{P}}_ffn_post_norm, 1, {{EPS}});
{{/POST}}
	lm_add(x, x, y, n * DIM);
@@ end
}

