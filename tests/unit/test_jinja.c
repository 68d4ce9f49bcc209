/* test_jinja: renders a chat template with a JSON context, to stdout.
 *
 *   test_jinja TEMPLATE.jinja CONTEXT.json
 *
 * tests/suite_tok.sh compares the output byte for byte with renderings
 * made once by Python's jinja2 (tests/tokenizers/chat/make_expected.py). */
#include "text/jinja.h"
#include "rt.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
	size_t n;
	char *src, *out;
	struct json_object *ctx;
	if (argc != 3) {
		fprintf(stderr, "usage: test_jinja TEMPLATE CONTEXT.json\n");
		return 2;
	}
	src = lm_read_file(argv[1], &n);
	if (!src)
		lm_fail(argv[1], "cannot read");
	ctx = json_object_from_file(argv[2]);
	if (!ctx)
		lm_fail(argv[2], "cannot read JSON");
	out = lm_jinja_render(argv[1], src, ctx);
	fwrite(out, 1, strlen(out), stdout);
	free(out);
	free(src);
	json_object_put(ctx);
	return 0;
}
