/* serve.c: `lmcc serve` / --serve: HTTP through libmicrohttpd, routing,
 * the API key, the job queue, streaming, /metrics, and a clean stop on
 * SIGINT or SIGTERM.
 *
 * libmicrohttpd runs a thread per connection; these threads only read
 * requests, parse them (serve_api.c) and send what the one worker thread
 * (seq.c), which owns the model, produces.  The worker runs --parallel
 * requests at once; the others queue.  Every wait is bounded so that a stop request reaches every
 * thread, and a client that goes away mid-stream cancels its job: the
 * response's free callback runs when libmicrohttpd drops the connection. */
#define _GNU_SOURCE
#include "rt.h"
#include "srv.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { MAX_BODY = 8 << 20, MAX_QUEUE = 256, MAX_CONNECTIONS = 128, IDLE_TIMEOUT = 120 };

static Srv srv;
static lm_tok *tok;                 /* for the HTTP threads, under tok_mu */
static pthread_mutex_t tok_mu = PTHREAD_MUTEX_INITIALIZER;

typedef struct {
	char *body;
	size_t len, cap;
	int too_big;
} Conn;

static enum MHD_Result respond(struct MHD_Connection *c, unsigned status, const char *type,
                               const char *body, size_t len)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)body,
	                                                         MHD_RESPMEM_MUST_COPY);
	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, "Content-Type", type);
	enum MHD_Result ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result error(struct MHD_Connection *c, unsigned status, const char *msg,
                             const char *type, const char *code)
{
	char *e = api_error(msg, type, NULL, code);
	pthread_mutex_lock(&srv.mu);
	srv.errors++;
	pthread_mutex_unlock(&srv.mu);
	enum MHD_Result r = respond(c, status, "application/json", e, strlen(e));
	free(e);
	return r;
}

/* A wait on a job or the queue that wakes at least every tenth of a
 * second, to see a stop request. */
static void wait_a_little(pthread_cond_t *cv, pthread_mutex_t *mu)
{
	struct timespec t;
	clock_gettime(CLOCK_REALTIME, &t);
	t.tv_nsec += 100000000;
	if (t.tv_nsec >= 1000000000) {
		t.tv_sec++;
		t.tv_nsec -= 1000000000;
	}
	pthread_cond_timedwait(cv, mu, &t);
}

/* The HTTP side lets go of a job; a job not done by then is cancelled
 * (its client is gone). */
static void let_go(void *cls)
{
	Job *j = cls;
	pthread_mutex_lock(&j->mu);
	if (!j->done)
		j->cancelled = 1;
	int last = --j->refs == 0;
	pthread_mutex_unlock(&j->mu);
	if (last)
		job_free(j);
}

static ssize_t stream_out(void *cls, uint64_t pos, char *buf, size_t max)
{
	Job *j = cls;
	(void)pos;
	pthread_mutex_lock(&j->mu);
	while (j->sent == j->nout && !j->done && !srv.quit)
		wait_a_little(&j->cv, &j->mu);
	ssize_t n = MHD_CONTENT_READER_END_OF_STREAM;
	if (j->sent < j->nout) {
		n = (ssize_t)(j->nout - j->sent < max ? j->nout - j->sent : max);
		memcpy(buf, j->out + j->sent, n);
		j->sent += n;
	}
	pthread_mutex_unlock(&j->mu);
	return n;
}

