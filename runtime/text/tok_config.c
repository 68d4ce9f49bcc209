/* tok_config.c: what the JSON files beside a tokenizer say about it.
 *
 *   config.json            eos_token_id (int or list; also under
 *                          text_config), bos_token_id, model_type
 *   tokenizer_config.json  added_tokens_decoder (split out of the text;
 *                          they rename pieces, as Baichuan's do),
 *                          add_bos_token, bos_token, eos_token,
 *                          chat_template, tokenizer_class
 *   special_tokens_map.json  bos_token, eos_token
 *   special_tokens.json    the test assets' table: "tokens" {text: id},
 *                          "bos", "eos", "eot", "chat_eos", "config_json"
 *   chat_template.jinja    the chat template, when not in the config */
#include "tok_int.h"

#include <json-c/json.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct json_object *json_load(const char *path)
{
	size_t len, end, i;
	char *text = lm_read_text(path, &len);
	struct json_tokener *tk;
	struct json_object *o;
	int line = 1;
	if (!text)
		return NULL;
	if (len > INT32_MAX) {
		free(text);
		lm_fail(path, "file too large for JSON");
	}
	tk = json_tokener_new_ex(64);
	o = json_tokener_parse_ex(tk, text, (int)len);
	end = json_tokener_get_parse_end(tk);
	if (o)          /* white space may follow the value, nothing else */
		while (end < len && strchr(" \t\r\n", text[end]))
			end++;
	if (!o || end < len) {
		enum json_tokener_error e = json_tokener_get_error(tk);
		for (i = 0; i < end && i < len; i++)
			line += text[i] == '\n';
		json_tokener_free(tk);
		free(text);
		if (o)
			json_object_put(o);
		lm_fail(path, "line %d: bad JSON (%s)", line,
			o ? "text after the value"
			: e == json_tokener_continue ? "unexpected end of file"
			: json_tokener_error_desc(e));
	}
	json_tokener_free(tk);
	free(text);
	return o;
}

const char *json_str(struct json_object *o, const char *key)
{
	struct json_object *v;
	if (o && json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string))
		return json_object_get_string(v);
	return NULL;
}

int json_id(struct json_object *v)
{
	int64_t id;
	if (!v || !json_object_is_type(v, json_type_int))
		return -1;
	id = json_object_get_int64(v);   /* get_int would clamp 2^40 to 2^31 - 1 */
	return id >= 0 && id < TOK_MAX_IDS ? (int)id : -1;
}

const char *json_token_text(struct json_object *o)
{
	if (!o)
		return NULL;
	if (json_object_is_type(o, json_type_string))
		return json_object_get_string(o);
	return json_str(o, "content");
}

static struct json_object *get(struct json_object *o, const char *key)
{
	struct json_object *v;
	if (o && json_object_is_type(o, json_type_object) && json_object_object_get_ex(o, key, &v))
		return v;
	return NULL;
}

/* The JSON object in the tokenizer's directory's file NAME, or NULL; held
 * by T (tok_hold). */
static struct json_object *load_in(lm_tok *t, const char *name)
{
	char *p = tok_hold(t, lm_path(t->dir, name), free);
	struct json_object *o = json_load(p);
	if (o)
		tok_hold(t, o, tok_put_json);
	if (o && !json_object_is_type(o, json_type_object))
		lm_fail(p, "expected a JSON object");
	tok_drop(t, p);
	return o;
}

int config_family_hint(const char *dir, char *mt, size_t cap)
{
	char *p = lm_path(dir, "config.json");
	struct json_object *c = json_load(p), *tc;
	const char *s;
	free(p);
	if (!c)
		return 0;
	s = json_str(c, "model_type");
	if (!s && (tc = get(c, "text_config")))
		s = json_str(tc, "model_type");
	if (s)
		snprintf(mt, cap, "%s", s);
	json_object_put(c);
	return s != NULL;
}

/* An id field: an int, or a list of ints, appended to IDS. */
static void add_ids(lm_tok *t, const char *file, struct json_object *v, tok_ints *ids)
{
	size_t i;
	if (!v || json_object_is_type(v, json_type_null))
		return;
	if (json_object_is_type(v, json_type_int)) {
		if (json_id(v) < 0)
			lm_fail(file, "eos_token_id: %s is not a token id", json_object_get_string(v));
		ints_push(ids, json_id(v));
		return;
	}
	if (!json_object_is_type(v, json_type_array))
		lm_fail(file, "eos_token_id: expected an int or a list of ints");
	for (i = 0; i < json_object_array_length(v); i++) {
		struct json_object *e = json_object_array_get_idx(v, i);
		if (!json_object_is_type(e, json_type_int))
			lm_fail(file, "eos_token_id[%zu]: expected an int", i);
		if (json_id(e) < 0)
			lm_fail(file, "eos_token_id[%zu]: %s is not a token id", i, json_object_get_string(e));
		ints_push(ids, json_id(e));
	}
}

