/* test_jinja: renders a chat template with a JSON context, to stdout.
 *
 *   test_jinja TEMPLATE.jinja CONTEXT.json
 *   test_jinja -r N TEMPLATE.jinja CONTEXT.json
 *
 * tests/suite_tok.sh compares the output byte for byte with renderings
 * made once by Python's jinja2 (tests/tokenizers/chat/make_expected.py).
 * With -r it renders N times, each failure caught as the server and the
 * C API catch it, and prints how many failed and how many MB the process
 * grew after the first render: a failed render must leak nothing. */
#include "text/jinja.h"
#include "rt.h"
#include "harness.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void render_often(int repeat, const char *name, const char *src, struct json_object *ctx)
{
	volatile int i, failed = 0;
	volatile long base = 0;
	for (i = 0; i < repeat; i++) {
		lm_err e;
		if (i == 1)
			base = resident_mb();
		if (lm_catch(&e)) {
			failed++;
			continue;
		}
		free(lm_jinja_render(name, src, ctx));
		lm_err_pop(&e);
	}
	printf("failed %d grew %ld\n", failed, resident_mb() - base);
}

int main(int argc, char **argv)
{
	size_t n;
	char *src, *out;
	struct json_object *ctx;
	int repeat = 0;
	if (argc == 5 && strcmp(argv[1], "-r") == 0) {
		repeat = atoi(argv[2]);
		argv += 2;
		argc -= 2;
	}
	if (argc != 3) {
		fprintf(stderr, "usage: test_jinja [-r N] TEMPLATE CONTEXT.json\n");
		return 2;
	}
	src = lm_read_file(argv[1], &n);
	if (!src)
		lm_fail(argv[1], "cannot read");
	ctx = json_object_from_file(argv[2]);
	if (!ctx)
		lm_fail(argv[2], "cannot read JSON");
	if (repeat) {
		render_often(repeat, argv[1], src, ctx);
	} else {
		out = lm_jinja_render(argv[1], src, ctx);
		fwrite(out, 1, strlen(out), stdout);
		free(out);
	}
	free(src);
	json_object_put(ctx);
	return 0;
}