static enum MHD_Result complete(struct MHD_Connection *c, int chat, const Conn *k)
{
	Job *j = lm_alloc(sizeof *j);
	pthread_mutex_init(&j->mu, NULL);
	pthread_cond_init(&j->cv, NULL);
	j->refs = 2;           /* this thread's and the worker's */
	int status = 400;
	char *err = NULL;
	volatile int ok = 0;
	lm_err fail;
	pthread_mutex_lock(&tok_mu);
	if (lm_catch(&fail)) {   /* the template or the tokenizer refused the request */
		status = fail.code == 2 ? 400 : 500;
		err = api_error(fail.msg, fail.code == 2 ? "invalid_request_error" : "server_error",
		                NULL, NULL);
	} else {
		ok = api_parse(&srv, tok, chat, k->body ? k->body : "", k->len, j, &status, &err);
		lm_err_pop(&fail);
	}
	pthread_mutex_unlock(&tok_mu);
	if (!ok) {
		pthread_mutex_lock(&srv.mu);
		srv.errors++;
		pthread_mutex_unlock(&srv.mu);
		enum MHD_Result r = respond(c, status, "application/json", err, strlen(err));
		free(err);
		job_free(j);
		return r;
	}
	pthread_mutex_lock(&srv.mu);
	int full = srv.queued >= MAX_QUEUE;
	if (!full) {
		static unsigned long serial;
		snprintf(j->id, sizeof j->id, "%s-%lx%04lx", chat ? "chatcmpl" : "cmpl",
		         (unsigned long)time(NULL), ++serial & 0xffff);
		j->created = (long)time(NULL);
		if (srv.tail)
			srv.tail->next = j;
		else
			srv.head = j;
		srv.tail = j;
		srv.queued++;
		srv.in_flight++;
		srv.requests++;
		pthread_cond_signal(&srv.cv);
	}
	pthread_mutex_unlock(&srv.mu);
	if (full) {
		job_free(j);
		return error(c, 503, "the server is busy: too many requests queued", "server_error", NULL);
	}
	if (j->stream) {
		struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096,
		                                                           stream_out, j, let_go);
		if (!r) {
			let_go(j);
			return MHD_NO;
		}
		MHD_add_response_header(r, "Content-Type", "text/event-stream");
		MHD_add_response_header(r, "Cache-Control", "no-cache");
		enum MHD_Result ret = MHD_queue_response(c, 200, r);
		MHD_destroy_response(r);
		return ret;
	}
	pthread_mutex_lock(&j->mu);
	while (!j->done && !srv.quit)
		wait_a_little(&j->cv, &j->mu);
	int done = j->done;
	pthread_mutex_unlock(&j->mu);
	enum MHD_Result r = done ? respond(c, 200, "application/json", j->out, j->nout)
	                         : error(c, 503, "the server is stopping", "server_error", NULL);
	let_go(j);
	return r;
}

static enum MHD_Result models(struct MHD_Connection *c)
{
	char b[512];
	int n = snprintf(b, sizeof b, "{\"object\":\"list\",\"data\":[{\"id\":\"%s\",\"object\":"
	                 "\"model\",\"created\":0,\"owned_by\":\"lmcc\"}]}", srv.name);
	return respond(c, 200, "application/json", b, n);
}

static enum MHD_Result metrics(struct MHD_Connection *c)
{
	char *b;
	size_t n;
	FILE *f = open_memstream(&b, &n);
	pthread_mutex_lock(&srv.mu);
	Srv s = srv;
	pthread_mutex_unlock(&srv.mu);
#define M(name, type, help, fmt, v) \
	fprintf(f, "# HELP lmcc_" name " " help "\n# TYPE lmcc_" name " " type "\nlmcc_" name " " fmt "\n", v)
	M("requests_total", "counter", "Completion requests accepted.", "%ld", s.requests);
	M("requests_in_flight", "gauge", "Requests queued or running.", "%ld", s.in_flight);
	M("errors_total", "counter", "Requests answered with an error.", "%ld", s.errors);
	M("prompt_tokens_total", "counter", "Prompt tokens of the requests run.", "%ld", s.prompt_tokens);
	M("prompt_tokens_cached_total", "counter", "Prompt tokens taken from the cache.", "%ld",
	  s.cached_tokens);
	M("generated_tokens_total", "counter", "Tokens generated.", "%ld", s.gen_tokens);
	M("prompt_tokens_per_second", "gauge", "Prompt tokens fed per second of prefill.", "%.3f",
	  s.prompt_s > 0 ? (s.prompt_tokens - s.cached_tokens) / s.prompt_s : 0.0);
	M("generated_tokens_per_second", "gauge", "Tokens generated per second of decoding.", "%.3f",
	  s.gen_s > 0 ? s.gen_tokens / s.gen_s : 0.0);
	M("cache_bytes", "gauge", "Bytes of prompt-cache snapshots kept.", "%ld", s.cache_bytes);
	M("cache_snapshots", "gauge", "Prompt-cache snapshots kept.", "%ld", s.cache_snaps);
	M("cache_hits_total", "counter", "Requests that reused cached prompt tokens.", "%ld",
	  s.cache_hits);
	M("batched_steps_total", "counter", "Decoding steps of several sequences together.", "%ld",
	  s.steps);
	M("batched_rows_total", "counter", "Sequences those steps decoded, summed.", "%ld",
	  s.step_rows);
#undef M
	fclose(f);
	enum MHD_Result r = respond(c, 200, "text/plain; version=0.0.4", b, n);
	free(b);
	return r;
}

