/* kimi.c: Kimi-Linear's config.json as a plan.
 *
 * Semantics from mlx-lm's models/kimi_linear.py (with gated_delta.py's
 * ops path, mla.py and switch_layers.py).  What is particular:
 *   - layer i is a KDA layer (gated delta rule, MIX_KDA) when i + 1 is in
 *     linear_attn_config.kda_layers, else an MLA layer (MIX_MLA).  A
 *     config with no layer of one kind is valid: the reference only trips
 *     over it when picking a layer to build an unused mask from
 *     (tests/golden/README.md);
 *   - MLA never rotates anything (NoPE), whatever mla_use_nope says: the
 *     reference does not read it, nor rope_theta, nor q_lora_rank (it has
 *     only q_proj).  q_pe . k_pe still adds to the scores.  kv_b_proj
 *     [heads * (nope + v), lora] is split per head into the key and value
 *     up-projections as views;
 *   - KDA's q, k, v pass their own short causal convolutions; q and k are
 *     RMS-normalised without weight (eps 1e-6) and scaled by
 *     head_dim^-1 (q) and head_dim^-0.5 (k): the reference multiplies q
 *     by scale^2 and k by scale, with scale = head_dim^-0.5;
 *   - the feed-forward is a mixture of experts when num_experts > 0,
 *     i >= first_k_dense_replace and i % moe_layer_freq == 0, else a dense
 *     SwiGLU; routing is grouped top-k with a correction bias (ROUTE_GROUPED);
 *   - checkpoint names before the reference's sanitize: experts as
 *     block_sparse_moe.experts.<e>.w1 (gate) / w2 (down) / w3 (up), convs as
 *     q_conv1d.weight [C, 1, K], A_log [1, 1, H, 1], dt_bias [H * D];
 *     A_log, dt_bias and the correction bias stay F32 in BF16 releases;
 *     model.mtp.* (multi-token prediction) is not read, nor lm_head.weight
 *     when the embeddings are tied;
 *   - in mlx-lm's layout (compiler/layout.c) block_sparse_moe is mlp, the
 *     experts are stacked, the convs have MLX's axes and kv_b_proj is
 *     split per head into embed_q and unembed_out. */
#include "arch.h"
#include "../runtime/rt.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

enum { MAX_STATE = 1 << 28 };   /* floats of one KDA layer's recurrent state */

/* A KDA layer's config, from linear_attn_config. */
typedef struct {
	long heads, hd, conv;
} KdaCfg;

/* An MLA layer's config. */
typedef struct {
	long heads, nope, rope, vd, lora;
} MlaCfg;

/* The MoE config, shared by every MoE layer. */
typedef struct {
	long experts, top_k, inter, shared, groups, topk_group;
	int softmax, renorm;
	double scaling;
} MoeCfg;

/* A weight of its own tensor, marked to stay F32 in BF16 checkpoints. */
static int t_f32(Plan *p, double lo, double hi, int ndim, const long *shape,
                 const char *name)
{
	int t = tensor(p, INIT_UNIFORM, lo, hi, ndim, shape, "%s", name);
	p->t[t].keep_f32 = 1;
	return t;
}

/* n experts' matrices of [rows, cols], one tensor each, named by pattern
 * (one %ld: the expert). */
static MatArr experts(Plan *p, long n, long rows, long cols, const char *pattern)
{
	MatArr a = {.n = (int)n};
	snprintf(a.pattern, sizeof a.pattern, "%s", pattern);
	for (long e = 0; e < n; e++) {
		char name[MAX_TENSOR_NAME];
		snprintf(name, sizeof name, pattern, e);
		int t = t_matrix(p, rows, cols, "%s", name);
		if (!e)
			a.m0 = mat_of(p, t);
	}
	return a;
}

