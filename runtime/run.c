/* run.c: the command line of a model, shared by built binaries and
 * `lmcc run`.  It reads the input, feeds it through the generated forward
 * pass in chunks, writes logits, generates, and reports timing.
 *
 * The model itself (every layer, every cache) is the generated code's; this
 * file only sees the lm_model interface. */
#define _GNU_SOURCE
#include "rt.h"
#include "npy.h"
#include "sample.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>



static const char usage[] =
	"usage: %s [RUN OPTIONS]\n"
	"Run the model on token ids: write logits, generate, report speed.\n"
	"\n"
	"  --weights DIR         checkpoint directory%s%s%s\n"
	"  --tokens LIST|@F.npy  input ids, comma separated, or a 1-D int32/int64 .npy\n"
	"  -n N                  tokens to generate after the input (default 0)\n"
	"  --chunk C             feed the input C tokens per forward call\n"
	"                        (default: all at once; 1 = one at a time)\n"
	"  --logits-out F.npy    write float32 [N, vocab]: logits at every input position\n"
	"  --ctx N               context capacity (default: input + generated tokens)\n"
	"  --temp T              sampling temperature (default 0: greedy)\n"
	"  --top-p P             nucleus sampling threshold (default 1: off)\n"
	"  --top-k K             sample among the K most likely (default 0: off)\n"
	"  --seed S              sampling seed (default 0)\n"
	"  --threads N           threads for the matrix products (default: all cores)\n"
	"  -h, --help            this text\n"
	"\n"
	"Generated ids go to stdout, one line, comma separated; load time and\n"
	"prefill and decode speed go to stderr.\n";

static long parse_long(const char *opt, const char *s, long lo, long hi)
{
	char *end;
	errno = 0;
	long v = s ? strtol(s, &end, 10) : 0;
	if (!s || !*s || *end || errno || v < lo || v > hi)
		lm_fail(NULL, "%s: '%s' is not an integer in [%ld, %ld]", opt,
		        s ? s : "", lo, hi);
	return v;
}

static double parse_double(const char *opt, const char *s, double lo, double hi)
{
	char *end;
	double v = s ? strtod(s, &end) : 0;
	if (!s || !*s || *end || !(v >= lo && v <= hi))
		lm_fail(NULL, "%s: '%s' is not a number in [%g, %g]", opt, s ? s : "", lo, hi);
	return v;
}

/* Ids from "1,2,3" or from "@file.npy". */
static int *read_tokens(const char *arg, long *n, const char **where)
{
	if (arg[0] == '@') {
		*where = arg + 1;
		lm_npy a = lm_npy_read(arg + 1);
		if (a.ndim != 1 || a.type == LM_NPY_F32)
			lm_fail(arg + 1, "token file must be a 1-D int32 or int64 array");
		int *t = lm_alloc((a.count ? a.count : 1) * sizeof(int));
		for (size_t i = 0; i < a.count; i++) {
			long long v = a.type == LM_NPY_I32 ? ((int32_t *)a.data)[i]
			                                   : ((int64_t *)a.data)[i];
			if (v < 0 || v > 0x7fffffff)
				lm_fail(arg + 1, "token %zu: id %lld is negative or too large", i, v);
			t[i] = (int)v;
		}
		free(a.data);
		*n = (long)a.count;
		return t;
	}
	*where = "--tokens";
	long cap = 16, k = 0;
	int *t = lm_alloc(cap * sizeof(int));
	const char *s = arg;
	while (*s) {
		char *end;
		errno = 0;
		long v = strtol(s, &end, 10);
		if (end == s || errno || v < 0 || v > 0x7fffffff)
			lm_fail(NULL, "--tokens: '%.32s' is not a comma-separated list of ids", s);
		if (k == cap)
			t = lm_realloc(t, (cap *= 2) * sizeof(int));
		t[k++] = (int)v;
		s = end;
		while (*s == ' ')
			s++;
		if (*s == ',')
			s++;
		else if (*s)
			lm_fail(NULL, "--tokens: unexpected '%c' in the id list", *s);
	}
	*n = k;
	return t;
}

typedef struct {
	const char *weights, *tokens, *logits_out;
	long gen, chunk, ctx, threads;
	lm_sampler samp;
	uint64_t seed;
} Options;

static Options parse(int argc, char **argv, const lm_model *m)
{
	Options o = {.weights = m->weights, .samp = {0, 1, 0}};
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			const char *w = m->weights;
			printf(usage, argv[0], w ? " (default: " : "", w ? w : "", w ? ")" : "");
			exit(0);
		}
