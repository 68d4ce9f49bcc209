The comment above a kind of layer's function when some of its weights
carry a low-rank adapter: the whole story at the first such kind, then
only the names.

@@ first
/* {{KIND}} adapter (rank {{RANK}}, scale {{SCALE}}) on {{NAMES}}.
 * A fine-tune learned, for these products, two thin matrices A [in, {{RANK}}]
 * and B [{{RANK}}, out] while the weights stayed frozen: each product
 * y = W x becomes y = W x + {{SCALE}} * (x A) B.  A and B are kept beside W
 * rather than merged into it, as the reference computes them: W stays as
 * the checkpoint stores it (its dtype, its quantization), the low-rank part
 * is computed in float32, and the same base serves any adapter of this
 * structure.  The layer's binding binds each weight's pair (lm_lora_of)
 * and lm_matmul adds it to the product; the cost per token is reading A
 * and B.
{{#DORA}}
 * DoRA: each output row of the adapted product is then multiplied by a
 * learned magnitude m over the norm of the adapted weight's row,
 * |W + {{SCALE}} B^T A^T|: the fine-tune sets each row's direction and its
 * length separately.  The factors are computed once, at load.
{{/DORA}}
{{#PARTS}}
 * The fused q/k/v projection (AFM-7's FusedLinear) has one pair per
 * output part: q, k and v each get their own A and B, as if they were
 * three projections.  One pair over the fused output would tie the three
 * updates to one shared rank-{{RANK}} subspace; the reference trains them
 * apart.
{{/PARTS}}
 */

@@ again
/* {{KIND}} adapter on {{NAMES}}
 * (explained above). */

@@ constants
/* The adapter this file was generated for: which modules carry one, its
 * rank and its scale are constants of this file, so a --adapter given at
 * run time must agree on all of these (the run loop checks, field by
 * field). */
static const lm_adapter adapter = {
	.dora = {{DORA}}, .num_layers = {{NUM_LAYERS}}, .rank = {{RANK}}, .scale = {{SCALE}},
	.keys = {{KEYS}}, .tensors = {{TENSORS}},
};

