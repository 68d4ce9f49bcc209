One part per architecture: what the model is, at the top of its model.c.
Each line is a line of the file's opening comment.

@@ afm7
 * AFM-7 (Apple's on-device foundation model) is a decoder-only transformer
 * with three departures from the usual recipe:
 *   - KV reuse: only the first layers compute keys and values.  The last
 *     layers project queries only and attend over the cache of the last
 *     ordinary layer, so they add no K/V memory and no K/V compute.
 *   - Fake 8-bit K/V: every key and value is rounded to an 8-bit integer
 *     times a learned per-layer scale (and kept as a float), as it was in
 *     training; an int8 K/V cache then loses nothing.
 *   - q/k norms after RoPE: queries and keys are RMS-normalised per head
 *     after the rotation, which bounds the attention logits.
 * The output head is the embedding matrix (tied).
@@ baichuan_m1
 * Baichuan-M1 is a decoder-only transformer that mixes two kinds of
 * attention layer:
 *   - sliding-window layers see only the last sliding_window tokens, and
 *     have their own (more, smaller) heads; their cache is a ring of that
 *     many tokens, whatever the context length;
 *   - global layers see every earlier token.
 * In both, keys and values pass through a 2-tap causal convolution over
 * time before RoPE: each becomes a learned blend of its own token's and
 * the previous token's, one filter per K/V head.
 * The head's rows are L2-normalised (NormHead): the logits are cosine
 * similarities scaled by |h|.  Each row's 1 / |row| is computed once, at
 * load, and scales that row's score, so the stored rows are read as they
 * are (in BF16 when the checkpoint is).
@@ llama4
 * Llama 4 (the text model of Meta's Llama 4 checkpoints) is a decoder-only
 * transformer with mixture-of-experts feed-forward blocks and two kinds of
 * attention layer, interleaved ("iRoPE"):
 *   - chunked layers: RoPE, then (with use_qk_norm) a weightless RMS norm
 *     on q and k; a token sees only the earlier tokens of its own
 *     attention chunk, so their cache is one chunk long whatever the
 *     context;
 *   - global layers (every 4th in the released models): no RoPE at all,
 *     causal attention over the whole context, queries scaled up with the
 *     log of their position (temperature tuning).  Local order comes from
 *     the chunked layers; the global ones reach across the whole context
 *     and, with no rotation to extrapolate, past the training length.
 * MoE layers route each token to one expert: the sigmoid of the router's
 * logit scales the token on its way in, and a shared expert that every
 * token goes through is added.  The experts are read in place from the
 * checkpoint's fused gate_up_proj / down_proj stacks.  The checkpoint's
 * vision tower (vision_model.*, multi_modal_projector.*) is not read.
@@ plamo2
 * PLaMo-2 (Preferred Networks) is a hybrid of two kinds of layer:
 *   - Mamba-2 state space layers: each keeps a fixed-size state per head
 *     that every token updates (decays, then writes into) and reads; the
 *     memory of the past costs the same at any context length.
 *   - attention layers: ordinary causal attention with grouped K/V heads;
 *     q and k are RMS-normalised per head (without weight, eps 1e-6) and
 *     then scaled by a learned weight per head, before RoPE (rotate-half,
 *     base 10000).  They give exact recall of any earlier token, which a
 *     fixed-size state cannot.
 * The schedule: with mamba_enabled, layer i is an attention layer when
 * i % mamba_step == mamba_step / 2 and a Mamba layer otherwise; a model of
 * at most mamba_step / 2 layers has its last layer as attention.
 * Every block is wrapped in two RMSNorms: one before it (pre-norm) and one
 * on its output before it is added to the residual stream (post-norm),
 * which keeps what each block adds on a fixed scale.  Each norm's weight is
 * stored relative to a fixed offset (effective weight = stored + offset):
 * 1 before a block and for the final norm, 1/5 after the mixer, 1/5^1.5
 * after the MLP.  Stored weights start near 0, so the post-norms start at
 * small scales and each block's output enters the residual stream damped
 * (the original code notes only that the model did worse with every
 * offset at 1).  The offsets are added once, in float32, at load.
 * The MLP is a SwiGLU whose gate and up projections are the two halves of
 * one fused gate_up_proj.
 * The config's attention_window_size is not applied: every attention layer
 * sees all earlier tokens, as in mlx-lm's plamo2.py (the reference) and in
 * PFN's own vLLM implementation.  (A port of the original modeling code
 * applies a window only when the caller passes an attention mask, so no
 * single definition of it could be established; lmcc does not guess.)
@@ kimi_linear
 * Kimi-Linear is a hybrid: most layers are linear attention with a fixed-size
 * memory, a few are full attention over a compressed cache (the schedule
 * below says which layer is which).
 *   - KDA layers (Kimi delta attention) keep per head a [d, d] matrix S, an
 *     associative memory from keys to values.  Each token lets S forget,
 *     channel by channel (a learned gate per key channel), writes its value
 *     at its key by the delta rule (replacing what S recalled there rather
 *     than adding to it), and reads S with its query.  Short causal
 *     convolutions on q, k and v come first.  Their memory does not grow
 *     with the context.
 *   - MLA layers (multi-head latent attention) cache one small latent per
 *     token instead of per-head keys and values, which are up-projections
 *     of it; queries absorb the key up-projection and attend in the latent
 *     space.  No RoPE anywhere (NoPE): order comes from the causal mask and
 *     the recurrence of the KDA layers.
 *   - Feed-forward: the first layers are dense SwiGLU; the others are a
 *     mixture of experts with sigmoid routing, a load-balancing correction
 *     bias, grouped selection and a shared expert.
