/* em.c: what block emitters register with the emitter (see emit.h): the
 * weights a layer binds, the states it carries, the scratch buffers it
 * shares, and how values are printed into C.
 *
 * Nothing from a config or a checkpoint reaches the source as text: names
 * of tensors are built by the compiler from fixed patterns and still go
 * through em_cstr(), numbers are printed from checked values. */
#include "adapter.h"
#include "em.h"
#include "../runtime/rt.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- printing values ---- */

void em_cstr(Buf *b, const char *s)
{
	bput(b, "\"", 1);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
		    || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'
		    || c == '/' || c == '%')
			bput(b, (char *)&c, 1);
		else
			bprintf(b, "\\%03o", c);
	}
	bput(b, "\"", 1);
}

const char *em_num(double v, int is_float)
{
	static char ring[8][48];
	static int k;
	char *s = ring[k++ % 8];
	if (is_float)
		v = (float)v;
	if (v == (long)v && fabs(v) < 1e9)     /* 100.0, not 1e+02 */
		snprintf(s, 40, "%.0f", v);
	else for (int prec = 1; prec <= 17; prec++) {
		snprintf(s, 40, "%.*g", prec, v);
		if (is_float ? strtof(s, NULL) == (float)v : strtod(s, NULL) == v)
			break;
	}
	if (!strpbrk(s, ".eEn"))
		strcat(s, ".0");
	if (is_float)
		strcat(s, "f");
	return s;
}


void em_shape(Buf *b, const Tensor *t)
{
	if (!t->ndim) {
		bprintf(b, "0, 0");
		return;
	}
	bprintf(b, "%d, SHAPE(", t->ndim);
	for (int d = 0; d < t->ndim; d++)
		bprintf(b, "%s%ld", d ? ", " : "", t->shape[d]);
	bprintf(b, ")");
}

/* Tensor name s as a C expression.  In a layer's binding the layer's
 * index in its stack (the number after "...layers.": "model.layers.3.mlp",
 * "model.kv_reuse_layers.0.mlp" of layer 35) is written from the argument
 * i, as i or i - 35, so that one function binds any layer of a kind; a
 * layer whose names hold other numbers there binds apart.  expert: s is a
 * pattern whose one %ld is the expert's index e. */
static void tname(Em *e, Buf *b, const char *s, int expert)
{
	char pat[2 * MAX_TENSOR_NAME], arg[32];
	const char *at = NULL;
	size_t k = 0;
	int pct = 0;
	for (const char *q = s; *q; q++)
		pct += *q == '%';
	if (pct != expert || strlen(s) >= MAX_TENSOR_NAME)
		lm_bug("tensor name '%.100s' is not one lmcc builds", s);
	for (const char *q = strstr(s, "layers."); e->layer >= 0 && q; q = strstr(q + 1, "layers.")) {
		k = strspn(q + 7, "0123456789");
		if (k && k < 10 && (q[7 + k] == '.' || !q[7 + k]) && (q[7] != '0' || k == 1)) {
			at = q + 7;
			break;
		}
	}
	if (at) {
		long d = e->layer - strtol(at, NULL, 10);
		snprintf(pat, sizeof pat, "%.*s%%ld%s", (int)(at - s), s, at + k);
		snprintf(arg, sizeof arg, d ? "i - %ld" : "i", d);
		if (d)
			e->shift = d;
	}
	bprintf(b, at && expert ? "lm_name2(" : at || expert ? "lm_name(" : "");
	em_cstr(b, at ? pat : s);
	if (at)
		bprintf(b, ", %s%s)", arg, expert ? ", e" : "");
	else if (expert)
		bprintf(b, ", e)");
}

void em_layers(Buf *b, const int *list, int n)
{
	bprintf(b, "layer%s ", n > 1 ? "s" : "");
	int step = n > 3 ? list[1] - list[0] : 0;
	for (int i = 2; i < n && step > 1; i++)
		if (list[i] - list[i - 1] != step)
			step = 0;
	if (step > 1) {               /* every step-th: "layers 3, 7, ..., 47" */
		bprintf(b, "%d, %d, ..., %d", list[0], list[1], list[n - 1]);
		return;
	}
	for (int i = 0; i < n;) {
		int j = i;
		while (j + 1 < n && list[j + 1] == list[j] + 1)
			j++;
		bprintf(b, "%s%d", i ? ", " : "", list[i]);
		if (j > i)
			bprintf(b, "%s%d", j > i + 1 ? "-" : ", ", list[j]);
		i = j + 1;
	}
}

/* ---- weights, caches, scratch ---- */

static void name_into(Buf *list, const char *c)
{
	bprintf(list, "%s%s", list->n ? ", " : "", c);
}