static void kda_layer(Plan *p, Kda *k, const KdaCfg *c, double eps, const char *pre)
{
	long D = p->hidden, HD = c->heads * c->hd;
	long alog[4] = {1, 1, c->heads, 1};
	char name[MAX_TENSOR_NAME];
	k->heads = (int)c->heads;
	k->hd = (int)c->hd;
	k->conv = (int)c->conv;
	k->qk_eps = 1e-6;
	k->q_scale = 1.0 / (double)c->hd;
	k->k_scale = 1.0 / sqrt((double)c->hd);
	k->wq = mat_of(p, t_matrix(p, HD, D, "%s.q_proj.weight", pre));
	k->wk = mat_of(p, t_matrix(p, HD, D, "%s.k_proj.weight", pre));
	k->wv = mat_of(p, t_matrix(p, HD, D, "%s.v_proj.weight", pre));
	plan_name(p, name, sizeof name, 0, "%s.q_conv1d.weight", pre);
	k->q_conv = vec_of(t_conv(p, HD, c->conv, name), 0);
	plan_name(p, name, sizeof name, 0, "%s.k_conv1d.weight", pre);
	k->k_conv = vec_of(t_conv(p, HD, c->conv, name), 0);
	plan_name(p, name, sizeof name, 0, "%s.v_conv1d.weight", pre);
	k->v_conv = vec_of(t_conv(p, HD, c->conv, name), 0);
	k->f_a = mat_of(p, t_matrix(p, c->hd, D, "%s.f_a_proj.weight", pre));
	k->f_b = mat_of(p, t_matrix(p, HD, c->hd, "%s.f_b_proj.weight", pre));
	k->b = mat_of(p, t_matrix(p, c->heads, D, "%s.b_proj.weight", pre));
	k->g_a = mat_of(p, t_matrix(p, c->hd, D, "%s.g_a_proj.weight", pre));
	k->g_b = mat_of(p, t_matrix(p, HD, c->hd, "%s.g_b_proj.weight", pre));
	/* the reference initialises A_log to log(uniform(1, 16)); from 1/16
	 * up, some channels of a random model keep a long memory (a decay
	 * rate near 1/16), which the state must then carry across calls */
	snprintf(name, sizeof name, "%s.A_log", pre);
	k->a_log = vec_of(t_f32(p, -log(16.0), log(16.0), 4, alog, name), 0);
	snprintf(name, sizeof name, "%s.dt_bias", pre);
	k->dt_bias = vec_of(t_f32(p, -1, 1, 1, &HD, name), 0);
	k->o_norm = norm_of(t_vector(p, c->hd, 1, "%s.o_norm.weight", pre), eps, 0);
	k->wo = mat_of(p, t_matrix(p, D, HD, "%s.o_proj.weight", pre));
}

static void mla_layer(Plan *p, Mla *m, const MlaCfg *c, double eps, const char *pre)
{
	long D = p->hidden, H = c->heads, qd = c->nope + c->rope;
	m->heads = (int)H;
	m->nope = (int)c->nope;
	m->rope_dim = (int)c->rope;
	m->vd = (int)c->vd;
	m->lora = (int)c->lora;
	m->scale = 1 / sqrt((double)qd);
	m->wq = mat_of(p, t_matrix(p, H * qd, D, "%s.q_proj.weight", pre));
	m->wkv = mat_of(p, t_matrix(p, c->lora + c->rope, D, "%s.kv_a_proj_with_mqa.weight", pre));
	m->kv_norm = norm_of(t_vector(p, c->lora, 1, "%s.kv_a_layernorm.weight", pre), eps, 0);
	if (p->layout == LAYOUT_MLX) {
		/* mlx-lm's sanitize split kv_b_proj per head: embed_q [H, lora,
		 * nope], the key up-projection transposed, and unembed_out
		 * [H, vd, lora] */
		char n[MAX_TENSOR_NAME];
		long uq[3] = {H, c->lora, c->nope}, uo[3] = {H, c->vd, c->lora};
		plan_name(p, n, sizeof n, 0, "%s.kv_b_proj.weight", pre);
		m->uk = mat_stack(p, tensor(p, INIT_MATRIX, 0, 0, 3, uq, "%s", n));
		plan_name(p, n, sizeof n, 1, "%s.kv_b_proj.weight", pre);
		m->uv = mat_stack(p, tensor(p, INIT_MATRIX, 0, 0, 3, uo, "%s", n));
		m->wo = mat_of(p, t_matrix(p, D, H * c->vd, "%s.o_proj.weight", pre));
		return;
	}
	/* kv_b_proj: per head nope rows of the key up-projection, then vd rows
	 * of the value up-projection, each row over the latent */
	int kvb = t_matrix(p, H * (c->nope + c->vd), c->lora, "%s.kv_b_proj.weight", pre);
	if (p->t[kvb].bits)
		lm_fail(lm_ck_file(p->ck, p->t[kvb].name), "tensor '%s': quantized in the Hugging Face "
		        "layout, which lmcc reads only as floats (mlx-lm's sanitize dequantizes it and "
		        "quantizes each head again as embed_q and unembed_out, what mlx_lm.convert saves)",
		        p->t[kvb].name);
	long per = (c->nope + c->vd) * c->lora;
	m->uk = (MatArr){.n = (int)H, .stride = per,
	                 .m0 = {kvb, 0, 1, c->lora, c->nope, c->lora}};
	m->uv = (MatArr){.n = (int)H, .stride = per,
	                 .m0 = {kvb, c->nope * c->lora, 0, c->vd, c->lora, c->lora}};
	m->wo = mat_of(p, t_matrix(p, D, H * c->vd, "%s.o_proj.weight", pre));
}

