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
 * The head's rows are L2-normalised (NormHead), once, when the weights are
 * loaded: the logits are then cosine similarities scaled by |h|.
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