/* c.lora (or each expert's, with expert "e") bound to m's adapter; field:
 * the name the adapter note lists. */
static void lora(Em *e, const char *c, const char *field, Mat m, const char *expert)
{
	const Lora *l = adapter_of(e->p, m);
	if (!l)
		return;
	name_into(&e->adapted, field);
	e->parts += l->part >= 0;
	bprintf(&e->bind, "\t%s%s%s.lora = lm_lora_of(ad, %s%s%s, ", *expert ? "\t" : "", c,
	        *expert ? "[e]" : "", c, *expert ? "[e]" : "", "");
	tname(e, &e->bind, l->a, 0);
	bprintf(&e->bind, ", ");
	tname(e, &e->bind, l->b, 0);
	static const char *const how[] = {"LM_LORA_LINEAR", "LM_LORA_T", "LM_LORA_LOOKUP"};
	bprintf(&e->bind, ",\n\t\t%s%d, %s, SHAPE(", *expert ? "\t" : "", l->ndim, how[l->how]);
	for (int d = 0; d < l->ndim; d++)
		bprintf(&e->bind, "%s%ld", d ? ", " : "", l->ashape[d]);
	bprintf(&e->bind, "), SHAPE(");
	for (int d = 0; d < l->ndim; d++)
		bprintf(&e->bind, "%s%ld", d ? ", " : "", l->bshape[d]);
	bprintf(&e->bind, "), ");
	if (l->m[0])
		tname(e, &e->bind, l->m, 0);
	else
		bprintf(&e->bind, "0");
	bprintf(&e->bind, ", %s, %ld, %s, %s);\n", *expert ? expert : "0", l->row0,
	        em_flt(e->p->ad->cfg.scale), l->normed ? "head_scale" : "0");
}

void em_lora(Em *e, const char *c, Mat m)
{
	lora(e, c, c, m, "");
}

const char *em_format(char *buf, int bits, int group, int mode)
{
	if (mode != LM_AFFINE)
		snprintf(buf, 16, "%s", mode == LM_MXFP4 ? "MXFP4" : mode == LM_NVFP4 ? "NVFP4" : "MXFP8");
	else
		snprintf(buf, 16, "Q%dG%d", bits, group);
	return buf;
}

/* A quantized tensor's format, counted; its name for the constants. */
static const char *use_format(Em *e, const Tensor *t, long mats, char *buf)
{
	int i;
	for (i = 0; i < e->nfmt && (e->fmt[i].bits != t->bits || e->fmt[i].group != t->group
	                            || e->fmt[i].mode != t->mode); i++)
		;
	if (i == e->nfmt) {
		if (i == MAX_FORMATS)
			lm_bug("more than %d quantized formats", MAX_FORMATS);
		e->fmt[e->nfmt++] = (typeof(e->fmt[0])){t->bits, t->group, t->mode, 0};
	}
	e->fmt[i].mats += mats;
	return em_format(buf, t->bits, t->group, t->mode);
}

/* The module path of a quantized "<path>.weight" tensor (or pattern), as
 * tname() writes it. */
static void module_path(Em *e, Buf *b, const char *weight, int expert)
{
	char path[MAX_TENSOR_NAME];
	snprintf(path, sizeof path, "%.*s", (int)(strlen(weight) - 7), weight);
	tname(e, b, path, expert);
}

/* A quantized view is whole rows of its [..., out, in] tensor. */
static void check_rows(const Tensor *t, const Mat *m)
{
	long in = t->shape[t->ndim - 1];
	if (m->tr || m->cols != in || m->ld != in || m->off % in)
		lm_fail(NULL, "tensor '%s' is quantized, but lmcc reads it as a view that is not whole "
		        "rows of [out, in] (a layout mlx-lm does not write)", t->name);
}

static void experts_lora(Em *e, const char *c, const char *field, const MatArr *a)
{
	if (adapter_of(e->p, a->m0)) {
		bprintf(&e->bind, "\tfor (long e = 0; e < %d; e++)\n", a->n);
		lora(e, c, field, a->m0, "e");
	}
}

/* lm_ck_mat's tr, by name. */
#define TR(tr) ((tr) ? "LM_IN_OUT" : "LM_OUT_IN")

/* Weight c (a global, or "lN.field" of a layer) bound to view m; field:
 * the name it is declared and listed by. */
