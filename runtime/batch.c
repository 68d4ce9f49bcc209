/* batch.c: `--tokens ... --parallel N --logits-out OUT`, batched decoding
 * on a known input, so that it can be checked against one sequence alone.
 *
 * The input runs as N sequences on one model, each with its own bank
 * (bank.c), staggered so that at every step they stand at different
 * positions: sequence s joins at step 3s, prefills its first 1 + 5s
 * (modulo half the input) tokens alone, then decodes the rest one token
 * per step beside the others, until the input is used up; sequences leave
 * as they finish.  So one crosses a sliding window or chunk boundary
 * while the others do not, and a prefill lands between steps of the
 * others.  Each sequence's logits at every position go to OUT (sequence
 * 0) and OUT.s.npy: every one must equal the logits of the input alone. */
#include "rt.h"
#include "npy.h"
#include "state.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static char *out_path(const char *out, int s)
{
	if (s == 0)
		return strdup(out);
	size_t n = strlen(out);
	if (n > 4 && !strcmp(out + n - 4, ".npy"))
		n -= 4;
	char *p = lm_alloc(n + 32);
	snprintf(p, n + 32, "%.*s.%d.npy", (int)n, out, s);
	return p;
}

void lm_batch_run(const lm_model *m, const int *tok, long n, int nseq, const char *out)
{
	if (nseq > m->maxb)
		lm_fail(NULL, "--parallel %d: this model steps at most %ld sequences together", nseq,
		        m->maxb);
	lm_bank **bank = lm_banks(m->state, nseq);
	long V = m->vocab;
	float **lg = lm_alloc(nseq * sizeof *lg);
	long *at = lm_alloc(nseq * sizeof *at);     /* tokens fed, -1 before it joins */
	for (int s = 0; s < nseq; s++) {
		lg[s] = lm_floats((size_t)n * V);
		at[s] = -1;
	}
	lm_bank **rows = lm_alloc(nseq * sizeof *rows);
	int *id = lm_alloc(nseq * sizeof *id);
	int *who = lm_alloc(nseq * sizeof *who);
	float *step = lm_floats((size_t)nseq * V);
	long steps = 0, rowsum = 0;
	double t0 = lm_now();
	for (long t = 0;; t++) {
		long b = 0, left = 0;
		for (int s = 0; s < nseq; s++) {
			if (at[s] < 0 && t == 3L * s) {
				long p = 1 + (5L * s) % (n > 1 ? n / 2 : 1);
				if (p > n)
					p = n;
				lm_bank_use(m->state, bank[s]);
				m->forward(tok, p, lg[s], 1);
				at[s] = p;
			}
			if (at[s] >= 0 && at[s] < n) {
				rows[b] = bank[s];
				id[b] = tok[at[s]];
				who[b++] = s;
			}
			left += at[s] < n;
		}
		if (!left)
			break;
		if (b) {
			m->step(rows, id, b, step);
			steps++;
			rowsum += b;
		}
		for (long r = 0; r < b; r++) {
			int s = who[r];
			memcpy(lg[s] + at[s]++ * V, step + r * V, V * sizeof(float));
		}
	}
	fprintf(stderr, "lmcc: %s: %d sequences of %ld tokens: %ld steps of %.1f sequences on "
	        "average, %.3f s\n", m->name, nseq, n, steps, steps ? (double)rowsum / steps : 0.0,
	        lm_now() - t0);
	for (int s = 0; s < nseq; s++) {
		char *p = out_path(out, s);
		long shape[2] = {n, V};
		FILE *f = lm_npy_create_f32(p, 2, shape);
		if (fwrite(lg[s], sizeof(float) * V, n, f) != (size_t)n || fclose(f))
			lm_fail(p, "write error: %s", strerror(errno));
		free(p);
		free(lg[s]);
	}
	free(lg);
	free(at);
	free(rows);
	free(id);
	free(who);
	free(step);
	lm_banks_free(m->state, bank, nseq);
}
