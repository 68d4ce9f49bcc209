/* plan.h: the one vocabulary every architecture is described in.
 *
 * A config reader (one file per model_type) turns config.json into a Plan:
 * the embedding, a list of layers, the final norm and the head, plus the
 * exact list of checkpoint tensors they read.  Each layer is a mixer
 * (attention, MLA, KDA or a Mamba-2 SSM) and a feed-forward block (a dense
 * SwiGLU or a mixture of experts), each with its norms.  Everything the
 * emitter, `lmcc plan` and `lmcc init` know about a model is in here; none
 * of them asks which architecture it came from.
 *
 * Weights are referred to as views (Mat, Vec) of the Tensors in the plan's
 * table: splitting a fused projection, picking one expert of a stack or one
 * head of kv_b_proj is a choice of offset, size and stride, made here once,
 * and nothing is copied at load. */
#ifndef PLAN_H
#define PLAN_H
#include <stdio.h>

#include "layout.h"

enum {
	MAX_LAYERS = 1024,
	MAX_DIM = 1 << 16,          /* hidden size, head dims, state sizes */
	MAX_WIDTH = 1 << 20,        /* feed-forward widths */
	MAX_VOCAB = 1 << 22,
	MAX_HEADS = 1024,
	MAX_EXPERTS = 4096,
	MAX_ROPES = 8,
	MAX_ROPE_PAIRS = 1024,      /* rotated dims / 2; the runtime's limit */
	MAX_TENSOR_NAME = 160,
};

/* ---- the checkpoint layout -------------------------------------------- */

/* How `lmcc init` fills a tensor.  MATRIX: uniform with standard deviation
 * 1/sqrt(fan_in); CONST: every value lo; UNIFORM: in [lo, hi]. */
typedef enum { INIT_MATRIX, INIT_CONST, INIT_UNIFORM } InitKind;

typedef struct {
	char name[MAX_TENSOR_NAME];
	int ndim;
	long shape[5];
	InitKind init;
	double lo, hi;
	long fan_in;
	int keep_f32;       /* F32 even in a BF16 checkpoint, as releases do */
	/* As stored, when the plan was read beside a checkpoint (format.c):
	 * esize bytes per element (0: not known, or quantized), or one of
	 * MLX's group quantizations (`mode`, lmcc.h's LM_AFFINE ...) with
	 * bits > 0 per weight, one scale of ssize bytes per group of `group`
	 * weights of a row and, in affine mode, one bias of ssize bytes. */
	int esize, bits, group, ssize, mode;
	int part;           /* the model part that binds it, numbered as lm_split's
	                     * (0 the embedding, 1 + i layer i, layers + 1 the head) */
} Tensor;

/* A matrix view of tensor t (see lm_mat in runtime/lmcc.h): rows outputs,
 * cols inputs, starting off elements in, element (r, c) at r*ld + c, or at
 * c*ld + r when tr.  t < 0: absent. */
typedef struct {
	int t;
	long off;
	int tr;
	long rows, cols, ld;
	int lora;           /* 0, or 1 + its adapter's index in Plan.ad (adapter.h) */
} Mat;

/* A whole tensor read as float32, plus add (norm weights stored relative
 * to an offset).  t < 0: absent. */
typedef struct {
	int t;
	double add;
} Vec;

/* One matrix per expert: expert e is m0 moved e * stride elements into the
 * same stacked tensor, or (pattern set) the same view of its own tensor,
 * whose name is pattern with %ld replaced by e. */
typedef struct {
	int n;
	Mat m0;
	long stride;
	char pattern[MAX_TENSOR_NAME];
} MatArr;

/* ---- positions --------------------------------------------------------- */

enum { ROPE_INTERLEAVED, ROPE_HALF };   /* lm_rope styles, same values */
typedef struct {
	int style, dims;                    /* rotated dims of a head */
	double inv_freq[MAX_ROPE_PAIRS];    /* pair j turns by pos * inv_freq[j] */
	char note[200];                     /* how the frequencies were derived */
} Rope;

/* ---- norms ----------------------------------------------------------------- */

/* RMSNorm; on == 0: none.  w.t < 0 with on: no weight.  w.add: the stored
 * weight is relative to an offset (PLaMo-2), added once at load. */
typedef struct {
	int on;
	Vec w;
	double eps;
} Norm;

/* ---- mixers ------------------------------------------------------------------ */

typedef enum { MIX_ATTN, MIX_MLA, MIX_KDA, MIX_MAMBA } MixKind;

/* q/k normalisation: none; RMSNorm with one weight [hd] shared by all heads;
 * without weight; or with one weight per head [heads, hd]. */
typedef enum { QK_NONE, QK_SHARED, QK_PLAIN, QK_PER_HEAD } QkNorm;

