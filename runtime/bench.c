/* bench.c: the measuring half of `lmcc bench`, inside the model's own
 * program (built or JIT-compiled), run as `--bench SPEC`.
 *
 * The model is loaded once; then for each thread count and each context
 * depth, every prefill test (N tokens fed in one call; 0: none) and the
 * decode test (n tokens fed one at a time; 0: none) runs R times on the
 * same random but fixed ids.  A depth is a prefix fed first and not timed; a test runs from a
 * snapshot of it, so every repetition starts from the same state.  Each
 * result goes to stdout as one JSON line for lmcc bench (compiler/bench.c),
 * which measures the bounds and writes the table. */
#include "rt.h"
#include "serve.h"
#include "state.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

enum { MAXL = 16 };
typedef struct {
	long p[MAXL], t[MAXL], d[MAXL], n, r;
	int np, nt, nd;
} Spec;

/* "128,512" into v[]: each in [lo, hi], at most MAXL. */
static int list(const char *key, const char *s, long *v, long lo, long hi)
{
	int n = 0;
	for (;;) {
		char *end;
		errno = 0;
		long x = strtol(s, &end, 10);
		if (end == s || errno || x < lo || x > hi || (*end && *end != ','))
			lm_fail(NULL, "--bench: %s: '%s' is not a list of integers in [%ld, %ld]", key, s,
			        lo, hi);
		if (n == MAXL)
			lm_fail(NULL, "--bench: %s: more than %d values", key, MAXL);
		v[n++] = x;
		if (!*end)
			return n;
		s = end + 1;
	}
}

/* SPEC: "p=128,512;n=32;r=3;t=1,2;d=0", every field given once. */
static Spec parse_spec(const char *spec)
{
	Spec s = {.n = -1};
	char *buf = lm_strdup(spec), *save = NULL;
	for (char *f = strtok_r(buf, ";", &save); f; f = strtok_r(NULL, ";", &save)) {
		char *eq = strchr(f, '=');
		if (!eq || eq - f != 1)
			lm_fail(NULL, "--bench: '%s' is not KEY=VALUE (p, n, r, t, d)", f);
		long one[MAXL];
		switch (*f) {
		case 'p': s.np = list("p", eq + 1, s.p, 0, 1L << 20); break;
		case 't': s.nt = list("t", eq + 1, s.t, 1, 1024); break;
		case 'd': s.nd = list("d", eq + 1, s.d, 0, 1L << 20); break;
		case 'n': list("n", eq + 1, one, 0, 1L << 16); s.n = one[0]; break;
		case 'r': list("r", eq + 1, one, 1, 1000); s.r = one[0]; break;
		default: lm_fail(NULL, "--bench: unknown key '%c' (p, n, r, t, d)", *f);
		}
	}
	free(buf);
	if (!s.np || s.n < 0 || !s.r || !s.nt || !s.nd)
		lm_fail(NULL, "--bench: '%s' lacks one of p, n, r, t, d", spec);
	return s;
}

/* The peak resident memory since the last reset_peak, in bytes (VmHWM),
 * or since the start where the kernel cannot reset it. */
static void reset_peak(void)
{
	FILE *f = fopen("/proc/self/clear_refs", "w");
	if (f) {
		fputs("5", f);
		fclose(f);
	}
}

static long peak(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[128];
	long kb = 0;
	while (f && fgets(line, sizeof line, f))
		if (sscanf(line, "VmHWM: %ld kB", &kb) == 1)
			break;
	if (f)
		fclose(f);
	return kb * 1024;
}

/* Give back the pages of every cache: a test's peak memory is then its
 * own, whatever ran before it.  The caches read as zeros again, which a
 * reset cache never looks at. */
static void release_caches(const lm_state *st)
{
	for (int i = 0; i < st->nkv; i++) {
		const lm_kv *c = st->kv[i];
		float *a[2] = {c->k, c->v};
		long dim[2] = {c->kdim, c->vdim};
		for (int j = 0; j < (c->v == c->k ? 1 : 2); j++) {
			char *lo;
			size_t k = lm_inner_pages(a[j], c->cap * dim[j] * sizeof(float), &lo);
			if (k)
				madvise(lo, k, MADV_DONTNEED);
		}
	}
}

