/* lmcc.h: the runtime as generated model code sees it.
 *
 * A generated model.c includes this file and nothing else.  It must stay
 * plain C that tcc 0.9.27 parses (no system headers, no intrinsics), since
 * `lmcc run` compiles model.c in memory with libtcc.  BLAS, SIMD and threads
 * live behind these functions, inside the runtime library that gcc builds.
 *
 * Conventions shared by every kernel:
 *   - activations are float32, row-major, one row per token: x[t * dim + i];
 *   - n is the number of tokens in the current call, pos the absolute
 *     position of the first of them (tokens seen before this call);
 *   - a weight matrix is an lm_mat in the checkpoint's own dtype; y = W x
 *     maps cols inputs to rows outputs;
 *   - functions never allocate on the hot path and never fail: shapes are
 *     checked once, when the weights are bound.
 */
#ifndef LMCC_H
#define LMCC_H

/* ---- weights ---------------------------------------------------------- */

enum { LM_F32 = 0, LM_F16 = 1, LM_BF16 = 2, LM_Q = 3 };

/* W with `rows` outputs and `cols` inputs.  Element (r, c) is stored at
 * data[r * ld + c] when tr == 0 (the usual [out, in] layout of a Linear),
 * or at data[c * ld + r] when tr == 1 ([in, out], as Llama-4's fused
 * experts are stored).  Views of part of a tensor (one of q/k/v in a fused
 * projection, one expert of a stack) are lm_mats too: nothing is copied.
 *
 * dtype LM_Q is one of MLX's group quantizations, always [out, in] (tr 0).
 * Row r is a little-endian bit stream of 32-bit words starting at word
 * r * ld of data (ld counts words); input c is the `bits`-bit code q at
 * bits [c * bits, (c + 1) * bits) of it, in group g = c / group, whose
 * scale is scales[r * sld + g].  `mode` says what q and the scale mean:
 *   LM_AFFINE  w = s * q + biases[r * sld + g], q unsigned, s and the
 *              bias stored in sdtype (LM_F32, LM_F16 or LM_BF16);
 *   LM_MXFP4   w = e2m1(q) * 2^(s - 127): 4-bit FP4 E2M1 codes, one E8M0
 *              byte s per group of 32, no biases;
 *   LM_NVFP4   w = e2m1(q) * e4m3(s): the same codes, an FP8 E4M3 byte
 *              scale per group of 16;
 *   LM_MXFP8   w = e4m3(q) * 2^(s - 127): 8-bit E4M3 codes, groups of 32;
 * where e2m1 is sign, 2 exponent bits and 1 mantissa bit (0, 0.5, 1, 1.5,
 * 2, 3, 4, 6 and their negatives), e4m3 sign, 4 exponent bits (bias 7) and
 * 3 mantissa bits with no infinity or NaN (0x7f is 480, as MLX reads it),
 * and the E8M0 byte 255 is +infinity, 0 is 2^-127.  sdtype is then LM_U8.
 * The fields after ld are unused by the float dtypes. */
enum { LM_AFFINE = 0, LM_MXFP4 = 1, LM_NVFP4 = 2, LM_MXFP8 = 3 };
typedef struct {
	const void *data;
	int dtype, tr;
	long rows, cols, ld;
	int bits, group, sdtype, mode;
	const void *scales, *biases;
	long sld;
	const struct lm_lora *lora;   /* a low-rank adapter on the product, or 0 */
} lm_mat;

typedef struct lm_ckpt lm_ckpt;  /* an opened checkpoint (runtime/st.c) */

/* Binding checks that tensor `name` exists with exactly the `ndim` sizes in
 * `shape` (else: exit 2 naming the file and the tensor).
 *
 * lm_ck_mat: the view starting `off` elements into the tensor.
 * lm_ck_vec: the whole tensor converted to float32, plus `add` (a norm
 *            weight stored relative to an offset); owned by the checkpoint.
 * lm_ck_row_scale: 1 / (|row| + eps) for each row of a view, in float32
 *            from double sums: a head whose rows are L2-normalised is the
 *            stored rows times these, applied to the products. */
lm_mat lm_ck_mat(lm_ckpt *ck, const char *name, int ndim, const long *shape,
                 long off, int tr, long rows, long cols, long ld);
/* tr: the tensor stores the view as [out, in] (a row per output), or
 * transposed, [in, out]. */
enum { LM_OUT_IN = 0, LM_IN_OUT = 1 };
const float *lm_ck_vec(lm_ckpt *ck, const char *name, int ndim,
                       const long *shape, float add);
