/* serve.h: `lmcc serve` and a built program's --serve: the OpenAI API over
 * HTTP (serve.c), its request and response objects (serve_api.c), and the
 * worker that owns the model and reuses prompt caches (seq.c). */
#ifndef LM_SERVE_H
#define LM_SERVE_H
#include <stdint.h>
#include "lmcc.h"
#include "sample.h"

typedef struct {
	const char *host, *api_key;
	int port, parallel;
	long cache_bytes;
	/* from the RUN OPTIONS: the model, and every request's defaults */
	const char *weights, *adapter, *template;
	long ctx, threads, gen;
	lm_sampler samp;
	uint64_t seed;
	char **stop;
	int nstop;
} lm_serve_opts;

/* Serve until SIGINT or SIGTERM; returns the exit status. */
int lm_serve(const lm_model *m, const lm_serve_opts *o);
#endif
