/* bench.c: `lmcc bench`, the speed of one model beside this machine's
 * bounds, as llama-bench reports llama.cpp's.
 *
 * It measures the bounds first (runtime/bound.c, on each thread count),
 * builds the model with gcc or compiles it with libtcc (--via), runs the
 * model's program as `--bench SPEC` in a child process that loads it once
 * and times every test (runtime/bench.c), and turns the child's JSON
 * lines into a table.  The bounds:
 *   prefill  the cores' f32 FMA peak (the better of a measurement before
 *            the tests and one after) / the operations of the N tokens
 *            (every matrix, attention over the keys each query sees, the
 *            head once): what the matrix products allow;
 *   decode   the read bandwidth (the better of a measurement before the
 *            tests and one after) / the bytes a token reads (its weights
 *            as stored and the caches it attends over at that depth);
 *   memory   the weights as stored plus the caches at the test's length;
 *   load     the checkpoint read once at the read bandwidth. */
#define _GNU_SOURCE
#include "build.h"
#include "cmd.h"
#include "emit.h"
#include "plan.h"
#include "../runtime/opt.h"
#include "../runtime/rt.h"

#include <errno.h>
#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

enum { MAXL = 16, MAXROWS = 4096 };

typedef struct {
	long p[MAXL], t[MAXL], d[MAXL], n, r;
	int np, nt, nd, gcc, tcc, json, long_ok, no_mmap, fast;
	const char *adapter;
} Opts;

/* One row of the table. */
typedef struct {
	const char *via;
	int fast;            /* run with the program's --fast */
	char test[48];
	long threads, n;
	double mean, sd, bound, peak, peak_bound;
	int peak_held;       /* prefill held to the f32 FMA peak (not --fast's rates) */
	int huge;            /* decode: held to the read in 2 MB pages */
	double sec;          /* one repetition's mean wall time: the whole prefill, or n tokens */
} Row;

enum { O_VIA = LM_OPT_LONG, O_LONG, O_MMAP, O_NO_MMAP, O_FAST };
static const lm_opt opts[] = {
	{"n-prompt", 'p', "N,...", "prefill tests: N tokens in one call each (default 512;\n"
	                           "0: none)"},
	{"n-gen", 'n', "N", "decode test: N tokens one at a time (default 128; 0: none)"},
	{"repetitions", 'r', "R", "times each test runs (default 5)"},
	{"threads", 't', "N,...", "thread counts (default: all cores)"},
	{"n-depth", 'd', "N,...", "tokens of context fed, untimed, before each test (default 0):\n"
	                           "pp512 @ d4096 is a prefill of 512 after 4096"},
	{"adapter", 'a', "DIR", "a LoRA/DoRA adapter directory as mlx-lm writes it"},
	{"output", 'o', "md|json", "a markdown table (default) or JSON"},
	{"via", O_VIA, "gcc|tcc|gcc,tcc", "build with gcc (lmcc build, default), compile in memory\n"
	                                  "with libtcc (lmcc run), or both, side by side"},
	{"allow-long-ctx", O_LONG, NULL, "allow a context past the config's position limit"},
	{"no-mmap", O_NO_MMAP, NULL, "the model reads its weights into memory (its --no-mmap)"},
	{"mmap", O_MMAP, NULL, "the model uses the file's mapping (the default)"},
	{"fast", O_FAST, NULL, "every test again with the program's --fast, its prefill\n"
	                       "bound the int8 product rate on 8- and 4-bit weights,\n"
	                       "the BF16 one on float weights"},
	{"help", 'h', NULL, "this text"},
	{0},
};