const float *lm_ck_row_scale(lm_ckpt *ck, const char *name, int ndim,
                            const long *shape, long off, long rows, long cols,
                            long ld, float eps);
/* lm_ck_qmat: a quantized module, the LM_Q view of rows x cols starting
 *            `off` elements into its logical [..., out, in] weight `shape`
 *            (whole rows).  `path` names the module: its tensors are
 *            path.weight (U32 [..., out, in * bits / 32]), path.scales
 *            ([..., out, in / group]) and, in mode LM_AFFINE only,
 *            path.biases (the shape of the scales), all checked. */
lm_mat lm_ck_qmat(lm_ckpt *ck, const char *path, int ndim, const long *shape,
                  long off, long rows, long cols, int bits, int group, int mode);
/* A name built from a pattern whose %ld is replaced by i (a layer's or an
 * expert's index); lm_name2: the first %ld by i, the second by j (a layer,
 * then an expert).  Valid for the next three calls. */
const char *lm_name(const char *pattern, long i);
const char *lm_name2(const char *pattern, long i, long j);

/* ---- low-rank adapters (lora.c) ----------------------------------------- */

/* An adapter as mlx-lm trains it (adapter_config.json beside
 * adapters.safetensors): which blocks and modules carry one, its rank and
 * scale.  A generated model that was built with an adapter holds these as
 * constants, and refuses an adapter directory that differs. */
typedef struct {
	int dora;           /* fine_tune_type "dora" (else "lora") */
	long num_layers;    /* the last num_layers blocks; <= 0: all of them */
	long rank;
	float scale;        /* multiplies the low-rank product as it is */
	const char *keys;   /* lora_parameters.keys sorted, ","-joined; 0: default */
	long tensors;       /* how many tensors adapters.safetensors holds */
} lm_adapter;

/* The adapter of one product W (bound just before): y = W x becomes
 * y + scale * (x A) B.  How the pair is stored:
 *   LM_LORA_LINEAR  A [in, rank], B [rank, out] (a Linear's);
 *   LM_LORA_T       A [rank, in], B [out, rank]: a stack of experts (ndim
 *                   3, this expert's), or the tied head an adapted
 *                   embedding is (its lora_b is the head's A, lora_a its B);
 *   LM_LORA_LOOKUP  an embedding looked up: W is [vocab, dims], A [vocab,
 *                   rank] and B [rank, dims], and row tok of the lookup
 *                   gains scale * A[tok] B (lm_embed applies it).
 * W may be a view of rows row0.. of the adapted module (q of a fused qkv).
 * m: DoRA's magnitude tensor (one per row of the module), or 0.  rs: the
 * factors the caller scales W x's rows by afterwards (a normalised head),
 * or 0: the update is not scaled with them.  The adapter's tensors are
 * checked like weights and converted to float32 copies the adapter owns;
 * views of one module share their A, and x A is computed once for them. */
enum { LM_LORA_LINEAR, LM_LORA_T, LM_LORA_LOOKUP };
const struct lm_lora *lm_lora_of(lm_ckpt *ad, lm_mat W, const char *a, const char *b,
                                 int ndim, int how, const long *ashape, const long *bshape,
                                 const char *m, long expert, long row0, float scale,
                                 const float *rs);
/* y[n, W.rows] += W's adapter applied to x[n, W.cols] (lm_matmul calls it). */
void lm_lora(float *y, const float *x, long n, const struct lm_lora *l);
/* x[n, dims] += an embedding's adapter on the rows of tokens tok[n]. */
void lm_lora_lookup(float *x, const int *tok, long n, const struct lm_lora *l);

/* ---- memory ------------------------------------------------------------ */

void *lm_alloc(unsigned long n);         /* zeroed, never NULL */
float *lm_floats(unsigned long n);       /* zeroed, 64-byte aligned */
void lm_zero(float *x, long n);
/* A new [rows * times, cols] array in which each row of w appears `times`
 * times in a row: one filter per head made one filter per channel. */
float *lm_repeat_rows(const float *w, long rows, long cols, long times);

/* ---- dense kernels ------------------------------------------------------ */