static void moe_layer(Plan *p, Moe *m, const MoeCfg *c, const char *pre)
{
	long D = p->hidden, E = c->experts;
	char pat[MAX_TENSOR_NAME], name[MAX_TENSOR_NAME];
	m->route = ROUTE_GROUPED;
	m->experts = (int)E;
	m->top_k = (int)c->top_k;
	m->inter = c->inter;
	m->softmax = c->softmax;
	m->groups = (int)c->groups;
	m->topk_group = (int)c->topk_group;
	m->renorm = c->renorm;
	m->scaling = c->scaling;
	plan_name(p, name, sizeof name, 0, "%s.gate.weight", pre);
	m->router = mat_of(p, t_matrix(p, E, D, "%s", name));
	plan_name(p, name, sizeof name, 0, "%s.gate.e_score_correction_bias", pre);
	m->bias = vec_of(t_f32(p, -0.1, 0.1, 1, &E, name), 0);
	if (p->layout == LAYOUT_MLX) {
		/* stacked by mlx-lm's sanitize: [E, out, in] each */
		long gs[3] = {E, c->inter, D}, ds[3] = {E, D, c->inter};
		plan_name(p, name, sizeof name, 0, "%s.experts.0.w1.weight", pre);
		m->gate = mat_stack(p, tensor(p, INIT_MATRIX, 0, 0, 3, gs, "%s", name));
		plan_name(p, name, sizeof name, 0, "%s.experts.0.w3.weight", pre);
		m->up = mat_stack(p, tensor(p, INIT_MATRIX, 0, 0, 3, gs, "%s", name));
		plan_name(p, name, sizeof name, 0, "%s.experts.0.w2.weight", pre);
		m->down = mat_stack(p, tensor(p, INIT_MATRIX, 0, 0, 3, ds, "%s", name));
	} else {
		snprintf(pat, sizeof pat, "%s.experts.%%ld.w1.weight", pre);
		m->gate = experts(p, E, c->inter, D, pat);
		snprintf(pat, sizeof pat, "%s.experts.%%ld.w3.weight", pre);
		m->up = experts(p, E, c->inter, D, pat);
		snprintf(pat, sizeof pat, "%s.experts.%%ld.w2.weight", pre);
		m->down = experts(p, E, D, c->inter, pat);
	}
	m->shared = c->shared > 0;
	if (m->shared) {
		/* the three names move together: map one, keep its prefix */
		plan_name(p, name, sizeof name, 0, "%s.shared_experts.gate_proj.weight", pre);
		name[strlen(name) - strlen(".gate_proj.weight")] = 0;
		m->sh = mlp_swiglu(p, D, c->inter * c->shared, name);
	}
}

