/* api.c: the C API of lmcc_api.h.  Each call runs the same code as the
 * command line under an lm_err, so that lm_fail returns here with its
 * message instead of exiting. */
#define _GNU_SOURCE
#include "lmcc_api.h"
#include "rt.h"
#include "sample.h"
#include "text/tok.h"

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

struct lm_session {
	const lm_model *m;
	lm_loaded w;
	lm_tok *tok;                 /* opened when first needed */
	char *weights;
	float *logits;
	long ctx, pos;
};

static int failed(lm_status *st, const lm_err *e)
{
	if (st) {
		st->code = e->code;
		snprintf(st->msg, sizeof st->msg, "%s", e->msg);
	}
	return e->code;
}

static int ok(lm_status *st)
{
	if (st) {
		st->code = LM_OK;
		st->msg[0] = 0;
	}
	return LM_OK;
}

/* Run the rest of the calling function under an lm_err; on an error,
 * return its status from there. */
#define TRY(st)                                          \
	lm_err err_;                                     \
	if (lm_catch(&err_))                             \
		return failed(st, &err_)
#define DONE(st) (lm_err_pop(&err_), ok(st))

int lm_session_open(lm_session **out, const lm_model *m, const char *weights_dir,
                    long ctx, lm_status *st)
{
	*out = NULL;
	TRY(st);
	const char *volatile w = weights_dir ? weights_dir : m->weights;   /* volatile: set before a setjmp below */
	if (!w)
		lm_fail(NULL, "no checkpoint: the model was not built from one; give weights_dir");
	if (ctx < 1 || ctx > 1L << 24)
		lm_fail(NULL, "ctx %ld is not in [1, 2^24]", ctx);
	if (m->max_ctx && ctx > m->max_ctx)
		lm_fail(NULL, "ctx %ld is past the model's %ld positions (%s)", ctx, m->max_ctx,
		        m->max_ctx_field ? m->max_ctx_field : "its position limit");
	lm_session *s = lm_alloc(sizeof *s);
	lm_err e;
	if (lm_catch(&e)) {
		lm_session_free(s);
		lm_err_raise(&e);
	}
	s->m = m;
	s->ctx = ctx;
	s->weights = lm_strdup(w);
	/* a model built with an adapter binds the one it was built with */
	lm_load(&s->w, m, w, m->adapter, ctx);
	m->reset();               /* a model opened before is at position 0 again */
	s->logits = lm_floats((size_t)m->vocab);
	lm_err_pop(&e);
	*out = s;
	return DONE(st);
}

void lm_session_free(lm_session *s)
{
	if (!s)
		return;
	lm_tok_free(s->tok);
	lm_unload(&s->w);
	free(s->logits);
	free(s->weights);
	free(s);
}

long lm_session_vocab(const lm_session *s)
{
	return s->m->vocab;
}

int lm_session_feed(lm_session *s, const int *ids, long n, lm_status *st)
{
	TRY(st);
	if (n < 1)
		lm_fail(NULL, "feed: no tokens");
	for (long i = 0; i < n; i++)
		if (ids[i] < 0 || ids[i] >= s->m->vocab)
			lm_fail(NULL, "feed: token %ld: id %d is not in [0, %ld)", i, ids[i], s->m->vocab);
	if (s->pos + n > s->ctx)
		lm_fail(NULL, "feed: %ld tokens would be longer than the context of %ld",
		        s->pos + n, s->ctx);
	s->m->forward(ids, n, s->logits, 0);
	s->pos += n;
	return DONE(st);
}

const float *lm_session_logits(const lm_session *s)
{
	return s->logits;
}

void lm_session_reset(lm_session *s)
{
	s->m->reset();
	s->pos = 0;
}

int lm_session_sample(lm_session *s, float temp, float top_p, long top_k,
                      uint64_t *rng, int *id, lm_status *st)
{
	TRY(st);
	if (!s->pos)
		lm_fail(NULL, "sample: nothing fed yet");
	if (!(top_p > 0 && top_p <= 1) || top_k < 0 || !(temp >= 0 && temp <= 1e6))
		lm_fail(NULL, "sample: temp %g, top_p %g or top_k %ld out of range", temp, top_p, top_k);
	lm_sampler sm = {.temp = temp, .top_p = top_p, .top_k = top_k};
	*id = lm_sample(s->logits, s->m->vocab, &sm, rng);
	return DONE(st);
}

static lm_tok *tokenizer(lm_session *s)
{
	if (!s->tok && !(s->tok = lm_tok_open(s->weights)))
		lm_fail(s->weights, "no tokenizer (tokenizer.json, tokenizer.model, tiktoken.model or tokenizer.jsonl)");
	return s->tok;
}

int lm_session_tokenize(lm_session *s, const char *text, int add_bos, int **ids,
                        long *n, lm_status *st)
{
	TRY(st);
	*n = lm_tok_encode(tokenizer(s), text, strlen(text), add_bos, ids);
	return DONE(st);
}

