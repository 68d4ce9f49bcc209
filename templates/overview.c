One part per architecture: what every config of it shares, at the top of
its model.c.  Lines join into paragraphs (a blank line ends one, "- "
starts a list item); the emitter wraps them as comment lines and follows
them with what is true of this config alone (compiler/emit_overview.c).

@@ afm7
AFM-7 (Apple's on-device foundation model) is a decoder-only transformer.
Its attention projects q, k and v with one fused matrix, rotates them with
interleaved RoPE and then RMS-normalises them per head, which bounds the
attention logits.  Keys and values are rounded to an 8-bit integer times a
learned per-layer scale and kept as floats (fake 8-bit), as in training, so
an int8 cache would lose nothing.  The last num_kv_reuse_layers layers
project queries only and attend over the cache of the last ordinary layer
(KV reuse): they add no K/V memory and no K/V compute.
@@ baichuan_m1
Baichuan-M1 is a decoder-only transformer.  Its attention projects q, k and
v with one fused matrix (W_pack); keys and values then pass a 2-tap causal
convolution over time before RoPE, so each is a learned blend of its own
token's and the previous token's, one filter per K/V head.  The layers
listed in sliding_window_layers see only the last sliding_window tokens and
have their own, more numerous heads; the others see every earlier token.
The head is NormHead: each row's 1 / |row| is computed once, at load, and
scales that row's score, so the stored rows are read as they are.
@@ llama4
Llama 4 (the text model of Meta's Llama 4 checkpoints) is a decoder-only
transformer with two kinds of attention layer, interleaved by the config
("iRoPE"): chunked layers with RoPE, whose cache is one chunk long whatever
the context, and global layers without RoPE, which reach across the whole
context and, with no rotation to extrapolate, past the training length,
while local order comes from the chunked layers.  A mixture of experts
sends a token to one expert: the sigmoid of the router's logit scales the
token on its way in, and a shared expert every token goes through is
added.  The experts are read in place from the checkpoint's fused stacks.
The
checkpoint's vision tower (vision_model.*, multi_modal_projector.*) is not
read.
@@ plamo2
PLaMo-2 (Preferred Networks) is a hybrid of Mamba-2 state space layers,
whose fixed-size state costs the same at any context length, and attention
layers, which give exact recall of any earlier token.  With mamba_enabled,
layer i is an attention layer when i % mamba_step == mamba_step / 2 (a
model of at most mamba_step / 2 layers has its last layer as attention),
else a Mamba layer.  Every block is wrapped in two RMSNorms, before it and
on its output before the add, and each norm's weight is stored relative to
a fixed offset: stored weights start near 0, so the post-norms start at
small scales and each block's output enters the residual stream damped
(the original code notes only that the model did worse with every offset
at 1).  The offsets are the model code's, not the config's: 1 before each
block and for the final norm, 1/5 after the mixer, 1/5^1.5 after the MLP.  The MLP's gate and up projections are the two halves of one fused
gate_up_proj.  The config's attention_window_size is not applied: every
attention layer sees all earlier tokens, as in mlx-lm's plamo2.py (the
reference) and in PFN's own vLLM implementation.  (A port of the original
modeling code applies a window only when the caller passes an attention
mask, so no single definition of it could be established; lmcc does not
guess.)
@@ kimi_linear
Kimi-Linear mixes linear attention with a fixed-size memory (Kimi delta
attention, KDA) and full attention over a compressed cache (multi-head
latent attention, MLA); the config says which layer is which.  A KDA layer keeps per
head a matrix S, an associative memory from keys to values: each token lets
S forget channel by channel, writes its value at its key by the delta rule
(replacing what S recalled there rather than adding to it), and reads S
with its query.  An MLA layer caches one small latent per token instead of
per-head keys and values, which are up-projections of it; queries absorb
the key up-projection and attend in the latent space.  No layer uses RoPE
(NoPE): order comes from the causal mask and the recurrence of the KDA
layers.