/* Is the Authorization header "Bearer KEY"?  Compared in full, whatever
 * the first difference. */
static int authorised(struct MHD_Connection *c)
{
	const char *key = srv.o->api_key;
	if (!key)
		return 1;
	const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
	if (!h || strncmp(h, "Bearer ", 7))
		return 0;
	h += 7;
	size_t a = strlen(h), b = strlen(key);
	unsigned diff = a != b;
	for (size_t i = 0; i < a && i < b; i++)
		diff |= (unsigned char)(h[i] ^ key[i]);
	return !diff;
}

static enum MHD_Result route(void *cls, struct MHD_Connection *c, const char *url,
                             const char *method, const char *version, const char *upload,
                             size_t *upload_size, void **ptr)
{
	Conn *k = *ptr;
	(void)cls;
	(void)version;
	if (!k) {
		*ptr = lm_alloc(sizeof(Conn));
		return MHD_YES;
	}
	if (*upload_size) {
		if (k->len + *upload_size > MAX_BODY) {
			k->too_big = 1;
		} else if (!k->too_big) {
			if (k->len + *upload_size + 1 > k->cap) {
				k->cap = 2 * (k->len + *upload_size + 1);
				k->body = lm_realloc(k->body, k->cap);
			}
			memcpy(k->body + k->len, upload, *upload_size);
			k->len += *upload_size;
			k->body[k->len] = 0;
		}
		*upload_size = 0;
		return MHD_YES;
	}
	int get = !strcmp(method, "GET"), post = !strcmp(method, "POST");
	if (!strcmp(url, "/health"))
		return get ? respond(c, 200, "application/json", "{\"status\":\"ok\"}", 15)
		           : error(c, 405, "use GET", "invalid_request_error", NULL);
	if (!authorised(c))
		return error(c, 401, "missing or wrong API key (Authorization: Bearer KEY)",
		             "invalid_request_error", "invalid_api_key");
	int chat = !strcmp(url, "/v1/chat/completions"), text = !strcmp(url, "/v1/completions");
	if (k->too_big)
		return error(c, 413, "the request body is larger than 8 MB", "invalid_request_error", NULL);
	if (chat || text)
		return post ? complete(c, chat, k) : error(c, 405, "use POST", "invalid_request_error", NULL);
	if (!strcmp(url, "/v1/models"))
		return get ? models(c) : error(c, 405, "use GET", "invalid_request_error", NULL);
	if (!strcmp(url, "/metrics"))
		return get ? metrics(c) : error(c, 405, "use GET", "invalid_request_error", NULL);
	char msg[160];
	snprintf(msg, sizeof msg, "no such endpoint: %s %.100s", method, url);
	return error(c, 404, msg, "invalid_request_error", NULL);
}