#define TAKE() (v ? (i++, v) : (lm_fail(NULL, "%s needs a value", a), v))
		if (!strcmp(a, "--weights"))
			o.weights = TAKE();
		else if (!strcmp(a, "--tokens"))
			o.tokens = TAKE();
		else if (!strcmp(a, "--logits-out"))
			o.logits_out = TAKE();
		else if (!strcmp(a, "-n"))
			o.gen = parse_long(a, TAKE(), 0, 1L << 24);
		else if (!strcmp(a, "--chunk"))
			o.chunk = parse_long(a, TAKE(), 1, 1L << 24);
		else if (!strcmp(a, "--ctx"))
			o.ctx = parse_long(a, TAKE(), 1, 1L << 24);
		else if (!strcmp(a, "--threads"))
			o.threads = parse_long(a, TAKE(), 1, 1024);
		else if (!strcmp(a, "--temp"))
			o.samp.temp = (float)parse_double(a, TAKE(), 0, 1e6);
		else if (!strcmp(a, "--top-p"))
			o.samp.top_p = (float)parse_double(a, TAKE(), 0, 1);
		else if (!strcmp(a, "--top-k"))
			o.samp.top_k = parse_long(a, TAKE(), 0, 1L << 30);
		else if (!strcmp(a, "--seed"))
			o.seed = (uint64_t)parse_long(a, TAKE(), 0, 0x7fffffffffffffffL);
		else
			lm_fail(NULL, "unknown option '%s' (see --help)", a);
#undef TAKE
	}
	return o;
}

int lm_main(int argc, char **argv, const lm_model *m)
{
	Options o = parse(argc, argv, m);
	if (!o.weights)
		lm_fail(NULL, "no checkpoint: give --weights DIR");
	if (!o.tokens)
		lm_fail(NULL, "no input: give --tokens LIST or --tokens @F.npy");
	if (o.threads)
		lm_set_threads((int)o.threads);

	long n;
	const char *where;
	int *tok = read_tokens(o.tokens, &n, &where);
	if (n == 0)
		lm_fail(where, "no input tokens");
	for (long i = 0; i < n; i++)
		if (tok[i] >= m->vocab)
			lm_fail(where, "token %ld: id %d is not below vocab_size %ld", i, tok[i], m->vocab);
	long need = n + o.gen;
	if (o.ctx && need > o.ctx)
		lm_fail(NULL, "--ctx: the input (%ld tokens) plus %ld to generate is longer than the context of %ld",
		        n, o.gen, o.ctx);
	long ctx = o.ctx ? o.ctx : need;

	double t0 = lm_now();
	lm_ckpt *ck = lm_ck_open(o.weights);
	m->create(ck, ctx);
	double t1 = lm_now();

	long chunk = o.chunk ? o.chunk : n;
	float *logits = lm_floats((size_t)m->vocab * (o.logits_out ? (chunk < n ? chunk : n) : 1));
	FILE *out = NULL;
	if (o.logits_out) {
		long shape[2] = {n, m->vocab};
		out = lm_npy_create_f32(o.logits_out, 2, shape);
	}
	for (long i = 0; i < n; i += chunk) {
		long c = n - i < chunk ? n - i : chunk;
		m->forward(tok + i, c, logits, out != NULL);
		if (out && fwrite(logits, sizeof(float) * m->vocab, c, out) != (size_t)c)
			lm_fail(o.logits_out, "write error: %s", strerror(errno));
	}
	if (out && fclose(out))
		lm_fail(o.logits_out, "write error: %s", strerror(errno));
	double t2 = lm_now();

	/* The last input position's logits pick the first new token. */
	const float *last = out ? logits + (size_t)((n - 1) % chunk) * m->vocab : logits;
	uint64_t rng = o.seed * 0x9E3779B97F4A7C15ull + 1;
	for (long g = 0; g < o.gen; g++) {
		int id = lm_sample(last, m->vocab, &o.samp, &rng);
		printf("%s%d", g ? "," : "", id);
		fflush(stdout);
		if (g + 1 < o.gen) {
			m->forward(&id, 1, logits, 0);
			last = logits;
		}
	}
	if (o.gen) {
		printf("\n");
		fflush(stdout);
	}
	double t3 = lm_now();

	fprintf(stderr, "lmcc: %s: load %.3f s; prefill %ld tokens in %.3f s (%.1f tok/s)",
	        m->name, t1 - t0, n, t2 - t1, n / (t2 - t1 > 0 ? t2 - t1 : 1e-9));
	if (o.gen > 1)
		fprintf(stderr, "; decode %ld tokens in %.3f s (%.1f tok/s)", o.gen - 1,
		        t3 - t2, (o.gen - 1) / (t3 - t2 > 0 ? t3 - t2 : 1e-9));
	fprintf(stderr, "\n");
	free(tok);
	free(logits);
	lm_ck_close(ck);
	return 0;
}