static void set_text(char **dst, const char *s)
{
	if (s && !*dst)
		*dst = lm_strdup(s);
}

/* The id a token text names: a special token, else a model piece. */
static int text_id(const lm_tok *t, const char *s)
{
	int id;
	if (!s || !*s)
		return -1;
	id = vocab_find_special(t, s);
	return id >= 0 ? id : map_get(&t->text, t, s, strlen(s));
}

static void add_eot(lm_tok *t, const char *s)
{
	int id = text_id(t, s);
	if (id >= 0)
		ints_push(&t->eot, id);
}

static void read_tokenizer_config(lm_tok *t, const char *file, struct json_object *tc)
{
	struct json_object *atd = get(tc, "added_tokens_decoder"), *v;
	const char *cls = json_str(tc, "tokenizer_class");
	if (atd) {
		if (!json_object_is_type(atd, json_type_object))
			lm_fail(file, "added_tokens_decoder: expected an object");
		json_object_object_foreach(atd, key, val) {
			char *end;
			long id = strtol(key, &end, 10);
			const char *text = json_str(val, "content");
			if (*end || end == key || id < 0 || id >= TOK_MAX_IDS)
				lm_fail(file, "added_tokens_decoder: key '%s' is not an id", key);
			if (!text)
				lm_fail(file, "added_tokens_decoder[%ld]: no content", id);
			vocab_special(t, (int)id, text, strlen(text), 1);
		}
	}
	if ((v = get(tc, "add_bos_token")) && json_object_is_type(v, json_type_boolean))
		t->add_bos = json_object_get_boolean(v);
	if (json_token_text(get(tc, "bos_token"))) {
		free(t->bos_text);
		t->bos_text = NULL;
		set_text(&t->bos_text, json_token_text(get(tc, "bos_token")));
	}
	set_text(&t->eos_text, json_token_text(get(tc, "eos_token")));
	add_eot(t, json_token_text(get(tc, "eos_token")));
	if (cls && strcmp(cls, "NewlineTokenizer") == 0) {
		t->newline_tok = 1;
		hf_newline_rule(t);
	}
	v = get(tc, "chat_template");
	if (v && json_object_is_type(v, json_type_string)) {
		set_text(&t->chat_template, json_object_get_string(v));
	} else if (v && json_object_is_type(v, json_type_array)) {
		/* [{"name": ..., "template": ...}]: the "default" one, else the first. */
		size_t i;
		for (i = 0; i < json_object_array_length(v); i++) {
			struct json_object *e = json_object_array_get_idx(v, i);
			const char *name = json_str(e, "name");
			if (name && strcmp(name, "default") == 0)
				set_text(&t->chat_template, json_str(e, "template"));
		}
		if (json_object_array_length(v))
			set_text(&t->chat_template, json_str(json_object_array_get_idx(v, 0), "template"));
	}
	if (t->chat_template && !t->template_name)
		t->template_name = lm_strdup(file);
}

static void read_special_tokens(lm_tok *t, const char *file, struct json_object *st)
{
	struct json_object *tokens = get(st, "tokens");
	if (tokens) {
		if (!json_object_is_type(tokens, json_type_object))
			lm_fail(file, "tokens: expected an object");
		json_object_object_foreach(tokens, key, val) {
			int id = json_id(val);
			if (id < 0)
				lm_fail(file, "tokens[\"%s\"]: expected an id below 2^24", key);
			vocab_special(t, id, key, strlen(key), 1);
		}
	}
	if (json_str(st, "bos")) {
		free(t->bos_text);
		t->bos_text = lm_strdup(json_str(st, "bos"));
	}
	set_text(&t->eos_text, json_str(st, "eos"));
	add_eot(t, json_str(st, "eot"));
	add_eot(t, json_str(st, "chat_eos"));
}

