/* jinja_lib.c: the values of the template interpreter and what can be done
 * with them: Python's str() and repr(), transformers' tojson, operators,
 * attribute and item access, and the filters, tests, methods and global
 * functions chat templates call.  Each follows the Python (Jinja2)
 * behaviour it stands for; anything else fails naming it. */
#define _GNU_SOURCE   /* memmem */
#include "jinja_int.h"

#include <json-c/json.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- constructors ---- */

jv jv_str(jarena *a, const char *s, size_t n)
{
	char *p = ja_alloc(a, n + 1);
	jv v = { .t = JV_STR };
	if (n)
		memcpy(p, s, n);
	v.s.p = p;
	v.s.n = n;
	return v;
}

jv jv_cstr(jarena *a, const char *s) { return jv_str(a, s, strlen(s)); }

jv jv_built(jarena *a, tok_buf *b)
{
	jv v = jv_str(a, b->p, b->n);
	ja_unbuf(a, b);
	return v;
}
jv jv_lit(const char *s) { jv v = { .t = JV_STR, .s = { s, strlen(s) } }; return v; }
jv jv_int(long long i) { jv v = { .t = JV_INT, .i = i }; return v; }
jv jv_bool(int b) { jv v = { .t = JV_BOOL, .b = !!b }; return v; }
jv jv_none(void) { jv v = { .t = JV_NONE }; return v; }

jv jv_undef(const char *name)
{
	jv v = { .t = JV_UNDEF };
	v.s.p = name;
	return v;
}

/* An undefined value that says what it is, for the message when it is used. */
jv jx_missing(jctx *x, const char *fmt, ...)
{
	tok_buf *b = ja_buf(x->a);
	jv name;
	va_list ap;
	va_start(ap, fmt);
	if (vasprintf(&b->p, fmt, ap) < 0)
		lm_bug("out of memory");
	va_end(ap);
	b->n = strlen(b->p);
	name = jv_built(x->a, b);
	return jv_undef(name.s.p);
}

const char *jv_undef_name(jv v)
{
	return v.s.p ? v.s.p : "a value";
}

jv jv_list(jarena *a)
{
	jv v = { .t = JV_LIST };
	v.l = ja_alloc(a, sizeof *v.l);
	return v;
}

jv jv_dict(jarena *a)
{
	jv v = { .t = JV_DICT };
	v.d = ja_alloc(a, sizeof *v.d);
	return v;
}

void jl_push(jarena *a, jlist *l, jv v)
{
	if (l->n == l->cap) {
		jv *nv = ja_alloc(a, (l->cap ? 2 * l->cap : 8) * sizeof *nv);
		if (l->n)
			memcpy(nv, l->v, l->n * sizeof *nv);
		l->v = nv;
		l->cap = l->cap ? 2 * l->cap : 8;
	}
	l->v[l->n++] = v;
}

/* A dict is a list of pairs: each key looked at is a step. */
int jd_get(jarena *a, const jdict *d, jv k, jv *out)
{
	int i;
	ja_step(a, d->n);
	for (i = 0; i < d->n; i++) {
		if (jv_equal(a, d->k[i], k)) {
			if (out)
				*out = d->v[i];
			return 1;
		}
	}
	return 0;
}

void jd_set(jarena *a, jdict *d, jv k, jv v)
{
	int i;
	ja_step(a, d->n);
	for (i = 0; i < d->n; i++) {
		if (jv_equal(a, d->k[i], k)) {
			d->v[i] = v;
			return;
		}
	}
	if (d->n == d->cap) {
		int cap = d->cap ? 2 * d->cap : 8;
		jv *nk = ja_alloc(a, cap * sizeof *nk), *nv = ja_alloc(a, cap * sizeof *nv);
		if (d->n) {
			memcpy(nk, d->k, d->n * sizeof *nk);
			memcpy(nv, d->v, d->n * sizeof *nv);
		}
		d->k = nk;
		d->v = nv;
		d->cap = cap;
	}
	d->k[d->n] = k;
	d->v[d->n++] = v;
}

jv jv_from_json(jarena *a, struct json_object *o)
{
	jv v;
	size_t i;
	switch (json_object_get_type(o)) {
	case json_type_null: return jv_none();
	case json_type_boolean: return jv_bool(json_object_get_boolean(o));
	case json_type_int: return jv_int(json_object_get_int64(o));
	case json_type_double:
		v.t = JV_FLOAT;
		v.f = json_object_get_double(o);
		return v;
	case json_type_string:
		return jv_str(a, json_object_get_string(o), json_object_get_string_len(o));
	case json_type_array:
		v = jv_list(a);
		for (i = 0; i < json_object_array_length(o); i++)
			jl_push(a, v.l, jv_from_json(a, json_object_array_get_idx(o, i)));
		return v;
	case json_type_object:
		v = jv_dict(a);
		{
			json_object_object_foreach(o, key, val)
				jd_set(a, v.d, jv_cstr(a, key), jv_from_json(a, val));
		}
		return v;
	}
	return jv_none();
}

/* ---- truth, equality, names ---- */

static int is_num(jv v) { return v.t == JV_INT || v.t == JV_FLOAT || v.t == JV_BOOL; }
static double num(jv v) { return v.t == JV_FLOAT ? v.f : v.t == JV_INT ? (double)v.i : v.b; }
static long long inum(jv v) { return v.t == JV_INT ? v.i : v.b; }

int jv_truthy(jv v)
{
	switch (v.t) {
	case JV_UNDEF: case JV_NONE: return 0;
	case JV_BOOL: return v.b;
	case JV_INT: return v.i != 0;
	case JV_FLOAT: return v.f != 0;
	case JV_STR: return v.s.n != 0;
	case JV_LIST: return v.l->n != 0;
	case JV_DICT: return v.d->n != 0;
	default: return 1;
	}
}

/* Python's ==; as there, a list or dict is equal to itself at once (a
 * list that contains itself compares), and the walk counts against the
 * render's steps and depth (two such lists, or a shared structure deep
 * and wide, would not end). */
static int equal_deep(jarena *r, jv a, jv b)
{
	int i, eq = 1;
	ja_enter(r);
	if (a.t == JV_LIST) {
		if (a.l->n != b.l->n || a.l->tuple != b.l->tuple)
			eq = 0;
		ja_step(r, a.l->n);
		for (i = 0; eq && i < a.l->n; i++)
			eq = jv_equal(r, a.l->v[i], b.l->v[i]);
	} else {
		if (a.d->n != b.d->n)
			eq = 0;
		for (i = 0; eq && i < a.d->n; i++) {
			jv w;
			eq = jd_get(r, b.d, a.d->k[i], &w) && jv_equal(r, a.d->v[i], w);
		}
	}
	ja_leave(r);
	return eq;
}

int jv_equal(jarena *r, jv a, jv b)
{
	if (is_num(a) && is_num(b))
		return a.t != JV_FLOAT && b.t != JV_FLOAT ? inum(a) == inum(b) : num(a) == num(b);
	if (a.t != b.t)
		return 0;
	switch (a.t) {
	case JV_UNDEF: case JV_NONE: return 1;
	case JV_STR: return a.s.n == b.s.n && memcmp(a.s.p, b.s.p, a.s.n) == 0;
	case JV_LIST: return a.l == b.l || equal_deep(r, a, b);
	case JV_DICT: return a.d == b.d || equal_deep(r, a, b);
	case JV_NS: return a.d == b.d;
	case JV_MACRO: return a.macro == b.macro;
	case JV_FUNC: return a.fn == b.fn;
	default: return 0;
	}
}

const char *jv_type_name(jv v)
{
	static const char *const N[] = { "undefined value", "None", "bool", "int", "float", "str",
		"list", "dict", "namespace", "macro", "function", "method" };
	return N[v.t];
}

/* ---- str(), repr(), tojson ---- */

/* Python's float repr: the shortest digits that read back the same, fixed
 * notation for exponents -4..15, else d.ddde+XX. */
