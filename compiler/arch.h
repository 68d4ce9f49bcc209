/* arch.h: the config readers, one per model_type, and what they share. */
#ifndef ARCH_H
#define ARCH_H
#include "cfg.h"
#include "plan.h"

void read_afm7(Cfg *c, Plan *p);
void read_baichuan_m1(Cfg *c, Plan *p);
void read_llama4(Cfg *c, Plan *p);
void read_plamo2(Cfg *c, Plan *p);
void read_kimi_linear(Cfg *c, Plan *p);

/* The plan's sizes, its L zeroed layers and the embedding matrix
 * [V, D] named embed. */
void plan_begin(Plan *p, long V, long D, int L, const char *embed);
/* Layer i, whose tensors are made next. */
Layer *layer_begin(Plan *p, int i);
/* gate_proj, up_proj, down_proj under prefix: a SwiGLU of width inter. */
/* An attention block with nothing bound yet: every optional tensor
 * absent, its own K/V, no rotation, scale hd^-0.5.  Readers then set
 * what their model has. */
void attn_begin(Attn *a, long heads, long kv_heads, long hd);
Mlp mlp_swiglu(Plan *p, long dim, long inter, const char *prefix);
int t_scalar(Plan *p, double lo, double hi, const char *name);
/* A depthwise conv [C, 1, K], or [C, K, 1] when the checkpoint has MLX's
 * axes; fan-in K either way. */
int t_conv(Plan *p, long C, long K, const char *name);
#endif