typedef struct {
	int heads, kv_heads, hd, vd;
	double scale;                /* of q.k */
	int rope;                    /* index in Plan.ropes; -1: no rotation */
	QkNorm qk;
	int qk_before_rope;
	double qk_eps;
	Vec qn, kn;
	long window, chunk;          /* mask: sliding window, attention chunk */
	int kv_conv;                 /* taps of the causal conv on raw K, V (0: none) */
	Vec conv_k, conv_v;          /* [kv_heads, taps]: one filter per KV head */
	int fake8;                   /* fake 8-bit K and V */
	Vec kscale, vscale;
	int kv_from;                 /* -1: own K/V; else the layer whose cache it reads */
	int kv_readers;              /* layers reading this layer's cache */
	int temp_tuning;             /* query temperature by position (NoPE layers) */
	double floor_scale, attn_scale;
	Mat wq, wk, wv, wo;
	Vec bq, bk, bv, bo;
} Attn;

/* Multi-head latent attention: K and V come from a shared low-rank latent
 * (kv_lora), which is all the cache keeps, plus a small shared key part
 * k_pe of rope_dim (named for the rotation DeepSeek's MLA gives it; the
 * MLA lmcc reads, Kimi-Linear's, never rotates anything).  A query head is [nope, rope_dim]; its score is
 * scale * (q_nope . Uk_h latent + q_pe . k_pe). */
typedef struct {
	int heads, nope, rope_dim, vd, lora;
	double scale;
	Mat wq;                      /* x -> [heads, nope + rope_dim] */
	Mat wkv;                     /* x -> [latent (lora), k_pe (rope_dim)] */
	Mat wo;
	Norm kv_norm;                /* on the latent, before it is cached */
	MatArr uk;                   /* per head [lora, nope]: the key up-projection
	                              * transposed, which takes q_nope into the
	                              * latent space (absorption) */
	MatArr uv;                   /* per head [vd, lora]: latent -> value */
} Mla;

/* Kimi delta attention: a gated delta-rule recurrence per head.  q, k, v
 * each pass a causal depthwise conv (conv taps, SiLU); q and k are
 * RMS-normalised without weight (qk_eps) and scaled by q_scale, k_scale;
 * the per-channel decay is exp(-exp(a_log[h]) * softplus(f_b(f_a(x)) +
 * dt_bias)), the write strength sigmoid(b(x)); the output is o_norm per
 * head times sigmoid(g_b(g_a(x))). */
typedef struct {
	int heads, hd, conv;
	double qk_eps, q_scale, k_scale;
	Mat wq, wk, wv, f_a, f_b, b, g_a, g_b, wo;
	Vec q_conv, k_conv, v_conv;  /* [heads * hd, taps] */
	Vec a_log, dt_bias;          /* [heads], [heads * hd] */
	Norm o_norm;                 /* [hd], shared by the heads */
} Kda;

/* Mamba-2 selective state space layer (lm_ssm in runtime/lmcc.h): in_proj
 * gives a gate z and an input x of heads * hd; x passes a causal depthwise
 * conv of d_conv taps and SiLU; B and C (groups * d_state each) and the
 * input of dt come from x through wb, wc, wdt, each optionally
 * RMS-normalised; dt_proj makes one dt per head; the scan's output, gated
 * by silu(z), goes through out. */
typedef struct {
	int heads, hd, d_state, groups, d_conv;
	Mat in_proj;
	int zx_by_head;              /* in_proj's rows: [z | x] per head (1) or for the whole (0) */
	Vec conv;                    /* [heads * hd, d_conv] values, any shape */
	Mat wb, wc, wdt, dt_proj, out;
	Norm b_norm, c_norm, dt_norm;
	Vec dt_bias, a_log, d;       /* [heads] each; A = -exp(a_log) */
	double dt_min, dt_max;       /* dt's range after softplus */
} Mamba;

/* ---- feed-forward ---------------------------------------------------------------- */

typedef enum { FFN_MLP, FFN_MOE } FfnKind;

typedef struct {
	long inter;
	Mat gate, up, down;
} Mlp;

/* Routing rules.  TOP1_SIGMOID_IN (Llama 4): the top-1 router logit's
 * sigmoid scales the token before its expert.  GROUPED (Kimi, DeepSeek-V3
 * style): sigmoid or softmax scores, selection on scores + bias within the
 * best groups, weights from the unbiased scores. */
typedef enum { ROUTE_TOP1_SIGMOID_IN, ROUTE_GROUPED } Route;

typedef struct {
	Route route;
	int experts, top_k;
	long inter;
	int softmax, groups, topk_group, renorm;
	double scaling;
	Mat router;
	Vec bias;
	MatArr gate, up, down;
	int shared;                  /* has a shared expert (always applied) */
	Mlp sh;
} Moe;

/* ---- the model ---------------------------------------------------------------------- */

typedef struct {
	MixKind mix;
	Attn attn;
	Mla mla;
	Kda kda;
	Mamba mamba;
	FfnKind ffn;
	Mlp mlp;
	Moe moe;
	Norm pre_mix, post_mix, pre_ffn, post_ffn;
} Layer;

/* A config field as the reader saw it (cfg.h's CfgLog): JSON texts, NULL
 * for absent. */
typedef struct {
	char *path, *val, *dflt;
} CfgField;

/* Checkpoint tensors the architecture's reference drops before loading
 * (its sanitize()): a glob (fnmatch) and why.  A checkpoint tensor that
 * the plan does not read and no drop matches is refused at load. */
