/* run.c: the command line of a model, shared by built binaries and
 * `lmcc run`.  It reads the input (ids, or text through the model's
 * tokenizer and chat template), feeds it through the generated forward
 * pass in chunks, writes logits, generates, and reports timing.
 *
 * The model itself (every layer, every cache) is the generated code's; this
 * file only sees the lm_model interface. */
#define _GNU_SOURCE
#include "rt.h"
#include "npy.h"
#include "opt.h"
#include "pcache.h"
#include "sample.h"
#include "serve.h"
#include "state.h"
#include "stop.h"
#include "text/tok.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* The RUN OPTIONS (DESIGN.md), with the names mlx-lm's and llama.cpp's
 * users type as aliases.  A new option is a line here and a case in
 * parse(). */
enum {
	O_TOKENS = LM_OPT_LONG, O_CHAT, O_SYSTEM, O_TEMPLATE, O_CHUNK, O_LOGITS,
	O_TEMP, O_TOP_P, O_TOP_K, O_VERSION, O_MIN_P, O_REPEAT, O_REPEAT_N, O_PRESENCE,
	O_FREQUENCY, O_BIAS, O_STOP, O_PCACHE, O_SERVE, O_HOST, O_PORT, O_PARALLEL,
	O_CACHE_BYTES, O_API_KEY, O_LONG_CTX, O_CHECK, O_BENCH, O_MMAP, O_NO_MMAP, O_FAST,
	O_ADAPTER = LM_RUN_ADAPTER,
};
const lm_opt lm_run_opts[] = {
	{"weights", 'm', "DIR", "checkpoint directory (a built program: the one it\n"
	                        "was built from; lmcc run: MODEL_DIR)"},
	{"model", 'm', "DIR", NULL},
	{"adapter", O_ADAPTER, "DIR", "a LoRA/DoRA adapter directory as mlx-lm writes it, of\n"
	                              "the structure the program was built with (default: that one)"},
	{"adapter-path", O_ADAPTER, "DIR", NULL},
	{"tokens", O_TOKENS, "LIST|@F.npy", "input ids, comma separated, or a 1-D int32/int64 .npy"},
	{"prompt", 'p', "TEXT", "input text, through the model's tokenizer (-: stdin)"},
	{"file", 'f', "FILE", "the input text from FILE"},
	{"chat", O_CHAT, NULL, "apply the model's chat template to the prompt; with no\n"
	                       "prompt and a terminal on stdin, a conversation"},
	{"system", O_SYSTEM, "TEXT", "a system turn before the prompt (with --chat)"},
	{"system-prompt", O_SYSTEM, "TEXT", NULL},
	{"chat-template", O_TEMPLATE, "FILE", "a Jinja chat template instead of the model's"},
	{"max-tokens", 'n', "N", "tokens to generate after the input (default 0 for\n"
	                         "--tokens; for text, until end of text, at most 512)"},
	{"n-predict", 'n', "N", NULL},
	{"chunk", O_CHUNK, "C", "feed the input C tokens per forward call\n"
	                        "(default: all at once; 1 = one at a time)"},
	{"batch-size", O_CHUNK, "C", NULL},
	{"logits-out", O_LOGITS, "F.npy", "write float32 [N, vocab]: logits at every input position"},
	{"ctx", 'c', "N", "context capacity (default: input + generated tokens;\n"
	                  "4096 for text)"},
	{"ctx-size", 'c', "N", NULL},
	{"allow-long-ctx", O_LONG_CTX, NULL, "allow a context past the config's position limit\n"
	                                    "(max_position_embeddings)"},
	{"temp", O_TEMP, "T", "sampling temperature (default 0: greedy)"},
	{"temperature", O_TEMP, "T", NULL},
	{"top-p", O_TOP_P, "P", "nucleus sampling threshold (default 1: off)"},
	{"top-k", O_TOP_K, "K", "sample among the K most likely (default 0: off)"},
	{"min-p", O_MIN_P, "P", "keep tokens at least P times as likely as the top one"},
	{"repeat-penalty", O_REPEAT, "F", "divide the logits (multiply the negative ones) of\n"
	                                  "tokens among the last --repeat-last-n (default 1: off)"},
	{"repetition-penalty", O_REPEAT, "F", NULL},
	{"repeat-last-n", O_REPEAT_N, "N", "the window of the three penalties (default 64)"},
	{"presence-penalty", O_PRESENCE, "F", "subtract F from the logit of each token in the window"},
	{"frequency-penalty", O_FREQUENCY, "F", "subtract F per occurrence in the window"},
	{"logit-bias", O_BIAS, "ID=BIAS", "add BIAS to the logit of token ID (repeatable)"},
	{"stop", O_STOP, "STRING", "end the text before STRING, which is not printed\n"
	                           "(repeatable; with --prompt or --chat)"},
	{"seed", 's', "S", "sampling seed (default 0)"},
	{"prompt-cache", O_PCACHE, "FILE", "continue from the state FILE holds for a prefix of the\n"
	                                   "input, then save the state after the input to FILE"},
	{"serve", O_SERVE, NULL, "serve the OpenAI API over HTTP instead (the options\n"
	                         "above are the requests' defaults)"},
	{"host", O_HOST, "H", "--serve: the address to bind (default 127.0.0.1)"},
	{"port", O_PORT, "P", "--serve: the port (default 8080)"},
	{"parallel", O_PARALLEL, "N", "--serve: sequences decoded together (default 1);\n"
	                            "with --tokens and --logits-out OUT: the input as N\n"
	                            "staggered sequences decoded together, the logits of\n"
	                            "sequence s > 0 to OUT.s.npy (a check of batching)"},
	{"cache-bytes", O_CACHE_BYTES, "B", "--serve: memory for prompt-cache snapshots\n"
	                                    "(default 1 GB; suffixes K, M, G)"},
	{"api-key", O_API_KEY, "KEY", "--serve: require 'Authorization: Bearer KEY'"},
	{"threads", 't', "N", "threads for the kernels (default: all cores)"},
	{"no-mmap", O_NO_MMAP, NULL, "read the weights into memory in 2 MB pages at load\n"
	                           "(decodes faster where the file is cached in 4 KB\n"
	                           "pages; costs the read and memory of its own)"},
	{"mmap", O_MMAP, NULL, "use the weights in the file's mapping (the default)"},
	{"fast", O_FAST, NULL, "prefill products with int8 activations on 8- and 4-bit\n"
	                       "weights and bf16 ones on float weights (where the CPU\n"
	                       "has BF16 dot products): faster, the logits no longer\n"
	                       "within 1e-4 of the reference (README: Speed); default\n"
	                       "off, on when built with lmcc build --fast"},
	{"check", O_CHECK, "CASE_DIR", "run a golden case (config.json, model.safetensors,\n"
	                              "tokens.npy, logits.npy): the worst row's error against\n"
	                              "the bound 1e-4 of its largest logit; exit 0 within, 1 not"},
	{"bench", O_BENCH, "SPEC", "what lmcc bench runs: load once, then time the tests of\n"
	                          "SPEC (p=N,..;n=N;r=R;t=T,..;d=D,..), a JSON line each"},
	{"version", O_VERSION, NULL, "lmcc's version and the model's"},
	{"help", 'h', NULL, "this text"},
	{0},
};

