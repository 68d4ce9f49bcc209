/* layout.h: the two layouts a checkpoint of these models comes in.
 *
 * HF: the released checkpoints (Hugging Face's tensor names and shapes).
 * MLX: what mlx_lm.convert writes, with or without -q: each model's
 *      sanitize() applied before saving, so some tensors are renamed,
 *      stacked, split or transposed.
 *
 * One table per architecture lists every tensor whose name or shape
 * differs; a tensor no rule matches is the same in both.  The loader uses
 * it to name what it binds (layout_name), `lmcc quantize` to write the MLX
 * layout from an HF checkpoint (layout_match, then the rule's kind says
 * how the data moves).  Which layout a directory holds is read from the
 * files themselves (layout_detect), never from a flag.
 *
 * Patterns: '#' stands for a layer index, '@' for an expert index (both
 * decimal); a final '*' stands for any rest of the name. */
#ifndef LAYOUT_H
#define LAYOUT_H
#include <stddef.h>

typedef enum { LAYOUT_HF, LAYOUT_MLX } Layout;

typedef enum {
	/* new name, same data and shape */
	MAP_RENAME,
	/* a depthwise conv stored [C, 1, K] becomes [C, K, 1] (moveaxis 2 -> 1):
	 * the same bytes in the same order, another shape */
	MAP_CONV,
	/* expert @'s [out, in] (a tensor of its own) becomes row block @ of one
	 * [E, out, in] */
	MAP_STACK,
	/* [E, in, 2 * out] split on the last axis: its first half (gate)
	 * transposed to [E, out, in] is `mlx`, its second half (up) `mlx2` */
	MAP_SPLIT_T,
	/* [E, in, out] transposed to [E, out, in] */
	MAP_T,
	/* Kimi's kv_b_proj [H * (nope + v), lora]: per head h, rows
	 * [h * (nope + v), + nope) transposed are embed_q[h] [lora, nope]
	 * (`mlx`); the next v rows are unembed_out[h] [v, lora] (`mlx2`) */
	MAP_KV_B,
	/* not in the MLX layout (mlx-lm's sanitize drops it) */
	MAP_DROP,
} MapKind;

typedef struct {
	const char *hf, *mlx, *mlx2;
	MapKind kind;
} LayoutRule;

/* The rules of a model_type (n = 0 when every name is the same). */
const LayoutRule *layout_rules(const char *arch, int *n);

/* The rule an HF tensor name falls under, or NULL; *layer and *expert get
 * the indices its '#' and '@' matched (-1 when the pattern has none). */
const LayoutRule *layout_match(const char *arch, const char *hf, long *layer,
                               long *expert);

/* The MLX name of an HF tensor name: part 0 is the rule's `mlx`, part 1
 * its `mlx2`.  A stacked expert's name is that of the stack.  A name no
 * rule matches is returned as it is.  Returns 0 when the tensor is
 * dropped (MAP_DROP) or the part does not exist. */
int layout_name(const char *arch, const char *hf, int part, char *out, size_t n);

/* Which layout the checkpoint names (tensor names in `names`, count n)
 * are in: MLX when one of them is an MLX name no HF checkpoint has. */
Layout layout_detect(const char *arch, const char *const *names, long n);
#endif
