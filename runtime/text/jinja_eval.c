/* jinja_eval.c: runs the syntax tree: expressions, then statements that
 * write the output.
 *
 * Scopes follow Jinja2: a for loop's body has its own scope (what it sets
 * is gone after the loop; namespaces exist to get around that), an if does
 * not; a macro runs in a scope of its parameters above the template's top
 * level. */
#include "jinja_int.h"

#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct jscope {
	jdict *vars;
	jscope *parent;
};

enum { FLOW_NORMAL, FLOW_BREAK, FLOW_CONTINUE };

void jx_fail(jctx *x, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	lm_fail(x->name, "line %d: %s", x->line, msg);
}

static jscope *push_scope(jctx *x)
{
	jscope *s = ja_alloc(x->a, sizeof *s);
	s->vars = ja_alloc(x->a, sizeof *s->vars);
	s->parent = x->scope;
	x->scope = s;
	return s;
}

/* NAME lives as long as the render (the tree's names, or literals): it
 * is the key itself, so that setting a variable in a loop costs nothing. */
static void set_var(jctx *x, const char *name, jv v)
{
	jd_set(x->a, x->scope->vars, jv_lit(name), v);
}

static jv lookup(jctx *x, const char *name)
{
	jscope *s;
	jv key = jv_lit(name), v;
	for (s = x->scope; s; s = s->parent)
		if (jd_get(x->a, s->vars, key, &v))
			return v;
	if (jx_global(name, &v))
		return v;
	return jx_missing(x, "'%s'", name);
}

/* ---- expressions ---- */

static int n_pos(jnode *e) { return e->n - e->nkw; }

/* Evaluates the arguments kid[from..] of E. */
static jv *eval_args(jctx *x, jnode *e, int from)
{
	jv *args = ja_alloc(x->a, (e->n + 1) * sizeof *args);
	int i;
	for (i = from; i < e->n; i++)
		args[i - from] = jx_eval(x, e->kid[i]);
	return args;
}

static void render(jctx *x, jnode *b, tok_buf *out, int *flow);

static jv call_macro(jctx *x, jnode *m, jnode *call, jv *args)
{
	jscope *saved = x->scope, *top = x->scope;
	int npos = n_pos(call), i, j, flow = FLOW_NORMAL, line = x->line;
	tok_buf *out = ja_buf(x->a);
	while (top->parent && top->parent->parent)
		top = top->parent;        /* the template's top level */
	if (npos > m->nkw)
		jx_fail(x, "macro '%s' takes %d arguments, %d given", m->name, m->nkw, npos);
	x->scope = top;
	push_scope(x);
	for (i = 0; i < m->nkw; i++) {
		jv v = jv_undef(m->kw[i]);
		int given = 0;
		if (i < npos) {
			v = args[i];
			given = 1;
		}
		for (j = 0; j < call->nkw; j++) {
			if (strcmp(call->kw[j], m->kw[i]) == 0) {
				v = args[npos + j];
				given = 1;
			}
		}
		if (!given && m->kid[i])
			v = jx_eval(x, m->kid[i]);
		set_var(x, m->kw[i], v);
	}
	for (j = 0; j < call->nkw; j++) {
		for (i = 0; i < m->nkw && strcmp(call->kw[j], m->kw[i]); i++)
			;
		if (i == m->nkw)
			jx_fail(x, "macro '%s' has no parameter '%s'", m->name, call->kw[j]);
	}
	ja_enter(x->a);
	render(x, m->a, out, &flow);
	ja_leave(x->a);
	x->scope = saved;
	x->line = line;
	return jv_built(x->a, out);
}

static jv eval(jctx *x, jnode *e);

jv jx_eval(jctx *x, jnode *e)
{
	jv v;
	x->line = e->line;
	ja_step(x->a, 1);
	ja_enter(x->a);
	v = eval(x, e);
	ja_leave(x->a);
	return v;
}