void lm_run_usage(FILE *f, const char *prog, const char *weights)
{
	fprintf(f, "usage: %s [RUN OPTIONS]\n"
	        "Run the model: on token ids or text, write logits, generate, report speed.\n\n",
	        prog);
	lm_opt_help(f, lm_run_opts);
	if (weights)
		fprintf(f, "\nThe checkpoint is %s unless --weights names another.\n", weights);
	fputs("\nWith --tokens, generated ids go to stdout, one line, comma separated; with\n"
	      "text, the generated text is streamed to stdout.  Load time and prompt and\n"
	      "generation speed go to stderr.\n", f);
}

enum { TEXT_MAX_NEW = 512, CHAT_CTX = 4096, PIECE = 256 };

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
	const char *weights, *adapter, *tokens, *logits_out, *prompt, *system, *template;
	char *prompt_buf;      /* the prompt read from a file or stdin */
	const char *check;     /* a golden case directory */
	const char *bench;     /* --bench SPEC */
	char *check_tokens;
	int chat, long_ctx;
	long gen, chunk, ctx, threads;   /* gen < 0: not given */
	lm_sampler samp;
	uint64_t seed;
	char **stop;     /* --stop strings */
	int nstop;
	int *bias_id;    /* --logit-bias */
	float *bias;
	const char *prompt_cache;
	int serve;
	lm_serve_opts so;
} Options;

/* --logit-bias ID=BIAS */
static void add_bias(Options *o, const char *v)
{
	char *eq = strchr(v, '='), id[24];
	if (!eq || eq == v || (size_t)(eq - v) >= sizeof id)
		lm_fail(NULL, "--logit-bias: '%s' is not ID=BIAS", v);
	memcpy(id, v, eq - v);
	id[eq - v] = 0;
	int n = o->samp.nbias;
	o->bias_id = lm_realloc(o->bias_id, (n + 1) * sizeof(int));
	o->bias = lm_realloc(o->bias, (n + 1) * sizeof(float));
	o->bias_id[n] = (int)parse_long("--logit-bias", id, 0, 0x7fffffff);
	o->bias[n] = (float)parse_double("--logit-bias", eq + 1, -1e30, 1e30);
	o->samp.nbias = n + 1;
	o->samp.bias_id = o->bias_id;
	o->samp.bias = o->bias;
}