static void put_float(tok_buf *o, double f, int json)
{
	char b[40], digits[24];
	int p, e, nd = 0, i;
	if (isnan(f)) {
		buf_puts(o, json ? "NaN" : "nan");
		return;
	}
	if (isinf(f)) {
		buf_puts(o, f < 0 ? (json ? "-Infinity" : "-inf") : (json ? "Infinity" : "inf"));
		return;
	}
	for (p = 1; p <= 17; p++) {
		snprintf(b, sizeof b, "%.*e", p - 1, f);
		if (strtod(b, NULL) == f)
			break;
	}
	/* b is [-]d.ddde[+-]XX */
	i = 0;
	if (b[0] == '-') {
		buf_putc(o, '-');
		i = 1;
	}
	for (; b[i] != 'e'; i++)
		if (b[i] != '.')
			digits[nd++] = b[i];
	e = atoi(b + i + 1);
	while (nd > 1 && digits[nd - 1] == '0')
		nd--;
	if (e >= -4 && e < 16) {
		if (e >= 0) {
			for (i = 0; i <= e; i++)
				buf_putc(o, i < nd ? digits[i] : '0');
			buf_putc(o, '.');
			if (nd > e + 1)
				buf_put(o, digits + e + 1, nd - e - 1);
			else
				buf_putc(o, '0');
		} else {
			buf_puts(o, "0.");
			for (i = 0; i < -e - 1; i++)
				buf_putc(o, '0');
			buf_put(o, digits, nd);
		}
	} else {
		buf_putc(o, digits[0]);
		if (nd > 1) {
			buf_putc(o, '.');
			buf_put(o, digits + 1, nd - 1);
		}
		snprintf(b, sizeof b, "e%c%02d", e < 0 ? '-' : '+', e < 0 ? -e : e);
		buf_puts(o, b);
	}
}

static void put_repr_str(tok_buf *o, const char *s, size_t n)
{
	char q = memchr(s, '\'', n) && !memchr(s, '"', n) ? '"' : '\'';
	size_t i;
	buf_putc(o, q);
	for (i = 0; i < n; i++) {
		unsigned char c = s[i];
		char b[8];
		if (c == '\\' || c == (unsigned char)q) {
			buf_putc(o, '\\');
			buf_putc(o, c);
		} else if (c == '\n') {
			buf_puts(o, "\\n");
		} else if (c == '\r') {
			buf_puts(o, "\\r");
		} else if (c == '\t') {
			buf_puts(o, "\\t");
		} else if (c < 0x20 || c == 0x7f) {
			snprintf(b, sizeof b, "\\x%02x", c);
			buf_puts(o, b);
		} else {
			buf_putc(o, c);
		}
	}
	buf_putc(o, q);
}

/* The lists and dicts being printed, innermost first: one met again is
 * printed as [...] or {...}, as Python does (tojson refuses it). */
typedef struct jopen jopen;
struct jopen { const void *p; const jopen *up; };

static int is_open(const jopen *up, const void *p)
{
	for (; up; up = up->up)
		if (up->p == p)
			return 1;
	return 0;
}

/* Printing a container: one level deeper, a step per element, and the
 * text so far within the render's bytes. */
static void print_step(jctx *x, const tok_buf *o, int n)
{
	ja_step(x->a, n);
	ja_room(x->a, o->n, 0);
}

static void repr(jctx *x, tok_buf *o, jv v, const jopen *up)
{
	int i;
	jopen me = { v.t == JV_LIST ? (const void *)v.l : (const void *)v.d, up };
	if ((v.t == JV_LIST || v.t == JV_DICT || v.t == JV_NS) && is_open(up, me.p)) {
		buf_puts(o, v.t == JV_LIST ? "[...]" : "{...}");
		return;
	}
	switch (v.t) {
	case JV_STR:
		put_repr_str(o, v.s.p, v.s.n);
		return;
	case JV_LIST:
		ja_enter(x->a);
		buf_putc(o, v.l->tuple ? '(' : '[');
		for (i = 0; i < v.l->n; i++) {
			print_step(x, o, 1);
			if (i)
				buf_puts(o, ", ");
			repr(x, o, v.l->v[i], &me);
		}
		ja_leave(x->a);
		if (v.l->tuple && v.l->n == 1)
			buf_putc(o, ',');
		buf_putc(o, v.l->tuple ? ')' : ']');
		return;
	case JV_DICT:
	case JV_NS:
		ja_enter(x->a);
		buf_puts(o, v.t == JV_NS ? "<Namespace {" : "{");
		for (i = 0; i < v.d->n; i++) {
			print_step(x, o, 1);
			if (i)
				buf_puts(o, ", ");
			repr(x, o, v.d->k[i], &me);
			buf_puts(o, ": ");
			repr(x, o, v.d->v[i], &me);
		}
		buf_puts(o, v.t == JV_NS ? "}>" : "}");
		ja_leave(x->a);
		return;
	default:
		jv_print(x, o, v);
	}
}

void jv_repr(jctx *x, tok_buf *o, jv v)
{
	repr(x, o, v, NULL);
}

void jv_print(jctx *x, tok_buf *o, jv v)
{
	char b[32];
	switch (v.t) {
	case JV_UNDEF: return;
	case JV_NONE: buf_puts(o, "None"); return;
	case JV_BOOL: buf_puts(o, v.b ? "True" : "False"); return;
	case JV_INT:
		snprintf(b, sizeof b, "%lld", v.i);
		buf_puts(o, b);
		return;
	case JV_FLOAT: put_float(o, v.f, 0); return;
	case JV_STR: buf_put(o, v.s.p, v.s.n); return;
	case JV_MACRO: buf_puts(o, "<Macro>"); return;
	case JV_FUNC: case JV_METHOD: buf_puts(o, "<function>"); return;
	default: jv_repr(x, o, v);
	}
}

static jv to_str(jctx *x, jv v)
{
	tok_buf *b = ja_buf(x->a);
	jv r;
	if (v.t == JV_STR)
		return v;
	jv_print(x, b, v);
	r = jv_built(x->a, b);
	return r;
}

/* json.dumps(v, ensure_ascii, indent, sort_keys), as transformers' tojson. */
static void put_json_str(tok_buf *o, const char *s, size_t n, int ascii)
{
	size_t i = 0;
	char b[16];
	buf_putc(o, '"');
	while (i < n) {
		unsigned char c = s[i];
		switch (c) {
		case '"': buf_puts(o, "\\\""); i++; continue;
		case '\\': buf_puts(o, "\\\\"); i++; continue;
		case '\n': buf_puts(o, "\\n"); i++; continue;
		case '\r': buf_puts(o, "\\r"); i++; continue;
		case '\t': buf_puts(o, "\\t"); i++; continue;
		case '\b': buf_puts(o, "\\b"); i++; continue;
		case '\f': buf_puts(o, "\\f"); i++; continue;
		}
		if (c < 0x20 || (ascii && c == 0x7f)) {
			snprintf(b, sizeof b, "\\u%04x", c);
			buf_puts(o, b);
			i++;
		} else if (ascii && c >= 0x80) {
			int k = utf8_char((const unsigned char *)s + i, n - i, NULL);
			unsigned cp;
			if (!k)
				k = 1;
			cp = utf8_cp((const unsigned char *)s + i, k);
			if (cp >= 0x10000) {
				cp -= 0x10000;
				snprintf(b, sizeof b, "\\u%04x\\u%04x", 0xD800 + (cp >> 10), 0xDC00 + (cp & 0x3FF));
			} else {
				snprintf(b, sizeof b, "\\u%04x", cp);
			}
			buf_puts(o, b);
			i += k;
		} else {
			buf_putc(o, c);
			i++;
		}
	}
	buf_putc(o, '"');
}

static void json_nl(tok_buf *o, int indent, int level)
{
	int i;
	buf_putc(o, '\n');
	for (i = 0; i < indent * level; i++)
		buf_putc(o, ' ');
}

