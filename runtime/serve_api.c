/* serve_api.c: the OpenAI API's objects: a request's JSON checked field by
 * field into a Job, and the responses (whole, or as server-sent events)
 * built as OpenAI sends them.
 *
 * Every field of a request is untrusted: its type and range are checked
 * and a bad one is a 400 naming it, before anything reaches the model. */
#define _GNU_SOURCE
#include "rt.h"
#include "srv.h"

#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_STOPS = 16, MAX_STOP_LEN = 256, MAX_BIAS = 1024, MAX_MESSAGES = 4096,
       TEXT_MAX_NEW = 512 };

static const int JSON_FLAGS = JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE;

char *api_error(const char *message, const char *type, const char *param, const char *code)
{
	json_object *e = json_object_new_object(), *root = json_object_new_object();
	json_object_object_add(e, "message", json_object_new_string(message));
	json_object_object_add(e, "type", json_object_new_string(type));
	json_object_object_add(e, "param", param ? json_object_new_string(param) : NULL);
	json_object_object_add(e, "code", code ? json_object_new_string(code) : NULL);
	json_object_object_add(root, "error", e);
	char *s = lm_strdup(json_object_to_json_string_ext(root, JSON_FLAGS));
	json_object_put(root);
	return s;
}

/* ---- reading a request ---- */

typedef struct {
	int status;
	char msg[256];
	const char *param, *code;
} Err;

static int bad(Err *e, const char *param, const char *fmt, const char *what)
{
	e->status = 400;
	e->param = param;
	snprintf(e->msg, sizeof e->msg, fmt, what);
	return 0;
}

static int is_num(json_object *v)
{
	return json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double);
}

/* An optional number field in [lo, hi]: 1 when absent or good. */
static int num(json_object *o, const char *k, double lo, double hi, double *out, Err *e)
{
	json_object *v;
	if (!json_object_object_get_ex(o, k, &v) || !v)
		return 1;
	if (!is_num(v))
		return bad(e, k, "'%s' must be a number", k);
	double x = json_object_get_double(v);
	if (!(x >= lo && x <= hi)) {
		e->status = 400;
		e->param = k;
		snprintf(e->msg, sizeof e->msg, "'%s' must be in [%g, %g]", k, lo, hi);
		return 0;
	}
	*out = x;
	return 1;
}

static int integer(json_object *o, const char *k, long lo, long hi, long *out, Err *e)
{
	json_object *v;
	if (!json_object_object_get_ex(o, k, &v) || !v)
		return 1;
	int ok = json_object_is_type(v, json_type_int);
	if (!ok && json_object_is_type(v, json_type_double)) {
		double x = json_object_get_double(v);
		ok = x == floor(x) && fabs(x) < 1e15;
	}
	if (!ok)
		return bad(e, k, "'%s' must be an integer", k);
	int64_t i = json_object_get_int64(v);
	if (i < lo || i > hi) {
		e->status = 400;
		e->param = k;
		snprintf(e->msg, sizeof e->msg, "'%s' must be in [%ld, %ld]", k, lo, hi);
		return 0;
	}
	*out = (long)i;
	return 1;
}

static int boolean(json_object *o, const char *k, int *out, Err *e)
{
	json_object *v;
	if (!json_object_object_get_ex(o, k, &v) || !v)
		return 1;
	if (!json_object_is_type(v, json_type_boolean))
		return bad(e, k, "'%s' must be true or false", k);
	*out = json_object_get_boolean(v);
	return 1;
}

static char *dup_str(json_object *v)
{
	size_t n = json_object_get_string_len(v);
	char *s = lm_alloc(n + 1);
	memcpy(s, json_object_get_string(v), n);
	return s;
}

static int stops(json_object *o, Job *j, Err *e)
{
	json_object *v;
	if (!json_object_object_get_ex(o, "stop", &v) || !v)
		return 1;
	int one = json_object_is_type(v, json_type_string);
	if (!one && !json_object_is_type(v, json_type_array))
		return bad(e, "stop", "'%s' must be a string or an array of strings", "stop");
	int n = one ? 1 : (int)json_object_array_length(v);
	if (n > MAX_STOPS)
		return bad(e, "stop", "'%s' takes at most 16 strings", "stop");
	j->stop = lm_alloc((n + 1) * sizeof *j->stop);
	for (int i = 0; i < n; i++) {
		json_object *s = one ? v : json_object_array_get_idx(v, i);
		if (!json_object_is_type(s, json_type_string))
			return bad(e, "stop", "'%s' must be a string or an array of strings", "stop");
		if (json_object_get_string_len(s) > MAX_STOP_LEN)
			return bad(e, "stop", "a '%s' string is longer than 256 bytes", "stop");
		if (json_object_get_string_len(s))
			j->stop[j->nstop++] = dup_str(s);
	}
	return 1;
}

