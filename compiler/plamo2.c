/* plamo2.c: PLaMo-2's config.json as a plan.
 *
 * Semantics from mlx-lm's models/plamo2.py (with ssm.py and cache.py).
 * What is particular:
 *   - Mamba-2 layers and attention layers alternate by mamba_step (see
 *     is_mamba below);
 *   - every layer has four RMSNorms, before and after each block, and every
 *     norm weight (the final one too) is stored relative to a fixed offset;
 *   - Mamba layers: in_proj's output is [z | x] per head, not two halves
 *     of the whole; B, C and the input of dt come from one bcdt_proj and
 *     are RMS-normalised with their own weights; one B and C for all heads;
 *   - attention layers: fused qkv_proj; q and k are RMS-normalised without
 *     weight (eps 1e-6, whatever rms_norm_eps says) and then multiplied by
 *     a weight per head, before RoPE (rotate-half, base 10000);
 *   - attention_window_size is not applied (see templates/overview.c);
 *   - mlx-lm saves conv1d with MLX's axes, [C, K, 1] (its sanitize moves
 *     them whenever the last is not 1): either is read. */
#include "arch.h"

#include <math.h>
#include <stdio.h>

/* The norm offsets: effective weight = stored weight + offset. */
#define PRE_OFFSET 1.0
#define POST_MIX_OFFSET (1.0 / 5)
#define POST_MLP_OFFSET (1.0 / (5 * sqrt(5.0)))     /* 1 / 5^1.5 */
#define QK_EPS 1e-6
#define ROPE_BASE 10000.0
#define DT_MIN 0.001           /* the reference's time_step_limit */
#define DT_MAX 100.0
#define MAX_STATE (1L << 28)   /* floats of one layer's SSM state */

typedef struct {
	long D, hd, H, KV;          /* hidden size; attention heads */
	long mh, ds, conv, dt_dim;  /* Mamba heads, state size, conv taps, dt input */
	double eps;
} Dims;

/* Layer i is Mamba unless i % step == step / 2; with too few layers for
 * that rule to place an attention layer (L <= step / 2), every layer but
 * the last is Mamba.  (The reference chooses the same layers but then
 * crashes on such configs, reading the attention mask's cache from layer
 * step / 2; the mask itself is causal whichever layer gives it.) */
static int is_mamba(int enabled, long step, int L, int i)
{
	if (!enabled)
		return 0;
	if (L <= step / 2)
		return i != L - 1;
	return i % step != step / 2;
}

static void attention(Plan *p, Layer *l, const Dims *d, int rope, const char *pre)
{
	Attn *a = &l->attn;
	l->mix = MIX_ATTN;
	attn_begin(a, d->H, d->KV, d->hd);
	a->rope = rope;
	a->qk = QK_PER_HEAD;
	a->qk_before_rope = 1;
	a->qk_eps = QK_EPS;
	long qs[2] = {d->H, d->hd}, ks[2] = {d->KV, d->hd};
	a->qn = vec_of(tensor(p, INIT_UNIFORM, 0.9, 1.1, 2, qs, "%s.mixer.q_weight", pre), 0);
	a->kn = vec_of(tensor(p, INIT_UNIFORM, 0.9, 1.1, 2, ks, "%s.mixer.k_weight", pre), 0);
	int qkv = t_matrix(p, (d->H + 2 * d->KV) * d->hd, d->D, "%s.mixer.qkv_proj.weight", pre);
	a->wq = mat_rows(p, qkv, 0, d->H * d->hd);
	a->wk = mat_rows(p, qkv, d->H * d->hd, d->KV * d->hd);
	a->wv = mat_rows(p, qkv, (d->H + d->KV) * d->hd, d->KV * d->hd);
	a->wo = mat_of(p, t_matrix(p, d->D, d->H * d->hd, "%s.mixer.o_proj.weight", pre));
}

static void mamba(Plan *p, Layer *l, const Dims *d, const char *pre)
{
	Mamba *m = &l->mamba;
	long I = d->mh * d->hd, one[1] = {d->mh};
	l->mix = MIX_MAMBA;
	m->heads = (int)d->mh;
	m->hd = (int)d->hd;
	m->d_state = (int)d->ds;
	m->groups = 1;
	m->d_conv = (int)d->conv;
	m->in_proj = mat_of(p, t_matrix(p, 2 * I, d->D, "%s.mixer.in_proj.weight", pre));
	m->zx_by_head = 1;
	char name[MAX_TENSOR_NAME];
	snprintf(name, sizeof name, "%s.mixer.conv1d.weight", pre);
	m->conv = vec_of(t_conv(p, I, d->conv, name), 0);
	/* bcdt_proj's rows: B, then C, then the input of dt */
	int bcdt = t_matrix(p, 2 * d->ds + d->dt_dim, I, "%s.mixer.bcdt_proj.weight", pre);
	m->wb = mat_rows(p, bcdt, 0, d->ds);
	m->wc = mat_rows(p, bcdt, d->ds, d->ds);
	m->wdt = mat_rows(p, bcdt, 2 * d->ds, d->dt_dim);
	m->b_norm = norm_of(t_vector(p, d->ds, 1, "%s.mixer.B_norm_weight", pre), d->eps, 0);
	m->c_norm = norm_of(t_vector(p, d->ds, 1, "%s.mixer.C_norm_weight", pre), d->eps, 0);
	m->dt_norm = norm_of(t_vector(p, d->dt_dim, 1, "%s.mixer.dt_norm_weight", pre), d->eps, 0);
	m->dt_proj = mat_of(p, t_matrix(p, d->mh, d->dt_dim, "%s.mixer.dt_proj.weight", pre));
	/* init ranges: steps of about 0.05 to 0.5, decay rates 1 to 12 */
	m->dt_bias = vec_of(tensor(p, INIT_UNIFORM, -3, -1, 1, one, "%s.mixer.dt_bias", pre), 0);
	m->a_log = vec_of(tensor(p, INIT_UNIFORM, 0, 2.5, 1, one, "%s.mixer.A_log", pre), 0);
	m->d = vec_of(tensor(p, INIT_UNIFORM, 0.5, 1.5, 1, one, "%s.mixer.D", pre), 0);
	m->dt_min = DT_MIN;
	m->dt_max = DT_MAX;
	m->out = mat_of(p, t_matrix(p, d->D, I, "%s.mixer.out_proj.weight", pre));
}