static int key_cmp(const void *a, const void *b)
{
	const jv *x = *(const jv *const *)a, *y = *(const jv *const *)b;
	size_t n = x->s.n < y->s.n ? x->s.n : y->s.n;
	int c = memcmp(x->s.p, y->s.p, n);
	return c ? c : (x->s.n > y->s.n) - (x->s.n < y->s.n);
}

static void put_json(jctx *x, tok_buf *o, jv v, int indent, int level, int sort, int ascii,
		     const jopen *up)
{
	int i;
	jopen me = { v.t == JV_LIST ? (const void *)v.l : (const void *)v.d, up };
	/* json.dumps: ", " and ": " without indent, "," and ": " with it */
	const char *item_sep = indent >= 0 ? "," : ", ";
	switch (v.t) {
	case JV_NONE: buf_puts(o, "null"); return;
	case JV_BOOL: buf_puts(o, v.b ? "true" : "false"); return;
	case JV_INT: jv_print(x, o, v); return;
	case JV_FLOAT: put_float(o, v.f, 1); return;
	case JV_STR: put_json_str(o, v.s.p, v.s.n, ascii); return;
	case JV_LIST:
		if (!v.l->n) {
			buf_puts(o, "[]");
			return;
		}
		if (is_open(up, me.p))
			jx_fail(x, "tojson: circular reference (a list that contains itself)");
		ja_enter(x->a);
		buf_putc(o, '[');
		for (i = 0; i < v.l->n; i++) {
			print_step(x, o, 1);
			if (i)
				buf_puts(o, item_sep);
			if (indent >= 0)
				json_nl(o, indent, level + 1);
			put_json(x, o, v.l->v[i], indent, level + 1, sort, ascii, &me);
		}
		if (indent >= 0)
			json_nl(o, indent, level);
		buf_putc(o, ']');
		ja_leave(x->a);
		return;
	case JV_DICT: {
		const jv **keys;
		if (!v.d->n) {
			buf_puts(o, "{}");
			return;
		}
		if (is_open(up, me.p))
			jx_fail(x, "tojson: circular reference (a dict that contains itself)");
		ja_enter(x->a);
		keys = ja_alloc(x->a, v.d->n * sizeof *keys);
		for (i = 0; i < v.d->n; i++) {
			if (v.d->k[i].t != JV_STR)
				jx_fail(x, "tojson: only string keys are supported");
			keys[i] = &v.d->k[i];
		}
		if (sort)
			qsort(keys, v.d->n, sizeof *keys, key_cmp);
		buf_putc(o, '{');
		for (i = 0; i < v.d->n; i++) {
			jv val;
			print_step(x, o, 1);
			if (i)
				buf_puts(o, item_sep);
			if (indent >= 0)
				json_nl(o, indent, level + 1);
			put_json_str(o, keys[i]->s.p, keys[i]->s.n, ascii);
			buf_puts(o, ": ");
			jd_get(x->a, v.d, *keys[i], &val);
			put_json(x, o, val, indent, level + 1, sort, ascii, &me);
		}
		if (indent >= 0)
			json_nl(o, indent, level);
		buf_putc(o, '}');
		ja_leave(x->a);
		return;
	}
	default:
		jx_fail(x, "tojson: a %s is not JSON serializable", jv_type_name(v));
	}
}

/* ---- access ---- */

static const char *const DICT_METHODS[] = { "get", "items", "keys", "values", "pop", "update", NULL };
static const char *const LIST_METHODS[] = { "append", "pop", "index", "count", "extend", "insert", NULL };
static const char *const STR_METHODS[] = { "strip", "lstrip", "rstrip", "lower", "upper", "startswith",
	"endswith", "split", "replace", "title", "capitalize", "join", "find", "count", NULL };

static int in_names(const char *const *names, const char *s)
{
	for (; *names; names++)
		if (strcmp(*names, s) == 0)
			return 1;
	return 0;
}

static jv method(jctx *x, jv self, const char *name)
{
	jv v = { .t = JV_METHOD };
	v.m = ja_alloc(x->a, sizeof *v.m);
	v.m->self = self;
	v.m->name = name;
	return v;
}

jv jx_getattr(jctx *x, jv obj, const char *name)
{
	jv r;
	switch (obj.t) {
	case JV_UNDEF:
		jx_fail(x, "%s is undefined (reading its attribute '%s')", jv_undef_name(obj), name);
	case JV_DICT:
		if (in_names(DICT_METHODS, name))
			return method(x, obj, name);
		/* fall through */
	case JV_NS:
		if (jd_get(x->a, obj.d, jv_lit(name), &r))
			return r;
		return jx_missing(x, "'%s'", name);
	case JV_LIST:
		return in_names(LIST_METHODS, name) ? method(x, obj, name)
			: jx_missing(x, "'%s' (not a list method this interpreter has)", name);
	case JV_STR:
		return in_names(STR_METHODS, name) ? method(x, obj, name)
			: jx_missing(x, "'%s' (not a str method this interpreter has)", name);
	default:
		return jx_missing(x, "'%s'", name);
	}
}

/* Code points of a string, as offsets (n + 1 of them). */
static size_t *char_offsets(jctx *x, jv s, size_t *count)
{
	size_t *off = ja_alloc(x->a, (s.s.n + 1) * sizeof *off), i = 0, k = 0;
	while (i < s.s.n) {
		off[k++] = i;
		i += utf8_lead_len((unsigned char)s.s.p[i]);
	}
	off[k] = s.s.n;
	*count = k;
	return off;
}

jv jx_getitem(jctx *x, jv obj, jv key)
{
	jv r;
	long long i, n;
	switch (obj.t) {
	case JV_UNDEF:
		jx_fail(x, "%s is undefined (reading an item of it)", jv_undef_name(obj));
	case JV_DICT: case JV_NS:
		if (jd_get(x->a, obj.d, key, &r))
			return r;
		return key.t == JV_STR ? jx_getattr(x, obj, key.s.p) : jx_missing(x, "a missing key");
	case JV_LIST:
	case JV_STR:
		if (key.t == JV_STR)
			return jx_getattr(x, obj, key.s.p);
		if (key.t != JV_INT && key.t != JV_BOOL)
			jx_fail(x, "a %s index must be an int, not a %s", jv_type_name(obj), jv_type_name(key));
		i = inum(key);
		if (obj.t == JV_LIST) {
			n = obj.l->n;
			if (i < 0)
				i += n;
			return i >= 0 && i < n ? obj.l->v[i]
				: jx_missing(x, "element %lld of a list of %lld", inum(key), n);
		} else {
			size_t cnt, *off = char_offsets(x, obj, &cnt);
			n = cnt;
			if (i < 0)
				i += n;
			if (i < 0 || i >= n)
				return jx_missing(x, "character %lld of a string", inum(key));
			return jv_str(x->a, obj.s.p + off[i], off[i + 1] - off[i]);
		}
	default:
		return jx_missing(x, "an item of a %s", jv_type_name(obj));
	}
}

/* Python's slice.indices. */
static void slice_bounds(jctx *x, long long n, jv a, jv b, jv c, long long *start, long long *stop, long long *step)
{
	*step = c.t == JV_NONE ? 1 : inum(c);
	if (*step == 0)
		jx_fail(x, "slice step cannot be zero");
	if (a.t == JV_NONE) {
		*start = *step > 0 ? 0 : n - 1;
	} else {
		*start = inum(a);
		if (*start < 0)
			*start += n;
		if (*start < 0)
			*start = *step > 0 ? 0 : -1;
		if (*start >= n)
			*start = *step > 0 ? n : n - 1;
	}
	if (b.t == JV_NONE) {
		*stop = *step > 0 ? n : -1;
	} else {
		*stop = inum(b);
		if (*stop < 0)
			*stop += n;
		if (*stop < 0)
			*stop = *step > 0 ? 0 : -1;
		if (*stop >= n)
			*stop = *step > 0 ? n : n - 1;
	}
}

