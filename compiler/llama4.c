/* llama4.c: Llama 4's config.json (its text model) as a plan.
 *
 * Semantics from mlx-lm's models/llama4.py (with rope_utils.py's
 * Llama3RoPE and cache.py's ChunkedKVCache).  The config nests the text
 * model in text_config; vision_config and the checkpoint's vision_model.*
 * and multi_modal_projector.* tensors are simply never bound.
 *
 * Two kinds of attention layer ("iRoPE"):
 *   - chunked layers: traditional RoPE (llama3-scaled frequencies), then,
 *     with use_qk_norm, a weightless RMS norm (eps 1e-6) on q and k; a
 *     query sees only the earlier tokens of its own attention_chunk_size
 *     chunk, so their cache never holds more than one chunk;
 *   - global NoPE layers: no RoPE, no q/k norm, causal over everything;
 *     with attn_temperature_tuning, queries are scaled by a factor that
 *     grows with the log of the absolute position.
 * Which layer is which: no_rope_layers (one 0/1 per layer, 1 = RoPE) when
 * the config lists it, else the fixed rule of the released models, every
 * NOPE_INTERVAL-th layer NoPE.  Fewer than NOPE_INTERVAL layers: no NoPE
 * layer at all (the reference crashes there; tests/golden/README.md).
 *
 * Feed-forward: a mixture of experts where moe_layers lists the layer (or,
 * without that list, every interleave_moe_layer_step-th layer), else a
 * dense SwiGLU of intermediate_size_mlp.  The MoE is top-1 with the
 * sigmoid of the router logit scaling the token *before* its expert, plus
 * a shared expert.  The experts are read in place from the checkpoint's
 * fused tensors, stored [in, out]: gate_up_proj [E, hidden, 2 * I] (gate
 * the first I outputs, up the next I) and down_proj [E, I, hidden].
 * In mlx-lm's layout (compiler/layout.c) the experts are split and
 * transposed: experts.gate_proj / up_proj [E, I, hidden], down_proj
 * [E, hidden, I], each an ordinary [out, in] stack.
 * The head is always language_model.lm_head: the reference never ties it. */
#include "arch.h"
#include "../runtime/rt.h"

#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

/* The released Llama 4 models leave no_rope_layers empty: then every 4th
 * layer (i + 1) % 4 == 0 is a global NoPE layer and the other three are
 * chunked RoPE layers.  The reference hard-codes this 4; Hugging Face
 * calls it no_rope_layer_interval. */
enum { NOPE_INTERVAL = 4 };

/* The q/k norm of the chunked layers has no weight and its own eps,
 * whatever rms_norm_eps says (mx.fast.rms_norm(..., weight=None, eps=1e-6)). */
#define QK_EPS 1e-6

/* attn_temperature_tuning is an int in the reference (default 4), a bool
 * in released configs: either way, only whether it is non-zero matters. */
static int truthy(Cfg *c, const char *key, int dflt)
{
	json_object *v = cfg_get(c, key);
	if (!v)
		return dflt;
	if (json_object_is_type(v, json_type_boolean))
		return json_object_get_boolean(v);
	if (!json_object_is_type(v, json_type_int))
		cfg_error(c, key, "expected true, false or an integer, got %s", cfg_shown(c, key));
	return json_object_get_int64(v) != 0;
}

/* RoPE frequencies of the chunked layers: rope_theta, scaled as
 * rope_scaling says (rope_utils.initialize_rope: default, linear or
 * llama3). */