static const char help[] =
	"usage: lmcc bench MODEL_DIR [-p N,...] [-n N] [-r R] [-t N,...] [-d N,...]\n"
	"                  [--adapter DIR] [-o md|json] [--via gcc|tcc|gcc,tcc] [--fast]\n"
	"Measure the model's speed as llama-bench does: load it once, then for each\n"
	"thread count and depth run every prefill test (-p) and the decode test (-n)\n"
	"R times on random but fixed token ids, and report tokens/s (mean and\n"
	"standard deviation), the time (a prefill's seconds, decoding's ms per\n"
	"token), load time and peak memory, each beside its bound\n"
	"measured on this machine in the same run: the cores' f32 FMA peak for\n"
	"prefill, the read bandwidth over the bytes a token reads for decoding\n"
	"(both measured before the tests and after them, the better kept).\n"
	"With --fast every test runs again with the program's --fast; those\n"
	"prefill rows' bound is the rate of the product --fast takes: BF16 dot\n"
	"products (AMX tiles, or AVX512_BF16 where it outruns float32 FMAs) for\n"
	"float weights and there for quantized ones too, else the int8 rate for\n"
	"8- and 4-bit weights; the f32 peak where --fast leaves a product exact.\n";

static long num(const char *opt, const char *s, long lo, long hi)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (!*s || *end || errno || v < lo || v > hi)
		lm_fail(NULL, "bench: %s: '%s' is not an integer in [%ld, %ld]", opt, s, lo, hi);
	return v;
}

static int nums(const char *opt, const char *s, long *v, long lo, long hi)
{
	int n = 0;
	char *buf = lm_strdup(s), *save = NULL;
	if (!*s || s[strlen(s) - 1] == ',')
		lm_fail(NULL, "bench: %s: '%s' is not a comma-separated list of integers", opt, s);
	for (char *w = strtok_r(buf, ",", &save); w; w = strtok_r(NULL, ",", &save)) {
		if (n == MAXL)
			lm_fail(NULL, "bench: %s: more than %d values", opt, MAXL);
		v[n++] = num(opt, w, lo, hi);
	}
	free(buf);
	return n;
}

static const char *parse(int argc, char **argv, Opts *o)
{
	*o = (Opts){.p = {512}, .np = 1, .n = 128, .r = 5, .nd = 1, .gcc = 1};
	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	o->t[0] = cores > 0 && cores <= 1024 ? cores : 1;
	o->nt = 1;
	lm_optp p;
	const char *v;
	int k;
	lm_opt_init(&p, argc, argv, opts, "bench");
	while ((k = lm_opt_next(&p, &v)) != -1)
		switch (k) {
		case 'h':
			printf("%s\n", help);
			lm_opt_help(stdout, opts);
			exit(0);
		case 'p': o->np = nums("-p", v, o->p, 0, 1L << 20); break;
		case 'n': o->n = num("-n", v, 0, 1L << 16); break;
		case 'r': o->r = num("-r", v, 1, 1000); break;
		case 't': o->nt = nums("-t", v, o->t, 1, 1024); break;
		case 'd': o->nd = nums("-d", v, o->d, 0, 1L << 20); break;
		case 'a': o->adapter = v; break;
		case O_LONG: o->long_ok = 1; break;
		case O_MMAP: o->no_mmap = 0; break;
		case O_NO_MMAP: o->no_mmap = 1; break;
		case O_FAST: o->fast = 1; break;
		case 'o':
			if (strcmp(v, "md") && strcmp(v, "json"))
				lm_fail(NULL, "bench: -o: '%s' is not md or json", v);
			o->json = !strcmp(v, "json");
			break;
		case O_VIA:
			o->gcc = !strcmp(v, "gcc") || !strcmp(v, "gcc,tcc") || !strcmp(v, "tcc,gcc");
			o->tcc = !strcmp(v, "tcc") || !strcmp(v, "gcc,tcc") || !strcmp(v, "tcc,gcc");
			if (!o->gcc && !o->tcc)
				lm_fail(NULL, "bench: --via: '%s' is not gcc, tcc or gcc,tcc", v);
			break;
		default: lm_bug("bench option %d has no case", k);
		}
	if (p.npos != 1)
		lm_fail(NULL, p.npos ? "bench: unexpected argument '%s' (see lmcc bench --help)"
		                     : "bench: needs MODEL_DIR (see lmcc bench --help)%s",
		        p.npos ? p.pos[1] : "");
	return p.pos[0];
}

