/* em.h: the emitter's registry, shared by its files (emit*.c, em.c).
 *
 * emit.c writes the frame of model.c: the head, each kind of layer (a
 * struct, its instances and its function), create(), forward() and the
 * entry points.  Each kind of block has an emitter of its own
 * (emit_attn.c, emit_mlp.c, ...) that renders its template and registers
 * the weights, caches and scratch buffers it needs through the em_
 * functions below (em.c); emit_overview.c writes the opening comment. */
#ifndef EM_H
#define EM_H
#include "emit.h"
#include "tmpl.h"

enum { MAX_SCRATCH = 32, MAX_FORMATS = 16, MAX_OFFSETS = 16 };

typedef struct {
	const Plan *p;
	int layer;                /* the layer being rendered; -1: the embedding, head */
	long shift;               /* its index less its tensors' (their own stack's) */
	Buf mats, vecs, scalars;  /* names the current layer declares, by type */
	Buf decl;                 /* its other declarations (caches, states) */
	Buf bind, alloc;          /* the layer's (or create()'s) binding and
	                           * allocations */
	struct { char name[16], what[80]; long width; int ints; } scratch[MAX_SCRATCH];
	int nscratch;
	Buf adapted;              /* the current layer's weights with an adapter */
	int parts;                /* ... of which parts of a fused module */
	int explained;            /* the adapter's comment is written */
	int bound;                /* a binding function (and its comment) is written */
	/* the quantized formats bound so far, and the current layer's packed
	 * products, "FORMAT name" each */
	struct { int bits, group, mode; long mats; } fmt[MAX_FORMATS];
	int nfmt;
	Buf packed;
	struct { char name[64]; double add; } off[MAX_OFFSETS];   /* norm weight offsets */
	int noff;
} Em;

/* The constants naming a quantized format in generated code: Q4G64_BITS,
 * Q4G64_GROUP, Q4G64_MODE, or MXFP4_... (buf of at least 16). */
const char *em_format(char *buf, int bits, int group, int mode);

/* A global weight c, bound to its view in create(). */
void em_mat(Em *e, const char *c, Mat m);           /* static lm_mat c */
/* c.lora bound to m's adapter, if it has one (em_mat does it for its view). */
void em_lora(Em *e, const char *c, Mat m);
void em_vec(Em *e, const char *c, Vec v);           /* static const float *c */
/* A field `name` of the current layer's struct, bound as L->name in its
 * kind's binding: a matrix, a vector, a scalar, one matrix per expert
 * (lm_mat name[a->n]). */
void em_pmat(Em *e, const char *name, Mat m);
void em_pvec(Em *e, const char *name, Vec v);
void em_pscalar(Em *e, const char *name, Vec v);
void em_pmatarr(Em *e, const char *name, const MatArr *a);
/* A float state L->name of count floats the current layer carries across
 * calls: allocated and registered as state by its binding (lm_state_floats);
 * `what` is its comment. */
void em_state(Em *e, const char *name, long count, const char *what);
/* The K/V cache L->kv of the current layer (kind: LM_KV_..., cap: a C
 * expression in ctx): declared, initialised by its binding, registered as
 * state. */
void em_kv(Em *e, const char *kind, const char *cap, long kdim, long vdim);
/* Only declare the vector field `name`; the caller writes its binding. */
void em_decl_vec(Em *e, const char *name);
/* The expression lm_ck_vec(ck, ...) for v, appended to create()'s body;
 * an offset v.add is named after field (MIX_NORM_OFFSET). */
void em_vec_expr(Em *e, const char *field, Vec v);
/* A scratch buffer `name` of [MAXB, width] floats, shared by all layers
 * (the widest request wins). */
void em_scratch(Em *e, const char *name, long width, const char *what);
void em_scratch_ints(Em *e, const char *name, long width, const char *what);

/* Printing values into C: the shortest literal that reads back to the
 * same float (is_float, with suffix f) or double, from a ring of buffers
 * (valid for a few calls); em_flt for the floats most arguments are; and
 * an escaped string literal. */
const char *em_num(double v, int is_float);
#define em_flt(v) em_num(v, 1)
void em_cstr(Buf *b, const char *s);
/* "NDIM, SHAPE(a, b, ...)" of a tensor, the arguments lm_ck_* take. */
void em_shape(Buf *b, const Tensor *t);
/* "LEAD TYPE Pa, Pb;" for the names in list (P: "*" for pointers; LEAD:
 * "static " or "\t" for a struct's fields), wrapped at 76 columns; the
 * list is emptied. */
void em_declare(Buf *out, const char *lead, const char *type, const char *ptr, Buf *list);

/* Block emitters: append the block's code to body.  Every block reads xn
 * and leaves its output in y. */
void emit_attention(Em *e, Buf *body, const Attn *a);
void emit_mlp(Em *e, Buf *body, const Mlp *m);
void emit_moe(Em *e, Buf *body, const Moe *m);
void emit_mamba(Em *e, Buf *body, const Mamba *m);
void emit_mla(Em *e, Buf *body, const Mla *m);
void emit_kda(Em *e, Buf *body, const Kda *k);
/* The opening comment's text, from the plan (emit_overview.c). */
void emit_overview(const Plan *p, Buf *out);

/* Layer numbers as ranges: "layer 3", "layers 0-2, 5". */
void em_layers(Buf *b, const int *list, int n);
#endif
