/* adapter.h: a LoRA/DoRA adapter directory, as mlx-lm writes it, laid onto
 * a plan (adapter.c).
 *
 * Each adapted product (a Mat, or the m0 of a MatArr) gets lora = 1 + the
 * index of its Lora here: the adapter tensors that belong to it and where
 * its rows sit in the module the reference wraps.  Nothing else in the plan
 * changes: the weight keeps its own view and format. */
#ifndef ADAPTER_H
#define ADAPTER_H
#include "plan.h"
#include "../runtime/lmcc.h"

typedef struct {
	char module[MAX_TENSOR_NAME];        /* mlx-lm's module path */
	char a[MAX_TENSOR_NAME + 24], b[MAX_TENSOR_NAME + 24];   /* + ".lora_a." and an int */
	char m[MAX_TENSOR_NAME + 16];        /* DoRA's magnitude, or "" */
	int ndim;                            /* 2, or 3: a stack of experts */
	int how;                             /* LM_LORA_LINEAR, _T or _LOOKUP (lmcc.h) */
	long ashape[3], bshape[3];
	long mlen;                           /* DoRA's m: one per row of the module */
	int normed;                          /* the head's rows are scaled by head_scale */
	long row0;                           /* the product's first row in the module */
	int part;                            /* AFM-7's fused qkv: 0, 1, 2; else -1 */
	int layer;                           /* -1: the head, -2: the embedding */
	long bytes;                          /* float32 bytes one token reads */
} Lora;

typedef struct Adapter {
	char *dir;                           /* the directory, absolute */
	lm_adapter cfg;
	Lora *l;
	int n;
	long per_token;                      /* bytes of adapter a token reads */
} Adapter;

/* Read DIR's adapter for plan p and mark its products; bad input of any
 * kind is exit 2 naming the adapter's file and tensor, before anything is
 * marked. */
void adapter_read(Plan *p, const char *dir);
void adapter_free(Plan *p);
/* The adapted modules per layer, with rank and scale, and the bytes. */
void adapter_print(const Plan *p, FILE *f, const char *prefix);
/* fn on each adapted product: its view, its stack of experts (m is its
 * m0) or NULL, and its Lora. */
void adapter_each(Plan *p, void (*fn)(void *ctx, const Mat *m, const MatArr *arr,
                                       const Lora *l), void *ctx);
/* The Lora of an adapted product, or NULL. */
const Lora *adapter_of(const Plan *p, Mat m);
#endif