/* y[n, W.rows] = x[n, W.cols] W^T  (y must not alias x). */
void lm_matmul(float *y, const float *x, long n, lm_mat W);
/* x[t] = row tok[t] of the embedding table, as float32. */
void lm_embed(float *x, lm_mat E, const int *tok, long n);
/* y = x + a   (elementwise over count floats; y may alias x or a). */
void lm_add(float *y, const float *x, const float *a, long count);
/* x[t, i] += b[i]  (a bias of dim floats on each of n rows). */
void lm_add_bias(float *x, const float *b, long n, long dim);
/* x[t, j] *= s[j] on each of n rows of dim floats. */
void lm_scale_cols(float *x, long n, long dim, const float *s);
/* h = silu(g) * u, elementwise. */
void lm_swiglu(float *h, const float *g, const float *u, long count);
/* Row r of src (na + nb floats) becomes row r of a (its first na) and of b
 * (the other nb): the two outputs of a fused projection, taken apart. */
void lm_split_rows(float *a, float *b, const float *src, long rows, long na,
                   long nb);

/* RMSNorm of `rows` rows of `dim` floats: y = x / sqrt(mean(x^2) + eps) * w.
 * w == 0 means no weight.  Row r uses weight row (r % wrows): wrows = 1 for
 * one shared weight, wrows = heads for per-head weights [heads, dim].
 * y may alias x. */
void lm_rmsnorm(float *y, const float *x, long rows, long dim,
                const float *w, long wrows, float eps);
#define LM_UNWEIGHTED ((const float *)0)   /* w: no weight */

/* ---- positions ----------------------------------------------------------- */

enum { LM_ROPE_INTERLEAVED = 0, LM_ROPE_HALF = 1 };
/* Rotary embedding over x[n, heads, hd], token t at position pos + t.  The
 * first `dims` of each head rotate; pair j turns by angle p * inv_freq[j].
 * INTERLEAVED pairs (2j, 2j+1) ("traditional"); HALF pairs (j, j + dims/2).
 * Angles are computed in double: float32 angles drift at long positions. */
void lm_rope(float *x, long n, long heads, long hd, long dims, long pos,
             const double *inv_freq, int style);

/* ---- K/V transforms -------------------------------------------------------- */

/* Causal depthwise convolution over time: for each channel c,
 * y[t, c] = sum_j w[c * taps + j] * u[t - (taps - 1) + j, c], where the
 * inputs before this call come from `state` ([taps - 1, ch], oldest first),
 * which is then advanced to hold the last taps - 1 inputs.  silu != 0
 * applies SiLU to y.  y may be u (in place). */
void lm_causal_conv(float *y, const float *u, long n, long ch,
                    const float *w, long taps, float *state, int silu);
enum { LM_CONV_LINEAR = 0, LM_CONV_SILU = 1 };   /* silu */
/* x = clip(round_half_even(x / scale), -128, 127) * scale. */
void lm_fake8(float *x, long count, float scale);

/* ---- attention ------------------------------------------------------------- */

/* A K/V cache of one layer.  kind FULL keeps every token (capacity = the
 * context); RING keeps the last `cap` tokens (a sliding window or an
 * attention chunk needs no more), slot = position % cap.  LATENT is FULL
 * with one array: a token's value is the first vdim floats of its key row
 * (vdim <= kdim, one K/V head), and lm_attend reads v (the caller's and
 * the cache's) at the keys' stride.  Latent attention caches [latent, k_pe] per token and
 * attends in the latent space, where the latent is both key and value. */
enum { LM_KV_FULL = 0, LM_KV_RING = 1, LM_KV_LATENT = 2 };
typedef struct {
	float *k, *v;     /* [cap, kdim], [cap, vdim]; LATENT: v == k */
	long *pos;        /* position held by each slot, -1 when empty */
	long cap, kdim, vdim, len;   /* len: tokens appended so far */
	int kind;
} lm_kv;
void lm_kv_init(lm_kv *c, int kind, long cap, long kdim, long vdim);
void lm_kv_reset(lm_kv *c);
/* n rows of keys k and values v (LATENT: k only) at positions pos.. */
void lm_kv_append(lm_kv *c, const float *k, const float *v, long n, long pos);

/* Which keys a query sees.  window > 0: only the last `window` positions
 * (q - window < p <= q); chunk > 0: only its own chunk
 * (p / chunk == q / chunk, p <= q); both 0: causal. */
typedef struct { long window, chunk; } lm_mask;

/* Attention of n queries q[n, heads, hd] at positions pos.. over what the
 * cache holds before this call plus the n new keys/values k[n, kv_heads, hd],
 * v[n, kv_heads, vd]; query head h reads kv head h / (heads / kv_heads).
 * Afterwards the new keys/values are appended to the cache.  k == 0 means
 * the call adds nothing: it reads a cache another layer filled (KV reuse).
 * out[n, heads, vd]. */
