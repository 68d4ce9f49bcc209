/* layout.c: the Hugging Face and mlx-lm layouts of each architecture (see
 * layout.h).  The tables restate what each model's sanitize() in mlx-lm
 * does to a released checkpoint; a tensor not listed keeps its name and
 * shape (AFM-7 and Baichuan-M1 have no entry at all: their sanitize either
 * does not exist or changes only values, see baichuan.c). */
#include "layout.h"

#include <stdio.h>
#include <string.h>

#define KIMI "model.layers.#."
#define L4 "language_model.model.layers.#.feed_forward.experts."

static const LayoutRule kimi[] = {
	{KIMI "block_sparse_moe.experts.@.w1.weight", KIMI "mlp.switch_mlp.gate_proj.weight", 0, MAP_STACK},
	{KIMI "block_sparse_moe.experts.@.w2.weight", KIMI "mlp.switch_mlp.down_proj.weight", 0, MAP_STACK},
	{KIMI "block_sparse_moe.experts.@.w3.weight", KIMI "mlp.switch_mlp.up_proj.weight", 0, MAP_STACK},
	{KIMI "block_sparse_moe.shared_experts.gate_proj.weight", KIMI "mlp.shared_experts.gate_proj.weight", 0, MAP_RENAME},
	{KIMI "block_sparse_moe.shared_experts.up_proj.weight", KIMI "mlp.shared_experts.up_proj.weight", 0, MAP_RENAME},
	{KIMI "block_sparse_moe.shared_experts.down_proj.weight", KIMI "mlp.shared_experts.down_proj.weight", 0, MAP_RENAME},
	{KIMI "block_sparse_moe.gate.weight", KIMI "mlp.gate.weight", 0, MAP_RENAME},
	{KIMI "block_sparse_moe.gate.e_score_correction_bias", KIMI "mlp.e_score_correction_bias", 0, MAP_RENAME},
	{KIMI "self_attn.q_conv1d.weight", KIMI "self_attn.q_conv.conv.weight", 0, MAP_CONV},
	{KIMI "self_attn.k_conv1d.weight", KIMI "self_attn.k_conv.conv.weight", 0, MAP_CONV},
	{KIMI "self_attn.v_conv1d.weight", KIMI "self_attn.v_conv.conv.weight", 0, MAP_CONV},
	{KIMI "self_attn.kv_b_proj.weight", KIMI "self_attn.embed_q.weight",
	 KIMI "self_attn.unembed_out.weight", MAP_KV_B},
	{"model.mtp.*", 0, 0, MAP_DROP},
};

static const LayoutRule llama4[] = {
	{L4 "gate_up_proj", L4 "gate_proj.weight", L4 "up_proj.weight", MAP_SPLIT_T},
	{L4 "down_proj", L4 "down_proj.weight", 0, MAP_T},
	{"vision_model.*", 0, 0, MAP_DROP},
	{"multi_modal_projector.*", 0, 0, MAP_DROP},
};

static const LayoutRule plamo2[] = {
	{"model.layers.layers.#.mixer.conv1d.weight", "model.layers.layers.#.mixer.conv1d.weight", 0, MAP_CONV},
};

#define N(a) (int)(sizeof a / sizeof a[0])
static const struct { const char *arch; const LayoutRule *r; int n; } tables[] = {
	{"kimi_linear", kimi, N(kimi)},
	{"llama4", llama4, N(llama4)},
	{"plamo2", plamo2, N(plamo2)},
};

const LayoutRule *layout_rules(const char *arch, int *n)
{
	for (int i = 0; i < N(tables); i++)
		if (!strcmp(tables[i].arch, arch)) {
			*n = tables[i].n;
			return tables[i].r;
		}
	*n = 0;
	return NULL;
}

/* One or more digits, as a number (capped: indices are small). */
static const char *digits(const char *s, long *v)
{
	if (*s < '0' || *s > '9')
		return NULL;
	*v = 0;
	for (; *s >= '0' && *s <= '9'; s++)
		if (*v < 1L << 40)
			*v = *v * 10 + (*s - '0');
	return s;
}

/* Whether name matches pattern ('#', '@': an index; a final '*': any
 * rest). */
static int match(const char *pat, const char *name, long *layer, long *expert)
{
	*layer = *expert = -1;
	for (; *pat; pat++) {
		if (*pat == '*' && !pat[1])
			return 1;
		if (*pat == '#' || *pat == '@') {
			name = digits(name, *pat == '#' ? layer : expert);
			if (!name)
				return 0;
		} else if (*name++ != *pat) {
			return 0;
		}
	}
	return !*name;
}

const LayoutRule *layout_match(const char *arch, const char *hf, long *layer,
                               long *expert)
{
	int n;
	const LayoutRule *r = layout_rules(arch, &n);
	for (int i = 0; i < n; i++)
		if (match(r[i].hf, hf, layer, expert))
			return &r[i];
	return NULL;
}

int layout_name(const char *arch, const char *hf, int part, char *out, size_t n)
{
	long layer, expert;
	const LayoutRule *r = layout_match(arch, hf, &layer, &expert);
	if (!r) {
		if (part)
			return 0;
		snprintf(out, n, "%s", hf);
		return 1;
	}
	const char *pat = part ? r->mlx2 : r->mlx;
	if (!pat)
		return 0;
	size_t k = 0;
	for (; *pat && k + 24 < n; pat++) {
		if (*pat == '#')
			k += snprintf(out + k, n - k, "%ld", layer);
		else
			out[k++] = *pat;
	}
	out[k] = 0;
	return 1;
}

Layout layout_detect(const char *arch, const char *const *names, long n)
{
	int nr;
	const LayoutRule *r = layout_rules(arch, &nr);
	for (long i = 0; i < n; i++)
		for (int j = 0; j < nr; j++) {
			long layer, expert;
			if (r[j].kind == MAP_DROP || !strcmp(r[j].hf, r[j].mlx))
				continue;
			if (match(r[j].mlx, names[i], &layer, &expert)
			    || (r[j].mlx2 && match(r[j].mlx2, names[i], &layer, &expert)))
				return LAYOUT_MLX;
		}
	return LAYOUT_HF;
}