void config_load(lm_tok *t)
{
	static const char *const EOT_NAMES[] = {
		"<|eot|>", "<|eot_id|>", "<|im_end|>", "<turn_end>",
	};
	struct json_object *st = load_in(t, "special_tokens.json");
	struct json_object *tc = load_in(t, "tokenizer_config.json");
	struct json_object *sm = load_in(t, "special_tokens_map.json");
	struct json_object *cf = load_in(t, "config.json");
	struct json_object *ids_src = cf;
	char *st_path = tok_hold(t, lm_path(t->dir, "special_tokens.json"), free);
	char *cf_path = tok_hold(t, lm_path(t->dir, "config.json"), free);
	unsigned i;
	char *p;

	if (st)
		read_special_tokens(t, st_path, st);
	if (tc) {
		p = tok_hold(t, lm_path(t->dir, "tokenizer_config.json"), free);
		read_tokenizer_config(t, p, tc);
		tok_drop(t, p);
	}
	if (sm) {
		set_text(&t->bos_text, json_token_text(get(sm, "bos_token")));
		set_text(&t->eos_text, json_token_text(get(sm, "eos_token")));
	}
	if (!t->chat_template) {
		size_t n;
		p = lm_path(t->dir, "chat_template.jinja");
		t->chat_template = lm_read_text(p, &n);
		if (t->chat_template)
			t->template_name = p;
		else
			free(p);
	}

	/* Kimi names only some of its 256 + 2 special ids; the others are
	 * <|reserved_token_{id}|> (tokenization_kimi.py). */
	if (strcmp(t->family, "kimi") == 0) {
		int id;
		for (id = t->n_base; id < t->n_base + 258; id++) {
			if (id >= t->n || !t->piece[id].special) {
				char name[48];
				snprintf(name, sizeof name, "<|reserved_token_%d|>", id);
				vocab_special(t, id, name, strlen(name), 1);
			}
		}
	}

	/* Stop ids: config.json, or the assets' copy of it. */
	if (!cf && st)
		ids_src = get(st, "config_json");
	/* generation_config.json's eos_token_id replaces config.json's, when
	 * it is there and not 0 or [] (utils.py load_config) */
	struct json_object *gen = load_in(t, "generation_config.json");
	struct json_object *eos_src = gen ? get(gen, "eos_token_id") : NULL;
	char *gen_path = tok_hold(t, lm_path(t->dir, "generation_config.json"), free);
	if (eos_src && (json_object_is_type(eos_src, json_type_int) ? !json_object_get_int64(eos_src)
	                : json_object_is_type(eos_src, json_type_array) && !json_object_array_length(eos_src)))
		eos_src = NULL;
	if (eos_src && !ids_src)
		add_ids(t, gen_path, eos_src, &t->eos);
	if (ids_src) {
		const char *f = cf ? cf_path : st_path;
		struct json_object *v = get(ids_src, "bos_token_id"), *txt = get(ids_src, "text_config");
		add_ids(t, eos_src ? gen_path : f, eos_src ? eos_src : get(ids_src, "eos_token_id"), &t->eos);
		if (txt)
			add_ids(t, f, get(txt, "eos_token_id"), &t->eos);
		if (!v && txt)
			v = get(txt, "bos_token_id");
		if (t->bos < 0 && t->bos_text)
			t->bos = text_id(t, t->bos_text);
		if (t->bos < 0)
			t->bos = json_id(v);
	}
	if (t->bos < 0 && t->bos_text)
		t->bos = text_id(t, t->bos_text);
	if (t->bos >= t->n)
		t->bos = -1;    /* AFM's config names id 153600, past the vocabulary */
	if (t->eos.n == 0 && st)
		add_ids(t, st_path, get(st, "stop_ids"), &t->eos);
	if (t->eos.n == 0 && t->eos_text && text_id(t, t->eos_text) >= 0)
		ints_push(&t->eos, text_id(t, t->eos_text));
	if (t->eos.n == 0 && vocab_find_special(t, "</s>") >= 0)
		ints_push(&t->eos, vocab_find_special(t, "</s>"));   /* SentencePiece's default */
	if (!t->eos_text && t->eos.n && t->eos.p[0] >= 0 && t->eos.p[0] < t->n
	    && t->piece[t->eos.p[0]].special)
		t->eos_text = lm_strdup(special_text(t, t->eos.p[0]));
	if (!t->bos_text && t->bos >= 0 && t->piece[t->bos].special)
		t->bos_text = lm_strdup(special_text(t, t->bos));

	/* End of turn, for chat: the family's, and the usual names. */
	if (t->eot_name)
		add_eot(t, t->eot_name);
	for (i = 0; i < sizeof EOT_NAMES / sizeof *EOT_NAMES; i++)
		if (vocab_find_special(t, EOT_NAMES[i]) >= 0)
			add_eot(t, EOT_NAMES[i]);

	tok_drop(t, st_path);
	tok_drop(t, cf_path);
	tok_drop(t, gen_path);
	tok_drop(t, gen);
	tok_drop(t, st);
	tok_drop(t, tc);
	tok_drop(t, sm);
	tok_drop(t, cf);
}