static jv eval(jctx *x, jnode *e)
{
	jv a, b, *args;
	int i;
	switch (e->kind) {
	case E_LIT:
		return e->lit;
	case E_NAME:
		return lookup(x, e->name);
	case E_ATTR:
		a = jx_eval(x, e->a);
		x->line = e->line;
		return jx_getattr(x, a, e->name);
	case E_ITEM:
		a = jx_eval(x, e->a);
		b = jx_eval(x, e->b);
		x->line = e->line;
		return jx_getitem(x, a, b);
	case E_SLICE: {
		jv s[3] = { jv_none(), jv_none(), jv_none() };
		a = jx_eval(x, e->a);
		if (e->b)
			s[0] = jx_eval(x, e->b);
		if (e->c)
			s[1] = jx_eval(x, e->c);
		if (e->n && e->kid[0])
			s[2] = jx_eval(x, e->kid[0]);
		x->line = e->line;
		return jx_slice(x, a, s[0], s[1], s[2]);
	}
	case E_CALL:
		a = jx_eval(x, e->a);
		args = eval_args(x, e, 0);
		x->line = e->line;
		if (a.t == JV_MACRO)
			return call_macro(x, a.macro, e, args);
		if (a.t == JV_FUNC || a.t == JV_METHOD)
			return jx_call_builtin(x, a, args, n_pos(e), e->kw, e->nkw);
		if (a.t == JV_UNDEF)
			jx_fail(x, "%s is undefined (calling it)", jv_undef_name(a));
		jx_fail(x, "a %s is not callable", jv_type_name(a));
	case E_FILTER:
		args = eval_args(x, e, 0);
		x->line = e->line;
		return jx_filter(x, e->name, args[0], args + 1, n_pos(e) - 1, e->kw, e->nkw);
	case E_TEST:
		if (!jx_is_test(e->name))
			jx_fail(x, "the test '%s' is not supported", e->name);
		args = eval_args(x, e, 0);
		x->line = e->line;
		i = jx_test(x, e->name, args[0], args + 1, n_pos(e) - 1);
		return jv_bool(e->negate ? !i : i);
	case E_NOT:
		return jv_bool(!jv_truthy(jx_eval(x, e->a)));
	case E_NEG:
		a = jx_eval(x, e->a);
		x->line = e->line;
		return jx_binop(x, "-", jv_int(0), a);
	case E_BIN:
		a = jx_eval(x, e->a);
		b = jx_eval(x, e->b);
		x->line = e->line;
		if (strcmp(e->name, "in") == 0)
			return jv_bool(jx_contains(x, b, a));
		if (strcmp(e->name, "not in") == 0)
			return jv_bool(!jx_contains(x, b, a));
		return jx_binop(x, e->name, a, b);
	case E_AND:
		a = jx_eval(x, e->a);
		return jv_truthy(a) ? jx_eval(x, e->b) : a;
	case E_OR:
		a = jx_eval(x, e->a);
		return jv_truthy(a) ? a : jx_eval(x, e->b);
	case E_COND:
		if (jv_truthy(jx_eval(x, e->a)))
			return jx_eval(x, e->b);
		return e->c ? jx_eval(x, e->c) : jv_undef(NULL);
	case E_LIST:
		a = jv_list(x->a);
		a.l->tuple = e->tuple;
		for (i = 0; i < e->n; i++)
			jl_push(x->a, a.l, jx_eval(x, e->kid[i]));
		return a;
	case E_DICT:
		a = jv_dict(x->a);
		for (i = 0; i + 1 < e->n; i += 2) {
			jv k = jx_eval(x, e->kid[i]);
			jd_set(x->a, a.d, k, jx_eval(x, e->kid[i + 1]));
		}
		return a;
	}
	jx_fail(x, "unknown expression %d", e->kind);
}

/* ---- statements ---- */

/* As in Jinja2, one loop object whose attributes change as it goes: a
 * loop of a million turns must not allocate a million of them. */
static void loop_var(jctx *x, jv loop, jlist *items, int i)
{
	int n = items->n;
#define LOOP_SET(k, v) jd_set(x->a, loop.d, jv_lit(k), v)
	LOOP_SET("index", jv_int(i + 1));
	LOOP_SET("index0", jv_int(i));
	LOOP_SET("revindex", jv_int(n - i));
	LOOP_SET("revindex0", jv_int(n - i - 1));
	LOOP_SET("first", jv_bool(i == 0));
	LOOP_SET("last", jv_bool(i == n - 1));
	LOOP_SET("length", jv_int(n));
	LOOP_SET("previtem", i > 0 ? items->v[i - 1] : jv_undef("previtem"));
	LOOP_SET("nextitem", i + 1 < n ? items->v[i + 1] : jv_undef("nextitem"));
#undef LOOP_SET
}

