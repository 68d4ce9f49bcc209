/* jget: a value out of JSON, for the server's tests.
 *
 *   jget PATH [FILE]        the value at PATH of the JSON document
 *   jget --sse PATH [FILE]  the values at PATH of each "data: {...}" event
 *                           of a server-sent event stream, concatenated
 *                           (events without PATH add nothing)
 *
 * PATH is dot-separated keys and array indices (choices.0.delta.content).
 * Strings print raw, other values as JSON; a missing value prints nothing
 * and exits 1. */
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_object *at(json_object *o, const char *path)
{
	char *p = strdup(path), *save;
	for (char *k = strtok_r(p, ".", &save); k && o; k = strtok_r(NULL, ".", &save)) {
		json_object *next = NULL;
		if (json_object_is_type(o, json_type_array))
			next = json_object_array_get_idx(o, atoi(k));
		else if (!json_object_object_get_ex(o, k, &next))
			next = NULL;
		o = next;
	}
	free(p);
	return o;
}

static int show(json_object *o, const char *path)
{
	json_object *v = at(o, path);
	if (!v)
		return 0;
	if (json_object_is_type(v, json_type_string))
		fwrite(json_object_get_string(v), 1, json_object_get_string_len(v), stdout);
	else
		fputs(json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN), stdout);
	return 1;
}

int main(int argc, char **argv)
{
	int sse = argc > 1 && !strcmp(argv[1], "--sse");
	if (argc < 2 + sse) {
		fprintf(stderr, "usage: jget [--sse] PATH [FILE]\n");
		return 2;
	}
	FILE *f = argc > 2 + sse ? fopen(argv[2 + sse], "rb") : stdin;
	if (!f)
		return 2;
	size_t cap = 1 << 16, n = 0, got;
	char *b = malloc(cap);
	while ((got = fread(b + n, 1, cap - n - 1, f)) > 0)
		if ((n += got) + 1 == cap)
			b = realloc(b, cap *= 2);
	b[n] = 0;
	int found = 0;
	if (!sse) {
		json_object *o = json_tokener_parse(b);
		found = o && show(o, argv[1]);
	} else {
		for (char *line = strtok(b, "\n"); line; line = strtok(NULL, "\n")) {
			if (strncmp(line, "data: ", 6) || !strcmp(line + 6, "[DONE]"))
				continue;
			json_object *o = json_tokener_parse(line + 6);
			found |= o && show(o, argv[2]);
			json_object_put(o);
		}
	}
	return found ? 0 : 1;
}