/* How many of START, START + STEP, ... lie before STOP, in unsigned
 * arithmetic: range(-2^63, 2^63 - 1) and a step of 2^63 - 1 must neither
 * overflow nor step past the end. */
static unsigned long long steps_to(long long start, long long stop, long long step)
{
	typedef unsigned long long u;
	if (step > 0)
		return start < stop ? ((u)stop - (u)start - 1) / (u)step + 1 : 0;
	return start > stop ? ((u)start - (u)stop - 1) / (0 - (u)step) + 1 : 0;
}

jv jx_slice(jctx *x, jv obj, jv a, jv b, jv c)
{
	long long start, stop, step, k, cnt;
	jv *parts[3] = { &a, &b, &c };
	for (k = 0; k < 3; k++)
		if (parts[k]->t != JV_NONE && parts[k]->t != JV_INT && parts[k]->t != JV_BOOL)
			jx_fail(x, "slice bounds must be ints");
	if (obj.t == JV_LIST) {
		jv r = jv_list(x->a);
		slice_bounds(x, obj.l->n, a, b, c, &start, &stop, &step);
		cnt = (long long)steps_to(start, stop, step);
		for (k = 0; k < cnt; k++)
			jl_push(x->a, r.l, obj.l->v[start + k * step]);
		return r;
	}
	if (obj.t == JV_STR) {
		size_t n, *off = char_offsets(x, obj, &n);
		tok_buf *o = ja_buf(x->a);
		jv r;
		long long i;
		slice_bounds(x, n, a, b, c, &start, &stop, &step);
		cnt = (long long)steps_to(start, stop, step);
		for (k = 0; k < cnt; k++) {
			i = start + k * step;
			buf_put(o, obj.s.p + off[i], off[i + 1] - off[i]);
		}
		r = jv_built(x->a, o);
		return r;
	}
	if (obj.t == JV_UNDEF)
		jx_fail(x, "%s is undefined (slicing it)", jv_undef_name(obj));
	jx_fail(x, "cannot slice a %s", jv_type_name(obj));
}

int jx_contains(jctx *x, jv hay, jv needle)
{
	int i;
	switch (hay.t) {
	case JV_STR:
		if (needle.t != JV_STR)
			jx_fail(x, "'in <string>' needs a string on the left, not a %s", jv_type_name(needle));
		return needle.s.n == 0 || memmem(hay.s.p, hay.s.n, needle.s.p, needle.s.n) != NULL;
	case JV_LIST:
		for (i = 0; i < hay.l->n; i++)
			if (jv_equal(x->a, hay.l->v[i], needle))
				return 1;
		return 0;
	case JV_DICT: case JV_NS:
		return jd_get(x->a, hay.d, needle, NULL);
	case JV_UNDEF:
		return 0;   /* an undefined value iterates as empty */
	default:
		jx_fail(x, "'in' needs a string, list or dict on the right, not a %s", jv_type_name(hay));
	}
}

jv jx_binop(jctx *x, const char *op, jv a, jv b)
{
	int c;
	if (strcmp(op, "==") == 0)
		return jv_bool(jv_equal(x->a, a, b));
	if (strcmp(op, "!=") == 0)
		return jv_bool(!jv_equal(x->a, a, b));
	if (strcmp(op, "~") == 0) {
		tok_buf *o = ja_buf(x->a);
		jv r;
		jv_print(x, o, a);
		jv_print(x, o, b);
		r = jv_built(x->a, o);
		return r;
	}
	if (op[0] == '<' || op[0] == '>') {
		if (is_num(a) && is_num(b)) {
			double p = num(a), q = num(b);
			c = p < q ? -1 : p > q;
		} else if (a.t == JV_STR && b.t == JV_STR) {
			size_t n = a.s.n < b.s.n ? a.s.n : b.s.n;
			c = memcmp(a.s.p, b.s.p, n);
			if (!c)
				c = (a.s.n > b.s.n) - (a.s.n < b.s.n);
		} else {
			jx_fail(x, "cannot compare a %s with a %s", jv_type_name(a), jv_type_name(b));
		}
		if (strcmp(op, "<") == 0) return jv_bool(c < 0);
		if (strcmp(op, ">") == 0) return jv_bool(c > 0);
		if (strcmp(op, "<=") == 0) return jv_bool(c <= 0);
		return jv_bool(c >= 0);
	}
	if (strcmp(op, "+") == 0 && a.t == JV_STR && b.t == JV_STR) {
		tok_buf *o = ja_buf(x->a);
		jv r;
		buf_put(o, a.s.p, a.s.n);
		buf_put(o, b.s.p, b.s.n);
		r = jv_built(x->a, o);
		return r;
	}
	if (strcmp(op, "+") == 0 && a.t == JV_LIST && b.t == JV_LIST) {
		jv r = jv_list(x->a);
		int i;
		for (i = 0; i < a.l->n; i++)
			jl_push(x->a, r.l, a.l->v[i]);
		for (i = 0; i < b.l->n; i++)
			jl_push(x->a, r.l, b.l->v[i]);
		return r;
	}
	if (strcmp(op, "*") == 0 && a.t == JV_STR && (b.t == JV_INT || b.t == JV_BOOL)) {
		tok_buf *o = ja_buf(x->a);
		long long k, times = inum(b) < 0 || !a.s.n ? 0 : inum(b);
		jv r;
		if (times && (unsigned long long)times > SIZE_MAX / a.s.n)
			jx_fail(x, "'x' * %lld: the string would not fit in memory", times);
		ja_room(x->a, 0, a.s.n * (size_t)times);
		for (k = 0; k < times; k++)
			buf_put(o, a.s.p, a.s.n);
		r = jv_built(x->a, o);
		return r;
	}
	if (!is_num(a) || !is_num(b)) {
		if (a.t == JV_UNDEF || b.t == JV_UNDEF) {
			jv u = a.t == JV_UNDEF ? a : b;
			jx_fail(x, "%s is undefined (operand of %s)", jv_undef_name(u), op);
		}
		jx_fail(x, "unsupported operands for %s: %s and %s", op, jv_type_name(a), jv_type_name(b));
	}
	if (a.t != JV_FLOAT && b.t != JV_FLOAT && strcmp(op, "**") == 0 && inum(b) >= 0) {
		long long p = inum(a), q = inum(b), r = 1;
		if (p == 0 || p == 1 || p == -1)
			return jv_int(q == 0 ? 1 : p == -1 ? (q % 2 ? -1 : 1) : p);
		while (q-- > 0)   /* |p| >= 2 overflows within 63 steps */
			if (__builtin_mul_overflow(r, p, &r))
				jx_fail(x, "integer too large in **");
		return jv_int(r);
	}
	if (a.t != JV_FLOAT && b.t != JV_FLOAT && strcmp(op, "/") != 0 && strcmp(op, "**") != 0) {
		/* Python's ints do not overflow; these do, and say so */
		long long p = inum(a), q = inum(b), r;
		int over = 0;
		if ((op[0] == '%' || op[1] == '/') && q == 0)
			jx_fail(x, "division by zero");
		switch (op[0]) {
		case '+': over = __builtin_add_overflow(p, q, &r); break;
		case '-': over = __builtin_sub_overflow(p, q, &r); break;
		case '*': over = __builtin_mul_overflow(p, q, &r); break;
		case '%':   /* the sign of the divisor; LLONG_MIN % -1 traps in C */
			r = q == -1 ? 0 : p % q;
			r = r && ((r < 0) != (q < 0)) ? r + q : r;
			break;
		default:    /* // floors */
			if (q == -1) {
				over = p == LLONG_MIN;
				r = over ? 0 : -p;
			} else {
				r = p / q;
				r = p % q != 0 && ((p < 0) != (q < 0)) ? r - 1 : r;
			}
		}
		if (over)
			jx_fail(x, "integer overflow: %lld %s %lld does not fit in 64 bits", p, op, q);
		return jv_int(r);
	}
	{
		double p = num(a), q = num(b);
		jv r = { .t = JV_FLOAT };
		if ((op[0] == '/' || op[0] == '%') && q == 0)
			jx_fail(x, "division by zero");
		switch (op[0]) {
		case '+': r.f = p + q; break;
		case '-': r.f = p - q; break;
		case '*': r.f = op[1] ? pow(p, q) : p * q; break;
		case '%': r.f = p - q * floor(p / q); break;
		default: r.f = op[1] ? floor(p / q) : p / q;
		}
		return r;
	}
}