/* A byte count: digits and an optional K, M or G (powers of 1024). */
static long parse_bytes(const char *opt, const char *v)
{
	char *end;
	errno = 0;
	double x = strtod(v, &end);
	double mul = *end == 'K' || *end == 'k' ? 1024.0 : *end == 'M' || *end == 'm' ? 1048576.0
	             : *end == 'G' || *end == 'g' ? 1073741824.0 : 1;
	if (end == v || errno || (*end && (mul == 1 || end[1])) || !(x >= 0 && x * mul <= 1e15))
		lm_fail(NULL, "%s: '%s' is not a byte count (digits, then K, M or G)", opt, v);
	return (long)(x * mul);
}

static char *read_all(FILE *f);

static char *read_prompt(const char *path)
{
	if (!strcmp(path, "-"))
		return read_all(stdin);
	FILE *f = fopen(path, "rb");
	if (!f)
		lm_fail(path, "cannot open: %s", strerror(errno));
	char *text = read_all(f);
	fclose(f);
	return text;
}

static Options parse(int argc, char **argv, const lm_model *m)
{
	Options o = {.weights = m->weights, .adapter = m->adapter, .gen = -1,
	             .samp = {.temp = 0, .top_p = 1, .repeat_penalty = 1, .repeat_last_n = 64},
	             .so = {.host = "127.0.0.1", .port = 8080, .parallel = 1,
	                    .cache_bytes = 1L << 30}};
	lm_optp p;
	const char *v, *file = NULL;
	int k;
	lm_opt_init(&p, argc, argv, lm_run_opts, m->name);
	while ((k = lm_opt_next(&p, &v)) != -1) {
		switch (k) {
		case 'h':
			lm_run_usage(stdout, argv[0], m->weights);
			exit(0);
		case O_VERSION:
			printf("%s\nmodel %s%s%s\n", lm_version(), m->name,
			       m->weights ? ", built from " : "", m->weights ? m->weights : "");
			exit(0);
		case 'm': o.weights = v; break;
		case O_ADAPTER: o.adapter = v; break;
		case O_TOKENS: o.tokens = v; break;
		case 'p': o.prompt = v; break;
		case 'f': file = v; break;
		case O_SYSTEM: o.system = v; break;
		case O_TEMPLATE: o.template = v; break;
		case O_CHAT: o.chat = 1; break;
		case O_LONG_CTX: o.long_ctx = 1; break;
		case O_CHECK: o.check = v; break;
		case O_BENCH: o.bench = v; break;
		case O_FAST: lm_fast = 1; break;
		case O_LOGITS: o.logits_out = v; break;
		case 'n': o.gen = parse_long("-n", v, 0, 1L << 24); break;
		case O_CHUNK: o.chunk = parse_long("--chunk", v, 1, 1L << 24); break;
		case 'c': o.ctx = parse_long("--ctx", v, 1, 1L << 24); break;
		case 't': o.threads = parse_long("--threads", v, 1, 1024); break;
		case O_MMAP: lm_set_mmap(1); break;
		case O_NO_MMAP: lm_set_mmap(0); break;
		case O_TEMP: o.samp.temp = (float)parse_double("--temp", v, 0, 1e6); break;
		case O_TOP_P: o.samp.top_p = (float)parse_double("--top-p", v, 0, 1); break;
		case O_TOP_K: o.samp.top_k = parse_long("--top-k", v, 0, 1L << 30); break;
		case 's': o.seed = (uint64_t)parse_long("--seed", v, 0, 0x7fffffffffffffffL); break;
		case O_MIN_P: o.samp.min_p = (float)parse_double("--min-p", v, 0, 1); break;
		case O_REPEAT:
			o.samp.repeat_penalty = (float)parse_double("--repeat-penalty", v, 1e-6, 1e6);
			break;
		case O_REPEAT_N: o.samp.repeat_last_n = parse_long("--repeat-last-n", v, 0, 1L << 24); break;
		case O_PRESENCE:
			o.samp.presence_penalty = (float)parse_double("--presence-penalty", v, -1e6, 1e6);
			break;
		case O_FREQUENCY:
			o.samp.frequency_penalty = (float)parse_double("--frequency-penalty", v, -1e6, 1e6);
			break;
		case O_BIAS: add_bias(&o, v); break;
		case O_STOP:
			if (!*v)
				lm_fail(NULL, "--stop: the string is empty");
			o.stop = lm_realloc(o.stop, (o.nstop + 1) * sizeof *o.stop);
			o.stop[o.nstop++] = (char *)v;
			break;
		case O_PCACHE: o.prompt_cache = v; break;
		case O_SERVE: o.serve = 1; break;
		case O_HOST: o.so.host = v; break;
		case O_PORT: o.so.port = (int)parse_long("--port", v, 0, 65535); break;
		case O_PARALLEL: o.so.parallel = (int)parse_long("--parallel", v, 1, 64); break;
		case O_CACHE_BYTES: o.so.cache_bytes = parse_bytes("--cache-bytes", v); break;
		case O_API_KEY: o.so.api_key = v; break;
		default: lm_bug("run option %d has no case", k);
		}
	}
	if (p.npos)
		lm_fail(NULL, "%s: unexpected argument '%s' (the checkpoint is --weights DIR)",
		        m->name, p.pos[0]);
	if (o.check) {
		if (o.tokens || o.prompt || file || o.chat || o.logits_out || o.gen >= 0)
			lm_fail(NULL, "--check: the case gives the input and the logits; no --tokens, "
			        "--prompt, --chat, --logits-out or -n with it");
		char *t = lm_path(o.check, "tokens.npy");
		o.check_tokens = lm_alloc(strlen(t) + 2);
		o.check_tokens[0] = '@';
		strcpy(o.check_tokens + 1, t);
		free(t);
		o.weights = o.check;
		o.tokens = o.check_tokens;
	}
	if (o.bench && (o.tokens || o.prompt || file || o.chat || o.logits_out || o.gen >= 0
	                || o.check || o.serve || o.prompt_cache))
		lm_fail(NULL, "--bench: its SPEC gives the input; no --tokens, --prompt, --chat, "
		        "--logits-out, -n, --check, --serve or --prompt-cache with it");
	if (file && o.prompt)
		lm_fail(NULL, "-f: give the prompt as --prompt or from a file, not both");
	if ((file || (o.prompt && !strcmp(o.prompt, "-"))) && lm_stage_rank() == 0)
		o.prompt = o.prompt_buf = read_prompt(file ? file : "-");
	if (o.tokens && (o.prompt || o.chat))
		lm_fail(NULL, "--tokens: give ids or text (--prompt, --chat), not both");
	if (o.system && !o.chat)
		lm_fail(NULL, "--system: needs --chat");
	if (o.template && !o.chat && !o.serve)
		lm_fail(NULL, "--chat-template: needs --chat");
	if (o.nstop && o.tokens)
		lm_fail(NULL, "--stop: needs text input (--prompt or --chat)");
	if (o.so.parallel > 1 && !o.serve && (!o.tokens || !o.logits_out || o.gen >= 0 || o.chunk
	                                      || o.prompt_cache || o.check))
		lm_fail(NULL, "--parallel: needs --serve, or --tokens with --logits-out (and no -n, "
		        "--chunk, --prompt-cache or --check)");
	if (o.serve && (o.tokens || o.prompt || o.chat || o.logits_out || o.prompt_cache))
		lm_fail(NULL, "--serve: takes its input from HTTP requests, not --tokens, "
		        "--prompt, --chat, --logits-out or --prompt-cache");
	return o;
}

