/* cfg.c: checked access to config.json (see cfg.h). */
#include "cfg.h"
#include "../runtime/rt.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

Cfg cfg_load(const char *path)
{
	size_t len;
	char *text = lm_read_text(path, &len);
	if (!text)
		lm_fail(path, "cannot open: %s", strerror(errno));
	json_tokener *tok = json_tokener_new();
	json_object *volatile root = NULL;    /* volatile: read after a longjmp */
	/* a config that fails frees what it read: the C API and the fuzzer
	 * read many in one process */
	lm_err err;
	if (lm_catch(&err)) {
		json_tokener_free(tok);
		free(text);
		json_object_put(root);
		lm_err_raise(&err);
	}
	root = json_tokener_parse_ex(tok, text, (int)len);
	enum json_tokener_error e = json_tokener_get_error(tok);
	if (!root || e != json_tokener_success) {
		/* count lines up to where the parser stopped */
		size_t at = json_tokener_get_parse_end(tok), line = 1;
		for (size_t i = 0; i < at && i < len; i++)
			line += text[i] == '\n';
		lm_fail(path, "line %zu: not valid JSON: %s", line,
		        json_tokener_error_desc(e == json_tokener_success ? json_tokener_error_parse_eof : e));
	}
	/* json-c stops at the end of the first value: what follows, other
	 * than white space, is not part of the config and must not be ignored */
	size_t end = json_tokener_get_parse_end(tok), line = 1;
	for (size_t i = 0; i < end && i < len; i++)
		line += text[i] == '\n';
	for (; end < len; end++) {
		if (text[end] == '\n')
			line++;
		else if (!strchr(" \t\r", text[end]))
			lm_fail(path, "line %zu: data after the JSON object", line);
	}
	if (!json_object_is_type(root, json_type_object))
		lm_fail(path, "not a JSON object");
	lm_err_pop(&err);
	json_tokener_free(tok);
	free(text);
	Cfg c = {.file = path, .log = lm_alloc(sizeof(CfgLog)), .root = root, .obj = root};
	return c;
}

void cfg_free(Cfg *c)
{
	for (int i = 0; i < c->log->n; i++) {
		free(c->log->path[i]);
		json_object_put(c->log->val[i]);
		json_object_put(c->log->dflt[i]);
	}
	free(c->log->path);
	free(c->log->val);
	free(c->log->dflt);
	free(c->log);
	json_object_put(c->root);
}

/* Log a read of key (value v) whose default is dflt (owned here). */
static void log_read(Cfg *c, const char *key, json_object *v, json_object *dflt)
{
	CfgLog *l = c->log;
	char path[192];
	snprintf(path, sizeof path, "%s%s", c->prefix, key);
	for (int i = 0; i < l->n; i++)
		if (!strcmp(l->path[i], path)) {
			json_object_put(dflt);
			return;
		}
	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 64;
		l->path = lm_realloc(l->path, l->cap * sizeof *l->path);
		l->val = lm_realloc(l->val, l->cap * sizeof *l->val);
		l->dflt = lm_realloc(l->dflt, l->cap * sizeof *l->dflt);
	}
	l->path[l->n] = lm_strdup(path);
	l->dflt[l->n] = dflt;
	l->val[l->n++] = json_object_get(v);
}

void cfg_error(Cfg *c, const char *key, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	lm_fail(c->file, "field '%s%s': %s", c->prefix, key, msg);
}

/* Every read of a field comes here, and is logged; an object entered is
 * not (the fields read inside it are), unless it is absent. */
static json_object *peek(Cfg *c, const char *key)
{
	json_object *v;
	if (!json_object_object_get_ex(c->obj, key, &v))
		return NULL;
	return v;     /* NULL too when the value is JSON null */
}

static json_object *get_or(Cfg *c, const char *key, json_object *dflt)
{
	json_object *v = peek(c, key);
	log_read(c, key, v, dflt);
	return v;
}

static json_object *get(Cfg *c, const char *key)
{
	return get_or(c, key, NULL);
}

json_object *cfg_get(Cfg *c, const char *key)
{
	return get(c, key);
}

/* A short rendering of a bad value for the message. */
static const char *shown(json_object *v)
{
	static char buf[48];
	const char *s = json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN);
	snprintf(buf, sizeof buf, "%.40s%s", s, strlen(s) > 40 ? "..." : "");
	return buf;
}

const char *cfg_shown(Cfg *c, const char *key)
{
	json_object *v = peek(c, key);
	return v ? shown(v) : "null";
}