jv jx_iterable(jctx *x, jv v)
{
	jv r = jv_list(x->a);
	int i;
	switch (v.t) {
	case JV_LIST:
		for (i = 0; i < v.l->n; i++)   /* a copy: the body may change the list */
			jl_push(x->a, r.l, v.l->v[i]);
		return r;
	case JV_DICT:
		for (i = 0; i < v.d->n; i++)
			jl_push(x->a, r.l, v.d->k[i]);
		return r;
	case JV_STR: {
		size_t cnt, *off = char_offsets(x, v, &cnt), k;
		for (k = 0; k < cnt; k++)
			jl_push(x->a, r.l, jv_str(x->a, v.s.p + off[k], off[k + 1] - off[k]));
		return r;
	}
	case JV_UNDEF:
		return r;
	default:
		jx_fail(x, "a %s is not iterable", jv_type_name(v));
	}
}

/* ---- string helpers (ASCII case, Python's whitespace) ---- */

static int py_space_at(const char *s, size_t n, size_t *k)
{
	unsigned char c = s[0];
	if (c == ' ' || (c >= 9 && c <= 13) || (c >= 0x1c && c <= 0x1f)) {
		*k = 1;
		return 1;
	}
	if (n >= 2 && c == 0xC2 && ((unsigned char)s[1] == 0x85 || (unsigned char)s[1] == 0xA0)) {
		*k = 2;
		return 1;
	}
	if (n >= 3 && c == 0xE3 && (unsigned char)s[1] == 0x80 && (unsigned char)s[2] == 0x80) {
		*k = 3;
		return 1;
	}
	if (n >= 3 && c == 0xE2 && (unsigned char)s[1] == 0x80
	    && (((unsigned char)s[2] >= 0x80 && (unsigned char)s[2] <= 0x8A)
		|| (unsigned char)s[2] == 0xA8 || (unsigned char)s[2] == 0xA9 || (unsigned char)s[2] == 0xAF)) {
		*k = 3;
		return 1;
	}
	return 0;
}

/* Strips white space (CHARS NULL) or any of CHARS, from the left (L) and/or right (R). */
static jv strip(jctx *x, jv s, jv chars, int l, int r)
{
	size_t a = 0, b = s.s.n, k;
	if (chars.t == JV_STR) {
		while (l && a < b && memchr(chars.s.p, s.s.p[a], chars.s.n))
			a++;
		while (r && b > a && memchr(chars.s.p, s.s.p[b - 1], chars.s.n))
			b--;
	} else {
		while (l && a < b && py_space_at(s.s.p + a, b - a, &k))
			a += k;
		while (r && b > a) {
			size_t j = b - 1;
			while (j > a && ((unsigned char)s.s.p[j] & 0xC0) == 0x80)
				j--;
			if (!py_space_at(s.s.p + j, b - j, &k) || j + k != b)
				break;
			b = j;
		}
	}
	return jv_str(x->a, s.s.p + a, b - a);
}

static jv change_case(jctx *x, jv s, int mode)   /* 0 lower, 1 upper, 2 capitalize, 3 title */
{
	jv r = jv_str(x->a, s.s.p, s.s.n);
	char *p = (char *)r.s.p;
	size_t i;
	int word_start = 1;
	for (i = 0; i < r.s.n; i++) {
		char c = p[i];
		int up = mode == 1 || (mode == 2 && i == 0) || (mode == 3 && word_start);
		if (up && c >= 'a' && c <= 'z')
			p[i] = c - 32;
		else if (!up && mode != 1 && c >= 'A' && c <= 'Z')
			p[i] = c + 32;
		word_start = !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
			       || ((unsigned char)c >= 0x80));
	}
	return r;
}

static jv replace(jctx *x, jv s, jv from, jv to, long long count)
{
	tok_buf *o = ja_buf(x->a);
	size_t i = 0;
	jv r;
	if (from.t != JV_STR || to.t != JV_STR)
		jx_fail(x, "replace needs strings");
	while (i <= s.s.n) {
		ja_room(x->a, o->n, to.s.n + 1);
		if (count != 0 && (from.s.n == 0 ? 1 : i + from.s.n <= s.s.n && memcmp(s.s.p + i, from.s.p, from.s.n) == 0)) {
			buf_put(o, to.s.p, to.s.n);
			if (count > 0)
				count--;
			if (from.s.n) {
				i += from.s.n;
				continue;
			}
		}
		if (i < s.s.n)
			buf_putc(o, s.s.p[i]);
		i++;
	}
	r = jv_built(x->a, o);
	return r;
}

static jv split(jctx *x, jv s, jv sep, long long max)
{
	jv r = jv_list(x->a);
	size_t i = 0, k;
	if (sep.t == JV_STR) {
		if (!sep.s.n)
			jx_fail(x, "split: empty separator");
		while (max != 0) {
			const char *f = memmem(s.s.p + i, s.s.n - i, sep.s.p, sep.s.n);
			if (!f)
				break;
			jl_push(x->a, r.l, jv_str(x->a, s.s.p + i, f - (s.s.p + i)));
			i = f - s.s.p + sep.s.n;
			max--;
		}
		jl_push(x->a, r.l, jv_str(x->a, s.s.p + i, s.s.n - i));
		return r;
	}
	/* runs of white space, none at the ends */
	for (;;) {
		size_t a;
		while (i < s.s.n && py_space_at(s.s.p + i, s.s.n - i, &k))
			i += k;
		if (i >= s.s.n)
			break;
		a = i;
		if (max == 0) {
			jv rest = jv_str(x->a, s.s.p + a, s.s.n - a);
			jl_push(x->a, r.l, strip(x, rest, jv_none(), 0, 1));
			break;
		}
		while (i < s.s.n && !py_space_at(s.s.p + i, s.s.n - i, &k))
			i++;
		jl_push(x->a, r.l, jv_str(x->a, s.s.p + a, i - a));
		max--;
	}
	return r;
}

static jv join(jctx *x, jv seq, jv sep)
{
	jv items = jx_iterable(x, seq), r;
	tok_buf *o = ja_buf(x->a);
	int i;
	for (i = 0; i < items.l->n; i++) {
		ja_room(x->a, o->n, sep.t == JV_STR ? sep.s.n : 0);
		if (i && sep.t == JV_STR)
			buf_put(o, sep.s.p, sep.s.n);
		jv_print(x, o, items.l->v[i]);
	}
	r = jv_built(x->a, o);
	return r;
}

static long long length(jctx *x, jv v)
{
	size_t cnt;
	switch (v.t) {
	case JV_STR: char_offsets(x, v, &cnt); return cnt;
	case JV_LIST: return v.l->n;
	case JV_DICT: case JV_NS: return v.d->n;
	case JV_UNDEF: return 0;
	default: jx_fail(x, "a %s has no length", jv_type_name(v));
	}
}

/* ---- argument helpers ---- */

static jv arg(jv *args, int npos, const char **kw, int nkw, int i, const char *name, jv dflt)
{
	int j;
	for (j = 0; j < nkw; j++)
		if (strcmp(kw[j], name) == 0)
			return args[npos + j];
	return i < npos ? args[i] : dflt;
}