void lm_attend(float *out, const float *q, long n, long pos, lm_kv *c,
               const float *k, const float *v, long heads, long kv_heads,
               long hd, long vd, float scale, lm_mask mask);

/* Query temperature by position: row t of x[n, width] (the query at
 * absolute position p = pos + t) is multiplied by
 *   log(floor((p + 1) / floor_scale) + 1) * attn_scale + 1,
 * computed in double.  The factor is 1 for the first floor_scale - 1
 * positions and then grows with the log of the position. */
typedef struct {
	double floor_scale;  /* positions per step of the logarithm's argument */
	double attn_scale;   /* how fast the factor grows with log p */
} lm_qtemp;
void lm_temperature(float *x, long n, long width, long pos, lm_qtemp t);

/* ---- state space models ---------------------------------------------------- */

/* The shape of a Mamba-2 selective scan: `heads` heads of hd channels, each
 * channel with a state of d_state numbers; the heads fall into `groups`
 * equal groups, each sharing one B and one C.  After softplus, dt is
 * clipped to [dt_min, dt_max]. */
typedef struct {
	long heads, hd, d_state, groups;
	float dt_min, dt_max;
} lm_ssm_dims;

/* The selective scan over n tokens, one token at a time.  Per token t and
 * head h, with A = -exp(a_log[h]) and
 * step = clip(softplus(dt[t, h] + dt_bias[h]), dt_min, dt_max):
 *   state[h] = exp(step * A) * state[h] + step * x[t, h] (outer) B[t, g]
 *   y[t, h]  = state[h] C[t, g] + d[h] * x[t, h]
 * where g is h's group, state[h] is [hd, d_state], x and y are
 * [n, heads, hd], dt [n, heads], B and C [n, groups, d_state].  state
 * ([heads, hd, d_state], zero at the start) carries across calls; y may be x. */
void lm_ssm(float *y, const float *x, const float *dt, const float *B,
            const float *C, long n, const lm_ssm_dims *s, const float *a_log,
            const float *dt_bias, const float *d, float *state);
/* The same sums in chunks of `chunk` tokens (1 to 256), each as matrix
 * products (ssd.c): equal to lm_ssm up to the order of the sums. */
void lm_ssm_chunked(float *y, const float *x, const float *dt, const float *B,
                    const float *C, long n, long chunk, const lm_ssm_dims *s,
                    const float *a_log, const float *dt_bias, const float *d, float *state);

/* ---- latent attention (mla.c) ------------------------------------------------ */

/* One product per head: for each token t and head h,
 * y[(t * heads + h) * ypitch ...] (W[h].rows floats) = W[h] x[(t * heads + h) * xpitch ...]
 * (its first W[h].cols floats).  The pitches let a head's input or output
 * be part of a wider row (q_nope of [q_nope, q_pe]).  y must not alias x. */
void lm_matmul_heads(float *y, long ypitch, const float *x, long xpitch,
                     long n, long heads, const lm_mat *W);
/* The shape of a latent attention layer: per head, keys of nope + rope
 * floats and values of vd, up-projected from a latent of lora. */
typedef struct {
	long heads, lora, nope, rope, vd;
	float scale;         /* of the scores */
} lm_mla_dims;
/* Latent attention of one sequence's n queries q[n, heads, nope + rope]
 * with the keys and values expanded: every head's K = [Uk_h c | k_pe] and
 * V = Uv_h c for the rows c->k holds and the call's rows kv[n, lora + rope]
 * ([c | k_pe], c normalised), then ordinary causal attention.  uk[h] maps
 * nope to lora (the query's absorption), uv[h] lora to vd.  Afterwards kv's
 * rows are appended to c (LM_KV_LATENT).  out[n, heads, vd]. */
void lm_mla_expanded(float *out, const float *q, const float *kv, long n, long pos,
                     lm_kv *c, const lm_mla_dims *d, const lm_mat *uk, const lm_mat *uv);
/* rows rows of cols floats: dst[r * dpitch + i] = src[r * spitch + i]. */
void lm_copy_cols(float *dst, long dpitch, const float *src, long spitch,
                  long rows, long cols);

/* ---- gated delta rule (delta.c) ------------------------------------------------ */

/* Decay gates from logits, in place: for dim channels of each head,
 * a[t, h, i] = exp(-exp(a_log[h]) * softplus(a[t, h, i] + bias[h * dim + i])),
 * in (0, 1]: how much of each state channel survives one token. */