static void done_conn(void *cls, struct MHD_Connection *c, void **ptr,
                      enum MHD_RequestTerminationCode toe)
{
	Conn *k = *ptr;
	(void)cls;
	(void)c;
	(void)toe;
	if (k) {
		free(k->body);
		free(k);
		*ptr = NULL;
	}
}

int lm_serve(const lm_model *m, const lm_serve_opts *o)
{
	if (o->parallel > m->maxb)
		lm_fail(NULL, "--parallel %d: this model steps at most %ld sequences together",
		        o->parallel, m->maxb);
	struct sockaddr_storage addr = {0};
	struct sockaddr_in *a4 = (struct sockaddr_in *)&addr;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&addr;
	const char *host = !strcmp(o->host, "localhost") ? "127.0.0.1" : o->host;
	int v6 = 0;
	if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		a4->sin_port = htons((uint16_t)o->port);
	} else if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((uint16_t)o->port);
		v6 = 1;
	} else {
		lm_fail(NULL, "--host: '%s' is not an IPv4 or IPv6 address", o->host);
	}
	tok = lm_tok_open(o->weights);
	if (!tok)
		lm_fail(o->weights, "no tokenizer (tokenizer.json, tokenizer.model, tiktoken.model "
		        "or tokenizer.jsonl): the server takes text");
	if (o->template)
		lm_tok_set_chat_template(tok, o->template);
	if (o->threads)
		lm_set_threads((int)o->threads);

	srv.m = m;
	srv.o = o;
	srv.name = m->name;
	srv.ctx = o->ctx ? o->ctx : 4096;
	srv.choose = lm_tok_n_vocab(tok) < m->vocab ? lm_tok_n_vocab(tok) : m->vocab;
	pthread_mutex_init(&srv.mu, NULL);
	pthread_cond_init(&srv.cv, NULL);
	double t0 = lm_now();
	lm_loaded w;
	lm_load(&w, m, o->weights, o->adapter, srv.ctx);
	double load = lm_now() - t0;

	/* SIGINT and SIGTERM are taken by sigwait below, in no other thread */
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	pthread_t worker;
	if (pthread_create(&worker, NULL, seq_worker, &srv))
		lm_bug("cannot start the worker thread");
	struct MHD_Daemon *d = MHD_start_daemon(
		MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | (v6 ? MHD_USE_IPv6 : 0),
		(uint16_t)o->port, NULL, NULL, route, NULL,
		MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
		MHD_OPTION_CONNECTION_LIMIT, (unsigned)MAX_CONNECTIONS,
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)IDLE_TIMEOUT,
		MHD_OPTION_NOTIFY_COMPLETED, done_conn, NULL,
		MHD_OPTION_END);
	if (!d)
		lm_fail(NULL, "--port: cannot listen on %s port %d: %s", o->host, o->port,
		        strerror(errno));
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	int port = info ? info->port : o->port;
	fprintf(stderr, "lmcc: %s: load %.3f s; context %ld; listening on http://%s%s%s:%d\n",
	        m->name, load, srv.ctx, v6 ? "[" : "", o->host, v6 ? "]" : "", port);
	fflush(stderr);

	int sig = 0;
	sigwait(&sigs, &sig);
	fprintf(stderr, "lmcc: %s: %s: stopping\n", m->name, sig == SIGINT ? "SIGINT" : "SIGTERM");
	pthread_mutex_lock(&srv.mu);
	srv.quit = 1;
	pthread_cond_broadcast(&srv.cv);
	pthread_mutex_unlock(&srv.mu);
	MHD_stop_daemon(d);
	pthread_join(worker, NULL);
	fprintf(stderr, "lmcc: %s: served %ld requests: %ld prompt tokens (%ld from the cache), "
	        "%ld generated\n", m->name, srv.requests, srv.prompt_tokens, srv.cached_tokens,
	        srv.gen_tokens);
	lm_tok_free(tok);
	lm_unload(&w);
	return 0;
}