static void check_args(jctx *x, const char *what, int npos, int max, const char **kw, int nkw,
		       const char *const *names)
{
	int j;
	if (npos > max)
		jx_fail(x, "%s takes at most %d arguments", what, max);
	for (j = 0; j < nkw; j++)
		if (!names || !in_names(names, kw[j]))
			jx_fail(x, "%s has no argument '%s'", what, kw[j]);
}

static jv need_str(jctx *x, jv v, const char *what)
{
	if (v.t != JV_STR)
		jx_fail(x, "%s needs a string, not a %s", what, jv_type_name(v));
	return v;
}

/* ---- filters ---- */

static const char *const FILTERS[] = {
	"tojson", "join", "map", "length", "count", "string", "trim", "first", "last",
	"default", "d", "list", "items", "lower", "upper", "replace", "safe", "capitalize",
	"title", "int", "float", "abs", "select", "reject", "selectattr", "rejectattr",
	"reverse", "e", "escape", NULL,
};

int jx_is_filter(const char *name) { return in_names(FILTERS, name); }

/* select / reject / selectattr / rejectattr */
static jv select_items(jctx *x, const char *name, jv seq, jv *args, int npos)
{
	int attr = strcmp(name + 6, "attr") == 0;   /* select|reject + attr */
	int keep_if = name[0] == 's';
	jv items = jx_iterable(x, seq), r = jv_list(x->a);
	int i, first = attr ? 1 : 0;
	for (i = 0; i < items.l->n; i++) {
		jv v = items.l->v[i], subject = v;
		int ok;
		if (attr) {
			if (npos < 1 || args[0].t != JV_STR)
				jx_fail(x, "%s needs an attribute name", name);
			subject = jx_getattr(x, v, args[0].s.p);
		}
		if (npos > first) {
			if (args[first].t != JV_STR)
				jx_fail(x, "%s needs a test name", name);
			if (!jx_is_test(args[first].s.p))
				jx_fail(x, "the test '%s' is not supported", args[first].s.p);
			ok = jx_test(x, args[first].s.p, subject, args + first + 1, npos - first - 1);
		} else {
			ok = jv_truthy(subject);
		}
		if (ok == keep_if)
			jl_push(x->a, r.l, v);
	}
	return r;
}

jv jx_filter(jctx *x, const char *name, jv v, jv *args, int npos, const char **kw, int nkw)
{
	static const char *const TOJSON_KW[] = { "indent", "sort_keys", "ensure_ascii", NULL };
	static const char *const JOIN_KW[] = { "d", "attribute", NULL };
	static const char *const MAP_KW[] = { "attribute", "default", NULL };
	static const char *const DEFAULT_KW[] = { "default_value", "boolean", NULL };
	static const char *const TRIM_KW[] = { "chars", NULL };
	static const char *const REPLACE_KW[] = { "old", "new", "count", NULL };
	jv r;
	int i;
	if (!jx_is_filter(name))
		jx_fail(x, "the filter '%s' is not supported", name);
	if (strcmp(name, "tojson") == 0) {
		tok_buf *o = ja_buf(x->a);
		jv ind = arg(args, npos, kw, nkw, 1, "indent", jv_none());
		jv ascii = arg(args, npos, kw, nkw, 0, "ensure_ascii", jv_bool(0));
		check_args(x, "tojson", npos, 2, kw, nkw, TOJSON_KW);
		if (ind.t != JV_NONE && ind.t != JV_INT)
			jx_fail(x, "tojson: indent must be an int");
		put_json(x, o, v, ind.t == JV_INT ? (int)(ind.i < 0 ? 0 : ind.i > 64 ? 64 : ind.i) : -1, 0,
			 jv_truthy(arg(args, npos, kw, nkw, 99, "sort_keys", jv_bool(0))), jv_truthy(ascii), NULL);
		r = jv_built(x->a, o);
		return r;
	}
	if (strcmp(name, "join") == 0) {
		jv sep = arg(args, npos, kw, nkw, 0, "d", jv_cstr(x->a, ""));
		jv at = arg(args, npos, kw, nkw, 1, "attribute", jv_none());
		check_args(x, "join", npos, 2, kw, nkw, JOIN_KW);
		if (at.t != JV_NONE) {
			jv items = jx_iterable(x, v);
			v = jv_list(x->a);
			for (i = 0; i < items.l->n; i++)
				jl_push(x->a, v.l, jx_getattr(x, items.l->v[i], need_str(x, at, "join").s.p));
		}
		return join(x, v, need_str(x, sep, "join"));
	}
	if (strcmp(name, "map") == 0) {
		jv items = jx_iterable(x, v), at = arg(args, npos, kw, nkw, 99, "attribute", jv_none());
		check_args(x, "map", 16, 16, kw, nkw, MAP_KW);
		r = jv_list(x->a);
		ja_enter(x->a);   /* map('map', 'map', ...) recurses */
		for (i = 0; i < items.l->n; i++) {
			jv it = items.l->v[i];
			if (at.t == JV_STR) {
				it = jx_getattr(x, it, at.s.p);
				if (it.t == JV_UNDEF)
					it = arg(args, npos, kw, nkw, 99, "default", it);
			} else if (npos >= 1 && args[0].t == JV_STR) {
				it = jx_filter(x, args[0].s.p, it, args + 1, npos - 1, NULL, 0);
			} else {
				jx_fail(x, "map needs a filter name or attribute=");
			}
			jl_push(x->a, r.l, it);
		}
		ja_leave(x->a);
		return r;
	}
	if (strcmp(name, "length") == 0 || strcmp(name, "count") == 0) {
		check_args(x, name, npos, 0, kw, nkw, NULL);
		return jv_int(length(x, v));
	}
	if (strcmp(name, "string") == 0)
		return to_str(x, v);
	if (strcmp(name, "trim") == 0) {
		check_args(x, "trim", npos, 1, kw, nkw, TRIM_KW);
		return strip(x, to_str(x, v), arg(args, npos, kw, nkw, 0, "chars", jv_none()), 1, 1);
	}
	if (strcmp(name, "first") == 0 || strcmp(name, "last") == 0) {
		jv items = jx_iterable(x, v);
		if (!items.l->n)
			return jv_undef(name);
		return items.l->v[name[0] == 'f' ? 0 : items.l->n - 1];
	}
	if (strcmp(name, "default") == 0 || strcmp(name, "d") == 0) {
		jv dflt = arg(args, npos, kw, nkw, 0, "default_value", jv_cstr(x->a, ""));
		int boolean = jv_truthy(arg(args, npos, kw, nkw, 1, "boolean", jv_bool(0)));
		check_args(x, name, npos, 2, kw, nkw, DEFAULT_KW);
		return v.t == JV_UNDEF || (boolean && !jv_truthy(v)) ? dflt : v;
	}
	if (strcmp(name, "list") == 0)
		return jx_iterable(x, v);
	if (strcmp(name, "reverse") == 0) {
		jv items = jx_iterable(x, v);
		if (v.t == JV_STR) {
			tok_buf *o = ja_buf(x->a);
			for (i = items.l->n - 1; i >= 0; i--)
				buf_put(o, items.l->v[i].s.p, items.l->v[i].s.n);
			r = jv_built(x->a, o);
			return r;
		}
		r = jv_list(x->a);
		for (i = items.l->n - 1; i >= 0; i--)
			jl_push(x->a, r.l, items.l->v[i]);
		return r;
	}
	if (strcmp(name, "items") == 0) {
		r = jv_list(x->a);
		if (v.t == JV_UNDEF)
			return r;
		if (v.t != JV_DICT)
			jx_fail(x, "items needs a dict, not a %s", jv_type_name(v));
		for (i = 0; i < v.d->n; i++) {
			jv pair = jv_list(x->a);
			pair.l->tuple = 1;
			jl_push(x->a, pair.l, v.d->k[i]);
			jl_push(x->a, pair.l, v.d->v[i]);
			jl_push(x->a, r.l, pair);
		}
		return r;
	}
	if (strcmp(name, "lower") == 0 || strcmp(name, "upper") == 0 || strcmp(name, "capitalize") == 0
	    || strcmp(name, "title") == 0)
		return change_case(x, to_str(x, v), name[0] == 'l' ? 0 : name[0] == 'u' ? 1 : name[0] == 'c' ? 2 : 3);
	if (strcmp(name, "replace") == 0) {
		jv cnt = arg(args, npos, kw, nkw, 2, "count", jv_none());
		check_args(x, "replace", npos, 3, kw, nkw, REPLACE_KW);
		return replace(x, to_str(x, v), arg(args, npos, kw, nkw, 0, "old", jv_none()),
			       arg(args, npos, kw, nkw, 1, "new", jv_none()), cnt.t == JV_INT ? cnt.i : -1);
	}
	if (strcmp(name, "safe") == 0 || strcmp(name, "e") == 0 || strcmp(name, "escape") == 0) {
		if (name[0] == 'e')   /* there is no autoescape here, and escape is not identity */
			jx_fail(x, "the filter '%s' is not supported", name);
		return v;
	}
	if (strcmp(name, "int") == 0 || strcmp(name, "float") == 0) {
		double d = 0;
		if (is_num(v))
			d = num(v);
		else if (v.t == JV_STR) {
			char *end;
			d = strtod(v.s.p, &end);
			if (end == v.s.p)
				d = 0;
		}
		if (name[0] == 'i') {
			if (v.t == JV_INT)
				return v;
			if (!(d > -9223372036854775808.0 && d < 9223372036854775808.0))
				jx_fail(x, "int: %g does not fit in 64 bits", d);
			return jv_int((long long)d);
		}
		r.t = JV_FLOAT;
		r.f = d;
		return r;
	}
	if (strcmp(name, "abs") == 0) {
		if (v.t == JV_INT) {
			if (v.i == LLONG_MIN)
				jx_fail(x, "integer overflow: abs(%lld) does not fit in 64 bits", v.i);
			return jv_int(v.i < 0 ? -v.i : v.i);
		}
		r.t = JV_FLOAT;
		r.f = fabs(num(v));
		return r;
	}
	return select_items(x, name, v, args, npos);
}

