/* afm7.c: AFM-7's config.json as a plan.
 *
 * Semantics from mlx-lm's models/afm7.py.  What is particular:
 *   - q, k and v come from one fused projection, qkv_proj, in that order;
 *   - RoPE is the traditional (interleaved) kind, then q and k are
 *     RMS-normalised per head, with weights, after the rotation;
 *   - K and V go through fake 8-bit quantisation with per-layer scales;
 *   - the last num_kv_reuse_layers layers have only a query projection and
 *     attend over the cache of the last ordinary layer (KV reuse);
 *   - the output head is the embedding (tied).
 * The per-head q/k norms are mlx's nn.RMSNorm with its default eps, 1e-5,
 * whatever rms_norm_eps says: only the block norms take rms_norm_eps. */
#include "arch.h"
#include "../runtime/rt.h"

#include <math.h>
#include <stdio.h>


void read_afm7(Cfg *c, Plan *p)
{
	long V = cfg_int(c, "vocab_size", 1, MAX_VOCAB, CFG_REQ);
	long D = cfg_int(c, "hidden_dim", 1, MAX_DIM, CFG_REQ);
	int L = (int)cfg_int(c, "num_layers", 1, MAX_LAYERS, CFG_REQ);
	int R = (int)cfg_int(c, "num_kv_reuse_layers", 0, MAX_LAYERS, CFG_REQ);
	long H = cfg_int(c, "num_heads", 1, MAX_HEADS, CFG_REQ);
	long KV = cfg_int(c, "num_kv_heads", 1, MAX_HEADS, CFG_REQ);
	double scale = cfg_num(c, "hidden_dim_scale_factor", 1e-3, 1e3, 3.25);
	double theta = cfg_num(c, "rope_theta", 1, 1e12, 50000);
	double eps = cfg_num(c, "rms_norm_eps", 0, 1, 1e-5);

	if (R >= L)
		cfg_error(c, "num_kv_reuse_layers",
		          "%d of %d layers would reuse K/V, leaving no ordinary layer to make them", R, L);
	if (D % H)
		cfg_error(c, "num_heads", "%ld heads do not divide hidden_dim %ld", H, D);
	long hd = D / H;
	if (hd % 2 || hd / 2 > MAX_ROPE_PAIRS)
		cfg_error(c, "num_heads", "head dim %ld (hidden_dim / num_heads) must be even and at most %d",
		          hd, 2 * MAX_ROPE_PAIRS);
	if (H % KV)
		cfg_error(c, "num_kv_heads", "%ld KV heads do not divide %ld heads", KV, H);
	/* the reference: int(dim * hidden_dim_scale_factor) */
	double w = floor((double)D * scale);
	if (w < 1 || w > MAX_WIDTH)
		cfg_error(c, "hidden_dim_scale_factor", "MLP width %.0f out of [1, %d]", w, MAX_WIDTH);
	long I = (long)w;

	plan_begin(p, V, D, L, "model.embedding.weight");
	p->head = p->embed;
	p->head_tied = 1;

	double f[MAX_ROPE_PAIRS];
	char note[200];
	rope_base(f, (int)hd, theta);
	snprintf(note, sizeof note, "theta %.10g, traditional (interleaved pairs)", theta);
	int rope = rope_add(p, ROPE_INTERLEAVED, (int)hd, f, note);

	int last = L - R - 1;            /* the layer whose K/V the reusers read */
	for (int i = 0; i < L; i++) {
		Layer *l = layer_begin(p, i);
		Attn *a = &l->attn;
		int reuse = i > last;
		char pre[64];
		if (reuse)
			snprintf(pre, sizeof pre, "model.kv_reuse_layers.%d", i - last - 1);
		else
			snprintf(pre, sizeof pre, "model.layers.%d", i);
		l->mix = MIX_ATTN;
		attn_begin(a, H, KV, hd);
		a->rope = rope;
		a->qk = QK_SHARED;
		a->qk_eps = 1e-5;
		l->pre_mix = norm_of(t_vector(p, D, 1, "%s.input_layernorm.weight", pre), eps, 0);
		l->pre_ffn = norm_of(t_vector(p, D, 1, "%s.post_attention_layernorm.weight", pre), eps, 0);
		a->qn = vec_of(t_vector(p, hd, 1, "%s.self_attn.q_norm.weight", pre), 0);
		if (reuse) {
			a->kv_from = last;
			a->wq = mat_of(p, t_matrix(p, D, D, "%s.self_attn.q_proj.weight", pre));
			p->layers[last].attn.kv_readers++;
		} else {
			int qkv = t_matrix(p, (H + 2 * KV) * hd, D, "%s.self_attn.qkv_proj.weight", pre);
			a->wq = mat_rows(p, qkv, 0, H * hd);
			a->wk = mat_rows(p, qkv, H * hd, KV * hd);
			a->wv = mat_rows(p, qkv, (H + KV) * hd, KV * hd);
			a->kn = vec_of(t_vector(p, hd, 1, "%s.self_attn.k_norm.weight", pre), 0);
			a->fake8 = 1;
			char name[MAX_TENSOR_NAME];
			snprintf(name, sizeof name, "%s.self_attn.quant_key_scale", pre);
			a->kscale = vec_of(t_scalar(p, 0.02, 0.05, name), 0);
			snprintf(name, sizeof name, "%s.self_attn.quant_value_scale", pre);
			a->vscale = vec_of(t_scalar(p, 0.02, 0.05, name), 0);
		}
		a->wo = mat_of(p, t_matrix(p, D, D, "%s.self_attn.out_proj.weight", pre));
		l->ffn = FFN_MLP;
		char mlp[80];
		snprintf(mlp, sizeof mlp, "%s.mlp", pre);
		l->mlp = mlp_swiglu(p, D, I, mlp);
	}
	p->final = norm_of(t_vector(p, D, 1, "model.output_norm.weight"), eps, 0);
}