static int biases(Srv *s, json_object *o, Job *j, Err *e)
{
	json_object *v;
	if (!json_object_object_get_ex(o, "logit_bias", &v) || !v)
		return 1;
	if (!json_object_is_type(v, json_type_object))
		return bad(e, "logit_bias", "'%s' must be an object of token ids to numbers", "logit_bias");
	int n = json_object_object_length(v), k = 0;
	if (n > MAX_BIAS)
		return bad(e, "logit_bias", "'%s' takes at most 1024 tokens", "logit_bias");
	j->bias_id = lm_alloc((n + 1) * sizeof(int));
	j->bias = lm_alloc((n + 1) * sizeof(float));
	json_object_object_foreach(v, key, val) {
		char *end;
		long id = strtol(key, &end, 10);
		if (!*key || *end || id < 0 || id >= s->m->vocab)
			return bad(e, "logit_bias", "'%s' keys must be token ids of the model", "logit_bias");
		if (!is_num(val) || !(fabs(json_object_get_double(val)) <= 1e6))
			return bad(e, "logit_bias", "'%s' values must be numbers", "logit_bias");
		j->bias_id[k] = (int)id;
		j->bias[k++] = (float)json_object_get_double(val);
	}
	j->samp.nbias = k;
	j->samp.bias_id = j->bias_id;
	j->samp.bias = j->bias;
	return 1;
}

/* The sampling fields of both endpoints, over the server's defaults. */
static int sampling(Srv *s, json_object *o, Job *j, Err *e)
{
	double temp = j->samp.temp, top_p = j->samp.top_p, min_p = j->samp.min_p;
	double pres = j->samp.presence_penalty, freq = j->samp.frequency_penalty;
	double rep = j->samp.repeat_penalty;
	long top_k = j->samp.top_k, seed = (long)(j->seed & 0x7fffffffffffffff), n = 1;
	long max = s->o->gen >= 0 ? s->o->gen : TEXT_MAX_NEW;
	if (!num(o, "temperature", 0, 1e6, &temp, e) || !num(o, "top_p", 0, 1, &top_p, e)
	    || !num(o, "min_p", 0, 1, &min_p, e) || !integer(o, "top_k", 0, 1L << 30, &top_k, e)
	    || !num(o, "presence_penalty", -1e6, 1e6, &pres, e)
	    || !num(o, "frequency_penalty", -1e6, 1e6, &freq, e)
	    || !num(o, "repetition_penalty", 1e-6, 1e6, &rep, e)
	    || !integer(o, "seed", -(1L << 62), 1L << 62, &seed, e)
	    || !integer(o, "n", 1, 1, &n, e)
	    || !integer(o, "max_tokens", 0, 1L << 24, &max, e)
	    || !integer(o, "max_completion_tokens", 0, 1L << 24, &max, e)
	    || !boolean(o, "stream", &j->stream, e) || !boolean(o, "return_token_ids", &j->return_ids, e)
	    || !stops(o, j, e) || !biases(s, o, j, e))
		return 0;
	json_object *so;
	if (json_object_object_get_ex(o, "stream_options", &so) && so) {
		if (!json_object_is_type(so, json_type_object))
			return bad(e, "stream_options", "'%s' must be an object", "stream_options");
		if (!boolean(so, "include_usage", &j->include_usage, e))
			return 0;
	}
	j->samp.temp = (float)temp;
	j->samp.top_p = (float)top_p;
	j->samp.min_p = (float)min_p;
	j->samp.top_k = top_k;
	j->samp.presence_penalty = (float)pres;
	j->samp.frequency_penalty = (float)freq;
	j->samp.repeat_penalty = (float)rep;
	j->seed = (uint64_t)seed;
	j->max = max;
	return 1;
}