/* ---- tests ---- */

static const char *const TESTS[] = {
	"defined", "undefined", "none", "string", "mapping", "iterable", "sequence", "number",
	"integer", "float", "boolean", "true", "false", "callable", "even", "odd", "divisibleby",
	"eq", "equalto", "==", "ne", "!=", "lt", "<", "gt", ">", "le", "<=", "ge", ">=", "in",
	"lower", "upper", "sameas", NULL,
};

int jx_is_test(const char *name) { return in_names(TESTS, name); }

int jx_test(jctx *x, const char *n, jv v, jv *args, int npos)
{
	jv a = npos > 0 ? args[0] : jv_undef(NULL);
	if (!strcmp(n, "defined")) return v.t != JV_UNDEF;
	if (!strcmp(n, "undefined")) return v.t == JV_UNDEF;
	if (!strcmp(n, "none")) return v.t == JV_NONE;
	if (!strcmp(n, "string")) return v.t == JV_STR;
	if (!strcmp(n, "mapping")) return v.t == JV_DICT;
	if (!strcmp(n, "iterable")) return v.t == JV_STR || v.t == JV_LIST || v.t == JV_DICT || v.t == JV_UNDEF;
	if (!strcmp(n, "sequence")) return v.t == JV_STR || v.t == JV_LIST || v.t == JV_DICT;
	if (!strcmp(n, "number")) return is_num(v);
	if (!strcmp(n, "integer")) return v.t == JV_INT;
	if (!strcmp(n, "float")) return v.t == JV_FLOAT;
	if (!strcmp(n, "boolean")) return v.t == JV_BOOL;
	if (!strcmp(n, "true")) return v.t == JV_BOOL && v.b;
	if (!strcmp(n, "false")) return v.t == JV_BOOL && !v.b;
	if (!strcmp(n, "callable")) return v.t == JV_MACRO || v.t == JV_FUNC || v.t == JV_METHOD;
	if (!strcmp(n, "lower") || !strcmp(n, "upper")) {
		jv c;
		if (v.t != JV_STR)
			return 0;
		c = change_case(x, v, n[0] == 'u');
		return jv_equal(x->a, c, v);
	}
	if (!strcmp(n, "sameas"))
		return v.t == a.t && (v.t == JV_NONE || v.t == JV_UNDEF || (v.t == JV_BOOL && v.b == a.b)
				     || ((v.t == JV_LIST || v.t == JV_DICT || v.t == JV_NS) && v.l == a.l));
	if (npos < 1 && strcmp(n, "even") && strcmp(n, "odd"))
		jx_fail(x, "the test '%s' needs an argument", n);
	if (!strcmp(n, "even") || !strcmp(n, "odd") || !strcmp(n, "divisibleby")) {
		long long k = n[0] == 'd' ? (a.t == JV_INT ? a.i : 0) : 2;
		if (v.t != JV_INT || k == 0)
			jx_fail(x, "the test '%s' needs ints", n);
		return n[0] == 'o' ? v.i % 2 != 0 : k == -1 || v.i % k == 0;   /* LLONG_MIN % -1 traps */
	}
	if (!strcmp(n, "eq") || !strcmp(n, "equalto") || !strcmp(n, "=="))
		return jv_equal(x->a, v, a);
	if (!strcmp(n, "ne") || !strcmp(n, "!="))
		return !jv_equal(x->a, v, a);
	if (!strcmp(n, "in"))
		return jx_contains(x, a, v);
	{
		static const char *const OPS[][2] = { { "lt", "<" }, { "<", "<" }, { "gt", ">" }, { ">", ">" },
			{ "le", "<=" }, { "<=", "<=" }, { "ge", ">=" }, { ">=", ">=" } };
		unsigned i;
		for (i = 0; i < sizeof OPS / sizeof *OPS; i++)
			if (!strcmp(n, OPS[i][0]))
				return jx_binop(x, OPS[i][1], v, a).b;
	}
	jx_fail(x, "the test '%s' is not supported", n);
}

/* ---- globals and methods ---- */

int jx_global(const char *name, jv *out)
{
	static const char *const NAMES[] = { "raise_exception", "range", "namespace", "dict", "strftime_now" };
	unsigned i;
	for (i = 0; i < sizeof NAMES / sizeof *NAMES; i++) {
		if (strcmp(name, NAMES[i]) == 0) {
			out->t = JV_FUNC;
			out->fn = (int)i;
			return 1;
		}
	}
	return 0;
}

