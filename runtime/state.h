/* state.h: a model's state (lmcc.h's lm_state) copied out, back, and cut
 * back to a prefix (state.c).
 *
 * A snapshot is `whole` or not.  A whole snapshot holds everything: the
 * position and every cache and state.  A partial one leaves out what can
 * be cut back to any prefix (full and latent K/V caches), keeping only
 * their length: it is restored onto a model whose full caches already hold
 * at least that prefix of the same tokens, which are then cut to it.  A
 * partial snapshot costs only the fixed-size parts (rings, convolution,
 * SSM and delta-rule states), whatever the length. */
#ifndef LM_STATE_H
#define LM_STATE_H
#include <stddef.h>
#include "lmcc.h"

/* Frees every cache, state and buffer create() registered, and forgets
 * them: the model is as before create(). */
void lm_state_free(lm_state *s);

size_t lm_state_bytes(const lm_state *s, int whole);
void lm_state_save(const lm_state *s, int whole, void *buf);
/* 0 when buf does not describe this model's state (nothing is changed),
 * or a partial snapshot's full caches are longer than what the model
 * holds; 1 when restored. */
int lm_state_restore(lm_state *s, int whole, const void *buf, size_t n);
/* Cut the state back to its first p tokens (p <= the position): 1 when
 * every part allows it, else 0 and nothing is changed.  Full caches always
 * allow it, a ring while it has not dropped anything the cut keeps, other
 * states only when p is 0 (back to the start) or the position itself. */
int lm_state_cut(lm_state *s, long p);
/* Does any part refuse lm_state_cut beyond what rings allow?  (Then the
 * state of a prefix can only be had from a snapshot.) */
int lm_state_fixed(const lm_state *s);

/* Several sequences (bank.c): n banks, the first holding the caches the
 * model has (it becomes current), the others new and empty; and making one
 * current, so that forward(), reset() and the functions above act on it. */
lm_bank **lm_banks(lm_state *s, int n);
void lm_bank_use(lm_state *s, lm_bank *b);
/* The first bank's caches back in the model, the others freed. */
void lm_banks_free(lm_state *s, lm_bank **v, int n);
#endif