void read_plamo2(Cfg *c, Plan *p)
{
	Dims d = {0};
	long V = cfg_int(c, "vocab_size", 1, MAX_VOCAB, CFG_REQ);
	d.D = cfg_int(c, "hidden_size", 1, MAX_DIM, CFG_REQ);
	int L = (int)cfg_int(c, "num_hidden_layers", 1, MAX_LAYERS, CFG_REQ);
	long inter = cfg_int(c, "intermediate_size", 1, MAX_WIDTH, CFG_REQ);
	d.H = cfg_int(c, "num_attention_heads", 1, MAX_HEADS, CFG_REQ);
	d.KV = cfg_int(c, "num_key_value_heads", 1, MAX_HEADS, CFG_REQ);
	d.hd = cfg_int(c, "hidden_size_per_head", 1, 2 * MAX_ROPE_PAIRS, CFG_REQ);
	d.eps = cfg_num(c, "rms_norm_eps", 0, 1, 1e-6);
	int tied = cfg_bool(c, "tie_word_embeddings", 1);
	int enabled = cfg_bool(c, "mamba_enabled", 1);
	long step = enabled ? cfg_int(c, "mamba_step", 2, MAX_LAYERS, CFG_REQ) : 0;

	if (d.hd % 2)
		cfg_error(c, "hidden_size_per_head", "%ld is odd: RoPE turns pairs of dims", d.hd);
	if (d.H % d.KV)
		cfg_error(c, "num_key_value_heads", "%ld KV heads do not divide %ld heads", d.KV, d.H);
	if (d.H * d.hd > MAX_WIDTH)
		cfg_error(c, "num_attention_heads", "%ld heads of %ld exceed width %d",
		          d.H, d.hd, MAX_WIDTH);
	int nmamba = 0;
	for (int i = 0; i < L; i++)
		nmamba += is_mamba(enabled, step, L, i);
	if (nmamba) {
		d.mh = cfg_int(c, "mamba_num_heads", 1, MAX_HEADS, CFG_REQ);
		d.ds = cfg_int(c, "mamba_d_state", 1, MAX_DIM, CFG_REQ);
		d.conv = cfg_int(c, "mamba_d_conv", 1, 256, CFG_REQ);
		if (d.mh * d.hd > MAX_WIDTH)
			cfg_error(c, "mamba_num_heads", "%ld heads of %ld exceed width %d",
			          d.mh, d.hd, MAX_WIDTH);
		if (d.mh * d.hd * d.ds > MAX_STATE)
			cfg_error(c, "mamba_d_state", "a state of %ld x %ld x %ld floats per layer "
			          "exceeds %ld", d.mh, d.hd, d.ds, MAX_STATE);
		d.dt_dim = d.D / 16 > 64 ? d.D / 16 : 64;
	}

	plan_begin(p, V, d.D, L, "model.embed_tokens.weight");
	p->head_tied = tied;
	p->head = tied ? p->embed : mat_of(p, t_matrix(p, V, d.D, "lm_head.weight"));

	double f[MAX_ROPE_PAIRS];
	char note[200];
	rope_base(f, (int)d.hd, ROPE_BASE);
	snprintf(note, sizeof note, "base %g, rotate-half (non-traditional)", ROPE_BASE);
	int rope = rope_add(p, ROPE_HALF, (int)d.hd, f, note);

	for (int i = 0; i < L; i++) {
		Layer *l = layer_begin(p, i);
		char pre[64];
		snprintf(pre, sizeof pre, "model.layers.layers.%d", i);
		if (is_mamba(enabled, step, L, i))
			mamba(p, l, &d, pre);
		else
			attention(p, l, &d, rope, pre);
		/* stored zero-centred: a weight of 0 is the offset */
		l->pre_mix = norm_of(t_vector(p, d.D, 0, "%s.pre_mixer_norm.weight", pre),
		                     d.eps, PRE_OFFSET);
		l->post_mix = norm_of(t_vector(p, d.D, 0, "%s.post_mixer_norm.weight", pre),
		                      d.eps, POST_MIX_OFFSET);
		l->pre_ffn = norm_of(t_vector(p, d.D, 0, "%s.pre_mlp_norm.weight", pre),
		                     d.eps, PRE_OFFSET);
		l->post_ffn = norm_of(t_vector(p, d.D, 0, "%s.post_mlp_norm.weight", pre),
		                      d.eps, POST_MLP_OFFSET);
		l->ffn = FFN_MLP;
		int gu = t_matrix(p, 2 * inter, d.D, "%s.mlp.gate_up_proj.weight", pre);
		l->mlp.inter = inter;
		l->mlp.gate = mat_rows(p, gu, 0, inter);
		l->mlp.up = mat_rows(p, gu, inter, inter);
		l->mlp.down = mat_of(p, t_matrix(p, d.D, inter, "%s.mlp.down_proj.weight", pre));
	}
	p->final = norm_of(t_vector(p, d.D, 0, "model.norm.weight"), d.eps, PRE_OFFSET);
	p->max_ctx = cfg_int(c, "max_position_embeddings", 1, 1L << 40, 0);
}