/* The SPEC of runtime/bench.c. */
static char *spec(const Opts *o)
{
	char *s = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&s, &len);
	const long *v[3] = {o->p, o->t, o->d};
	const int n[3] = {o->np, o->nt, o->nd};
	for (int j = 0; j < 3; j++) {
		fprintf(f, "%c=", "ptd"[j]);
		for (int i = 0; i < n[j]; i++)
			fprintf(f, "%s%ld", i ? "," : "", v[j][i]);
		fprintf(f, ";");
	}
	fprintf(f, "n=%ld;r=%ld", o->n, o->r);
	fclose(f);
	return s;
}

/* The model's program as `--bench SPEC` in a child whose stdout is a
 * pipe: the built executable exe, or src compiled in memory (exe NULL).
 * The child's stderr is ours: its errors reach the user as they are. */
static FILE *start(const char *exe, const char *src, const char *dir, const Opts *o,
                   char *sp, int fast, pid_t *pid)
{
	int fd[2];
	if (pipe(fd))
		lm_bug("pipe: %s", strerror(errno));
	fflush(NULL);
	*pid = fork();
	if (*pid < 0)
		lm_bug("fork: %s", strerror(errno));
	if (*pid == 0) {
		dup2(fd[1], 1);
		close(fd[0]);
		close(fd[1]);
		char *av[12];
		int ac = 0;
		av[ac++] = exe ? (char *)exe : "run";
		av[ac++] = "--bench";
		av[ac++] = sp;
		av[ac++] = "--weights";
		av[ac++] = (char *)dir;
		if (o->adapter) {
			av[ac++] = "--adapter";
			av[ac++] = (char *)o->adapter;
		}
		if (o->long_ok)
			av[ac++] = "--allow-long-ctx";
		if (o->no_mmap)
			av[ac++] = "--no-mmap";
		if (fast)
			av[ac++] = "--fast";
		av[ac] = NULL;
		if (!exe)
			_exit(run_tcc(src, ac, av));
		execv(exe, av);
		fprintf(stderr, "lmcc: %s: cannot run: %s\n", exe, strerror(errno));
		_exit(1);
	}
	close(fd[1]);
	FILE *f = fdopen(fd[0], "r");
	if (!f)
		lm_bug("fdopen: %s", strerror(errno));
	return f;
}

static void finish(pid_t pid)
{
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			lm_bug("waitpid: %s", strerror(errno));
	if (WIFSIGNALED(st))
		lm_bug("the model's program died of signal %d", WTERMSIG(st));
	if (WEXITSTATUS(st))
		exit(WEXITSTATUS(st));    /* it said why on stderr */
}

static double field(json_object *o, const char *key)
{
	json_object *v;
	if (!json_object_object_get_ex(o, key, &v))
		lm_bug("bench: the model's program wrote no \"%s\"", key);
	return json_object_get_double(v);
}

/* The bounds of each thread count, measured once: reading in 4 KB and in
 * 2 MB pages (decoding is held to the one its weights sit in). */
typedef struct {
	double read[MAXL], readh[MAXL], f32[MAXL];
	double peak[MAXL];           /* the cores' f32 FMA peak: what exact prefill is held to */
	double q4[MAXL], q8[MAXL];   /* --fast: the int8 product on 4- and 8-bit weights */
	double bf16[MAXL];           /* --fast: the BF16 product on float weights (0: none) */
	int bits;                    /* 4 or 8: the bits whose rate bounds --fast's prefill */
} Bounds;

static int thread_index(const Opts *o, long t)
{
	for (int i = 0; i < o->nt; i++)
		if (o->t[i] == t)
			return i;
	lm_bug("bench: a result for %ld threads, which were not asked for", t);
}

/* What one via (gcc or tcc) measured. */
typedef struct {
	const char *via;
	int fast;
	double build, load, peak;
	double huge;         /* the weights' fraction in 2 MB pages */
	char isa[16];        /* the kernels' instruction set */
} Run;

