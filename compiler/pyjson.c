/* pyjson.c: JSON text exactly as Python's json.dump(obj, f, indent=4)
 * writes it, which is how mlx-lm saves config.json and the shard index:
 * keys in the object's order, ", " never (an indented dump separates items
 * with "," and a newline), floats as Python's repr (the shortest digits
 * that read back to the same double: 1e-05, 50000.0), non-ASCII as \uXXXX. */
#define _GNU_SOURCE
#include "pyjson.h"
#include "build.h"
#include "../runtime/rt.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void py_float(Buf *b, double x)
{
	if (isnan(x)) {
		bprintf(b, "NaN");
		return;
	}
	if (isinf(x)) {
		bprintf(b, x < 0 ? "-Infinity" : "Infinity");
		return;
	}
	/* the shortest correctly rounded digits that read back as x */
	char e[40];
	int p = 1;
	for (; p < 17; p++) {
		snprintf(e, sizeof e, "%.*e", p - 1, x);
		if (strtod(e, NULL) == x)
			break;
	}
	snprintf(e, sizeof e, "%.*e", p - 1, x);
	char digits[20];
	int n = 0, neg = e[0] == '-';
	const char *s = e + neg;
	for (; *s && *s != 'e'; s++)
		if (*s != '.')
			digits[n++] = *s;
	while (n > 1 && digits[n - 1] == '0')
		n--;
	digits[n] = 0;
	int decpt = atoi(s + 1) + 1;        /* x = 0.DIGITS * 10^decpt */
	if (neg)
		bput(b, "-", 1);
	if (decpt > 16 || decpt < -3) {
		bprintf(b, "%c", digits[0]);
		if (n > 1)
			bprintf(b, ".%s", digits + 1);
		bprintf(b, "e%c%02d", decpt - 1 < 0 ? '-' : '+', abs(decpt - 1));
	} else if (decpt <= 0) {
		bprintf(b, "0.%.*s%s", -decpt, "0000", digits);
	} else if (decpt < n) {
		bprintf(b, "%.*s.%s", decpt, digits, digits + decpt);
	} else {
		bprintf(b, "%s%.*s.0", digits, decpt - n, "0000000000000000");
	}
}

static void py_string(Buf *b, const char *s)
{
	bput(b, "\"", 1);
	const unsigned char *u = (const unsigned char *)s;
	while (*u) {
		unsigned c = *u++;
		int more = c >= 0xf0 ? 3 : c >= 0xe0 ? 2 : c >= 0xc0 ? 1 : 0;
		if (c >= 0x80) {
			c &= 0x3f >> more;
			for (int i = 0; i < more && (*u & 0xc0) == 0x80; i++)
				c = c << 6 | (*u++ & 0x3f);
		}
		if (c == '"' || c == '\\')
			bprintf(b, "\\%c", c);
		else if (c == '\n')
			bprintf(b, "\\n");
		else if (c == '\r')
			bprintf(b, "\\r");
		else if (c == '\t')
			bprintf(b, "\\t");
		else if (c == '\b')
			bprintf(b, "\\b");
		else if (c == '\f')
			bprintf(b, "\\f");
		else if (c >= 0x10000)
			bprintf(b, "\\u%04x\\u%04x", 0xd800 + ((c - 0x10000) >> 10),
			        0xdc00 + ((c - 0x10000) & 0x3ff));
		else if (c < 0x20 || c > 0x7e)
			bprintf(b, "\\u%04x", c);
		else
			bprintf(b, "%c", c);
	}
	bput(b, "\"", 1);
}

static void indent(Buf *b, int depth)
{
	bput(b, "\n", 1);
	for (int i = 0; i < depth; i++)
		bput(b, "    ", 4);
}

void py_json(Buf *b, json_object *o, int depth)
{
	if (depth > 64) {
		bprintf(b, "null");    /* cfg.c bounds nesting long before this */
		return;
	}
	switch (json_object_get_type(o)) {
	case json_type_null:
		bprintf(b, "null");
		break;
	case json_type_boolean:
		bprintf(b, json_object_get_boolean(o) ? "true" : "false");
		break;
	case json_type_int:
		bprintf(b, "%lld", (long long)json_object_get_int64(o));
		break;
	case json_type_double:
		py_float(b, json_object_get_double(o));
		break;
	case json_type_string:
		py_string(b, json_object_get_string(o));
		break;
	case json_type_array: {
		size_t n = json_object_array_length(o);
		bput(b, "[", 1);
		for (size_t i = 0; i < n; i++) {
			indent(b, depth + 1);
			py_json(b, json_object_array_get_idx(o, i), depth + 1);
			if (i + 1 < n)
				bput(b, ",", 1);
		}
		if (n)
			indent(b, depth);
		bput(b, "]", 1);
		break;
	}
	case json_type_object: {
		int n = json_object_object_length(o), i = 0;
		bput(b, "{", 1);
		json_object_object_foreach(o, k, v) {
			indent(b, depth + 1);
			py_string(b, k);
			bput(b, ": ", 2);
			py_json(b, v, depth + 1);
			if (++i < n)
				bput(b, ",", 1);
		}
		if (n)
			indent(b, depth);
		bput(b, "}", 1);
		break;
	}
	}
}

void py_json_file(const char *dir, const char *name, json_object *o)
{
	Buf text = {0};
	py_json(&text, o, 0);
	char *path = lm_path(dir, name);
	write_text(path, text.s);
	free(path);
	free(text.s);
}