static void bind_mat(Em *e, const char *c, const char *field, Mat m)
{
	const Tensor *t = &e->p->t[m.t];
	name_into(&e->mats, field);
	if (t->bits) {
		char f[16];
		check_rows(t, &m);
		use_format(e, t, 1, f);
		bprintf(&e->packed, "%s %s\n", f, field);
		bprintf(&e->bind, "\t%s = lm_ck_qmat(ck, ", c);
		module_path(e, &e->bind, t->name, 0);
		bprintf(&e->bind, ", ");
		em_shape(&e->bind, t);
		bprintf(&e->bind, ", %ld, %ld, %ld, %s_BITS, %s_GROUP, %s_MODE);\n", m.off, m.rows,
		        m.cols, f, f, f);
		lora(e, c, field, m, "");
		return;
	}
	bprintf(&e->bind, "\t%s = lm_ck_mat(ck, ", c);
	tname(e, &e->bind, t->name, 0);
	bprintf(&e->bind, ", ");
	em_shape(&e->bind, t);
	bprintf(&e->bind, ", %ld, %s, %ld, %ld, %ld);\n", m.off, TR(m.tr), m.rows, m.cols, m.ld);
	lora(e, c, field, m, "");
}

void em_mat(Em *e, const char *c, Mat m)
{
	bind_mat(e, c, c, m);
}

/* One matrix per expert, field[e] of layer P. */
static void bind_matarr(Em *e, const char *c, const char *field, const MatArr *a)
{
	const Tensor *t = &e->p->t[a->m0.t];
	const Mat *m = &a->m0;
	bprintf(&e->decl, "\tlm_mat %s[%d];\n", field, a->n);
	if (t->bits) {
		char f[16];
		check_rows(t, m);
		/* experts of their own tensors follow each other in the plan */
		for (int i = a->m0.t; a->pattern[0] && i < a->m0.t + a->n; i++)
			if (e->p->t[i].bits != t->bits || e->p->t[i].group != t->group
			    || e->p->t[i].mode != t->mode)
				lm_fail(NULL, "tensor '%s': the experts of one stack are quantized in more "
				        "than one format", e->p->t[i].name);
		use_format(e, t, a->n, f);
		bprintf(&e->packed, "%s %s[]\n", f, field);
		bprintf(&e->bind, "\tfor (long e = 0; e < %d; e++)\n\t\t%s[e] = lm_ck_qmat(ck, ", a->n, c);
		if (a->pattern[0]) {
			module_path(e, &e->bind, a->pattern, 1);
			bprintf(&e->bind, ", ");
			em_shape(&e->bind, t);
			bprintf(&e->bind, ",\n\t\t                  %ld, ", m->off);
		} else {
			module_path(e, &e->bind, t->name, 0);
			bprintf(&e->bind, ", ");
			em_shape(&e->bind, t);
			bprintf(&e->bind, ",\n\t\t                  %ld + e * %ld, ", m->off, a->stride);
		}
		bprintf(&e->bind, "%ld, %ld, %s_BITS, %s_GROUP, %s_MODE);\n", m->rows, m->cols, f, f, f);
		experts_lora(e, c, field, a);
		return;
	}
	bprintf(&e->bind, "\tfor (long e = 0; e < %d; e++)\n\t\t%s[e] = lm_ck_mat(ck, ", a->n, c);
	if (a->pattern[0]) {
		tname(e, &e->bind, a->pattern, 1);
		bprintf(&e->bind, ", ");
		em_shape(&e->bind, t);
		bprintf(&e->bind, ",\n\t\t                  %ld, %s, %ld, %ld, %ld);\n",
		        m->off, TR(m->tr), m->rows, m->cols, m->ld);
	} else {
		tname(e, &e->bind, t->name, 0);
		bprintf(&e->bind, ", ");
		em_shape(&e->bind, t);
		bprintf(&e->bind, ",\n\t\t                  %ld + e * %ld, %s, %ld, %ld, %ld);\n",
		        m->off, a->stride, TR(m->tr), m->rows, m->cols, m->ld);
	}
	experts_lora(e, c, field, a);
}

/* The constant naming the offset field's weights are stored relative to
 * ("MIX_POST_NORM_OFFSET"), or the literal when the field's layers differ. */
static const char *offset(Em *e, const char *field, double add)
{
	char name[64];
	int i, k = 0;
	for (const char *c = field; *c && k < 48; c++)
		name[k++] = *c >= 'a' && *c <= 'z' ? *c - 'a' + 'A' : *c;
	snprintf(name + k, sizeof name - k, "_OFFSET");
	for (i = 0; i < e->noff && strcmp(e->off[i].name, name); i++)
		;
	if (i == e->noff) {
		if (i == MAX_OFFSETS)
			return em_flt(add);
		snprintf(e->off[i].name, sizeof e->off[i].name, "%s", name);
		e->off[e->noff++].add = add;
	}
	return (float)e->off[i].add == (float)add ? e->off[i].name : em_flt(add);
}