static jv call_method(jctx *x, jmethod *m, jv *args, int npos, const char **kw, int nkw)
{
	jv self = m->self, r;
	const char *n = m->name;
	int i;
	if (nkw)
		jx_fail(x, "%s.%s() takes no keyword arguments here", jv_type_name(self), n);
	if (self.t == JV_DICT) {
		if (!strcmp(n, "get")) {
			if (npos < 1 || npos > 2)
				jx_fail(x, "dict.get takes 1 or 2 arguments");
			return jd_get(x->a, self.d, args[0], &r) ? r : npos > 1 ? args[1] : jv_none();
		}
		if (!strcmp(n, "items"))
			return jx_filter(x, "items", self, NULL, 0, NULL, 0);
		if (!strcmp(n, "keys") || !strcmp(n, "values")) {
			r = jv_list(x->a);
			for (i = 0; i < self.d->n; i++)
				jl_push(x->a, r.l, n[0] == 'k' ? self.d->k[i] : self.d->v[i]);
			return r;
		}
		if (!strcmp(n, "pop")) {
			if (npos < 1 || npos > 2)
				jx_fail(x, "dict.pop takes 1 or 2 arguments");
			for (i = 0; i < self.d->n; i++) {
				if (jv_equal(x->a, self.d->k[i], args[0])) {
					r = self.d->v[i];
					memmove(self.d->k + i, self.d->k + i + 1, (self.d->n - i - 1) * sizeof(jv));
					memmove(self.d->v + i, self.d->v + i + 1, (self.d->n - i - 1) * sizeof(jv));
					self.d->n--;
					return r;
				}
			}
			if (npos > 1)
				return args[1];
			jx_fail(x, "dict.pop: no such key");
		}
		if (!strcmp(n, "update")) {
			if (npos != 1 || args[0].t != JV_DICT)
				jx_fail(x, "dict.update takes one dict");
			for (i = 0; i < args[0].d->n; i++)
				jd_set(x->a, self.d, args[0].d->k[i], args[0].d->v[i]);
			return jv_none();
		}
	}
	if (self.t == JV_LIST) {
		jlist *l = self.l;
		if (!strcmp(n, "append") || !strcmp(n, "extend")) {
			if (npos != 1)
				jx_fail(x, "list.%s takes one argument", n);
			if (n[0] == 'a') {
				jl_push(x->a, l, args[0]);
			} else {
				jv items = jx_iterable(x, args[0]);
				for (i = 0; i < items.l->n; i++)
					jl_push(x->a, l, items.l->v[i]);
			}
			return jv_none();
		}
		if (!strcmp(n, "insert")) {
			long long at;
			if (npos != 2 || args[0].t != JV_INT)
				jx_fail(x, "list.insert takes an index and a value");
			at = args[0].i < 0 ? args[0].i + l->n : args[0].i;
			at = at < 0 ? 0 : at > l->n ? l->n : at;
			jl_push(x->a, l, args[1]);
			memmove(l->v + at + 1, l->v + at, (l->n - 1 - at) * sizeof(jv));
			l->v[at] = args[1];
			return jv_none();
		}
		if (!strcmp(n, "pop")) {
			long long at = npos ? (args[0].t == JV_INT ? args[0].i : -1000000000) : -1;
			if (at < 0)
				at += l->n;
			if (at < 0 || at >= l->n)
				jx_fail(x, "list.pop: index out of range");
			r = l->v[at];
			memmove(l->v + at, l->v + at + 1, (l->n - at - 1) * sizeof(jv));
			l->n--;
			return r;
		}
		if (!strcmp(n, "index") || !strcmp(n, "count")) {
			int c = 0;
			if (npos != 1)
				jx_fail(x, "list.%s takes one argument", n);
			for (i = 0; i < l->n; i++) {
				if (jv_equal(x->a, l->v[i], args[0])) {
					if (n[0] == 'i')
						return jv_int(i);
					c++;
				}
			}
			if (n[0] == 'i')
				jx_fail(x, "list.index: value not in list");
			return jv_int(c);
		}
	}
	if (self.t == JV_STR) {
		jv a0 = npos > 0 ? args[0] : jv_none();
		if (!strcmp(n, "strip") || !strcmp(n, "lstrip") || !strcmp(n, "rstrip"))
			return strip(x, self, a0, n[0] != 'r', n[0] != 'l');
		if (!strcmp(n, "lower") || !strcmp(n, "upper") || !strcmp(n, "title") || !strcmp(n, "capitalize"))
			return change_case(x, self, n[0] == 'l' ? 0 : n[0] == 'u' ? 1 : n[0] == 'c' ? 2 : 3);
		if (!strcmp(n, "startswith") || !strcmp(n, "endswith")) {
			jv opts = a0;
			if (a0.t == JV_STR) {
				opts = jv_list(x->a);
				jl_push(x->a, opts.l, a0);
			}
			if (opts.t != JV_LIST)
				jx_fail(x, "str.%s needs a string or a list of strings", n);
			for (i = 0; i < opts.l->n; i++) {
				jv p = need_str(x, opts.l->v[i], n);
				if (p.s.n <= self.s.n
				    && memcmp(self.s.p + (n[0] == 's' ? 0 : self.s.n - p.s.n), p.s.p, p.s.n) == 0)
					return jv_bool(1);
			}
			return jv_bool(0);
		}
		if (!strcmp(n, "split"))
			return split(x, self, a0, npos > 1 && args[1].t == JV_INT ? args[1].i : -1);
		if (!strcmp(n, "replace"))
			return replace(x, self, a0, npos > 1 ? args[1] : jv_none(),
				       npos > 2 && args[2].t == JV_INT ? args[2].i : -1);
		if (!strcmp(n, "join"))
			return join(x, a0, self);
		if (!strcmp(n, "find") || !strcmp(n, "count")) {
			const char *p = self.s.p, *end = self.s.p + self.s.n, *f;
			int c = 0;
			need_str(x, a0, n);
			if (!a0.s.n)
				return jv_int(n[0] == 'f' ? 0 : (long long)length(x, self) + 1);
			while ((f = memmem(p, end - p, a0.s.p, a0.s.n))) {
				if (n[0] == 'f') {
					size_t cnt;
					char_offsets(x, jv_str(x->a, self.s.p, f - self.s.p), &cnt);
					return jv_int(cnt);
				}
				c++;
				p = f + a0.s.n;
			}
			return jv_int(n[0] == 'f' ? -1 : c);
		}
	}
	jx_fail(x, "the method %s.%s() is not supported", jv_type_name(self), n);
}

jv jx_call_builtin(jctx *x, jv fn, jv *args, int npos, const char **kw, int nkw)
{
	jv r;
	int i;
	if (fn.t == JV_METHOD)
		return call_method(x, fn.m, args, npos, kw, nkw);
	switch (fn.fn) {
	case FN_RAISE: {
		tok_buf *o = ja_buf(x->a);
		if (npos)
			jv_print(x, o, args[0]);
		jx_fail(x, "the template raised an error: %s", buf_cstr(o));
	}
	case FN_RANGE: {
		long long a = 0, b, s = 1;
		unsigned long long k, n;
		for (i = 0; i < npos; i++)
			if (args[i].t != JV_INT)
				jx_fail(x, "range needs ints");
		if (npos < 1 || npos > 3 || nkw)
			jx_fail(x, "range takes 1 to 3 ints");
		b = args[npos == 1 ? 0 : 1].i;
		if (npos > 1)
			a = args[0].i;
		if (npos > 2)
			s = args[2].i;
		if (s == 0)
			jx_fail(x, "range step cannot be zero");
		n = steps_to(a, b, s);
		ja_room(x->a, 0, n > SIZE_MAX / sizeof(jv) ? SIZE_MAX : n * sizeof(jv));
		r = jv_list(x->a);
		for (k = 0; k < n; k++)   /* a + k s, which lies in [a, b), computed without overflow */
			jl_push(x->a, r.l, jv_int((long long)((unsigned long long)a + k * (unsigned long long)s)));
		return r;
	}
	case FN_NAMESPACE:
	case FN_DICT:
		r = jv_dict(x->a);
		if (fn.fn == FN_NAMESPACE)
			r.t = JV_NS;
		for (i = 0; i < npos; i++) {
			int j;
			if (args[i].t != JV_DICT)
				jx_fail(x, "%s takes keyword arguments or a dict", fn.fn == FN_DICT ? "dict" : "namespace");
			for (j = 0; j < args[i].d->n; j++)
				jd_set(x->a, r.d, args[i].d->k[j], args[i].d->v[j]);
		}
		for (i = 0; i < nkw; i++)
			jd_set(x->a, r.d, jv_cstr(x->a, kw[i]), args[npos + i]);
		return r;
	case FN_STRFTIME: {
		char b[256];
		time_t now = time(NULL);
		struct tm tm;
		if (npos != 1 || args[0].t != JV_STR)
			jx_fail(x, "strftime_now takes a format string");
		localtime_r(&now, &tm);
		b[strftime(b, sizeof b, args[0].s.p, &tm)] = 0;
		return jv_cstr(x->a, b);
	}
	}
	jx_fail(x, "unknown function");
}