/* linear_attn_config: which layers are KDA, and the KDA dimensions. */
static void read_linear(Cfg *top, int L, int *is_kda, int *nkda, KdaCfg *k)
{
	Cfg c = *top;                   /* a view into the nested object */
	long list[MAX_LAYERS];
	cfg_enter(&c, "linear_attn_config", 1);
	int n = cfg_ints(&c, "kda_layers", 1, L, list, MAX_LAYERS, 0);
	if (n < 0)
		cfg_error(&c, "kda_layers", "missing (the 1-based layers that are KDA)");
	for (int j = 0; j < n; j++)
		is_kda[list[j] - 1] = 1;
	/* full_attn_layers is what the reference infers (every other layer);
	 * when given it must agree, or the config means something else */
	int nf = cfg_ints(&c, "full_attn_layers", 1, L, list, MAX_LAYERS, 0);
	int full[MAX_LAYERS] = {0};
	for (int j = 0; j < nf; j++)
		full[list[j] - 1] = 1;
	for (int i = 0; nf >= 0 && i < L; i++)
		if (full[i] == is_kda[i])
			cfg_error(&c, "full_attn_layers", "layer %d (1-based) is in %s kda_layers %s full_attn_layers",
			          i + 1, full[i] ? "both" : "neither", full[i] ? "and" : "nor");
	*nkda = 0;
	for (int i = 0; i < L; i++)
		*nkda += is_kda[i];
	if (!*nkda)
		return;
	k->heads = cfg_int(&c, "num_heads", 1, MAX_HEADS, CFG_REQ);
	k->hd = cfg_int(&c, "head_dim", 1, MAX_DIM, CFG_REQ);
	/* the reference keeps kernel - 1 inputs as state: 1 would keep none
	 * and break its cache, so a conv needs two taps at least */
	k->conv = cfg_int(&c, "short_conv_kernel_size", 2, 64, 4);
	if (k->heads * k->hd > MAX_WIDTH)
		cfg_error(&c, "num_heads", "num_heads * head_dim = %ld, more than %d",
		          k->heads * k->hd, MAX_WIDTH);
	if (k->heads * k->hd * k->hd > MAX_STATE)
		cfg_error(&c, "head_dim", "a state of num_heads * head_dim^2 = %ld floats, more than %d",
		          k->heads * k->hd * k->hd, MAX_STATE);
}

static void read_mla(Cfg *c, MlaCfg *m)
{
	/* qk_nope_head_dim and v_head_dim fall back on head_dim when absent or
	 * 0, as the reference's `or` does */
	long hd = cfg_int(c, "head_dim", 0, MAX_DIM, 0);
	m->heads = cfg_int(c, "num_attention_heads", 1, MAX_HEADS, CFG_REQ);
	m->nope = cfg_int(c, "qk_nope_head_dim", 0, MAX_DIM, 0);
	m->rope = cfg_int(c, "qk_rope_head_dim", 0, MAX_DIM, 0);
	m->vd = cfg_int(c, "v_head_dim", 0, MAX_DIM, 0);
	m->lora = cfg_int(c, "kv_lora_rank", 1, MAX_DIM, CFG_REQ);
	if (!m->nope)
		m->nope = hd;
	if (!m->vd)
		m->vd = hd;
	if (!m->nope)
		cfg_error(c, "qk_nope_head_dim", "missing, and no head_dim to fall back on");
	if (!m->vd)
		cfg_error(c, "v_head_dim", "missing, and no head_dim to fall back on");
	long widest = m->nope + m->rope > m->vd ? m->nope + m->rope : m->vd;
	if (m->heads * (m->nope + m->vd) > MAX_WIDTH || m->heads * widest > MAX_WIDTH)
		cfg_error(c, "num_attention_heads", "%ld heads of qk %ld + %ld, v %ld: wider than %d",
		          m->heads, m->nope, m->rope, m->vd, MAX_WIDTH);
	if (m->heads * (m->lora + m->rope) > MAX_WIDTH)
		cfg_error(c, "kv_lora_rank", "%ld heads of latent queries of %ld + %ld: wider than %d",
		          m->heads, m->lora, m->rope, MAX_WIDTH);
}