/* Read the child's lines into rows. */
static void collect(FILE *f, const Plan *p, const Opts *o, const Bounds *b, Run *run,
                    Row *rows, int *nrows, double t_start)
{
	char *line = NULL;
	size_t cap = 0;
	long tok, fixed;
	plan_cache(p, &tok, &fixed);
	while (getline(&line, &cap, f) > 0) {
		json_object *j = json_tokener_parse(line), *v;
		if (!j)
			lm_bug("bench: the model's program wrote '%.60s'", line);
		if (json_object_object_get_ex(j, "load", &v)) {
			run->load = json_object_get_double(v);
			run->peak = field(j, "peak");
			if (json_object_object_get_ex(j, "isa", &v))
				snprintf(run->isa, sizeof run->isa, "%s", json_object_get_string(v));
			if (strcmp(run->via, "gcc"))   /* from the fork: compiling and loading */
				run->build = lm_now() - t_start - run->load;
			json_object_put(j);
			continue;
		}
		if (json_object_object_get_ex(j, "huge", &v)) {
			run->huge = json_object_get_double(v);
			json_object_put(j);
			continue;
		}
		if (*nrows == MAXROWS)
			lm_bug("bench: more than %d results", MAXROWS);
		Row *r = &rows[(*nrows)++];
		const char *test = json_object_object_get_ex(j, "test", &v) ? json_object_get_string(v) : "";
		long n = (long)field(j, "n"), depth = (long)field(j, "depth");
		int ti = thread_index(o, (long)field(j, "threads"));
		int decode = !strcmp(test, "tg");
		*r = (Row){.via = run->via, .fast = run->fast, .threads = o->t[ti], .n = n,
		           .peak = field(j, "peak"), .huge = run->huge > 0.5};
		snprintf(r->test, sizeof r->test, "%s%ld", decode ? "tg" : "pp", n);
		if (depth)
			snprintf(r->test + strlen(r->test), sizeof r->test - strlen(r->test), " @ d%ld", depth);
		json_object *sec;
		long reps = json_object_object_get_ex(j, "seconds", &sec)
		            && json_object_is_type(sec, json_type_array)
		            ? (long)json_object_array_length(sec) : 0;
		if (reps < 1)
			lm_bug("bench: a result without seconds");
		double sum = 0, sq = 0;
		for (long i = 0; i < reps; i++) {
			double s = json_object_get_double(json_object_array_get_idx(sec, i));
			double ts = n / (s > 0 ? s : 1e-9);
			sum += ts;
			sq += ts * ts;
			r->sec += s / reps;
		}
		r->mean = sum / reps;
		r->sd = reps > 1 ? sqrt(fmax(0, (sq - sum * sum / reps) / (reps - 1))) : 0;
		if (decode) {   /* the bytes of the average token: weights, caches at its depth */
			double bytes = plan_read_bytes(p) + (double)tok * (depth + n / 2.0) + fixed;
			r->bound = (r->huge ? b->readh[ti] : b->read[ti]) * 1e9 / bytes;
		} else {
			double rate = b->peak[ti];
			if (run->fast && b->bits && !lm_fast_quant_bf16())
				rate = b->bits == 4 ? b->q4[ti] : b->q8[ti];
			else if (run->fast && b->bf16[ti] > 0)
				rate = b->bf16[ti];
			r->peak_held = rate == b->peak[ti];
			r->bound = rate * 1e9 / (plan_prefill_flops(p, depth, n) / n);
		}
		r->peak_bound = (double)tok * (depth + n) + fixed;
		fprintf(stderr, "lmcc: bench: %s, %s, %ld threads: %.2f tokens/s\n", run->via, r->test,
		        r->threads, r->mean);
		json_object_put(j);
	}
	free(line);
}

/* Bytes of the checkpoint's files. */
static double ckpt_bytes(const char *dir)
{
	lm_ckpt *ck = lm_ck_open(dir);
	double n = 0;
	long i = 0;
	const char *name;
	while ((name = lm_ck_next(ck, &i))) {
		const char *dt;
		size_t b;
		lm_ck_raw(ck, name, &dt, &b);
		n += b;
	}
	lm_ck_close(ck);
	return n;
}