/* ---- a session: the model, what it has seen, and its last logits ---- */

typedef struct {
	const lm_model *m;
	const Options *o;
	long ctx;
	int *hist;             /* every token fed since the last reset */
	long nhist, caphist;
	float *logits;         /* room for `rows` rows */
	long rows;
	const float *last;     /* the logits after the last token fed */
	long choose;           /* ids [0, choose) may be generated */
	uint64_t rng;
	lm_fp fp;              /* the model's, for --prompt-cache */
	double t_feed, t_gen;  /* seconds spent feeding input, generating */
	long n_feed, n_gen;    /* tokens fed: the input, and generated ones */
} Session;

static void check_ids(const Session *s, const int *ids, long n, const char *where)
{
	for (long i = 0; i < n; i++)
		if (ids[i] >= s->m->vocab)
			lm_fail(where, "token %ld: id %d is not below vocab_size %ld", i, ids[i],
			        s->m->vocab);
	if (s->nhist + n > s->ctx)
		lm_fail(NULL, "--ctx: %ld tokens would be longer than the context of %ld",
		        s->nhist + n, s->ctx);
}

static void remember(Session *s, const int *ids, long n)
{
	if (n <= 0)     /* memcpy's pointers must be valid even for 0 bytes */
		return;
	if (s->nhist + n > s->caphist) {
		s->caphist = 2 * (s->nhist + n);
		s->hist = lm_realloc(s->hist, s->caphist * sizeof(int));
	}
	memcpy(s->hist + s->nhist, ids, n * sizeof(int));
	s->nhist += n;
}

/* Feed n tokens in calls of --chunk; with out, write every row's logits. */
/* Seconds of prefill after which a terminal shows its progress. */
static double progress_after(void)
{
	const char *e = getenv("LMCC_PROGRESS_AFTER");
	return e && *e ? atof(e) : 2.0;
}