static void read_moe(Cfg *c, MoeCfg *m)
{
	long E = m->experts;
	m->inter = cfg_int(c, "moe_intermediate_size", 1, MAX_WIDTH, CFG_REQ);
	m->top_k = cfg_int(c, "num_experts_per_token", 1, E, 1);
	m->shared = cfg_int(c, "num_shared_experts", 0, MAX_EXPERTS, 0);
	if (m->inter * m->shared > MAX_WIDTH)
		cfg_error(c, "num_shared_experts", "shared width %ld * %ld is more than %d",
		          m->inter, m->shared, MAX_WIDTH);
	const char *act = cfg_str(c, "moe_router_activation_func", "sigmoid");
	if (strcmp(act, "sigmoid") && strcmp(act, "softmax"))
		cfg_error(c, "moe_router_activation_func", "expected \"sigmoid\" or \"softmax\", got %s",
		          cfg_shown(c, "moe_router_activation_func"));
	m->softmax = !strcmp(act, "softmax");
	m->renorm = cfg_bool(c, "moe_renormalize", 1);
	m->scaling = cfg_num(c, "routed_scaling_factor", 0, 1e6, 1.0);
	m->groups = cfg_int(c, "num_expert_group", 1, E, 1);
	m->topk_group = cfg_int(c, "topk_group", 1, m->groups, 1);
	if (E % m->groups)
		cfg_error(c, "num_expert_group", "%ld groups do not divide %ld experts", m->groups, E);
	/* a group is ranked by the sum of its two best experts */
	if (m->groups > 1 && E / m->groups < 2)
		cfg_error(c, "num_expert_group", "%ld groups of %ld expert: a group needs two to be ranked",
		          m->groups, E / m->groups);
}

void read_kimi_linear(Cfg *c, Plan *p)
{
	long V = cfg_int(c, "vocab_size", 1, MAX_VOCAB, CFG_REQ);
	long D = cfg_int(c, "hidden_size", 1, MAX_DIM, CFG_REQ);
	int L = (int)cfg_int(c, "num_hidden_layers", 1, MAX_LAYERS, CFG_REQ);
	double eps = cfg_num(c, "rms_norm_eps", 0, 1, CFG_REQ_NUM);
	int tied = cfg_bool(c, "tie_word_embeddings", 0);
	MoeCfg moe = {.experts = cfg_int(c, "num_experts", 0, MAX_EXPERTS, CFG_REQ)};
	long dense0 = cfg_int(c, "first_k_dense_replace", 0, MAX_LAYERS, 0);
	long freq = cfg_int(c, "moe_layer_freq", 1, MAX_LAYERS, 1);
	int is_kda[MAX_LAYERS] = {0}, nkda;
	KdaCfg kda = {0};
	MlaCfg mla = {0};
	read_linear(c, L, is_kda, &nkda, &kda);
	if (nkda < L)
		read_mla(c, &mla);
	int is_moe[MAX_LAYERS] = {0}, nmoe = 0;
	for (int i = 0; i < L; i++)
		nmoe += is_moe[i] = moe.experts > 0 && i >= dense0 && i % freq == 0;
	long I = nmoe < L ? cfg_int(c, "intermediate_size", 1, MAX_WIDTH, CFG_REQ) : 0;
	if (nmoe)
		read_moe(c, &moe);

	plan_begin(p, V, D, L, "model.embed_tokens.weight");
	p->head_tied = tied;
	p->head = tied ? p->embed : mat_of(p, t_matrix(p, V, D, "lm_head.weight"));
	/* kimi_linear.py sanitize() */
	plan_drop(p, "model.mtp*", "the multi-token-prediction head");
	if (tied)
		plan_drop(p, "lm_head.weight", "a head tied to the embedding");

	for (int i = 0; i < L; i++) {
		Layer *l = layer_begin(p, i);
		char pre[64], sub[96];
		snprintf(pre, sizeof pre, "model.layers.%d", i);
		l->pre_mix = norm_of(t_vector(p, D, 1, "%s.input_layernorm.weight", pre), eps, 0);
		snprintf(sub, sizeof sub, "%s.self_attn", pre);
		if (is_kda[i]) {
			l->mix = MIX_KDA;
			kda_layer(p, &l->kda, &kda, eps, sub);
		} else {
			l->mix = MIX_MLA;
			mla_layer(p, &l->mla, &mla, eps, sub);
		}
		l->pre_ffn = norm_of(t_vector(p, D, 1, "%s.post_attention_layernorm.weight", pre), eps, 0);
		if (is_moe[i]) {
			l->ffn = FFN_MOE;
			snprintf(sub, sizeof sub, "%s.block_sparse_moe", pre);
			moe_layer(p, &l->moe, &moe, sub);
		} else {
			l->ffn = FFN_MLP;
			snprintf(sub, sizeof sub, "%s.mlp", pre);
			l->mlp = mlp_swiglu(p, D, I, sub);
		}
	}
	p->final = norm_of(t_vector(p, D, 1, "model.norm.weight"), eps, 0);
	p->max_ctx = cfg_int(c, "model_max_length", 1, 1L << 40, 0);
}