static void print_md(const Plan *p, const char *fmts, const char *cpu, const Opts *o,
                     const Bounds *b, const Run *runs, int nruns, const Row *rows, int nrows,
                     double wbytes)
{
	printf("lmcc bench: %s (%s), weights %s, %.3f GB; %s, %s kernels\n", p->name, p->arch, fmts,
	       wbytes / 1e9, cpu, nruns ? runs[0].isa : "-");
	printf("bounds measured now:");
	for (int i = 0; i < o->nt; i++) {
		printf("%s %ld thread%s: read %.1f GB/s in 4 KB pages, %.1f in 2 MB pages, "
		       "f32 FMA peak %.1f GFLOP/s, F32 product %.1f", i ? ";" : "", o->t[i],
		       o->t[i] > 1 ? "s" : "", b->read[i], b->readh[i], b->peak[i], b->f32[i]);
		if (o->fast) {
			printf(", int8 %.1f (4-bit) and %.1f (8-bit) GOP/s", b->q4[i], b->q8[i]);
			if (b->bf16[i] > 0)
				printf(", bf16 %.1f GFLOP/s", b->bf16[i]);
			else
				printf(", bf16 -");
		}
	}
	printf("\n");
	for (int i = 0; i < nruns; i++)
		printf("%s%s: %s in %.2f s; load %.3f s (bound: the checkpoint read once, %.3f s); "
		       "peak %.0f MB after load (bound: the weights, %.0f MB); weights %.0f%% in "
		       "2 MB pages (decoding's bound: the read in %s pages)\n", runs[i].via,
		       runs[i].fast ? " --fast" : "",
		       strcmp(runs[i].via, "gcc") ? "compiled in memory" : "built", runs[i].build,
		       runs[i].load, wbytes / (b->read[o->nt - 1] * 1e9), runs[i].peak / 1e6,
		       wbytes / 1e6, 100 * runs[i].huge, runs[i].huge > 0.5 ? "2 MB" : "4 KB");
	printf("\n| model | weights | via | threads | test | t/s | bound t/s | of bound | peak MB | "
	       "weights+cache MB | time |\n|---|---|---|---|---|---|---|---|---|---|---|\n");
	for (int i = 0; i < nrows; i++) {
		const Row *r = &rows[i];
		char time[32];
		if (r->test[0] == 't')
			snprintf(time, sizeof time, "%.2f ms/token", 1e3 * r->sec / r->n);
		else
			snprintf(time, sizeof time, "%.3f s", r->sec);
		printf("| %s | %s | %s%s | %ld | %s | %.2f ± %.2f | %.2f | %.3g | %.0f | %.0f | %s |\n",
		       p->name, fmts, r->via, r->fast ? " --fast" : "", r->threads, r->test, r->mean,
		       r->sd, r->bound, r->mean / r->bound, r->peak / 1e6,
		       (wbytes + r->peak_bound) / 1e6, time);
	}
	/* JIT against the built binary, test by test */
	if (o->gcc && o->tcc) {
		int half = nrows / 2, ok = 1, k = 0;
		printf("\ntcc / gcc:");
		for (int i = 0; i < half; i++) {
			if (rows[i].fast)
				continue;
			double q = rows[half + i].mean / rows[i].mean;
			ok &= fabs(q - 1) <= 0.05;
			printf("%s %s (%ld threads) %.3f", k++ ? "," : "", rows[i].test, rows[i].threads, q);
		}
		printf("; %s\n", ok ? "all within 5%" : "NOT all within 5%");
	}
}