static void feed(Session *s, const int *ids, long n, FILE *out)
{
	long chunk = s->o->chunk ? s->o->chunk : n;
	double t0 = lm_now(), after = -1;
	/* on a terminal, a long input goes in pieces (the result does not
	 * depend on how it is cut) so that its progress can be shown */
	if (!s->o->chunk && n > PIECE && isatty(2)) {
		chunk = PIECE;
		after = progress_after();
	}
	int shown = 0;
	for (long i = 0; i < n; i += chunk) {
		long c = n - i < chunk ? n - i : chunk;
		s->m->forward(ids + i, c, s->logits, out != NULL);
		if (out && fwrite(s->logits, sizeof(float) * s->m->vocab, c, out) != (size_t)c)
			lm_fail(s->o->logits_out, "write error: %s", strerror(errno));
		s->last = out ? s->logits + (c - 1) * s->m->vocab : s->logits;
		double t = lm_now() - t0;
		if (after >= 0 && t > after && i + c < n) {
			fprintf(stderr, "\rlmcc: %s: prefill %ld of %ld tokens, %.1f s, %.1f tok/s",
			        s->m->name, i + c, n, t, (i + c) / t);
			shown = 1;
		}
	}
	if (shown)
		fprintf(stderr, "\r\033[K");
	remember(s, ids, n);
	s->t_feed += lm_now() - t0;
	s->n_feed += n;
}

/* --prompt-cache: continue from the file's state for a prefix of the
 * prompt; returns how many of its tokens are already held. */
static long cache_load(Session *s, const int *ids, long n)
{
	if (!s->o->prompt_cache)
		return 0;
	long k = lm_pcache_load(s->o->prompt_cache, s->fp, s->m->state, s->m->vocab, ids, n,
	                        s->logits);
	remember(s, ids, k);
	if (k == n)
		s->last = s->logits;
	fprintf(stderr, "lmcc: %s: %ld of %ld prompt tokens from the prompt cache\n",
	        s->o->prompt_cache, k, n);
	return k;
}

/* --prompt-cache: the state after the prompt, for the next run. */
static void cache_save(Session *s)
{
	if (s->o->prompt_cache)
		lm_pcache_save(s->o->prompt_cache, s->fp, s->m->state, s->m->vocab, s->hist,
		               s->nhist, s->last);
}

/* Generate up to max tokens, each passed to emit(); stop after a token
 * stop() accepts, which is not fed.  Returns the count generated. */
static long generate(Session *s, long max, int (*stop)(void *, int),
                     void (*emit)(void *, int, long), void *ctx)
{
	double t0 = lm_now();
	long g;
	for (g = 0; g < max; g++) {
		int id = lm_sample_hist(s->last, s->choose, &s->o->samp, s->hist, s->nhist,
		                        &s->rng);
		emit(ctx, id, g);
		if (stop && stop(ctx, id)) {
			g++;
			break;
		}
		if (g + 1 < max) {
			if (s->nhist + 1 > s->ctx)
				lm_fail(NULL, "--ctx: generation reached the context of %ld tokens", s->ctx);
			s->m->forward(&id, 1, s->logits, 0);
			s->last = s->logits;
			remember(s, &id, 1);
			s->n_gen++;
		}
	}
	s->t_gen += lm_now() - t0;
	return g;
}

static void stats(const Session *s, double load, const lm_ckpt *ck)
{
	char pages[96];
	lm_ck_pages(ck, pages, sizeof pages);
	/* prefill: the input (the prompt); decode: each generated token fed
	 * back, one forward pass each */
	fprintf(stderr, "lmcc: %s: load %.3f s (%s); prefill %ld tokens in %.3f s (%.1f tok/s)",
	        s->m->name, load, pages, s->n_feed, s->t_feed,
	        s->n_feed / (s->t_feed > 0 ? s->t_feed : 1e-9));
	if (s->n_gen)
		fprintf(stderr, "; decode %ld tokens in %.3f s (%.1f tok/s)", s->n_gen,
		        s->t_gen, s->n_gen / (s->t_gen > 0 ? s->t_gen : 1e-9));
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	fprintf(stderr, "; peak memory %.1f MB; %s kernels%s%s\n", ru.ru_maxrss / 1024.0,
	        lm_isa_name(lm_isa()), lm_gemm_bf16x3_ran ? ", BF16 prefill on AMX tiles" : "",
	        lm_fast ? lm_fast_note() : "");
}

/* ---- ids in, ids out ---- */

static void emit_id(void *ctx, int id, long g)
{
	(void)ctx;
	printf("%s%d", g ? "," : "", id);
	fflush(stdout);
}

/* --check: the logits of the case's tokens against its logits.npy. */
static int check_case(Session *s, const int *tok, long n)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&buf, &len);
	if (!out)
		lm_bug("open_memstream: %s", strerror(errno));
	feed(s, tok, n, out);
	fclose(out);
	char *path = lm_path(s->o->check, "logits.npy");
	lm_npy ref = lm_npy_read(path);
	if (ref.type != LM_NPY_F32 || ref.ndim != 2 || ref.shape[0] != n || ref.shape[1] != s->m->vocab)
		lm_fail(path, "expected float32 [%ld, %ld]: the logits of tokens.npy", n, s->m->vocab);
	lm_cmp c;
	int ok = lm_logits_cmp((const float *)buf, ref.data, n, s->m->vocab, &c);
	printf("%s: %s: max relative error %.3g (row %ld)%s%s, bound %g: %s\n", s->m->name,
	       s->o->check, c.worst, c.row, c.bad_argmax >= 0 ? "; argmax differs at row " : "",
	       c.bad_argmax >= 0 ? lm_name("%ld", c.bad_argmax) : "", LM_GOLDEN_BOUND,
	       ok ? "pass" : "FAIL");
	free(ref.data);
	free(path);
	free(buf);
	return ok ? 0 : 1;
}

