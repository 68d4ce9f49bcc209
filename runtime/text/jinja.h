/* jinja.h: renders chat templates, a subset of Jinja2 as Hugging Face uses
 * it (trim_blocks and lstrip_blocks on, no autoescape, loop controls, the
 * tojson of transformers, raise_exception, strftime_now).
 *
 * Supported: {{ }}, {% if/elif/else %}, {% for %} with loop.* and else,
 * {% set %} (names, namespace attributes, blocks), {% macro %} and calls,
 * {% break %}/{% continue %}, {% generation %}, comments, whitespace
 * control; expressions with Python's operators, literals, attribute and
 * item access, slices; the filters, tests and methods of jinja_lib.c.
 * Anything else fails with a message naming the construct and the line. */
#ifndef LM_JINJA_H
#define LM_JINJA_H

#include <stddef.h>

struct json_object;

/* Renders SRC with the variables of CTX (a JSON object: messages,
 * add_generation_prompt, bos_token...).  NAME names the template in error
 * messages (lm_fail, exit 2).  Returns malloc'd text. */
char *lm_jinja_render(const char *name, const char *src, struct json_object *ctx);

/* The budget of one render: what the largest real conversations need many
 * times over, and far below what would exhaust a machine.  A render that
 * needs more (a runaway loop, a string doubling itself) fails naming the
 * template and the limit. */
#define LM_JINJA_MAX_BYTES ((size_t)512 << 20)
#define LM_JINJA_MAX_STEPS 100000000LL
char *lm_jinja_render_limited(const char *name, const char *src, struct json_object *ctx,
			      size_t max_bytes, long long max_steps);

#endif