void lm_decay(float *a, long n, long heads, long dim, const float *a_log,
              const float *bias);
void lm_sigmoid(float *x, long count);                       /* in place */
void lm_scale(float *x, long count, float s);                /* x *= s */
void lm_mul(float *y, const float *x, const float *a, long count); /* y = x * a */
/* The gated delta rule over n tokens, per head h, with a state S[h] of
 * [dv, dk] (heads * dv * dk floats, carried across calls):
 *   S = S * diag(g[t, h])                      forget, per key channel
 *   S = S + beta[t, h] * (v - S k) k^T         write v at k, correcting
 *                                              what S k already gave
 *   out[t, h] = S q
 * q, k, g: [n, heads, dk]; v, out: [n, heads, dv]; beta: [n, heads]. */
void lm_gated_delta(float *out, const float *q, const float *k, const float *v,
                    const float *g, const float *beta, long n, long heads,
                    long dk, long dv, float *state);

/* ---- mixture of experts -------------------------------------------------------- */

/* How a router's logits choose experts for a token.
 * TOP1_SIGMOID_IN (Llama 4): the expert with the largest logit; the token
 *   is multiplied by sigmoid(logit) before the expert, whose output is
 *   added unweighted.
 * GROUPED (Kimi-Linear, DeepSeek-V3 style): scores s = sigmoid(logits) (or
 *   softmax); experts are chosen on s + bias: with groups > 1 the experts
 *   form `groups` equal groups, each scored by the sum of its two best, and
 *   the groups - topk_group lowest groups have their scores set to 0; the
 *   top_k experts are then weighted by their unbiased s, renormalised to
 *   sum to 1 when renorm (and top_k > 1), times `scaling`. */
enum { LM_ROUTE_TOP1_SIGMOID_IN = 0, LM_ROUTE_GROUPED = 1 };
typedef struct {
	int rule, experts, top_k, softmax, groups, topk_group, renorm;
	float scaling;
} lm_router;

/* For each of n tokens, from logits[n, experts] (and bias[experts] or 0):
 * idx[n, top_k] the chosen experts, w[n, top_k] their weights. */
void lm_route(const float *logits, long n, const lm_router *r,
              const float *bias, int *idx, float *w);
/* y[n, dim] = the chosen SwiGLU experts applied to x[n, dim]:
 * sum over k of w * down_e(silu(gate_e(x)) * up_e(x)) with e = idx[t, k];
 * with scale_input, each expert reads w * x instead and its output is not
 * weighted.  Tokens are grouped by expert so each expert's weights are
 * read once per call. */
void lm_moe(float *y, const float *x, long n, long dim, const lm_mat *gate,
            const lm_mat *up, const lm_mat *down, const int *idx,
            const float *w, long top_k, int scale_input);
enum { LM_MOE_WEIGHT_OUTPUT = 0, LM_MOE_SCALE_INPUT = 1 };   /* scale_input */

/* ---- the model's state ------------------------------------------------------- */

/* Everything a model carries from one call to the next: its position, its
 * K/V caches and its other states (convolution inputs, SSM and delta-rule
 * states), each registered once by create().  The runtime saves, restores
 * and cuts back this state (runtime/state.c) without knowing which
 * architecture it belongs to. */
typedef struct lm_bank lm_bank;
typedef struct {
	long *pos;                 /* tokens seen */
	lm_kv **kv;
	int nkv, nf;
	float ***f;                /* nf states of n[i] floats: where the model
	                            * keeps the pointer to each */
	long *n;
	void **own;                /* nown buffers freed with the state */
	long nown;
	/* several sequences (runtime/bank.c): the bank the caches above are
	 * now, and the sequence of each row of a batched step (0: none) */
	lm_bank *cur, *home;
	lm_bank *const *rows;
	long nrows;
} lm_state;
void lm_state_kv(lm_state *s, lm_kv *c);
/* In create(): *f gets a zeroed state of n floats of the layer being
 * bound, registered in s; a layer of another pipeline stage gets none
 * (lm_stage_bind), as its K/V caches get no room. */
void lm_state_floats(lm_state *s, float **f, long n);
/* In create(): p (from lm_floats or lm_alloc: scratch, a derived
 * matrix) belongs to the model from now on and is freed with its caches
 * when the checkpoint is unloaded or create() fails; returns p. */
void *lm_state_own(lm_state *s, void *p);
/* Back to position 0: every cache empty, every other state zero. */
void lm_state_reset(lm_state *s);