static int rope_of(Cfg *c, Plan *p, int hd)
{
	double theta = cfg_num(c, "rope_theta", 1, 1e12, CFG_REQ_NUM);
	double f[MAX_ROPE_PAIRS];
	char note[200];
	int k = snprintf(note, sizeof note, "theta %.10g, traditional", theta);
	rope_base(f, hd, theta);

	Cfg s = *c;                /* rope_scaling's own fields, named in errors */
	if (!cfg_enter(&s, "rope_scaling", 0))
		return rope_add(p, ROPE_INTERLEAVED, hd, f, note);
	const char *type = cfg_str(&s, "type", NULL);
	const char *key = "type";
	if (!type || !*type) {
		type = cfg_str(&s, "rope_type", "default");
		key = "rope_type";
	}
	if (!strcmp(type, "linear")) {
		double factor = cfg_num(&s, "factor", 1e-6, 1e6, CFG_REQ_NUM);
		for (int j = 0; j < hd / 2; j++)
			f[j] /= factor;
		snprintf(note + k, sizeof note - k, ", positions / %g (linear)", factor);
	} else if (!strcmp(type, "llama3")) {
		/* Long wavelengths (beyond the original context / low_freq_factor)
		 * turn factor times slower, short ones (below the original
		 * context / high_freq_factor) are kept, and the band between is
		 * interpolated smoothly. */
		double factor = cfg_num(&s, "factor", 1e-6, 1e6, CFG_REQ_NUM);
		double lo = cfg_num(&s, "low_freq_factor", 1e-6, 1e6, 1.0);
		double hi = cfg_num(&s, "high_freq_factor", 1e-6, 1e6, 4.0);
		double ctx = cfg_num(&s, "original_max_position_embeddings", 1, 1e12, 8192);
		double lo_wave = ctx / lo, hi_wave = ctx / hi;
		for (int j = 0; j < hd / 2; j++) {
			double wave = 2 * M_PI / f[j];
			if (wave > lo_wave) {
				f[j] /= factor;
			} else if (wave > hi_wave && wave < lo_wave) {
				double smooth = (ctx / wave - lo) / (hi - lo);
				f[j] *= (1 - smooth) / factor + smooth;
			}
		}
		snprintf(note + k, sizeof note - k, ", llama3 scaling (factor %g, low/high %g/%g, context %.10g)",
		         factor, lo, hi, ctx);
	} else if (strcmp(type, "default")) {
		cfg_error(&s, key, "lmcc reads default, linear and llama3 RoPE for Llama 4, got %s",
		          cfg_shown(&s, key));
	}
	return rope_add(p, ROPE_INTERLEAVED, hd, f, note);
}

/* The attention of layer i under prefix pre (after attn_begin). */
static void attention(Plan *p, Attn *a, const char *pre, int rope, long hd, int bias)
{
	long D = p->hidden;
	a->rope = rope;
	a->qk_eps = QK_EPS;
	a->wq = mat_of(p, t_matrix(p, a->heads * hd, D, "%s.q_proj.weight", pre));
	a->wk = mat_of(p, t_matrix(p, a->kv_heads * hd, D, "%s.k_proj.weight", pre));
	a->wv = mat_of(p, t_matrix(p, a->kv_heads * hd, D, "%s.v_proj.weight", pre));
	a->wo = mat_of(p, t_matrix(p, D, a->heads * hd, "%s.o_proj.weight", pre));
	if (bias) {
		a->bq = vec_of(t_vector(p, a->heads * hd, 0, "%s.q_proj.bias", pre), 0);
		a->bk = vec_of(t_vector(p, a->kv_heads * hd, 0, "%s.k_proj.bias", pre), 0);
		a->bv = vec_of(t_vector(p, a->kv_heads * hd, 0, "%s.v_proj.bias", pre), 0);
		a->bo = vec_of(t_vector(p, D, 0, "%s.o_proj.bias", pre), 0);
	}
}

/* One expert matrix per expert, viewed in a stacked tensor [E, in, out]
 * (stored input-major, hence tr): outputs out0 .. out0 + rows. */
static MatArr experts_in_place(int t, int E, long in, long out, long out0, long rows)
{
	MatArr m = {.n = E, .stride = in * out};
	m.m0 = (Mat){.t = t, .off = out0, .tr = 1, .rows = rows, .cols = in, .ld = out};
	return m;
}

