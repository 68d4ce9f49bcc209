/* stop.h: stop strings over streamed text (stop.c).
 *
 * Text arrives in pieces (one token's worth at a time); a stop string may
 * span pieces.  lm_stop_push returns only text that can no longer become
 * part of a stop string, so a stop string is never passed on, whole or in
 * part. */
#ifndef LM_STOP_H
#define LM_STOP_H
#include <stddef.h>

typedef struct {
	char **s;          /* the stop strings (empty ones are ignored) */
	int n;
	char *held;        /* text held back: a prefix of some stop string */
	size_t len, cap;
	char *out;         /* what the last push handed out */
	size_t ocap;
	int hit;           /* a stop string was completed */
} lm_stop;

/* An empty matcher stops nothing and holds nothing back. */
void lm_stop_init(lm_stop *st, char **stops, int n);
/* Add text; *out (valid until the next call) gets the text safe to pass
 * on, its length returned.  After a hit, the text before the stop string
 * is returned and everything later is dropped. */
size_t lm_stop_push(lm_stop *st, const char *text, size_t len, const char **out);
/* At the end without a hit: what is still held back, which is text. */
size_t lm_stop_flush(lm_stop *st, const char **out);
void lm_stop_free(lm_stop *st);
#endif