/* The text of a message's content: a string, or an array of text parts. */
static char *content(json_object *c, Err *e)
{
	if (!c)
		return lm_strdup("");
	if (json_object_is_type(c, json_type_string))
		return dup_str(c);
	if (!json_object_is_type(c, json_type_array))
		return bad(e, "messages", "a message's '%s' must be a string or an array of text parts",
		           "content"), NULL;
	size_t len = 0;
	char *s = lm_strdup("");
	for (size_t i = 0; i < json_object_array_length(c); i++) {
		json_object *p = json_object_array_get_idx(c, i), *t, *ty;
		if (!json_object_is_type(p, json_type_object)
		    || !json_object_object_get_ex(p, "type", &ty) || !json_object_is_type(ty, json_type_string)
		    || strcmp(json_object_get_string(ty), "text")
		    || !json_object_object_get_ex(p, "text", &t) || !json_object_is_type(t, json_type_string)) {
			free(s);
			return bad(e, "messages", "a %s part must be {\"type\": \"text\", \"text\": ...}",
			           "content"), NULL;
		}
		size_t n = json_object_get_string_len(t);
		s = lm_realloc(s, len + n + 1);
		memcpy(s + len, json_object_get_string(t), n);
		s[len += n] = 0;
	}
	return s;
}

/* Where the last message ends in the prompt's tokens, before the
 * generation prompt: a follow-up turn repeats the conversation to there,
 * while the generation prompt's last tokens may merge with the reply's. */
static void message_end(lm_tok *tok, const lm_chat_msg *m, int n, const char *text, Job *j)
{
	char *b = lm_tok_chat(tok, m, n, 0);
	size_t len = b ? strlen(b) : 0;
	if (b && len < strlen(text) && !strncmp(b, text, len)) {
		int *ids;
		long k = lm_tok_encode(tok, b, len, 0, &ids);
		if (k <= j->n && !memcmp(ids, j->ids, k * sizeof *ids))
			j->mark = k;
		free(ids);
	}
	free(b);
}

static int chat_prompt(json_object *o, lm_tok *tok, Job *j, Err *e)
{
	json_object *ms;
	if (!json_object_object_get_ex(o, "messages", &ms) || !json_object_is_type(ms, json_type_array))
		return bad(e, "messages", "'%s' must be an array of messages", "messages");
	int n = (int)json_object_array_length(ms);
	if (n < 1 || n > MAX_MESSAGES)
		return bad(e, "messages", "'%s' must hold 1 to 4096 messages", "messages");
	lm_chat_msg *m = lm_alloc(n * sizeof *m);
	int ok = 1, k;
	for (k = 0; k < n && ok; k++) {
		json_object *x = json_object_array_get_idx(ms, k), *r, *c = NULL;
		if (!json_object_is_type(x, json_type_object) || !json_object_object_get_ex(x, "role", &r)
		    || !json_object_is_type(r, json_type_string)) {
			ok = bad(e, "messages", "each of '%s' must be an object with a role", "messages");
			break;
		}
		const char *role = json_object_get_string(r);
		if (!strcmp(role, "developer"))
			role = "system";
		if (strcmp(role, "system") && strcmp(role, "user") && strcmp(role, "assistant")) {
			e->status = 400;
			e->param = "messages";
			snprintf(e->msg, sizeof e->msg, "unknown role '%.64s' (system, user or assistant)",
			         role);
			ok = 0;
			break;
		}
		json_object_object_get_ex(x, "content", &c);
		char *text = content(c, e);
		if (!text) {
			ok = 0;
			break;
		}
		m[k] = (lm_chat_msg){role, text};
	}
	/* the template or the tokenizer may raise: the messages are freed
	 * first (then api_parse frees the request), since the server goes on */
	lm_err fail;
	if (lm_catch(&fail)) {
		for (int i = 0; i < k; i++)
			free((char *)m[i].content);
		free(m);
		lm_err_raise(&fail);
	}
	if (ok) {
		char *text = lm_tok_chat(tok, m, n, 1);
		if (!text) {
			ok = bad(e, NULL, "the model has no chat template%s", "");
		} else {
			j->n = lm_tok_encode(tok, text, strlen(text), 0, &j->ids);
			message_end(tok, m, n, text, j);
			free(text);
		}
	}
	lm_err_pop(&fail);
	for (int i = 0; i < k; i++)
		free((char *)m[i].content);
	free(m);
	return ok;
}