static Moe moe(Plan *p, int E, long I, const char *pre)
{
	long D = p->hidden;
	Moe m = {.route = ROUTE_TOP1_SIGMOID_IN, .experts = E, .top_k = 1, .inter = I,
	         .groups = 1, .topk_group = 1, .scaling = 1, .shared = 1};
	m.router = mat_of(p, t_matrix(p, E, D, "%s.router.weight", pre));
	m.bias.t = -1;
	if (p->layout == LAYOUT_MLX) {
		/* mlx-lm's sanitize split gate_up_proj and transposed the
		 * experts: [E, out, in] each */
		long gs[3] = {E, I, D}, ds[3] = {E, D, I};
		char n[MAX_TENSOR_NAME];
		plan_name(p, n, sizeof n, 0, "%s.experts.gate_up_proj", pre);
		m.gate = mat_stack(p, tensor(p, INIT_MATRIX, 0, 0, 3, gs, "%s", n));
		plan_name(p, n, sizeof n, 1, "%s.experts.gate_up_proj", pre);
		m.up = mat_stack(p, tensor(p, INIT_MATRIX, 0, 0, 3, gs, "%s", n));
		plan_name(p, n, sizeof n, 0, "%s.experts.down_proj", pre);
		m.down = mat_stack(p, tensor(p, INIT_MATRIX, 0, 0, 3, ds, "%s", n));
	} else {
		long gu_shape[3] = {E, D, 2 * I}, d_shape[3] = {E, I, D};
		int gu = tensor(p, INIT_MATRIX, 0, 0, 3, gu_shape, "%s.experts.gate_up_proj", pre);
		int dn = tensor(p, INIT_MATRIX, 0, 0, 3, d_shape, "%s.experts.down_proj", pre);
		p->t[gu].fan_in = D;          /* stored [in, out]: the inputs are not last */
		p->t[dn].fan_in = I;
		m.gate = experts_in_place(gu, E, D, 2 * I, 0, I);
		m.up = experts_in_place(gu, E, D, 2 * I, I, I);
		m.down = experts_in_place(dn, E, I, D, 0, D);
	}
	char sh[128];
	snprintf(sh, sizeof sh, "%s.shared_expert", pre);
	m.sh = mlp_swiglu(p, D, I, sh);
	return m;
}

/* Which of the L layers use RoPE (chunked attention; the others are
 * global NoPE layers) and which are MoE, as Hugging Face's transformers
 * reads the config (the reference knows only the fixed rules).  Returns
 * whether any layer uses RoPE. */
static int schedule(Cfg *c, int L, long *rope_on, char *is_moe)
{
	int nrope = cfg_ints(c, "no_rope_layers", 0, 1, rope_on, MAX_LAYERS, 0);
	if (nrope > 0 && nrope != L)
		cfg_error(c, "no_rope_layers", "%d entries for %d layers (one per layer, or none)",
		          nrope, L);
	if (nrope <= 0)            /* absent or empty: the fixed rule */
		for (int i = 0; i < L; i++)
			rope_on[i] = (i + 1) % NOPE_INTERVAL != 0;

	/* moe_layers, even empty, overrides interleave_moe_layer_step */
	long moe_at[MAX_LAYERS];
	int nmoe = cfg_ints(c, "moe_layers", 0, L - 1, moe_at, MAX_LAYERS, 0);
	for (int j = 0; j < nmoe; j++)
		is_moe[moe_at[j]] = 1;
	if (nmoe < 0) {
		long step = cfg_int(c, "interleave_moe_layer_step", 1, MAX_LAYERS, CFG_REQ);
		for (long i = step - 1; i < L; i += step)
			is_moe[i] = 1;
	}

	int any = 0;
	for (int i = 0; i < L; i++)
		any |= rope_on[i] != 0;
	return any;
}

