Softmax attention, in the steps the emitter strings together in the order
the plan gives: projections, the K/V convolution, q/k norms before or after
RoPE, query temperature, fake 8-bit K/V, then attention over the cache and
the output projection.  Every step is optional but the first and last.

@@ proj
	/* Attention: {{H}} query heads of {{HD}}, {{KVH}} K/V head{{#KVS}}s{{/KVS}}{{#GQA}} ({{GROUP}} query
	 * heads per K/V head){{/GQA}}.
	 * Mask: {{MASK_NOTE}}. */
	lm_matmul(q, xn, n, L->wq);
{{#BQ}}
	lm_add_bias(q, L->bq, n, {{QD}});
{{/BQ}}
{{#OWN}}
	lm_matmul(k, xn, n, L->wk);
	lm_matmul(v, xn, n, L->wv);
{{#BQ}}
	lm_add_bias(k, L->bk, n, {{KVD}});
	lm_add_bias(v, L->bv, n, {{KVD}});
{{/BQ}}
{{/OWN}}
{{^OWN}}
	/* KV reuse: this layer has no K/V projection of its own.  Its queries
	 * attend over the cache of layer {{FROM}} (L->kv_from), which already
	 * holds this call's tokens.  Layers sharing one cache save its K/V
	 * memory and compute. */
{{/OWN}}

@@ seqs
	/* Per sequence (lmcc.h's lm_seq_rows): rows [r, r + m) at their own
	 * position, over their own cache. */
	for (long r = 0, m; (m = lm_seq_rows(&state, r, n)) > 0; r += m) {
		float *qs = q + r * {{QD}}, *as = att + r * {{AD}};
{{#OWN}}
		float *ks = k + r * {{KVD}}, *vs = v + r * {{KVV}};
{{/OWN}}

@@ kvconv
		/* K/V convolution: each raw key and value becomes
		 * w0 * (the previous token's) + w1 * (this token's), one 2-tap filter
		 * per K/V head, before RoPE.  It lets every head see a blend of each
		 * token with the one before it; L->k_prev and L->v_prev carry the
		 * previous token's raw K and V across calls. */
		lm_causal_conv(ks, ks, m, {{KVD}}, L->conv_k, {{TAPS}}, L->k_prev, LM_CONV_LINEAR);
		lm_causal_conv(vs, vs, m, {{KVD}}, L->conv_v, {{TAPS}}, L->v_prev, LM_CONV_LINEAR);

@@ rope
		/* RoPE: each pair of dims turns by an angle proportional to the
		 * position, so q.k depends on how far apart two tokens are.
		 * {{ROPE_NOTE}}. */
		lm_rope(qs, m, {{H}}, {{HD}}, {{RD}}, pos, rope{{ROPE}}, {{STYLE}});
{{#OWN}}
		lm_rope(ks, m, {{KVH}}, {{HD}}, {{RD}}, pos, rope{{ROPE}}, {{STYLE}});
{{/OWN}}

@@ nope
		/* No RoPE (NoPE): queries and keys carry no position, so this layer
		 * matches tokens by content alone, wherever they stand; order enters
		 * only through the causal mask.{{#GLOBAL}}  Where RoPE is confined to layers
		 * of local reach (chunks, windows), global layers like this one carry
		 * information across the whole context, and having no rotation to
		 * extrapolate, they keep working at lengths never seen in training.{{/GLOBAL}} */

@@ qknorm
		/* {{QK_NOTE}} */
		lm_rmsnorm(qs, qs, m * {{H}}, {{HD}}, {{QW}}, {{QWROWS}}, {{QK_EPS}});
{{#OWN}}
		lm_rmsnorm(ks, ks, m * {{KVH}}, {{HD}}, {{KW}}, {{KWROWS}}, {{QK_EPS}});
{{/OWN}}

@@ temperature
		/* Query temperature: the query at position p is multiplied by
		 * log(floor((p + 1) / {{FLOOR_G}}) + 1) * {{ATTN_SCALE_G}} + 1, exactly 1 while
		 * p + 1 < {{FLOOR_G}}, then growing with log p.  A global layer's softmax
		 * spreads over more keys the longer the context, which flattens it;
		 * the growing factor sharpens it again (lowers its temperature), so
		 * that a query can still single out a few keys among millions. */
		lm_temperature(qs, m, {{QD}}, pos,
		               (lm_qtemp){ .floor_scale = {{FLOOR}}, .attn_scale = {{ATTN_SCALE}} });

@@ fake8
		/* Fake 8-bit K/V: keys and values are rounded to 8-bit integers times a
		 * per-layer scale (round half to even, clipped to [-128, 127]) and kept
		 * as floats.  The model was trained with this rounding, so a cache of
		 * int8 values would hold exactly what it expects; reproducing the
		 * rounding is part of computing this model faithfully. */
		lm_fake8(ks, m * {{KVD}}, L->k_scale);
		lm_fake8(vs, m * {{KVD}}, L->v_scale);

@@ attend
		lm_attend(as, qs, m, pos, {{CACHE}}, {{#OWN}}ks, vs{{/OWN}}{{^OWN}}0, 0 /* no new K/V */{{/OWN}}, {{H}}, {{KVH}}, {{HD}}, {{VD}},
		          {{SCALE}}{{#SCALE_NOTE}} /* {{SCALE_NOTE}} */{{/SCALE_NOTE}}, (lm_mask){ .window = {{WINDOW}}, .chunk = {{CHUNK}} });
	}
	lm_matmul(y, att, n, L->wo);
{{#BO}}
	lm_add_bias(y, L->bo, n, DIM);
{{/BO}}
