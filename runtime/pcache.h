/* pcache.h: prompt caches on disk (pcache.c), --prompt-cache FILE.
 *
 * The file holds the model's fingerprint, the token ids of a prompt, the
 * logits after its last token and the model's whole state after it
 * (state.h).  A later run whose input starts with those ids continues from
 * that state and feeds only the rest. */
#ifndef LM_PCACHE_H
#define LM_PCACHE_H
#include <stdint.h>
#include "lmcc.h"

typedef struct { uint64_t config, weights, adapter; } lm_fp;

/* config.json's bytes, the checkpoint's lm_ck_fingerprint and the
 * adapter's (0 without one). */
lm_fp lm_fingerprint(const char *dir, const lm_ckpt *ck, const lm_ckpt *ad);
/* Continue from FILE if it exists: returns how many of tok[0, n) the
 * model's state now holds (0 when the file is absent or shares no usable
 * prefix: the state is then reset); when that is all n, *last gets the
 * logits after them.  A file of another model, another version or a
 * damaged one is lm_fail naming it. */
long lm_pcache_load(const char *path, lm_fp fp, lm_state *s, long vocab,
                    const int *tok, long n, float *last);
/* The count of token ids FILE holds, 0 if it is absent or unreadable
 * (lm_pcache_load says why). */
long lm_pcache_count(const char *path);
/* Write FILE (through a temporary file and a rename): tok[0, n), the
 * logits after them and the whole state, which must be after them. */
void lm_pcache_save(const char *path, lm_fp fp, const lm_state *s, long vocab,
                    const int *tok, long n, const float *last);
#endif