void read_llama4(Cfg *c, Plan *p)
{
	cfg_enter(c, "text_config", 1);
	long V = cfg_int(c, "vocab_size", 1, MAX_VOCAB, CFG_REQ);
	long D = cfg_int(c, "hidden_size", 1, MAX_DIM, CFG_REQ);
	int L = (int)cfg_int(c, "num_hidden_layers", 1, MAX_LAYERS, CFG_REQ);
	long H = cfg_int(c, "num_attention_heads", 1, MAX_HEADS, CFG_REQ);
	long KV = cfg_int(c, "num_key_value_heads", 1, MAX_HEADS, CFG_REQ);
	long hd = cfg_int(c, "head_dim", 0, MAX_DIM, 0);     /* 0 or null: hidden / heads */
	long I = cfg_int(c, "intermediate_size", 1, MAX_WIDTH, CFG_REQ);
	long Imlp = cfg_int(c, "intermediate_size_mlp", 1, MAX_WIDTH, CFG_REQ);
	int E = (int)cfg_int(c, "num_local_experts", 1, MAX_EXPERTS, CFG_REQ);
	long topk = cfg_int(c, "num_experts_per_tok", 1, MAX_EXPERTS, CFG_REQ);
	long chunk = cfg_int(c, "attention_chunk_size", 1, 1L << 30, CFG_REQ);
	double eps = cfg_num(c, "rms_norm_eps", 0, 1, CFG_REQ_NUM);
	int temp = truthy(c, "attn_temperature_tuning", 4);
	double floor_scale = cfg_num(c, "floor_scale", 1, 1e12, 8192);
	double attn_scale = cfg_num(c, "attn_scale", 0, 1e3, 0.1);
	if (!cfg_has(c, "use_qk_norm"))
		cfg_error(c, "use_qk_norm", "missing");
	int qk_norm = cfg_bool(c, "use_qk_norm", 0);
	int bias = cfg_bool(c, "attention_bias", 0);
	p->max_ctx = cfg_int(c, "max_position_embeddings", 1, 1L << 40, CFG_REQ);

	if (topk != 1)
		cfg_error(c, "num_experts_per_tok", "only 1 is defined (the reference asserts it), got %ld",
		          topk);
	if (H % KV)
		cfg_error(c, "num_key_value_heads", "%ld KV heads do not divide %ld heads", KV, H);
	if (!hd) {
		if (D % H)
			cfg_error(c, "num_attention_heads", "%ld heads do not divide hidden_size %ld "
			          "(and head_dim is not given)", H, D);
		hd = D / H;
	}
	if (H * hd > MAX_WIDTH)
		cfg_error(c, "head_dim", "%ld heads of %ld are wider than %d", H, hd, MAX_WIDTH);

	long rope_on[MAX_LAYERS];
	char is_moe[MAX_LAYERS] = {0};
	int any_rope = schedule(c, L, rope_on, is_moe), rope = -1;
	if (any_rope) {
		if (hd % 2 || hd / 2 > MAX_ROPE_PAIRS)
			cfg_error(c, "head_dim", "head dim %ld of the RoPE layers must be even and at most %d",
			          hd, 2 * MAX_ROPE_PAIRS);
		rope = rope_of(c, p, (int)hd);
	}

	plan_begin(p, V, D, L, "language_model.model.embed_tokens.weight");
	p->head = mat_of(p, t_matrix(p, V, D, "language_model.lm_head.weight"));
	/* llama4.py sanitize() */
	plan_drop(p, "*vision_model*", "the vision tower");
	plan_drop(p, "*multi_modal_projector*", "the multi-modal projector");

	for (int i = 0; i < L; i++) {
		Layer *l = layer_begin(p, i);
		Attn *a = &l->attn;
		char pre[64], sub[96];
		snprintf(pre, sizeof pre, "language_model.model.layers.%d", i);
		l->mix = MIX_ATTN;
		attn_begin(a, H, KV, hd);
		snprintf(sub, sizeof sub, "%s.self_attn", pre);
		attention(p, a, sub, rope_on[i] ? rope : -1, hd, bias);
		if (rope_on[i]) {
			a->chunk = chunk;
			a->qk = qk_norm ? QK_PLAIN : QK_NONE;
		} else {
			a->temp_tuning = temp;
			a->floor_scale = floor_scale;
			a->attn_scale = attn_scale;
		}
		l->pre_mix = norm_of(t_vector(p, D, 1, "%s.input_layernorm.weight", pre), eps, 0);
		l->pre_ffn = norm_of(t_vector(p, D, 1, "%s.post_attention_layernorm.weight", pre), eps, 0);
		snprintf(sub, sizeof sub, "%s.feed_forward", pre);
		if (is_moe[i]) {
			l->ffn = FFN_MOE;
			l->moe = moe(p, E, I, sub);
		} else {
			l->ffn = FFN_MLP;
			l->mlp = mlp_swiglu(p, D, Imlp, sub);
		}
	}
	p->final = norm_of(t_vector(p, D, 1, "language_model.model.norm.weight"), eps, 0);
}