static int text_prompt(Srv *s, json_object *o, lm_tok *tok, Job *j, Err *e)
{
	json_object *p;
	if (!json_object_object_get_ex(o, "prompt", &p) || !p)
		return bad(e, "prompt", "'%s' is required: a string or an array of token ids", "prompt");
	if (json_object_is_type(p, json_type_array) && json_object_array_length(p) == 1
	    && json_object_is_type(json_object_array_get_idx(p, 0), json_type_string))
		p = json_object_array_get_idx(p, 0);   /* a batch of one */
	if (json_object_is_type(p, json_type_string)) {
		j->n = lm_tok_encode(tok, json_object_get_string(p), json_object_get_string_len(p), 1,
		                     &j->ids);
		return 1;
	}
	if (!json_object_is_type(p, json_type_array))
		return bad(e, "prompt", "'%s' must be a string or an array of token ids", "prompt");
	long n = (long)json_object_array_length(p);
	if (n > s->ctx)
		n = s->ctx + 1;   /* too long either way; the length check says so */
	j->ids = lm_alloc((n + 1) * sizeof(int));
	for (long i = 0; i < n; i++) {
		json_object *x = json_object_array_get_idx(p, i);
		long id = -1;
		if (json_object_is_type(x, json_type_int))
			id = (long)json_object_get_int64(x);
		if (id < 0 || id >= s->choose)
			return bad(e, "prompt", "'%s' ids must be integers below the vocabulary size", "prompt");
		j->ids[i] = (int)id;
	}
	j->n = n;
	return 1;
}

int api_parse(Srv *s, lm_tok *tok, int chat, const char *body, size_t len, Job *j,
              int *status, char **err)
{
	Err e = {0};
	json_tokener *t = json_tokener_new_ex(64);
	json_object *o = json_tokener_parse_ex(t, body, (int)len);
	int ok = json_tokener_get_error(t) == json_tokener_success && o
	         && t->char_offset == (int)len;
	json_tokener_free(t);
	j->chat = chat;
	j->samp = s->o->samp;
	j->seed = s->o->seed;
	lm_err fail;
	if (lm_catch(&fail)) {
		if (o)
			json_object_put(o);
		lm_err_raise(&fail);
	}
	if (!ok)
		bad(&e, NULL, "the body is not valid JSON%s", "");
	else if (!json_object_is_type(o, json_type_object))
		ok = bad(&e, NULL, "the body must be a JSON object%s", "");
	else
		ok = sampling(s, o, j, &e) && (chat ? chat_prompt(o, tok, j, &e)
		                                    : text_prompt(s, o, tok, j, &e));
	if (ok && j->n == 0)
		ok = bad(&e, chat ? "messages" : "prompt", "the %s gives no tokens", "prompt");
	for (long i = 0; ok && i < j->n; i++)
		if (j->ids[i] >= s->m->vocab)
			ok = bad(&e, NULL, "the %s holds a token the model does not have", "prompt");
	if (ok && j->n > s->ctx) {
		e.status = 400;
		e.code = "context_length_exceeded";
		snprintf(e.msg, sizeof e.msg, "the prompt is %ld tokens, longer than the context "
		         "of %ld", j->n, s->ctx);
		ok = 0;
	}
	lm_err_pop(&fail);
	if (o)
		json_object_put(o);
	if (ok) {
		/* a request's stop strings replace the defaults (--stop) */
		if (!j->stop && s->o->nstop) {
			j->stop = lm_alloc((s->o->nstop + 1) * sizeof *j->stop);
			for (int i = 0; i < s->o->nstop; i++)
				j->stop[j->nstop++] = lm_strdup(s->o->stop[i]);
		}
		if (j->max > s->ctx - j->n + 1)
			j->max = s->ctx - j->n + 1;
		return 1;
	}
	*status = e.status;
	*err = api_error(e.msg, "invalid_request_error", e.param, e.code);
	return 0;
}

/* ---- writing responses ---- */

void job_put(Job *j, const char *s, size_t n)
{
	pthread_mutex_lock(&j->mu);
	if (j->nout + n + 1 > j->cap) {
		j->cap = 2 * (j->nout + n + 1);
		j->out = lm_realloc(j->out, j->cap);
	}
	memcpy(j->out + j->nout, s, n);
	j->nout += n;
	pthread_cond_broadcast(&j->cv);
	pthread_mutex_unlock(&j->mu);
}

static json_object *usage(long prompt, long cached, long completion)
{
	json_object *u = json_object_new_object(), *d = json_object_new_object();
	json_object_object_add(u, "prompt_tokens", json_object_new_int64(prompt));
	json_object_object_add(u, "completion_tokens", json_object_new_int64(completion));
	json_object_object_add(u, "total_tokens", json_object_new_int64(prompt + completion));
	json_object_object_add(d, "cached_tokens", json_object_new_int64(cached));
	json_object_object_add(u, "prompt_tokens_details", d);
	return u;
}

