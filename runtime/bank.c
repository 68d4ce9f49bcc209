/* bank.c: several sequences on one model (lmcc.h's lm_bank, lm_seq_rows).
 *
 * The generated code reads its caches from fixed places: the lm_kv in a
 * layer's struct, the pointer to a recurrent state, the position pos.  The
 * state registry (state.c) knows every such place.  A bank holds what one
 * sequence keeps in them: its position, its K/V caches (the lm_kv structs,
 * whose arrays it owns) and the pointers to its float states.  Making a
 * bank current writes the current one's back and puts its own in place, a
 * few dozen small copies: never the caches' contents. */
#include "rt.h"
#include "state.h"

#include <stdlib.h>
#include <string.h>

struct lm_bank {
	long pos;
	lm_kv *kv;           /* nkv */
	float **f;           /* nf */
};

static void save(lm_state *s, lm_bank *b)
{
	b->pos = *s->pos;
	for (int i = 0; i < s->nkv; i++)
		b->kv[i] = *s->kv[i];
	for (int i = 0; i < s->nf; i++)
		b->f[i] = *s->f[i];
}

static void load(lm_state *s, lm_bank *b)
{
	*s->pos = b->pos;
	for (int i = 0; i < s->nkv; i++)
		*s->kv[i] = b->kv[i];
	for (int i = 0; i < s->nf; i++)
		*s->f[i] = b->f[i];
	s->cur = b;
}

void lm_bank_use(lm_state *s, lm_bank *b)
{
	if (s->cur == b)
		return;
	save(s, s->cur);
	load(s, b);
}

static lm_bank *bank(const lm_state *s)
{
	lm_bank *b = lm_alloc(sizeof *b);
	b->kv = lm_alloc((s->nkv + 1) * sizeof *b->kv);
	b->f = lm_alloc((s->nf + 1) * sizeof *b->f);
	return b;
}

lm_bank **lm_banks(lm_state *s, int n)
{
	if (s->cur)
		lm_bug("lm_banks: the model has banks already");
	lm_bank **v = lm_alloc(n * sizeof *v);
	v[0] = bank(s);
	save(s, v[0]);      /* the caches create() made are the first sequence's */
	s->cur = v[0];
	for (int j = 1; j < n; j++) {
		lm_bank *b = v[j] = bank(s);
		for (int i = 0; i < s->nkv; i++) {
			const lm_kv *c = s->kv[i];
			lm_kv *d = &b->kv[i];
			*d = *c;
			d->k = lm_floats((size_t)c->cap * c->kdim);
			d->v = c->v == c->k ? d->k : lm_floats((size_t)c->cap * c->vdim);
			d->pos = lm_alloc(c->cap * sizeof(long));
			lm_kv_reset(d);
		}
		for (int i = 0; i < s->nf; i++)
			b->f[i] = lm_floats(s->n[i]);
	}
	return v;
}

void lm_banks_free(lm_state *s, lm_bank **v, int n)
{
	lm_bank_use(s, v[0]);
	s->cur = NULL;
	for (int j = 0; j < n; j++) {
		for (int i = 0; j && i < s->nkv; i++) {
			free(v[j]->kv[i].k);
			if (v[j]->kv[i].v != v[j]->kv[i].k)
				free(v[j]->kv[i].v);
			free(v[j]->kv[i].pos);
		}
		for (int i = 0; j && i < s->nf; i++)
			free(v[j]->f[i]);
		free(v[j]->kv);
		free(v[j]->f);
		free(v[j]);
	}
	free(v);
}

long lm_seq_rows(lm_state *s, long r, long n)
{
	if (r >= n)
		return 0;
	if (!s->rows)
		return n - r;
	long m = 1;
	while (r + m < n && s->rows[r + m] == s->rows[r])
		m++;
	lm_bank_use(s, s->rows[r]);
	return m;
}

void lm_seq_begin(lm_state *s, lm_bank *const *rows, long n)
{
	if (!s->cur || s->rows)
		lm_bug("lm_seq_begin: no banks, or a step already under way");
	s->home = s->cur;
	s->rows = rows;
	s->nrows = n;
}

void lm_seq_end(lm_state *s)
{
	save(s, s->cur);
	for (long r = 0; r < s->nrows; r++)
		s->rows[r]->pos++;
	s->rows = NULL;
	load(s, s->home);
}
