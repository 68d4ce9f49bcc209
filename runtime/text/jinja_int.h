/* jinja_int.h: what the template interpreter's files share: values, the
 * syntax tree, and the arena everything of one render lives in. */
#ifndef LM_JINJA_INT_H
#define LM_JINJA_INT_H

#include "jinja.h"
#include "rt.h"
#include "tok_int.h"   /* tok_buf */

#include <stddef.h>

/* ---- arena: freed all at once when the render ends.  It also keeps the
 * render's budget, since a template is as untrusted as the weights: the
 * bytes allocated, the steps taken (expressions, statements, elements
 * walked by comparisons and printing, keys scanned) and the depth of
 * recursion.  Past a limit the render fails naming the template. ---- */
typedef struct jblock jblock;
typedef struct jheld jheld;
typedef struct {
	jblock *head;
	jheld *held, *spare;       /* ja_buf's buffers: in use, free for reuse */
	const char *name;          /* the template */
	size_t bytes, max_bytes;   /* also bounds every string built */
	long long steps, max_steps;
	int depth;
} jarena;
enum { JINJA_MAX_NEST = 200, JINJA_MAX_DEPTH = 1000 };
void *ja_alloc(jarena *a, size_t n);
void ja_free(jarena *a);
void ja_step(jarena *a, long long n);
void ja_enter(jarena *a);      /* one level deeper; ja_leave on return */
static inline void ja_leave(jarena *a) { a->depth--; }
void ja_room(jarena *a, size_t have, size_t more);   /* a string may grow by MORE */
/* A string being built on the heap (a tok_buf grows by realloc): ja_free
 * frees it too, so a render that fails half way leaks nothing (the server
 * and the C API catch the failure and go on).  ja_unbuf frees it now. */
tok_buf *ja_buf(jarena *a);
void ja_unbuf(jarena *a, tok_buf *b);

/* ---- values ---- */
enum {
	JV_UNDEF, JV_NONE, JV_BOOL, JV_INT, JV_FLOAT, JV_STR,
	JV_LIST, JV_DICT, JV_NS, JV_MACRO, JV_FUNC, JV_METHOD,
};
typedef struct jv jv;
typedef struct jlist jlist;
typedef struct jdict jdict;
typedef struct jnode jnode;
typedef struct jmethod jmethod;
struct jv {
	int t;
	union {
		int b;
		long long i;
		double f;
		struct { const char *p; size_t n; } s;   /* JV_STR; JV_UNDEF: its name */
		jlist *l;
		jdict *d;          /* JV_DICT, JV_NS */
		jnode *macro;
		int fn;            /* JV_FUNC: a global function */
		jmethod *m;
	};
};
struct jlist { int n, cap, tuple; jv *v; };   /* tuple: prints as (a, b) */
struct jdict { int n, cap; jv *k, *v; };   /* keeps insertion order */
struct jmethod { jv self; const char *name; };

enum { FN_RAISE, FN_RANGE, FN_NAMESPACE, FN_DICT, FN_STRFTIME };

/* ---- syntax tree ---- */
enum {
	/* expressions */
	E_LIT, E_NAME, E_ATTR, E_ITEM, E_SLICE, E_CALL, E_FILTER, E_TEST,
	E_NOT, E_NEG, E_BIN, E_AND, E_OR, E_COND, E_LIST, E_DICT,
	/* statements */
	S_BODY, S_TEXT, S_OUT, S_IF, S_FOR, S_SET, S_SETBLOCK, S_MACRO,
	S_BREAK, S_CONTINUE,
};
struct jnode {
	int kind, line;
	const char *name;   /* E_NAME, E_ATTR, E_FILTER, E_TEST, E_BIN op, S_SET target... */
	const char *name2;  /* S_FOR second target, S_SET namespace attribute */
	jv lit;             /* E_LIT, S_TEXT */
	jnode *a, *b, *c;   /* operands; S_IF: cond, then, else; S_FOR: iter, body, else */
	jnode **kid;        /* arguments, items, statements, dict keys/values */
	int n;
	const char **kw;    /* keyword arguments: kw[i] names kid[npos + i] */
	int nkw;
	int negate;         /* E_TEST: "is not" */
	int tuple;          /* E_LIST: a tuple literal */
};

/* jinja.c: source -> tree */
jnode *jinja_parse(jarena *a, const char *name, const char *src);

/* jinja_eval.c: the evaluation context */
typedef struct jscope jscope;
typedef struct {
	jarena *a;
	const char *name;
	jscope *scope;
	int line;          /* for messages */
} jctx;
void jx_fail(jctx *x, const char *fmt, ...) __attribute__((noreturn, format(printf, 2, 3)));
jv jx_eval(jctx *x, jnode *e);

/* jinja_lib.c: values and the library */
jv jv_str(jarena *a, const char *s, size_t n);
jv jv_cstr(jarena *a, const char *s);
jv jv_built(jarena *a, tok_buf *b);   /* B's string in the arena; B released */
jv jv_lit(const char *s);   /* S itself, not a copy: S must outlast the render */
jv jv_int(long long i);
jv jv_bool(int b);
jv jv_undef(const char *name);
jv jx_missing(jctx *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const char *jv_undef_name(jv v);
jv jv_none(void);
jv jv_list(jarena *a);
jv jv_dict(jarena *a);
void jl_push(jarena *a, jlist *l, jv v);
void jd_set(jarena *a, jdict *d, jv k, jv v);
int jd_get(jarena *a, const jdict *d, jv k, jv *out);
int jv_truthy(jv v);
int jv_equal(jarena *a, jv x, jv y);
const char *jv_type_name(jv v);
void jv_print(jctx *x, tok_buf *out, jv v);         /* str(v) */
void jv_repr(jctx *x, tok_buf *out, jv v);          /* repr(v) */
jv jv_from_json(jarena *a, struct json_object *o);
jv jx_getattr(jctx *x, jv obj, const char *name);
jv jx_getitem(jctx *x, jv obj, jv key);
jv jx_slice(jctx *x, jv obj, jv start, jv stop, jv step);
jv jx_binop(jctx *x, const char *op, jv a, jv b);
int jx_contains(jctx *x, jv hay, jv needle);
/* Calls with evaluated arguments: NPOS positional, then NKW named. */
jv jx_filter(jctx *x, const char *name, jv v, jv *args, int npos, const char **kw, int nkw);
int jx_test(jctx *x, const char *name, jv v, jv *args, int npos);
jv jx_call_builtin(jctx *x, jv fn, jv *args, int npos, const char **kw, int nkw);
int jx_is_test(const char *name);
int jx_is_filter(const char *name);
int jx_global(const char *name, jv *out);
jv jx_iterable(jctx *x, jv v);   /* a list of what "for" walks */

#endif
