/* srv.h: what the server's three files share (serve.h is the outside).
 *
 * A request becomes a Job.  An HTTP thread parses it (serve_api.c), queues
 * it, and then either waits for it to finish (the whole response at once)
 * or streams its events as they come; the one worker thread (seq.c) owns
 * the model and runs up to --parallel jobs at once.  A job's output is a byte buffer the
 * worker appends to and the HTTP thread sends from, under the job's lock. */
#ifndef LM_SRV_H
#define LM_SRV_H
#include <pthread.h>
#include <stddef.h>
#include "sample.h"
#include "serve.h"
#include "text/tok.h"

typedef struct Job Job;
struct Job {
	/* the request */
	int chat;                /* /v1/chat/completions, else /v1/completions */
	int stream, include_usage;
	int return_ids;          /* return_token_ids (as vLLM has it) */
	int *ids;                /* the prompt */
	long n;
	long mark;               /* ids[0, mark): up to the end of the last
	                          * message (a chat), or 0 */
	long max;                /* most tokens to generate */
	lm_sampler samp;
	int *bias_id;
	float *bias;
	uint64_t seed;
	char **stop;
	int nstop;
	char id[48];             /* "chatcmpl-..." */
	long created;
	/* the result, under mu */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	char *out;               /* bytes for the client */
	size_t nout, sent, cap;
	char *text;              /* the reply's text so far (not streamed) */
	size_t ntext;
	int *gen;                /* the ids generated (return_token_ids) */
	long ngen;
	int done, cancelled, refs;
	Job *next;               /* the queue */
};

/* The server's shared state. */
typedef struct {
	const lm_model *m;
	const lm_serve_opts *o;
	const char *name;
	long ctx, choose;        /* context; ids [0, choose) may be generated */
	pthread_mutex_t mu;      /* the queue, the counters */
	pthread_cond_t cv;
	Job *head, *tail;
	long queued;
	volatile int quit;
	/* counters for /metrics */
	long requests, in_flight, prompt_tokens, cached_tokens, gen_tokens, errors;
	double prompt_s, gen_s;
	long cache_bytes, cache_hits, cache_snaps;
	long steps, step_rows;   /* batched steps (of more than one sequence), their rows */
} Srv;

/* ---- serve_api.c: requests and responses ---- */

/* Parse a request body into j (ids included, through tok, which the
 * caller holds alone).  0 on success; else *status and *err get the
 * OpenAI error (err malloc'd JSON). */
int api_parse(Srv *s, lm_tok *tok, int chat, const char *body, size_t len, Job *j,
              int *status, char **err);
/* An OpenAI error object, malloc'd. */
char *api_error(const char *message, const char *type, const char *param, const char *code);
/* Output events of a job (the worker calls these; they lock j->mu). */
void api_delta(Job *j, const char *name, const char *text, size_t len);
void api_finish(Job *j, const char *name, const char *text, size_t len, const char *finish,
                long prompt, long cached, long completion);
void job_put(Job *j, const char *s, size_t n);   /* append bytes, wake the sender */
void job_free(Job *j);

/* ---- seq.c: the worker ---- */
void *seq_worker(void *srv);
#endif