typedef struct {
	const char *glob, *why;
} Drop;
enum { MAX_DROPS = 8 };

typedef struct {
	const char *arch;            /* model_type: a constant of ours */
	const char *title;           /* "AFM-7" */
	char name[64];               /* letters, digits, - and _ only */
	long vocab, hidden;
	int nl;
	Layer *layers;
	Mat embed;
	Norm final;
	Mat head;                    /* a view of the embedding when tied */
	int head_tied;
	double head_l2;              /* > 0: rows L2-normalised (+ this eps) at load */
	Rope ropes[MAX_ROPES];
	int nropes;
	long max_ctx;                /* the config's position limit, 0 if none */
	Tensor *t;
	int nt, tcap;
	int part;                    /* while reading: the part of the tensors made */
	struct Adapter *ad;          /* a LoRA/DoRA adapter on some products, or 0 */
	int fast;                    /* lmcc build --fast: the program's --fast is on */
	Drop drops[MAX_DROPS];
	int ndrops;
	CfgField *cfg;               /* every field of config.json the plan read */
	int ncfg;
	/* the checkpoint beside the config, while the plan is read (format.c) */
	Layout layout;               /* HF unless the files are mlx-lm's */
	struct lm_ckpt *ck;          /* NULL: none (lmcc init) */
	struct json_object *quant;   /* config.json's `quantization`, or NULL */
	const char *cfg_file;
} Plan;

/* plan.c */
int tensor(Plan *p, InitKind init, double lo, double hi, int ndim,
           const long *shape, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));
/* Shorthands: a [rows, cols] weight matrix, a vector of ones, any shape. */
int t_matrix(Plan *p, long rows, long cols, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
int t_vector(Plan *p, long n, double init, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
Mat mat_of(Plan *p, int t);                  /* the whole 2-D tensor */
Mat mat_rows(Plan *p, int t, long row0, long rows);
/* One matrix [out, in] per expert of a stacked [E, out, in] tensor. */
MatArr mat_stack(Plan *p, int t);
Vec vec_of(int t, double add);
Norm norm_of(int t, double eps, double add);
void plan_drop(Plan *p, const char *glob, const char *why);
int rope_add(Plan *p, int style, int dims, const double *inv_freq, const char *note);
/* inv_freq[j] = theta^(-2j/dims), the unscaled RoPE frequencies. */
void rope_base(double *inv_freq, int dims, double theta);

/* The sizes below saturate at PLAN_SIZE_MAX (2^50: a thousand times the
 * largest released model); plan_read refuses a config that reaches it, so
 * that 4 * params and friends never overflow. */
#define PLAN_SIZE_MAX (1L << 50)
void plan_check(const Plan *p, const char *config_path);
long plan_params(const Plan *p);
long plan_active_params(const Plan *p);   /* read per token */
/* Bytes of weights a token reads as stored (BF16 when the plan has no
 * checkpoint): the layers' matrices, one embedding row and the head. */
long plan_read_bytes(const Plan *p);
/* The storages of the matrices a token reads, "bf16" or "q4/64 q8/64". */
void plan_formats(const Plan *p, char *buf, size_t n);
long plan_tensor_numel(const Tensor *t);
/* The model's parts as pipeline stages weigh them (runtime/stage.c):
 * nl + 2 of them, the embedding, each layer, the head. */
struct lm_part;
void plan_parts(const Plan *p, struct lm_part *parts);
/* The schedule table, each line starting with prefix. */
void plan_print(const Plan *p, FILE *f, const char *prefix);
/* Cache bytes per token (growing caches) and fixed state bytes. */
void plan_cache(const Plan *p, long *per_token, long *fixed);
void plan_layer_cache(const Layer *l, long *per_token, long *fixed);
/* cost.c: `lmcc plan --cost`, per layer and in total, for one token at
 * context ctx; weights in the dtypes of ck (BF16 without one). */
typedef struct lm_ckpt lm_ckpt;
void plan_cost(const Plan *p, long ctx, lm_ckpt *ck, FILE *f);
/* The operations of feeding n tokens after depth others, as one prefill
 * (the head only for the last): what lmcc bench's prefill bound divides. */
double plan_prefill_flops(const Plan *p, long depth, long n);
void plan_free(Plan *p);

/* arch.c: config.json -> Plan, dispatching on model_type.  With_ckpt: read
 * the checkpoint in model_dir (if any) for its layout and formats. */
void plan_read(Plan *p, const char *config_path, const char *model_dir, int with_ckpt);

/* format.c: the storage of the plan's tensors (see Tensor), from the
 * checkpoint in dir (none: HF layout, formats unknown). */
void format_begin(Plan *p, struct json_object *root, const char *cfg_file, const char *dir);
void format_tensor(Plan *p, Tensor *t);
void format_end(Plan *p);
/* The stored shape of a tensor of the checkpoint: its ndim, or -1. */
int format_shape(const Plan *p, const char *name, long *shape);
/* The name of a tensor in the checkpoint's layout, from its Hugging Face
 * name (printf-style) and the part of it (layout_name). */
void plan_name(const Plan *p, char *out, size_t n, int part, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

#endif