int cfg_enter(Cfg *c, const char *key, int required)
{
	json_object *v = peek(c, key);
	if (!v) {
		log_read(c, key, v, NULL);
		if (required)
			cfg_error(c, key, "missing");
		return 0;
	}
	if (!json_object_is_type(v, json_type_object))
		cfg_error(c, key, "expected an object, got %s", shown(v));
	size_t n = strlen(c->prefix);
	snprintf(c->prefix + n, sizeof c->prefix - n, "%s.", key);
	c->obj = v;
	return 1;
}

int cfg_has(Cfg *c, const char *key)
{
	return get(c, key) != NULL;
}

/* JSON integers, and floats with an integral value (2.0), are integers. */
static int as_long(json_object *v, long *out)
{
	if (json_object_is_type(v, json_type_int)) {
		errno = 0;
		int64_t x = json_object_get_int64(v);
		if (errno)
			return 0;
		*out = (long)x;
		return 1;
	}
	if (json_object_is_type(v, json_type_double)) {
		double d = json_object_get_double(v);
		if (d == floor(d) && fabs(d) < 9e15) {
			*out = (long)d;
			return 1;
		}
	}
	return 0;
}

long cfg_int(Cfg *c, const char *key, long lo, long hi, long dflt)
{
	json_object *v = get_or(c, key, dflt == CFG_REQ ? NULL : json_object_new_int64(dflt));
	long x;
	if (!v) {
		if (dflt == CFG_REQ)
			cfg_error(c, key, "missing");
		return dflt;
	}
	if (!as_long(v, &x) || x < lo || x > hi)
		cfg_error(c, key, "expected an integer in [%ld, %ld], got %s", lo, hi, shown(v));
	return x;
}

double cfg_num(Cfg *c, const char *key, double lo, double hi, double dflt)
{
	json_object *v = get_or(c, key, dflt == CFG_REQ_NUM ? NULL : json_object_new_double(dflt));
	if (!v) {
		if (dflt == CFG_REQ_NUM)
			cfg_error(c, key, "missing");
		return dflt;
	}
	if (!json_object_is_type(v, json_type_int) && !json_object_is_type(v, json_type_double))
		cfg_error(c, key, "expected a number in [%g, %g], got %s", lo, hi, shown(v));
	double x = json_object_get_double(v);
	if (!(x >= lo && x <= hi))
		cfg_error(c, key, "expected a number in [%g, %g], got %s", lo, hi, shown(v));
	return x;
}

int cfg_bool(Cfg *c, const char *key, int dflt)
{
	json_object *v = get_or(c, key, json_object_new_boolean(dflt));
	long x;
	if (!v)
		return dflt;
	if (json_object_is_type(v, json_type_boolean))
		return json_object_get_boolean(v);
	if (as_long(v, &x) && (x == 0 || x == 1))
		return (int)x;
	cfg_error(c, key, "expected true or false, got %s", shown(v));
}

const char *cfg_str(Cfg *c, const char *key, const char *dflt)
{
	json_object *v = get_or(c, key, dflt ? json_object_new_string(dflt) : NULL);
	if (!v)
		return dflt;
	if (!json_object_is_type(v, json_type_string))
		cfg_error(c, key, "expected a string, got %s", shown(v));
	/* "afm7\u0000..." would read as its prefix */
	if (strlen(json_object_get_string(v)) != (size_t)json_object_get_string_len(v))
		cfg_error(c, key, "the string contains a NUL character");
	return json_object_get_string(v);
}

int cfg_ints(Cfg *c, const char *key, long lo, long hi, long *out, int max,
             int allow_scalar)
{
	json_object *v = get(c, key);
	long x;
	if (!v)
		return -1;
	if (allow_scalar && as_long(v, &x)) {
		if (x < lo || x > hi)
			cfg_error(c, key, "expected an integer in [%ld, %ld], got %s", lo, hi, shown(v));
		out[0] = x;
		return 1;
	}
	if (!json_object_is_type(v, json_type_array))
		cfg_error(c, key, "expected a list of integers, got %s", shown(v));
	int n = (int)json_object_array_length(v);
	if (n > max)
		cfg_error(c, key, "more than %d entries", max);
	for (int i = 0; i < n; i++) {
		json_object *e = json_object_array_get_idx(v, i);
		if (!e || !as_long(e, &x) || x < lo || x > hi)
			cfg_error(c, key, "entry %d: expected an integer in [%ld, %ld], got %s", i, lo, hi,
			          e ? shown(e) : "null");
		out[i] = x;
	}
	return n;
}
