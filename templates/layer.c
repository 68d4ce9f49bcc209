A kind of layer: the weights and caches of one layer as a struct, an
instance of it per layer of this kind, and the one function that runs any
of them.  A layer is a mixer block and a feed-forward block, each reading
a normalised copy of the residual stream and adding its output back
(pre-norm), with an optional norm of the block's output before the add
(post-norm).
The block bodies come from attention.c, mlp.c and the others.

@@ layer
/* ---- {{SUMMARY}} ({{COUNT}}) ---- */
typedef struct {
{{FIELDS}}
} {{KIND}}_layer;
{{INSTANCES}}
{{#NOTES}}
{{NOTES}}
{{/NOTES}}

static void {{KIND}}({{KIND}}_layer *L, long n)
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

