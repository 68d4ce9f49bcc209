Multi-head latent attention (MLA): every head's keys and values are
up-projections of one small per-token latent, and the cache keeps only that
latent (and a small key part shared by the heads).  Queries absorb the key
up-projection, so attention runs against the cached latents directly;
lm_attend does the softmax over a LATENT cache (runtime/attn.c), and
runtime/mla.c the per-head products.

@@ mla
	/* Latent attention (MLA), {{H}} heads.  A token leaves in the cache one
	 * latent c of {{LORA}} (kv_a_proj, then RMSNorm){{#R}} and a key part
	 * k_pe of {{R}} shared by all heads{{/R}}: {{CACHE_B}} bytes per token where
	 * per-head keys and values would take {{FULL_B}}.  Head h's key and value
	 * would be Uk_h c ({{NOPE}}) and Uv_h c ({{VD}}), the two halves of kv_b_proj.
	 * Instead of expanding them for every cached token, the query absorbs
	 * Uk_h: q_nope . (Uk_h c) = (Uk_h^T q_nope) . c, so each query is taken
	 * into the latent space once ([Uk_h^T q_nope{{#R}}, q_pe{{/R}}] against the cached
	 * [c{{#R}}, k_pe{{/R}}]), attends there, and the weighted sum of latents is
	 * lifted by Uv_h once per query.  A cached row serves every head
	 * ({{H}} query heads on one latent "K/V head").  Prefill takes the same
	 * path: the reference expands K and V for prompts instead, which is
	 * equal in exact arithmetic, and would need every cached token's
	 * per-head keys and values at once.
	 * No RoPE (NoPE): q_pe . k_pe is an ordinary learned score term, and
	 * order comes only from the causal mask{{#RECURRENT}} and the recurrent layers{{/RECURRENT}}.
	 * Scores are scaled by 1/sqrt({{QHD}}), the query head's full size. */
	lm_matmul(q, xn, n, L->wq);            /* [n, {{H}}, q_nope {{NOPE}}{{#R}} + q_pe {{R}}{{/R}}] */
	lm_matmul(kv, xn, n, L->wkv);          /* [n, latent {{LORA}}{{#R}} + k_pe {{R}}{{/R}}]: the cache rows */
	for (long t = 0; t < n; t++)             /* kv_a_layernorm, on the latent only */
		lm_rmsnorm(kv + t * {{KVD}}, kv + t * {{KVD}}, 1, {{LORA}}, L->kv_norm, 1, {{EPS}});
	/* absorb: qlat[t, h] = [Uk_h^T q_nope{{#R}}, q_pe{{/R}}] */
	lm_matmul_heads(qlat, {{KVD}}, q, {{QHD}}, n, {{H}}, L->uk);
{{#R}}
	lm_copy_cols(qlat + {{LORA}}, {{KVD}}, q + {{NOPE}}, {{QHD}}, n * {{H}}, {{R}});
{{/R}}
	/* softmax attention over the cached rows; the value is a row's latent */
	for (long r = 0, m; (m = lm_seq_rows(&state, r, n)) > 0; r += m)   /* per sequence */
		lm_attend(olat + r * {{OLAT}}, qlat + r * {{QLAT}}, m, pos, &L->kv, kv + r * {{KVD}},
		          kv + r * {{KVD}}, {{H}}, 1, {{KVD}}, {{LORA}}, {{SCALE}},
		          (lm_mask){ .window = 0, .chunk = 0 });
	/* lift each head's weighted latent to its value space, then o_proj */
	lm_matmul_heads(att, {{VD}}, olat, {{LORA}}, n, {{H}}, L->uv);
	lm_matmul(y, att, n, L->wo);