static void print_json(const Plan *p, const char *fmts, const char *cpu, const Opts *o,
                       const Bounds *b, const Run *runs, int nruns, const Row *rows, int nrows,
                       double wbytes)
{
	json_object *j = json_object_new_object(), *a;
	json_object_object_add(j, "model", json_object_new_string(p->name));
	json_object_object_add(j, "arch", json_object_new_string(p->arch));
	json_object_object_add(j, "weights", json_object_new_string(fmts));
	json_object_object_add(j, "weight_bytes", json_object_new_double(wbytes));
	json_object_object_add(j, "cpu", json_object_new_string(cpu));
	json_object_object_add(j, "isa", json_object_new_string(nruns ? runs[0].isa : "-"));
	json_object_object_add(j, "bounds", a = json_object_new_array());
	for (int i = 0; i < o->nt; i++) {
		json_object *e = json_object_new_object();
		json_object_object_add(e, "threads", json_object_new_int64(o->t[i]));
		json_object_object_add(e, "read_gb_s", json_object_new_double(b->read[i]));
		json_object_object_add(e, "read_2mb_gb_s", json_object_new_double(b->readh[i]));
		json_object_object_add(e, "f32_gflop_s", json_object_new_double(b->f32[i]));
		json_object_object_add(e, "f32_peak_gflop_s", json_object_new_double(b->peak[i]));
		if (o->fast) {
			json_object_object_add(e, "int8_q4_gop_s", json_object_new_double(b->q4[i]));
			json_object_object_add(e, "int8_q8_gop_s", json_object_new_double(b->q8[i]));
			json_object_object_add(e, "bf16_gflop_s", json_object_new_double(b->bf16[i]));
		}
		json_object_array_add(a, e);
	}
	json_object_object_add(j, "builds", a = json_object_new_array());
	for (int i = 0; i < nruns; i++) {
		json_object *e = json_object_new_object();
		json_object_object_add(e, "via", json_object_new_string(runs[i].via));
		json_object_object_add(e, "fast", json_object_new_boolean(runs[i].fast));
		json_object_object_add(e, "build_s", json_object_new_double(runs[i].build));
		json_object_object_add(e, "load_s", json_object_new_double(runs[i].load));
		json_object_object_add(e, "load_bound_s",
		                       json_object_new_double(wbytes / (b->read[o->nt - 1] * 1e9)));
		json_object_object_add(e, "peak_bytes", json_object_new_double(runs[i].peak));
		json_object_object_add(e, "huge_pages", json_object_new_double(runs[i].huge));
		json_object_array_add(a, e);
	}
	json_object_object_add(j, "tests", a = json_object_new_array());
	for (int i = 0; i < nrows; i++) {
		const Row *r = &rows[i];
		json_object *e = json_object_new_object();
		json_object_object_add(e, "via", json_object_new_string(r->via));
		json_object_object_add(e, "fast", json_object_new_boolean(r->fast));
		json_object_object_add(e, "threads", json_object_new_int64(r->threads));
		json_object_object_add(e, "test", json_object_new_string(r->test));
		json_object_object_add(e, "tokens_s", json_object_new_double(r->mean));
		json_object_object_add(e, "tokens_s_sd", json_object_new_double(r->sd));
		json_object_object_add(e, "seconds", json_object_new_double(r->sec));
		json_object_object_add(e, "ms_per_token", json_object_new_double(1e3 * r->sec / r->n));
		json_object_object_add(e, "bound_tokens_s", json_object_new_double(r->bound));
		json_object_object_add(e, "peak_bytes", json_object_new_double(r->peak));
		json_object_object_add(e, "bound_bytes", json_object_new_double(wbytes + r->peak_bound));
		json_object_array_add(a, e);
	}
	printf("%s\n", json_object_to_json_string_ext(j, JSON_C_TO_STRING_PRETTY));
	json_object_put(j);
}

/* The read rate and the f32 peak measured again after the tests, the
 * better of each kept: on a machine shared with other work (a VM, a busy
 * host) one measurement can fall in a slow minute, and a figure would then
 * beat its bound (Zen 5 VM: 49 GB/s before the tests, 66 an hour earlier;
 * the peak at half when another process held one of the two cores).  The
 * rows' bounds scale with the new rates. */
static void remeasure(const Opts *o, Bounds *b, Row *rows, int nrows)
{
	double scale[MAXL], scaleh[MAXL], scalep[MAXL];
	for (int i = 0; i < o->nt; i++) {
		fprintf(stderr, "lmcc: bench: measuring the machine again on %ld thread%s\n", o->t[i],
		        o->t[i] > 1 ? "s" : "");
		lm_set_threads((int)o->t[i]);
		double r = lm_read_rate_pages(0), rh = lm_read_rate_pages(1), pk = lm_f32_peak();
		scale[i] = fmax(1, r / b->read[i]);
		scaleh[i] = fmax(1, rh / b->readh[i]);
		scalep[i] = fmax(1, pk / b->peak[i]);
		b->read[i] *= scale[i];
		b->readh[i] *= scaleh[i];
		b->peak[i] *= scalep[i];
	}
	for (int k = 0; k < nrows; k++) {
		Row *r = &rows[k];
		int ti = thread_index(o, r->threads);
		if (r->test[0] == 't')
			r->bound *= r->huge ? scaleh[ti] : scale[ti];
		else if (r->peak_held)
			r->bound *= scalep[ti];
	}
}

