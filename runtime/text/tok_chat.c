/* tok_chat.c: a conversation through the model's chat template. */
#include "tok_int.h"
#include "jinja.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

static void add_token(struct json_object *ctx, const char *key, const char *text)
{
	if (text)
		json_object_object_add(ctx, key, json_object_new_string(text));
}

char *lm_tok_chat(lm_tok *t, const lm_chat_msg *msgs, int n, int add_generation_prompt)
{
	struct json_object *ctx, *list;
	char *out;
	int i;
	if (!t->chat_template)
		return NULL;
	/* The variables transformers' apply_chat_template passes. */
	ctx = json_object_new_object();
	list = json_object_new_array();
	for (i = 0; i < n; i++) {
		struct json_object *m = json_object_new_object();
		json_object_object_add(m, "role", json_object_new_string(msgs[i].role ? msgs[i].role : ""));
		json_object_object_add(m, "content", json_object_new_string(msgs[i].content ? msgs[i].content : ""));
		json_object_array_add(list, m);
	}
	json_object_object_add(ctx, "messages", list);
	json_object_object_add(ctx, "tools", NULL);
	json_object_object_add(ctx, "documents", NULL);
	json_object_object_add(ctx, "add_generation_prompt", json_object_new_boolean(add_generation_prompt));
	add_token(ctx, "bos_token", t->bos_text);
	add_token(ctx, "eos_token", t->eos_text);
	/* a template that raises: the conversation is freed first (the server
	 * goes on) */
	lm_err err;
	if (lm_catch(&err)) {
		json_object_put(ctx);
		lm_err_raise(&err);
	}
	out = lm_jinja_render(t->template_name ? t->template_name : t->path, t->chat_template, ctx);
	lm_err_pop(&err);
	json_object_put(ctx);
	return out;
}

void lm_tok_set_chat_template(lm_tok *t, const char *path)
{
	char *text = lm_read_text(path, NULL);
	if (!text)
		lm_fail(path, "cannot open the chat template: %s", strerror(errno));
	free(t->chat_template);
	free(t->template_name);
	t->chat_template = text;
	t->template_name = lm_strdup(path);
}