int lm_session_detokenize(lm_session *s, const int *ids, long n, char **text,
                          lm_status *st)
{
	TRY(st);
	if (n < 0 || n > INT_MAX)
		lm_fail(NULL, "detokenize: %ld ids", n);
	*text = lm_tok_decode(tokenizer(s), ids, (int)n, NULL);
	return DONE(st);
}

int lm_session_is_eos(lm_session *s, int id)
{
	lm_err err_;
	if (lm_catch(&err_))
		return 0;
	int r = lm_tok_is_eos(tokenizer(s), id, 0);
	lm_err_pop(&err_);
	return r;
}

/* ---- the JIT path ---- */

static void run(char *const argv[])
{
	pid_t pid = fork();
	if (pid < 0)
		lm_bug("fork: %s", strerror(errno));
	if (pid == 0) {
		execvp(argv[0], argv);
		fprintf(stderr, "lmcc: cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	int ws;
	if (waitpid(pid, &ws, 0) < 0)
		lm_bug("waitpid: %s", strerror(errno));
	if (!WIFEXITED(ws) || WEXITSTATUS(ws))
		lm_fail(NULL, "%s failed (status %d)", argv[0], WIFEXITED(ws) ? WEXITSTATUS(ws) : -1);
}

/* lmcc's lmcc.h: beside it in the source tree, or PREFIX/include/lmcc. */
static char *include_dir(const char *lmcc)
{
	char *exe = realpath(lmcc, NULL);
	if (!exe) {
		/* a bare name: find it on PATH */
		const char *path = getenv("PATH");
		char buf[PATH_MAX];
		while (path && *path && !exe) {
			size_t n = strcspn(path, ":");
			snprintf(buf, sizeof buf, "%.*s/%s", (int)n, path, lmcc);
			if (!access(buf, X_OK))
				exe = realpath(buf, NULL);
			path += n + (path[n] == ':');
		}
	}
	if (!exe)
		lm_fail(lmcc, "cannot find lmcc (set LMCC to its path)");
	*strrchr(exe, '/') = 0;
	char *tree = lm_path(exe, "runtime/lmcc.h"), *inc;
	if (!access(tree, R_OK))
		inc = lm_path(exe, "runtime");
	else
		inc = lm_path(exe, "../include/lmcc");
	free(tree);
	free(exe);
	return inc;
}

/* tmp/model.so, compiled by tcc from what lmcc emits of model_dir into
 * tmp, loaded. */
static void *compile(const char *lmcc, const char *model_dir, const char *inc, char *tmp,
                     char *src, char *so)
{
	run((char *[]){(char *)lmcc, "emit", (char *)model_dir, "-o", tmp, NULL});
	run((char *[]){"tcc", "-shared", "-DLMCC_LIBRARY", "-I", (char *)inc, "-o", so, src, NULL});
	void *h = dlopen(so, RTLD_NOW | RTLD_LOCAL);
	if (!h)
		lm_fail(model_dir, "cannot load the compiled model: %s", dlerror());
	return h;
}

/* model_dir compiled and loaded, through a directory of $TMPDIR (or /tmp)
 * that goes whether it compiles or not: a loaded object needs no file. */
static void *jit(const char *lmcc, const char *model_dir)
{
	const char *dir = getenv("TMPDIR");
	char *volatile inc = include_dir(lmcc);   /* volatile: read after a longjmp */
	char tmp[PATH_MAX];
	snprintf(tmp, sizeof tmp, "%s/lmcc-jit-XXXXXX", dir && *dir ? dir : "/tmp");
	if (!mkdtemp(tmp)) {
		free(inc);
		lm_bug("mkdtemp %s: %s", tmp, strerror(errno));
	}
	char *src = lm_path(tmp, "model.c"), *so = lm_path(tmp, "model.so");
	void *h = NULL;
	int bad = 0;
	lm_err e;
	if (lm_catch(&e)) {
		bad = 1;
	} else {
		h = compile(lmcc, model_dir, inc, tmp, src, so);
		lm_err_pop(&e);
	}
	unlink(src);
	unlink(so);
	rmdir(tmp);
	free(src);
	free(so);
	free(inc);
	if (bad)
		lm_err_raise(&e);
	return h;
}

int lm_open_dir(const char *model_dir, const lm_model **m, lm_status *st)
{
	*m = NULL;
	TRY(st);
	const char *lmcc = getenv("LMCC");
	void *h = jit(lmcc && *lmcc ? lmcc : "lmcc", model_dir);
	const lm_model *(*get)(void) = (const lm_model *(*)(void))dlsym(h, "lm_this_model");
	if (!get)
		lm_bug("the compiled model has no lm_this_model");
	*m = get();
	return DONE(st);
}