/* ---- several sequences at once (bank.c) ------------------------------------ */

/* A bank is one sequence's own position and copy of every cache and state
 * registered above.  A batched decoding step takes one token of each of n
 * sequences, a row each, through every layer at once: the products read
 * each weight once for all of them, while the parts that read or write a
 * cache or depend on the position (attention, RoPE, convolutions, scans)
 * run per sequence, over its own bank:
 *
 *   for (long r = 0, m; (m = lm_seq_rows(&state, r, n)) > 0; r += m)
 *           ... rows [r, r + m) at position pos, over the layer's caches ...
 *
 * lm_seq_rows points the registered caches and pos at the bank of row r
 * and returns how many rows from r are that sequence's (0 past n).
 * Outside a batched step it returns all n: one sequence, nothing switched.
 * lm_seq_begin / lm_seq_end bracket the step; at its end each sequence's
 * position has moved on by its rows and the caches are those of the bank
 * that was current before. */
long lm_seq_rows(lm_state *s, long r, long n);
void lm_seq_begin(lm_state *s, lm_bank *const *rows, long n);
void lm_seq_end(lm_state *s);

/* ---- pipeline stages (stage.c) ---------------------------------------------- */

/* Started by mpirun on several processes (ranks), a model runs as a
 * pipeline: each rank runs one contiguous range of the model's parts, part
 * -1 being the embedding, 0 .. layers - 1 the layers and `layers` the
 * final norm and the head.  Alone, a process runs every part. */
int lm_stage_has(int part);
/* In create(): the weights and caches bound next are part's.  A rank that
 * does not run it checks their names and shapes but reads none of their
 * data and allocates no cache for them.  LM_STAGE_SHARED: what every part
 * uses (scratch); LM_STAGE_ENDS: the embedding when the head is tied to
 * it (the first part's and the last's). */
enum { LM_STAGE_SHARED = -2, LM_STAGE_ENDS = -3 };
void lm_stage_bind(int part);
/* In forward(): count floats of the residual stream from the rank before,
 * or to the rank after. */
void lm_stage_recv(float *x, long count);
void lm_stage_send(const float *x, long count);

/* A part, as the split into stages weighs it (bytes). */
typedef struct lm_part {
	long read;      /* weights a token reads (the experts it is routed to) */
	long weights;   /* weights the part holds (every expert) */
	long cache;     /* cache per token */
	long fixed;     /* state whatever the length */
	int joined;     /* 1: stays in the stage of the part before (it reads
	                 * the K/V cache of a layer in it) */
} lm_part;

/* ---- the model and the run loop -------------------------------------------- */

/* What a generated model gives the run loop (runtime/run.c). */
typedef struct {
	const char *name;           /* base name of the model directory */
	const char *weights;        /* checkpoint directory baked in at build, or 0 */
	const char *adapter;        /* adapter directory baked in at build, or 0 */
	const lm_adapter *lora;     /* the adapter's structure it was built for, or 0 */
	long vocab;
	long max_ctx;               /* the config's position limit, 0 if none */
	/* Bind every weight (and the adapter's tensors from ad, when built
	 * with one), allocate caches and scratch for ctx tokens. */
	void (*create)(lm_ckpt *ck, lm_ckpt *ad, long ctx);
	/* Run n tokens at the current position.  logits gets [n, vocab] when
	 * all != 0, else [vocab] for the last token only. */
	void (*forward)(const int *tok, long n, float *logits, int all);
	void (*reset)(void);        /* forget every cache: position 0 again */
	/* One decoding step of n <= maxb sequences together: token tok[r] of
	 * sequence rows[r]; logits gets [n, vocab]. */
	void (*step)(lm_bank *const *rows, const int *tok, long n, float *logits);
	long maxb;
	lm_state *state;            /* filled by create() */
	const char *arch;           /* model_type */
	const char *max_ctx_field;  /* the config field max_ctx comes from, or 0 */
	/* config.json as the program was built from it: triples (field,
	 * value, default), JSON text, 0 for absent; ends with field 0 */
	const char *const *config;
	const char *const *drops;   /* globs of tensors the reference drops; 0 ends */
	long dim;                   /* the residual stream's width */
	int layers;
	const lm_part *parts;       /* layers + 2: the embedding, each layer, the head */
	int fast;                   /* built with --fast: the run option's default */
} lm_model;

/* The command line of a built model (RUN OPTIONS of DESIGN.md). */
int lm_main(int argc, char **argv, const lm_model *m);

#endif