/* The frame of every object: id, object, created, model, choices. */
static json_object *frame(const Job *j, const char *name, const char *object,
                          json_object **choice)
{
	json_object *o = json_object_new_object(), *cs = json_object_new_array();
	json_object_object_add(o, "id", json_object_new_string(j->id));
	json_object_object_add(o, "object", json_object_new_string(object));
	json_object_object_add(o, "created", json_object_new_int64(j->created));
	json_object_object_add(o, "model", json_object_new_string(name));
	if (choice) {
		*choice = json_object_new_object();
		json_object_object_add(*choice, "index", json_object_new_int(0));
		json_object_array_add(cs, *choice);
	}
	json_object_object_add(o, "choices", cs);
	return o;
}

static void send_event(Job *j, json_object *o)
{
	const char *s = json_object_to_json_string_ext(o, JSON_FLAGS);
	job_put(j, "data: ", 6);
	job_put(j, s, strlen(s));
	job_put(j, "\n\n", 2);
	json_object_put(o);
}

/* One streamed chunk: text (the role alone when text is NULL, in a chat),
 * and the finish reason on the last. */
static void chunk(Job *j, const char *name, const char *text, size_t len, const char *finish)
{
	json_object *c, *o = frame(j, name, j->chat ? "chat.completion.chunk" : "text_completion", &c);
	json_object *t = json_object_new_string_len(text ? text : "", text ? (int)len : 0);
	if (j->chat) {
		json_object *d = json_object_new_object();
		if (!text && !finish)
			json_object_object_add(d, "role", json_object_new_string("assistant"));
		if (!finish)
			json_object_object_add(d, "content", t);
		else
			json_object_put(t);
		json_object_object_add(c, "delta", d);
	} else {
		json_object_object_add(c, "text", t);
	}
	json_object_object_add(c, "logprobs", NULL);
	json_object_object_add(c, "finish_reason", finish ? json_object_new_string(finish) : NULL);
	if (j->include_usage)
		json_object_object_add(o, "usage", NULL);
	send_event(j, o);
}

void api_delta(Job *j, const char *name, const char *text, size_t len)
{
	if (j->stream) {
		if (text && !len)
			return;
		chunk(j, name, text, len, NULL);
		return;
	}
	if (!text)
		return;
	j->text = lm_realloc(j->text, j->ntext + len + 1);
	memcpy(j->text + j->ntext, text, len);
	j->text[j->ntext += len] = 0;
}

void api_finish(Job *j, const char *name, const char *text, size_t len, const char *finish,
                long prompt, long cached, long completion)
{
	api_delta(j, name, text, len);
	if (j->stream) {
		chunk(j, name, "", 0, finish);
		if (j->include_usage) {
			json_object *o = frame(j, name, j->chat ? "chat.completion.chunk" : "text_completion", NULL);
			json_object_object_add(o, "usage", usage(prompt, cached, completion));
			send_event(j, o);
		}
		job_put(j, "data: [DONE]\n\n", 14);
		return;
	}
	json_object *c, *o = frame(j, name, j->chat ? "chat.completion" : "text_completion", &c);
	json_object *t = json_object_new_string_len(j->text ? j->text : "", (int)j->ntext);
	if (j->chat) {
		json_object *m = json_object_new_object();
		json_object_object_add(m, "role", json_object_new_string("assistant"));
		json_object_object_add(m, "content", t);
		json_object_object_add(c, "message", m);
	} else {
		json_object_object_add(c, "text", t);
	}
	json_object_object_add(c, "logprobs", NULL);
	json_object_object_add(c, "finish_reason", json_object_new_string(finish));
	if (j->return_ids) {
		json_object *a = json_object_new_array();
		for (long i = 0; i < j->ngen; i++)
			json_object_array_add(a, json_object_new_int(j->gen[i]));
		json_object_object_add(c, "token_ids", a);
	}
	json_object_object_add(o, "usage", usage(prompt, cached, completion));
	const char *s = json_object_to_json_string_ext(o, JSON_FLAGS);
	job_put(j, s, strlen(s));
	json_object_put(o);
}

void job_free(Job *j)
{
	free(j->ids);
	free(j->bias_id);
	free(j->bias);
	for (int i = 0; i < j->nstop; i++)
		free(j->stop[i]);
	free(j->stop);
	free(j->out);
	free(j->text);
	free(j->gen);
	pthread_mutex_destroy(&j->mu);
	pthread_cond_destroy(&j->cv);
	free(j);
}