static void run_ids(Session *s, const int *tok, long n, const char *where)
{
	check_ids(s, tok, n, where);
	long k = cache_load(s, tok, n);
	FILE *out = NULL;
	if (s->o->logits_out) {   /* the rows of the tokens fed */
		long shape[2] = {n - k, s->m->vocab};
		out = lm_npy_create_f32(s->o->logits_out, 2, shape);
	}
	feed(s, tok + k, n - k, out);
	if (out && fclose(out))
		lm_fail(s->o->logits_out, "write error: %s", strerror(errno));
	cache_save(s);
	if (s->o->gen > 0) {
		generate(s, s->o->gen, NULL, emit_id, NULL);
		printf("\n");
		fflush(stdout);
	}
}

/* ---- text in, text out ---- */

typedef struct {
	lm_tok *tok;
	lm_detok *dt;
	int chat;
	int *ids;          /* this reply's ids, the stop token excluded */
	long n;
	lm_stop stop;      /* --stop strings */
	char *text;        /* the text printed */
	size_t len;
} Reply;

static int reply_stop(void *ctx, int id)
{
	Reply *r = ctx;
	return lm_tok_is_eos(r->tok, id, r->chat) || r->stop.hit;
}

static void reply_print(Reply *r, const char *text, size_t len)
{
	fwrite(text, 1, len, stdout);
	fflush(stdout);
	r->text = lm_realloc(r->text, r->len + len + 1);
	memcpy(r->text + r->len, text, len);
	r->text[r->len += len] = 0;
}

static void reply_emit(void *ctx, int id, long g)
{
	Reply *r = ctx;
	(void)g;
	if (lm_tok_is_eos(r->tok, id, r->chat))
		return;
	r->ids = lm_realloc(r->ids, (r->n + 1) * sizeof(int));
	r->ids[r->n++] = id;
	size_t len;
	const char *text = lm_detok_push(r->dt, id, &len);
	len = lm_stop_push(&r->stop, text, len, &text);
	reply_print(r, text, len);
}

/* Generate a reply to what was fed; its text is streamed to stdout.  The
 * decoder first sees `ctx` (the prompt of a plain continuation, whose text
 * is not printed again): a SentencePiece decoder drops the space that
 * starts a text, and the reply does not start one. */
static Reply reply(Session *s, lm_tok *tok, int chat, const int *ctx, long nctx)
{
	Reply r = {.tok = tok, .dt = lm_detok_new(tok), .chat = chat};
	lm_stop_init(&r.stop, s->o->stop, s->o->nstop);
	reply_print(&r, "", 0);
	size_t skip;
	for (long i = 0; i < nctx; i++)
		lm_detok_push(r.dt, ctx[i], &skip);
	long max = s->o->gen >= 0 ? s->o->gen : TEXT_MAX_NEW;
	if (max > s->ctx - s->nhist + 1)
		max = s->ctx - s->nhist + 1;
	generate(s, max, reply_stop, reply_emit, &r);
	size_t len;
	const char *rest = lm_detok_flush(r.dt, &len);
	len = lm_stop_push(&r.stop, rest, len, &rest);
	reply_print(&r, rest, len);
	len = lm_stop_flush(&r.stop, &rest);
	reply_print(&r, rest, len);
	lm_detok_free(r.dt);
	lm_stop_free(&r.stop);
	return r;
}

static int *encode(lm_tok *tok, const char *text, int add_bos, long *n)
{
	int *ids;
	*n = lm_tok_encode(tok, text, strlen(text), add_bos, &ids);
	return ids;
}

/* Feed the conversation so far, as the template renders it.  *seen is the
 * text the cache already holds (the last rendering plus the reply as
 * generated): when the new rendering extends it, only the rest is encoded
 * and fed, and the cache carries over from turn to turn.  Otherwise (a
 * template that rewrites earlier turns) the model starts over: recurrent
 * layers cannot forget a suffix. */
static void feed_conversation(Session *s, lm_tok *tok, const lm_chat_msg *msgs, int nmsg,
                              char **seen, const char *where)
{
	char *text = lm_tok_chat(tok, msgs, nmsg, 1);
	if (!text)
		lm_fail(where, "--chat: the model has no chat template (chat_template in "
		        "tokenizer_config.json, or chat_template.jinja)");
	size_t k = *seen ? strlen(*seen) : 0;
	if (!*seen || strncmp(text, *seen, k) || !text[k]) {
		s->m->reset();
		s->nhist = 0;
		k = 0;
	}
	long n;
	int first = !*seen;
	int *ids = encode(tok, text + k, 0, &n);
	check_ids(s, ids, n, where);
	long from = first ? cache_load(s, ids, n) : 0;
	feed(s, ids + from, n - from, NULL);
	if (first)
		cache_save(s);
	free(ids);
	free(*seen);
	*seen = text;
}

