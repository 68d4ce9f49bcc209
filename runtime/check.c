/* check.c: a program runs only the checkpoint of the model it was built
 * for (mlx-lm loads with strict=True).  The checkpoint's config.json must
 * agree with every field the program baked in, and every tensor of the
 * checkpoint must be bound by the model or be one the architecture's
 * reference drops. */
#define _GNU_SOURCE
#include "rt.h"

#include <errno.h>
#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The value at a dotted path ("text_config.head_dim"), NULL if absent. */
static json_object *at(json_object *o, const char *path)
{
	char key[192];
	while (o && *path) {
		size_t n = strcspn(path, ".");
		if (n >= sizeof key || !json_object_is_type(o, json_type_object))
			return NULL;
		memcpy(key, path, n);
		key[n] = 0;
		if (!json_object_object_get_ex(o, key, &o))
			return NULL;
		path += n + (path[n] == '.');
	}
	return o;
}

static int is_num(json_object *v)
{
	return json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double)
	       || json_object_is_type(v, json_type_boolean);
}

/* Equal as values: 5e4 is 50000.0, true is 1 (the readers take both). */
static int same(json_object *a, json_object *b, int depth)
{
	if (!a || !b)
		return !a && !b;
	if (depth > 32)
		return 0;
	if (is_num(a) && is_num(b)) {
		if (json_object_is_type(a, json_type_int) && json_object_is_type(b, json_type_int))
			return json_object_get_int64(a) == json_object_get_int64(b);
		return json_object_get_double(a) == json_object_get_double(b);
	}
	json_type t = json_object_get_type(a);
	if (t != json_object_get_type(b))
		return 0;
	if (t == json_type_string)
		return !strcmp(json_object_get_string(a), json_object_get_string(b));
	if (t == json_type_array) {
		size_t n = json_object_array_length(a);
		if (n != json_object_array_length(b))
			return 0;
		for (size_t i = 0; i < n; i++)
			if (!same(json_object_array_get_idx(a, i), json_object_array_get_idx(b, i), depth + 1))
				return 0;
		return 1;
	}
	if (t == json_type_object) {
		if (json_object_object_length(a) != json_object_object_length(b))
			return 0;
		json_object_object_foreach(a, k, va) {
			json_object *vb;
			if (!json_object_object_get_ex(b, k, &vb) || !same(va, vb, depth + 1))
				return 0;
		}
		return 1;
	}
	return 1;   /* null */
}

static const char *shown(json_object *v, char *buf, size_t n)
{
	if (!v)
		return "absent";
	const char *s = json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN);
	snprintf(buf, n, "%.40s%s", s, strlen(s) > 40 ? "..." : "");
	return buf;
}

static json_object *parse(const char *text)
{
	return text ? json_tokener_parse(text) : NULL;
}

void lm_check_config(const lm_model *m, const char *dir)
{
	if (!m->config)
		return;
	char *path = lm_path(dir, "config.json");
	/* volatile: freed after a longjmp, as the C API goes on after it */
	json_object *volatile root = NULL, *volatile want = NULL, *volatile dflt = NULL;
	lm_err e;
	if (lm_catch(&e)) {
		json_object_put(root);
		json_object_put(want);
		json_object_put(dflt);
		free(path);
		lm_err_raise(&e);
	}
	size_t len;
	char *text = lm_read_file(path, &len);
	if (!text)
		lm_fail(path, "cannot open: %s (the checkpoint's config must be %s's)",
		        strerror(errno), m->name);
	root = json_tokener_parse(text);
	free(text);
	if (!root || !json_object_is_type(root, json_type_object))
		lm_fail(path, "not a JSON object");
	for (const char *const *f = m->config; f[0]; f += 3) {
		want = parse(f[1]);
		dflt = parse(f[2]);
		json_object *got = at(root, f[0]);
		if (got && json_object_is_type(got, json_type_null))
			got = NULL;
		json_object *w = want ? want : dflt, *g = got ? got : dflt;
		if (!same(w, g, 0)) {
			char a[48], b[48];
			lm_fail(path, "field '%s' is %s here, %s in the model this program was built "
			        "for (%s): a checkpoint of another model; build it again for this one",
			        f[0], shown(got, a, sizeof a), shown(want, b, sizeof b), m->name);
		}
		json_object_put(want);
		json_object_put(dflt);
		want = dflt = NULL;
	}
	lm_err_pop(&e);
	json_object_put(root);
	free(path);
}

void lm_check_tensors(const lm_model *m, lm_ckpt *ck)
{
	const char *first, *file;
	long n = lm_ck_unused(ck, m->drops, &first, &file);
	if (n)
		lm_fail(file, "tensor '%s'%s is not part of %s (%s): a checkpoint of another "
		        "model, or a config that does not describe it", first,
		        n > 1 ? lm_name(" (and %ld more)", n - 1) : "", m->name,
		        m->arch ? m->arch : "?");
}