static void run_for(jctx *x, jnode *e, tok_buf *out)
{
	jv seq = jx_iterable(x, jx_eval(x, e->a));
	jlist *items = seq.l;
	jscope *saved = x->scope;
	jv loop = jv_dict(x->a);
	int i, flow;
	if (e->n) {   /* {% for x in xs if cond %}: filter first, loop.* count what is left */
		jv kept = jv_list(x->a);
		push_scope(x);
		for (i = 0; i < items->n; i++) {
			set_var(x, e->name, items->v[i]);
			if (jv_truthy(jx_eval(x, e->kid[0])))
				jl_push(x->a, kept.l, items->v[i]);
		}
		x->scope = saved;
		items = kept.l;
	}
	push_scope(x);
	set_var(x, "loop", loop);
	for (i = 0; i < items->n; i++) {
		jv it = items->v[i];
		if (e->name2) {
			if (it.t != JV_LIST || it.l->n != 2)
				jx_fail(x, "cannot unpack a %s into two loop variables", jv_type_name(it));
			set_var(x, e->name, it.l->v[0]);
			set_var(x, e->name2, it.l->v[1]);
		} else {
			set_var(x, e->name, it);
		}
		loop_var(x, loop, items, i);
		flow = FLOW_NORMAL;
		render(x, e->b, out, &flow);
		if (flow == FLOW_BREAK)
			break;
	}
	x->scope = saved;
	if (items->n == 0 && e->c) {
		flow = FLOW_NORMAL;
		render(x, e->c, out, &flow);
	}
}

static void run_set(jctx *x, jnode *e, jv v)
{
	if (e->name2) {
		jv ns = lookup(x, e->name);
		if (ns.t != JV_NS)
			jx_fail(x, "cannot set the attribute '%s' of a %s (only of a namespace)",
				e->name2, jv_type_name(ns));
		jd_set(x->a, ns.d, jv_lit(e->name2), v);
	} else {
		set_var(x, e->name, v);
	}
}

static void render(jctx *x, jnode *b, tok_buf *out, int *flow)
{
	int i;
	ja_enter(x->a);
	for (i = 0; i < b->n && *flow == FLOW_NORMAL; i++) {
		jnode *e = b->kid[i];
		x->line = e->line;
		ja_step(x->a, 1);
		ja_room(x->a, out->n, 0);
		switch (e->kind) {
		case S_TEXT:
			buf_put(out, e->lit.s.p, e->lit.s.n);
			break;
		case S_OUT:
			jv_print(x, out, jx_eval(x, e->a));
			break;
		case S_IF:
			if (jv_truthy(jx_eval(x, e->a)))
				render(x, e->b, out, flow);
			else if (e->c && e->c->kind == S_IF) {
				jnode one = { .kind = S_BODY, .kid = &e->c, .n = 1 };
				render(x, &one, out, flow);
			} else if (e->c)
				render(x, e->c, out, flow);
			break;
		case S_FOR:
			run_for(x, e, out);
			break;
		case S_SET:
			run_set(x, e, jx_eval(x, e->a));
			break;
		case S_SETBLOCK: {
			tok_buf *sub = ja_buf(x->a);
			int f = FLOW_NORMAL;
			render(x, e->a, sub, &f);
			run_set(x, e, jv_built(x->a, sub));
			break;
		}
		case S_MACRO: {
			jv m = { .t = JV_MACRO, .macro = e };
			set_var(x, e->name, m);
			break;
		}
		case S_BREAK:
			*flow = FLOW_BREAK;
			break;
		case S_CONTINUE:
			*flow = FLOW_CONTINUE;
			break;
		case S_BODY:
			render(x, e, out, flow);
			break;
		default:
			jx_fail(x, "unknown statement %d", e->kind);
		}
	}
	ja_leave(x->a);
}

char *lm_jinja_render(const char *name, const char *src, struct json_object *ctx)
{
	return lm_jinja_render_limited(name, src, ctx, LM_JINJA_MAX_BYTES, LM_JINJA_MAX_STEPS);
}

char *lm_jinja_render_limited(const char *name, const char *src, struct json_object *ctx,
			      size_t max_bytes, long long max_steps)
{
	/* on the heap, so that it outlives a failure's longjmp unchanged */
	jarena *a = lm_alloc(sizeof *a);
	lm_err err;
	if (lm_catch(&err)) {   /* free all the render had, then fail as it did */
		ja_free(a);
		free(a);
		lm_err_raise(&err);
	}
	a->name = name;
	a->max_bytes = max_bytes;
	a->max_steps = max_steps;
	jctx x = { a, name, NULL, 0 };
	jnode *root = jinja_parse(a, name, src);
	jv globals = jv_from_json(a, ctx);
	tok_buf *out = ja_buf(a);
	int flow = FLOW_NORMAL;
	if (globals.t != JV_DICT)
		lm_bug("template context is not an object");
	push_scope(&x);
	x.scope->vars = globals.d;
	push_scope(&x);        /* the template's own top level */
	render(&x, root, out, &flow);
	if (flow != FLOW_NORMAL)
		jx_fail(&x, "break or continue outside a loop");
	ja_room(a, out->n, 0);
	char *text = buf_cstr(out);
	out->p = NULL;         /* the caller's now */
	lm_err_pop(&err);
	ja_free(a);
	free(a);
	return text;
}
