A kind of layer: the weights and caches of one layer as a struct, an
instance of it per layer of this kind, the one function that runs any of
them, and the function that binds any of them (or one per set of its
layers that bind alike: a quantized or adapted subset).  A layer is a mixer block and a feed-forward block, each reading
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

@@ bind
{{#FIRST}}
/* Binding a layer: its weights to their tensors in the checkpoint, named
 * with the layer's index i, each shape checked; then its caches, for ctx
 * tokens.  lm_stage_bind(i): with pipeline stages (mpirun), the layer of
 * another rank's stage is checked but not read, and gets no cache. */
{{/FIRST}}
{{#APART}}
/* {{LAYERS}} of this kind bind{{S}} {{FIELDS}} differently from layer {{KIND_LAYER}}: */
{{/APART}}
{{#SHIFT}}
/* The checkpoint numbers these layers in a stack of their own: layer i's
 * tensors are number i - {{SHIFT}} there. */
{{/SHIFT}}
static void {{BINDER}}({{KIND}}_layer *L, int i, lm_ckpt *ck, lm_ckpt *ad, long ctx)
{
	lm_stage_bind(i);
{{BIND}}
}