static char *read_all(FILE *f)
{
	size_t cap = 4096, n = 0, got;
	char *b = lm_alloc(cap);
	while ((got = fread(b + n, 1, cap - n - 1, f)) > 0) {
		n += got;
		if (n + 1 == cap)
			b = lm_realloc(b, cap *= 2);
	}
	b[n] = 0;
	return b;
}

static void run_text(Session *s, lm_tok *tok, const char *where)
{
	const Options *o = s->o;
	if (!o->chat) {
		long n;
		int *ids = encode(tok, o->prompt, 1, &n);
		if (!n)
			lm_fail(NULL, "--prompt: the text gives no tokens");
		check_ids(s, ids, n, where);
		long k = cache_load(s, ids, n);
		feed(s, ids + k, n - k, NULL);
		cache_save(s);
		Reply r = reply(s, tok, 0, ids, n);
		free(ids);
		free(r.ids);
		free(r.text);
		printf("\n");
		return;
	}
	lm_chat_msg *msgs = lm_alloc(3 * sizeof *msgs);
	int nmsg = 0, interactive = !o->prompt && isatty(0);
	char *seen = NULL;
	if (o->system)
		msgs[nmsg++] = (lm_chat_msg){"system", o->system};
	for (int turn = 0;; turn++) {
		char *line = NULL;
		if (o->prompt && turn == 0) {
			line = lm_strdup(o->prompt);
		} else if (!o->prompt && !interactive && turn == 0) {
			line = read_all(stdin);
		} else if (interactive) {
			size_t cap = 0;
			fprintf(stderr, "%s> ", turn ? "\n" : "");
			ssize_t len = getline(&line, &cap, stdin);
			if (len <= 0 || (len == 1 && line[0] == '\n')) {
				free(line);
				break;
			}
			if (line[len - 1] == '\n')
				line[len - 1] = 0;
		} else {
			break;
		}
		msgs = lm_realloc(msgs, (nmsg + 2) * sizeof *msgs);
		msgs[nmsg++] = (lm_chat_msg){"user", line};
		feed_conversation(s, tok, msgs, nmsg, &seen, where);
		Reply r = reply(s, tok, 1, NULL, 0);
		printf("\n");
		size_t len;
		/* the cache holds the reply's tokens; the conversation, its text
		 * (the two differ after a stop string: the next turn starts over) */
		char *text = lm_tok_decode(tok, r.ids, (int)r.n, &len);
		seen = lm_realloc(seen, strlen(seen) + len + 1);
		strcat(seen, text);
		free(text);
		msgs[nmsg++] = (lm_chat_msg){"assistant", r.text};
		free(r.ids);
	}
	free(seen);
	for (int i = 0; i < nmsg; i++)
		if (strcmp(msgs[i].role, "system"))
			free((char *)msgs[i].content);
	free(msgs);
}

void lm_load(lm_loaded *w, const lm_model *m, const char *weights, const char *adapter,
             long ctx)
{
	*w = (lm_loaded){.m = m};
	lm_check_config(m, weights);
	lm_err e;
	if (lm_catch(&e)) {       /* under the C API the process goes on */
		lm_unload(w);
		lm_err_raise(&e);
	}
	w->ck = lm_stage_open(weights);
	if (adapter && !m->lora)
		lm_fail(adapter, "--adapter: this program was built without an adapter "
		        "(lmcc build MODEL_DIR --adapter DIR builds one with it)");
	if (m->lora)
		w->ad = lm_adapter_open(adapter, &w->got, m->lora);
	m->create(w->ck, w->ad, ctx);
	lm_stage_agree(m, weights, w->ck, w->ad);     /* with several ranks, the same files */
	lm_check_tensors(m, w->ck);
	if (w->ad)
		lm_adapter_done(w->ad);
	lm_err_pop(&e);
}

void lm_unload(lm_loaded *w)
{
	if (w->m)
		lm_state_free(w->m->state);   /* what create() made, all of it or part */
	lm_lora_forget(w->ad);
	lm_ck_close(w->ck);
	lm_ck_close(w->ad);
	free((char *)w->got.keys);
	*w = (lm_loaded){0};
}

