/* baichuan.c: Baichuan-M1's config.json as a plan.
 *
 * Semantics from mlx-lm's models/baichuan_m1.py.  What is particular:
 *   - layers listed in sliding_window_layers attend only to the last
 *     sliding_window tokens and have their own head counts
 *     (num_swa_attention_heads / num_swa_key_value_heads), hence their own
 *     head dim, hidden_size / heads;
 *   - q, k, v come from one fused projection, W_pack;
 *   - K and V pass through a 2-tap causal convolution over time, one filter
 *     per KV head, before RoPE (non-traditional, rotate-half);
 *   - the head's rows are L2-normalised once at load (NormHead).  With tied
 *     embeddings the reference has no head at all; the original model's
 *     NormHead then normalises the embedding, which is what this does (the
 *     lookup itself stays un-normalised). */
#include "arch.h"
#include "../runtime/rt.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

enum { CONV_TAPS = 2 };   /* the only conv_window the reference accepts */

void read_baichuan_m1(Cfg *c, Plan *p)
{
	long V = cfg_int(c, "vocab_size", 1, MAX_VOCAB, CFG_REQ);
	long D = cfg_int(c, "hidden_size", 1, MAX_DIM, CFG_REQ);
	long I = cfg_int(c, "intermediate_size", 1, MAX_WIDTH, CFG_REQ);
	int L = (int)cfg_int(c, "num_hidden_layers", 1, MAX_LAYERS, CFG_REQ);
	long H = cfg_int(c, "num_attention_heads", 1, MAX_HEADS, CFG_REQ);
	long KV = cfg_int(c, "num_key_value_heads", 1, MAX_HEADS, CFG_REQ);
	double theta = cfg_num(c, "rope_theta", 1, 1e12, CFG_REQ_NUM);
	long W = cfg_int(c, "sliding_window", 1, 1L << 24, CFG_REQ);
	long conv = cfg_int(c, "conv_window", 1, 64, CFG_REQ);
	double eps = cfg_num(c, "rms_norm_eps", 0, 1, CFG_REQ_NUM);
	/* 0 or null: the sliding-window layers use the global counts */
	long SH = cfg_int(c, "num_swa_attention_heads", 0, MAX_HEADS, 0);
	long SKV = cfg_int(c, "num_swa_key_value_heads", 0, MAX_HEADS, 0);
	int tied = cfg_bool(c, "tie_word_embeddings", 0);
	long swl[MAX_LAYERS];
	int nswa = cfg_ints(c, "sliding_window_layers", 0, L - 1, swl, MAX_LAYERS, 0);
	if (nswa < 0)
		cfg_error(c, "sliding_window_layers", "missing");
	if (conv != CONV_TAPS)
		cfg_error(c, "conv_window", "only 2 is defined (the reference asserts it), got %ld", conv);
	if (!SH)
		SH = H;
	if (!SKV)
		SKV = KV;

	plan_begin(p, V, D, L, "model.embed_tokens.weight");
	p->head_tied = tied;
	p->head = tied ? p->embed : mat_of(p, t_matrix(p, V, D, "lm_head.weight"));
	/* NormHead: row / (|row| + 1e-7), as sanitize does on every load, of
	 * an mlx-lm-saved head too (already normalised once: the reference
	 * normalises again).  A quantized head was normalised before it was
	 * quantized, and sanitize leaves it alone (it sees lm_head.scales). */
	const Tensor *ht = &p->t[p->head.t];
	p->head_l2 = ht->bits ? 0 : 1e-7;
	if (tied && ht->bits)
		lm_fail(p->cfg_file, "field 'tie_word_embeddings': true with a quantized embedding: "
		        "the reference has no head then, and lmcc's NormHead of the embedding "
		        "needs its float rows");

	for (int i = 0; i < L; i++) {
		Layer *l = layer_begin(p, i);
		Attn *a = &l->attn;
		int swa = 0;
		for (int j = 0; j < nswa; j++)
			swa |= swl[j] == i;
		long h = swa ? SH : H, kv = swa ? SKV : KV;
		const char *hf = swa ? "num_swa_attention_heads" : "num_attention_heads";
		if (D % h)
			cfg_error(c, hf, "%ld heads do not divide hidden_size %ld", h, D);
		long hd = D / h;
		if (hd % 2 || hd / 2 > MAX_ROPE_PAIRS)
			cfg_error(c, hf, "head dim %ld must be even and at most %d", hd, 2 * MAX_ROPE_PAIRS);
		if (h % kv)
			cfg_error(c, swa ? "num_swa_key_value_heads" : "num_key_value_heads",
			          "%ld KV heads do not divide %ld heads", kv, h);

		char pre[64];
		snprintf(pre, sizeof pre, "model.layers.%d", i);
		l->mix = MIX_ATTN;
		attn_begin(a, h, kv, hd);
		double f[MAX_ROPE_PAIRS];
		char note[200];
		rope_base(f, (int)hd, theta);
		snprintf(note, sizeof note, "theta %.10g, rotate-half (non-traditional)", theta);
		a->rope = rope_add(p, ROPE_HALF, (int)hd, f, note);
		a->qk = QK_NONE;
		a->window = swa ? W : 0;
		a->kv_conv = CONV_TAPS;
		long cs[5] = {1, 1, kv, 1, CONV_TAPS};
		a->conv_k = vec_of(tensor(p, INIT_UNIFORM, -1, 1, 5, cs, "%s.self_attn.conv_k", pre), 0);
		a->conv_v = vec_of(tensor(p, INIT_UNIFORM, -1, 1, 5, cs, "%s.self_attn.conv_v", pre), 0);
		int pack = t_matrix(p, D + 2 * kv * hd, D, "%s.self_attn.W_pack.weight", pre);
		a->wq = mat_rows(p, pack, 0, D);
		a->wk = mat_rows(p, pack, D, kv * hd);
		a->wv = mat_rows(p, pack, D + kv * hd, kv * hd);
		a->wo = mat_of(p, t_matrix(p, D, h * hd, "%s.self_attn.o_proj.weight", pre));
		l->pre_mix = norm_of(t_vector(p, D, 1, "%s.input_layernorm.weight", pre), eps, 0);
		l->pre_ffn = norm_of(t_vector(p, D, 1, "%s.post_attention_layernorm.weight", pre), eps, 0);
		l->ffn = FFN_MLP;
		char mlp[80];
		snprintf(mlp, sizeof mlp, "%s.mlp", pre);
		l->mlp = mlp_swiglu(p, D, I, mlp);
	}
	p->final = norm_of(t_vector(p, D, 1, "model.norm.weight"), eps, 0);
	p->max_ctx = cfg_int(c, "max_position_embeddings", 1, 1L << 40, 0);
}
