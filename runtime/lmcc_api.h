/* lmcc_api.h: a model lmcc compiled, as a library for another C program.
 *
 *   lmcc emit MODEL_DIR -o m && cc -c -DLMCC_LIBRARY -I<include>/lmcc m/model.c
 *   cc prog.c model.o $(pkg-config --cflags --libs lmcc)
 *
 * The model object (generated model.c compiled with LMCC_LIBRARY, which
 * leaves out its main) gives lm_this_model(); lm_open_dir() instead
 * compiles a model directory at run time with lmcc and tcc (the JIT path)
 * and loads it.  A session binds the model to a checkpoint and feeds it
 * tokens; it can sample, tokenize and detokenize with the checkpoint's
 * tokenizer.
 *
 * Errors: every function returns LM_OK (0) or the status the command line
 * would exit with (2: bad input, such as a checkpoint of another model or
 * a token past the vocabulary; 1: internal), and fills *st with the one
 * line the command line would print.  Nothing here exits the program.  A
 * failed open (of a model directory or a session) keeps nothing it had
 * made, as lm_session_free keeps nothing of its session.
 *
 * A generated model keeps its state in its object: one session per model
 * at a time. */
#ifndef LMCC_API_H
#define LMCC_API_H

#include <stddef.h>
#include <stdint.h>

#include "lmcc.h"

enum { LM_OK = 0, LM_ERR_INTERNAL = 1, LM_ERR_INPUT = 2 };

typedef struct {
	int code;
	char msg[512];
} lm_status;

typedef struct lm_session lm_session;

/* In a model object: its description. */
const lm_model *lm_this_model(void);
/* The JIT path: MODEL_DIR compiled now (lmcc, found as $LMCC or on PATH,
 * emits the C; tcc compiles it into a shared object in a directory of
 * $TMPDIR or /tmp, removed before it returns). */
int lm_open_dir(const char *model_dir, const lm_model **m, lm_status *st);

/* 0: the checkpoints opened next are read into the process's own memory
 * in 2 MB pages (as --no-mmap); 1 (the default): used from the files'
 * mapping. */
void lm_set_mmap(int on);
/* Bind m to the checkpoint in weights_dir (NULL: the one m was built
 * from), with caches for ctx tokens. */
int lm_session_open(lm_session **s, const lm_model *m, const char *weights_dir,
                    long ctx, lm_status *st);
void lm_session_free(lm_session *s);
long lm_session_vocab(const lm_session *s);
/* Feed n tokens at the current position; afterwards lm_session_logits()
 * gives the [vocab] logits after the last of them. */
int lm_session_feed(lm_session *s, const int *ids, long n, lm_status *st);
const float *lm_session_logits(const lm_session *s);
/* Forget every token fed: position 0 again. */
void lm_session_reset(lm_session *s);
/* The next token from the last logits: greedy when temp <= 0, else
 * sampled at temp within top_p (1: off) and top_k (0: off); *rng is the
 * generator's state. */
int lm_session_sample(lm_session *s, float temp, float top_p, long top_k,
                      uint64_t *rng, int *id, lm_status *st);
/* The checkpoint's tokenizer: *ids (free() it) of text; the text (free()
 * it) of ids. */
int lm_session_tokenize(lm_session *s, const char *text, int add_bos, int **ids,
                        long *n, lm_status *st);
int lm_session_detokenize(lm_session *s, const int *ids, long n, char **text,
                          lm_status *st);
/* Whether id ends a generation (the config's eos ids). */
int lm_session_is_eos(lm_session *s, int id);

#endif