int lm_main(int argc, char **argv, const lm_model *m)
{
	int ranks = lm_stage_start(m);
	lm_fast = m->fast;
	Options o = parse(argc, argv, m);
	if (!o.weights)
		lm_fail(NULL, "no checkpoint: give --weights DIR");
	if (ranks > 1) {
		if (o.threads)
			lm_set_threads((int)o.threads);
		if (lm_stage_rank())     /* rank 0 alone reads input, writes output */
			return lm_stage_worker(m, o.weights, o.adapter);
		if (o.serve || o.prompt_cache || o.bench)
			lm_fail(NULL, "%s: in one process only, not over several ranks: start it "
			        "without mpirun (the ranks run --tokens, --prompt and --chat)",
			        o.serve ? "--serve" : o.prompt_cache ? "--prompt-cache" : "--bench");
	}
	if (o.serve) {
		o.so.weights = o.weights;
		o.so.adapter = o.adapter;
		o.so.template = o.template;
		o.so.ctx = o.ctx;
		o.so.threads = o.threads;
		o.so.samp = o.samp;
		o.so.seed = o.seed;
		o.so.gen = o.gen;
		o.so.stop = o.stop;
		o.so.nstop = o.nstop;
		return lm_serve(m, &o.so);
	}
	if (o.bench)
		return lm_bench(m, o.weights, o.adapter, o.bench, o.long_ctx);
	if (!o.tokens && !o.prompt && !o.chat)
		lm_fail(NULL, "no input: give --tokens LIST, --tokens @F.npy, --prompt TEXT or --chat");
	if (o.threads)
		lm_set_threads((int)o.threads);

	Session s = {.m = m, .o = &o, .choose = m->vocab,
	             .rng = o.seed * 0x9E3779B97F4A7C15ull + 1};
	long n = 0;
	const char *where = o.weights;
	int *tok = NULL;
	lm_tok *tk = NULL;
	if (o.tokens) {
		tok = read_tokens(o.tokens, &n, &where);
		if (n == 0)
			lm_fail(where, "no input tokens");
		long need = n + (o.gen > 0 ? o.gen : 0);
		if (o.ctx && need > o.ctx)
			lm_fail(NULL, "--ctx: the input (%ld tokens) plus %ld to generate is longer than the context of %ld",
			        n, o.gen > 0 ? o.gen : 0, o.ctx);
		/* room for the cached prompt too, which is cut back only after
		 * it is restored */
		long cached = o.prompt_cache ? lm_pcache_count(o.prompt_cache) : 0;
		s.ctx = o.ctx ? o.ctx : need > cached ? need : cached;
	} else {
		tk = lm_tok_open(o.weights);
		if (!tk)
			lm_fail(o.weights, "no tokenizer (tokenizer.json, tokenizer.model, tiktoken.model or tokenizer.jsonl) for --prompt or --chat");
		if (o.template)
			lm_tok_set_chat_template(tk, o.template);
		s.ctx = o.ctx ? o.ctx : CHAT_CTX;
		if (!o.ctx && m->max_ctx && m->max_ctx < s.ctx)
			s.ctx = m->max_ctx;
		/* an embedding padded past the tokenizer's ids (PLaMo pads to a
		 * multiple of 32 or 64) must not produce an id it cannot print */
		if (lm_tok_n_vocab(tk) < s.choose)
			s.choose = lm_tok_n_vocab(tk);
	}

	if (m->max_ctx && s.ctx > m->max_ctx && !o.long_ctx)
		lm_fail(NULL, "--ctx: a context of %ld tokens is past the %ld positions of the "
		        "model's %s; --allow-long-ctx runs it anyway", s.ctx, m->max_ctx,
		        m->max_ctx_field ? m->max_ctx_field : "position limit");

	double t0 = lm_now();
	lm_loaded w;
	lm_stage_setup(m, &s.ctx);
	lm_load(&w, m, o.weights, o.adapter, s.ctx);
	s.m = m = lm_stage_driver(m);
	if (o.prompt_cache)
		s.fp = lm_fingerprint(o.weights, w.ck, w.ad);
	double load = lm_now() - t0;
	long chunk = o.chunk ? o.chunk : (o.tokens ? n : s.ctx);
	s.rows = o.logits_out || o.check ? (chunk < n ? chunk : n) : 1;
	s.logits = lm_floats((size_t)m->vocab * s.rows);

	int rc = 0;
	if (o.check) {
		check_ids(&s, tok, n, where);
		rc = check_case(&s, tok, n);
	} else if (o.tokens && o.so.parallel > 1) {
		check_ids(&s, tok, n, where);
		lm_batch_run(m, tok, n, o.so.parallel, o.logits_out);
	} else if (o.tokens)
		run_ids(&s, tok, n, where);
	else
		run_text(&s, tk, o.weights);
	if (!(o.tokens && o.so.parallel > 1))   /* lm_batch_run says what it did */
		stats(&s, load, w.ck);
	lm_stage_end(m);
	free(tok);
	free(o.stop);
	free(o.bias_id);
	free(o.bias);
	free(o.prompt_buf);
	free(o.check_tokens);
	free(s.logits);
	free(s.hist);
	lm_tok_free(tk);
	lm_unload(&w);
	return rc;
}