void em_vec_expr(Em *e, const char *field, Vec v)
{
	const Tensor *t = &e->p->t[v.t];
	if (t->bits)
		lm_fail(NULL, "tensor '%s' is quantized, but it is a vector lmcc reads as floats", t->name);
	bprintf(&e->bind, "lm_ck_vec(ck, ");
	tname(e, &e->bind, t->name, 0);
	bprintf(&e->bind, ", ");
	em_shape(&e->bind, t);
	bprintf(&e->bind, ", %s)", v.add ? offset(e, field, v.add) : em_flt(0));
}

void em_decl_vec(Em *e, const char *name)
{
	name_into(&e->vecs, name);
}

void em_vec(Em *e, const char *c, Vec v)
{
	name_into(&e->vecs, c);
	bprintf(&e->bind, "\t%s = ", c);
	em_vec_expr(e, c, v);
	bprintf(&e->bind, ";\n");
}

/* "L->name", the C name of a layer's field in its kind's binding (c of
 * 64). */
static const char *field_of(char *c, const char *name)
{
	snprintf(c, 64, "L->%s", name);
	return c;
}

void em_pmat(Em *e, const char *name, Mat m)
{
	char c[64];
	bind_mat(e, field_of(c, name), name, m);
}

void em_pvec(Em *e, const char *name, Vec v)
{
	char c[64];
	name_into(&e->vecs, name);
	bprintf(&e->bind, "\t%s = ", field_of(c, name));
	em_vec_expr(e, name, v);
	bprintf(&e->bind, ";\n");
}

void em_pscalar(Em *e, const char *name, Vec v)
{
	char c[64];
	name_into(&e->scalars, name);
	bprintf(&e->bind, "\t%s = ", field_of(c, name));
	em_vec_expr(e, name, v);
	bprintf(&e->bind, "[0];\n");
}

void em_pmatarr(Em *e, const char *name, const MatArr *a)
{
	char c[64];
	bind_matarr(e, field_of(c, name), name, a);
}

void em_state(Em *e, const char *name, long count, const char *what)
{
	bprintf(&e->decl, "\tfloat *%s;   /* %s */\n", name, what);
	bprintf(&e->alloc, "\tlm_state_floats(&state, &L->%s, %ld);\n", name, count);
}

void em_kv(Em *e, const char *kind, const char *cap, long kdim, long vdim)
{
	bprintf(&e->decl, "\tlm_kv kv;\n");
	bprintf(&e->alloc, "\tlm_state_kv(&state, &L->kv);\n");
	bprintf(&e->alloc, "\tlm_kv_init(&L->kv, %s, %s, %ld, %ld);\n", kind, cap, kdim, vdim);
}

static void scratch(Em *e, const char *name, long width, const char *what, int ints)
{
	int i;
	for (i = 0; i < e->nscratch && strcmp(e->scratch[i].name, name); i++)
		;
	if (i == e->nscratch) {
		if (i == MAX_SCRATCH)
			lm_bug("more than %d scratch buffers", MAX_SCRATCH);
		snprintf(e->scratch[i].name, sizeof e->scratch[i].name, "%s", name);
		snprintf(e->scratch[i].what, sizeof e->scratch[i].what, "%s", what);
		e->scratch[i].ints = ints;
		e->nscratch++;
	}
	if (width > e->scratch[i].width)
		e->scratch[i].width = width;
}

void em_scratch(Em *e, const char *name, long width, const char *what)
{
	scratch(e, name, width, what, 0);
}

void em_scratch_ints(Em *e, const char *name, long width, const char *what)
{
	scratch(e, name, width, what, 1);
}

/* "LEAD TYPE Pa, Pb, Pc;" (P: "*" for pointers) wrapped at 76
 * columns; the list is empty again. */
void em_declare(Buf *out, const char *lead, const char *type, const char *ptr, Buf *list)
{
	if (!list->n)
		return;
	char *names = bdone(list);
	bprintf(out, "%s%s ", lead, type);
	size_t col = strlen(type) + (*lead == '\t' ? 9 : strlen(lead) + 1);
	int first = 1;
	for (char *s = strtok(names, ", "); s; s = strtok(NULL, ", ")) {
		size_t n = strlen(ptr) + strlen(s);
		if (!first && col + n + 2 > 76) {
			bprintf(out, ",\n\t%s", *lead == '\t' ? "\t" : "");
			col = *lead == '\t' ? 16 : 8;
		} else if (!first) {
			bprintf(out, ", ");
			col += 2;
		}
		bprintf(out, "%s%s", ptr, s);
		col += n;
		first = 0;
	}
	bprintf(out, ";\n");
	free(names);
}
