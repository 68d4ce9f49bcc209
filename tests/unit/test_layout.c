/* test_layout.c: the HF <-> mlx-lm name mapping (compiler/layout.c) on
 * names of each kind, and layout detection from a list of names. */
#include "../../compiler/layout.c"

#include <stdio.h>

static int fails;

static void name_is(const char *arch, const char *hf, int part, const char *want)
{
	char got[256];
	int ok = layout_name(arch, hf, part, got, sizeof got);
	if (!want ? ok : !ok || strcmp(got, want)) {
		printf("FAIL layout %s %s part %d: got %s, expected %s\n", arch, hf, part,
		       ok ? got : "(none)", want ? want : "(none)");
		fails++;
	}
}

int main(void)
{
	name_is("kimi_linear", "model.layers.12.block_sparse_moe.experts.7.w1.weight", 0,
	        "model.layers.12.mlp.switch_mlp.gate_proj.weight");
	name_is("kimi_linear", "model.layers.3.block_sparse_moe.experts.0.w2.weight", 0,
	        "model.layers.3.mlp.switch_mlp.down_proj.weight");
	name_is("kimi_linear", "model.layers.3.block_sparse_moe.gate.e_score_correction_bias", 0,
	        "model.layers.3.mlp.e_score_correction_bias");
	name_is("kimi_linear", "model.layers.0.self_attn.q_conv1d.weight", 0,
	        "model.layers.0.self_attn.q_conv.conv.weight");
	name_is("kimi_linear", "model.layers.2.self_attn.kv_b_proj.weight", 1,
	        "model.layers.2.self_attn.unembed_out.weight");
	name_is("kimi_linear", "model.mtp.0.anything", 0, NULL);
	name_is("kimi_linear", "model.layers.0.mlp.gate_proj.weight", 0,
	        "model.layers.0.mlp.gate_proj.weight");
	name_is("kimi_linear", "model.layers.0.mlp.gate_proj.weight", 1, NULL);
	name_is("llama4", "language_model.model.layers.5.feed_forward.experts.gate_up_proj", 1,
	        "language_model.model.layers.5.feed_forward.experts.up_proj.weight");
	name_is("llama4", "language_model.model.layers.5.feed_forward.experts.down_proj", 0,
	        "language_model.model.layers.5.feed_forward.experts.down_proj.weight");
	name_is("llama4", "vision_model.x.weight", 0, NULL);
	name_is("afm7", "model.layers.0.self_attn.qkv_proj.weight", 0,
	        "model.layers.0.self_attn.qkv_proj.weight");
	/* digits are required where '#' stands */
	name_is("kimi_linear", "model.layers.x.self_attn.q_conv1d.weight", 0,
	        "model.layers.x.self_attn.q_conv1d.weight");

	const char *hf[] = {"model.layers.0.self_attn.q_conv1d.weight",
	                    "model.layers.1.block_sparse_moe.experts.0.w1.weight"};
	const char *mlx[] = {"model.norm.weight", "model.layers.1.mlp.switch_mlp.up_proj.weight"};
	const char *l4[] = {"language_model.model.layers.0.feed_forward.experts.down_proj.weight"};
	if (layout_detect("kimi_linear", hf, 2) != LAYOUT_HF
	    || layout_detect("kimi_linear", mlx, 2) != LAYOUT_MLX
	    || layout_detect("llama4", l4, 1) != LAYOUT_MLX
	    || layout_detect("llama4", hf, 2) != LAYOUT_HF
	    || layout_detect("plamo2", hf, 2) != LAYOUT_HF) {
		printf("FAIL layout: detection\n");
		fails++;
	}
	if (!fails)
		printf("PASS layout: names and detection\n");
	return 0;
}