int cmd_bench(int argc, char **argv)
{
	Opts o;
	const char *dir = parse(argc, argv, &o);
	Plan p;
	load_plan(&p, dir, o.adapter);
	char fmts[64], cpu[200];
	plan_formats(&p, fmts, sizeof fmts);
	lm_cpu_name(cpu, sizeof cpu);
	double wbytes = ckpt_bytes(dir);
	long ctx = 0;    /* as runtime/bench.c sizes it, checked before minutes of measuring */
	for (int i = 0; i < o.np; i++)
		ctx = o.p[i] > ctx ? o.p[i] : ctx;
	ctx = o.n > ctx ? o.n : ctx;
	if (!ctx)
		lm_fail(NULL, "bench: nothing to measure: every -p and -n are 0");
	long deepest = 0;
	for (int i = 0; i < o.nd; i++)
		deepest = o.d[i] > deepest ? o.d[i] : deepest;
	if (p.max_ctx && ctx + deepest > p.max_ctx && !o.long_ok)
		lm_fail(NULL, "bench: %ld tokens of context are past the %ld positions of the "
		        "model's config; --allow-long-ctx runs it anyway", ctx + deepest, p.max_ctx);

	Bounds b = {.bits = strstr(fmts, "q4/") ? 4 : strstr(fmts, "q8/") ? 8 : 0};
	for (int i = 0; i < o.nt; i++) {
		fprintf(stderr, "lmcc: bench: measuring the machine on %ld thread%s\n", o.t[i],
		        o.t[i] > 1 ? "s" : "");
		lm_set_threads((int)o.t[i]);
		b.read[i] = lm_read_rate_pages(0);
		b.readh[i] = lm_read_rate_pages(1);
		b.f32[i] = lm_f32_rate();
		b.peak[i] = lm_f32_peak();
		if (o.fast) {
			b.q4[i] = lm_int8_rate(4);
			b.q8[i] = lm_int8_rate(8);
			b.bf16[i] = lm_bf16_rate();
		}
	}

	char *weights = realpath(dir, NULL), *sp = spec(&o);
	char *src = emit_model(&p, weights);
	static Row rows[MAXROWS];
	Run runs[4];
	int nruns = 0, nrows = 0;
	for (int v = 0; v < 4; v++) {
		int fast = v % 2;
		if (!(v / 2 ? o.tcc : o.gcc) || (fast && !o.fast))
			continue;
		Run *r = &runs[nruns++];
		*r = (Run){.via = v / 2 ? "tcc" : "gcc", .fast = fast};
		char *exe = NULL;
		double t0 = lm_now();
		if (v == 0) {
			char *out = lm_path("out", p.name), *path = lm_path(out, "model.c");
			make_dirs(out);
			write_text(path, src);
			exe = lm_path(out, p.name);
			fprintf(stderr, "lmcc: bench: building %s\n", exe);
			compile_gcc(path, exe, 0);
			r->build = lm_now() - t0;
			free(out);
			free(path);
		}
		pid_t pid;
		if (v == 1) {   /* the exact run's build */
			char *out = lm_path("out", p.name);
			exe = lm_path(out, p.name);
			free(out);
			r->build = runs[0].build;
		}
		FILE *f = start(exe, src, weights, &o, sp, fast, &pid);
		collect(f, &p, &o, &b, r, rows, &nrows, t0);
		fclose(f);
		finish(pid);
		free(exe);
	}
	remeasure(&o, &b, rows, nrows);
	if (o.json)
		print_json(&p, fmts, cpu, &o, &b, runs, nruns, rows, nrows, wbytes);
	else
		print_md(&p, fmts, cpu, &o, &b, runs, nruns, rows, nrows, wbytes);
	free(src);
	free(sp);
	free(weights);
	plan_free(&p);
	return 0;
}