/* n ids below vocab, the same for every run (tests/bench.sh's sequence). */
static int *ids(long n, long vocab)
{
	int *t = lm_alloc((n ? n : 1) * sizeof(int));
	unsigned long s = 12345;
	for (long i = 0; i < n; i++) {
		s = (s * 1103515245 + 12345) % 2147483648ul;
		t[i] = (int)(s % vocab);
	}
	return t;
}

static void result(const char *test, long n, long depth, long threads, const double *sec,
                   long r, long bytes)
{
	printf("{\"test\": \"%s\", \"n\": %ld, \"depth\": %ld, \"threads\": %ld, \"peak\": %ld, "
	       "\"seconds\": [", test, n, depth, threads, bytes);
	for (long i = 0; i < r; i++)
		printf("%s%.6f", i ? ", " : "", sec[i]);
	printf("]}\n");
	fflush(stdout);
}

/* One test, R times from the snapshot of the depth's prefix: prefill of
 * n tokens in one call, or (decode) n calls of one token. */
static void test(const lm_model *m, const Spec *s, int decode, long n, long depth, long threads,
                 const void *snap, size_t snapn, const int *tok, float *logits)
{
	double sec[1000];
	reset_peak();
	for (long r = 0; r < s->r; r++) {
		if (!lm_state_restore(m->state, 0, snap, snapn))
			lm_bug("bench: the depth's snapshot does not restore");
		double t0 = lm_now();
		if (decode)
			for (long i = 0; i < n; i++)
				m->forward(tok + i, 1, logits, 0);
		else
			m->forward(tok, n, logits, 0);
		sec[r] = lm_now() - t0;
	}
	result(decode ? "tg" : "pp", n, depth, threads, sec, s->r, peak());
}

int lm_bench(const lm_model *m, const char *weights, const char *adapter, const char *spec,
             long long_ok)
{
	Spec s = parse_spec(spec);
	long most = 0, ctx;
	for (int i = 0; i < s.np; i++)
		most = s.p[i] > most ? s.p[i] : most;
	most = s.n > most ? s.n : most;
	long deepest = 0;
	for (int i = 0; i < s.nd; i++)
		deepest = s.d[i] > deepest ? s.d[i] : deepest;
	if (!most)
		lm_fail(NULL, "--bench: '%s' measures nothing (every p and n are 0)", spec);
	ctx = deepest + most;
	if (m->max_ctx && ctx > m->max_ctx && !long_ok)
		lm_fail(NULL, "--bench: %ld tokens of context are past the %ld positions of the "
		        "model's %s; --allow-long-ctx runs it anyway", ctx, m->max_ctx,
		        m->max_ctx_field ? m->max_ctx_field : "position limit");
	double t0 = lm_now();
	lm_loaded w;
	lm_load(&w, m, weights, adapter, ctx);
	printf("{\"load\": %.6f, \"isa\": \"%s\", \"peak\": %ld}\n", lm_now() - t0,
	       lm_isa_name(lm_isa()), peak());
	fflush(stdout);

	int *pre = ids(deepest, m->vocab), *tok = ids(most, m->vocab);
	float *logits = lm_floats(m->vocab);
	for (int ti = 0; ti < s.nt; ti++) {
		lm_set_threads((int)s.t[ti]);
		/* one untimed pass first: the mapped weights' pages, the pool's
		 * threads and their scratch */
		m->reset();
		m->forward(tok, most < 16 ? most : 16, logits, 0);
		if (!ti)         /* which bound, 4 KB or 2 MB pages, the decode tests meet */
			printf("{\"huge\": %.3f}\n", lm_ck_huge(w.ck));
		for (int di = 0; di < s.nd; di++) {
			m->reset();
			release_caches(m->state);
			if (s.d[di])
				m->forward(pre, s.d[di], logits, 0);
			/* partial: the full caches are cut back to the prefix, not copied */
			size_t snapn = lm_state_bytes(m->state, 0);
			void *snap = lm_alloc(snapn);
			lm_state_save(m->state, 0, snap);
			for (int pi = 0; pi < s.np; pi++)
				if (s.p[pi])
					test(m, &s, 0, s.p[pi], s.d[di], s.t[ti], snap, snapn, tok, logits);
			if (s.n)
				test(m, &s, 1, s.n, s.d[di], s.t[ti], snap, snapn, tok, logits);
			free(snap);
		}
	}
	free(pre);
	free(tok);
	free(logits);
	lm_unload(&w);
	return 0;
}
