Multi-head latent attention (MLA): every head's keys and values are
up-projections of one small per-token latent, and the cache keeps only that
latent (and a small key part shared by the heads).  Decoding queries absorb
the key up-projection, so attention runs against the cached latents
directly; lm_attend does the softmax over a LATENT cache (runtime/attn.c),
and runtime/mla.c the per-head products.  A prompt long enough (counted
below) expands each head's keys and values instead, as the reference does,
and attends as ordinary attention (lm_mla_expanded); the cache still keeps
only latents.

@@ mla
	/* Latent attention (MLA), {{H}} heads.  A token leaves in the cache one
	 * latent c of {{LORA}} (kv_a_proj, then RMSNorm){{#R}} and a key part
	 * k_pe of {{R}} shared by all heads{{/R}}: {{CACHE_B}} bytes per token where
	 * per-head keys and values would take {{FULL_B}}.  Head h's key and value
	 * are Uk_h c ({{NOPE}}) and Uv_h c ({{VD}}), the two halves of kv_b_proj.
	 * The query may absorb Uk_h instead: q_nope . (Uk_h c) = (Uk_h^T q_nope) . c,
	 * so it is taken into the latent space once ([Uk_h^T q_nope{{#R}}, q_pe{{/R}}] against
	 * the cached [c{{#R}}, k_pe{{/R}}]), attends there, and the weighted sum of latents
	 * is lifted by Uv_h once per query.  A cached row then serves every
	 * head ({{H}} query heads on one latent "K/V head").
	 * No RoPE (NoPE): q_pe . k_pe is an ordinary learned score term, and
	 * order comes only from the causal mask{{#RECURRENT}} and the recurrent layers{{/RECURRENT}}.
	 * Scores are scaled by 1/sqrt({{QHD}}), the query head's full size. */
	lm_matmul(q, xn, n, L->wq);            /* [n, {{H}}, q_nope {{NOPE}}{{#R}} + q_pe {{R}}{{/R}}] */
	lm_matmul(kv, xn, n, L->wkv);          /* [n, latent {{LORA}}{{#R}} + k_pe {{R}}{{/R}}]: the cache rows */
	for (long t = 0; t < n; t++)             /* kv_a_layernorm, on the latent only */
		lm_rmsnorm(kv + t * {{KVD}}, kv + t * {{KVD}}, 1, {{LORA}}, L->kv_norm, 1, {{EPS}});
{{#EXPAND}}
	/* Which way costs less, in multiply-adds per head, for n queries of
	 * one sequence over its `cached` keys and their own (pairs =
	 * n cached + n (n + 1) / 2 of them):
	 *   latent:   n ({{NOPE}} + {{VD}}) {{LORA}}: absorb each query, lift its output,
	 *             + pairs ({{LORA}}{{#R}} + {{R}}{{/R}} + {{LORA}}): score [c{{#R}}, k_pe{{/R}}], sum latents;
	 *   expanded: (cached + n) ({{NOPE}} + {{VD}}) {{LORA}}: each key's k_nope and value,
	 *             + pairs ({{NOPE}}{{#R}} + {{R}}{{/R}} + {{VD}}): score [k_nope{{#R}}, k_pe{{/R}}], sum values.
	 * The n ({{NOPE}} + {{VD}}) {{LORA}} cancel: expanding pays when
	 * cached x {{EXPAND_KEY}} < pairs x {{PAIR_SAVED}}, so from an empty cache for any
	 * prompt of two tokens or more, and over a long cache from about
	 * {{BREAK_EVEN}} new tokens.  A batched step (a token of each of several
	 * sequences) stays latent. */
	long one = n > 1 && lm_seq_rows(&state, 0, n) == n;   /* one sequence's tokens */
	long cached = L->kv.len, pairs = n * cached + n * (n + 1) / 2;
	if (one && cached * {{EXPAND_KEY}}L < pairs * {{PAIR_SAVED}}L) {
		static const lm_mla_dims dims = {
			.heads = {{H}}, .lora = {{LORA}}, .nope = {{NOPE}}, .rope = {{R}}, .vd = {{VD}},
			.scale = {{SCALE}},
		};
		lm_mla_expanded(att, q, kv, n, pos, &L->kv, &dims, L->uk, L->uv);
	} else {
{{/EXPAND}}
{{^EXPAND}}
	{	/* expanding never pays: a pair costs {{LORA}}{{#R}} + {{R}}{{/R}} + {{LORA}} latent,
		 * not more than {{NOPE}}{{#R}} + {{R}}{{/R}} + {{VD}} expanded */
{{/EXPAND}}
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
		/* lift each head's weighted latent to its value space */
		lm_matmul_heads(att, {{VD}}, olat, {{LORA}}, n, {{H}}, L->uv);
	}
	lm_matmul(y, att, n, L->wo);
