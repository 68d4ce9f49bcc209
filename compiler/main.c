/* main.c: lmcc's command line: the dispatch, and the subcommands that
 * share one path from a model directory to its plan and its code (plan,
 * emit, build, run, serve).  init, quantize and fuse, which write
 * checkpoints, live in files of their own (cmd.h). */
#define _GNU_SOURCE
#include "adapter.h"
#include "build.h"
#include "cmd.h"
#include "emit.h"
#include "plan.h"
#include "tmpl.h"
#include "../runtime/opt.h"
#include "../runtime/rt.h"
#include "../runtime/text/tok.h"

#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char usage[] =
	"usage: lmcc COMMAND ...\n"
	"lmcc compiles a language model's config.json into specialised C.\n"
	"\n"
	"  lmcc plan  MODEL_DIR               print the derived layer schedule\n"
	"  lmcc emit  MODEL_DIR [-o DIR]      write the C source (default out/<name>/)\n"
	"  lmcc build MODEL_DIR [-o DIR]      emit and compile with gcc: DIR/<name>\n"
	"  lmcc run   MODEL_DIR [RUN OPTIONS] emit, compile in memory with libtcc, run\n"
	"  lmcc serve MODEL_DIR [RUN OPTIONS] the same, serving the OpenAI API over HTTP\n"
	"             [--host H] [--port P] [--api-key KEY] [--cache-bytes B]\n"
	"  lmcc init  CONFIG.json -o DIR      random-weight checkpoint for any config\n"
	"  lmcc fuse  MODEL_DIR --adapter DIR -o OUT\n"
	"                                     merge an mlx-lm LoRA/DoRA adapter into the weights\n"
	"  lmcc quantize MODEL_DIR -o OUT     MLX's quantized format, as mlx_lm.convert -q\n"
	"  lmcc bench MODEL_DIR [-p N,..] [-n N] [-t N,..]\n"
	"                                     speed beside this machine's bounds, as llama-bench\n"
	"  lmcc tokenize   DIR [TEXT]         the ids of TEXT (or of JSON lines on stdin)\n"
	"  lmcc detokenize DIR IDS            the text of comma-separated ids\n"
	"\n"
	"MODEL_DIR holds config.json and the checkpoint (model.safetensors or\n"
	"shards with model.safetensors.index.json).  `lmcc COMMAND --help` tells\n"
	"more; `lmcc run --help` lists the RUN OPTIONS.  `lmcc --version`: the\n"
	"version and the commit lmcc was built from.\n";

/* The config of a model directory (or a config file named directly). */
static char *config_of(const char *dir)
{
	struct stat st;
	if (stat(dir, &st))
		lm_fail(dir, "cannot open: %s", strerror(errno));
	if (S_ISREG(st.st_mode))
		return lm_strdup(dir);
	char *c = lm_path(dir, "config.json");
	if (stat(c, &st))
		lm_fail(dir, "no config.json in this directory");
	return c;
}

/* A subcommand's command line: its options (each table ends with -h),
 * and one MODEL_DIR among them.  Prints the help and exits on -h. */
typedef struct {
	const char *dir, *out, *adapter;
	int fast;           /* lmcc build --fast */
} Args;

#define ADAPTER_OPT {"adapter", 'a', "DIR", "a LoRA/DoRA adapter directory as mlx-lm writes it"}, \
	{"adapter-path", 'a', "DIR", NULL}

static const lm_opt out_opts[] = {
	{"output", 'o', "DIR", "where to write (default out/<name>/)"},
	ADAPTER_OPT,
	{"help", 'h', NULL, "this text"},
	{0},
};

static Args model_args(int argc, char **argv, const lm_opt *opts, const char *help,
                       void (*opt)(int key, const char *val))
{
	Args a = {0};
	lm_optp p;
	const char *v;
	int k;
	lm_opt_init(&p, argc, argv, opts, argv[0]);
	while ((k = lm_opt_next(&p, &v)) != -1) {
		if (k == 'h') {
			printf("%s\n", help);
			lm_opt_help(stdout, opts);
			exit(0);
		} else if (k == 'o') {
			a.out = v;
		} else if (k == 'a') {
			a.adapter = v;
		} else {
			opt(k, v);
		}
	}
	if (p.npos == 0)
		lm_fail(NULL, "%s: needs MODEL_DIR (see lmcc %s --help)", argv[0], argv[0]);
	if (p.npos > 1)
		lm_fail(NULL, "%s: unexpected argument '%s' (see lmcc %s --help)", argv[0],
		        p.pos[1], argv[0]);
	a.dir = p.pos[0];
	return a;
}

/* The plan of MODEL_DIR, with the adapter of --adapter laid onto it. */
void load_plan(Plan *p, const char *dir, const char *adapter)
{
	char *cfg = config_of(dir);
	plan_read(p, cfg, dir, 1);
	free(cfg);
	if (adapter)
		adapter_read(p, adapter);
}

static void no_opt(int key, const char *val)
{
	lm_bug("option %d has no case", key);
}

enum { O_COST = LM_OPT_LONG, O_RANKS };
static const lm_opt plan_opts[] = {
	ADAPTER_OPT,
	{"ranks", O_RANKS, "N", "the split into N pipeline stages a program built with\n"
	                        "--mpi makes under mpirun -np N"},
	{"cost", O_COST, NULL, "per layer: the operations and weight bytes of one token,\n"
	                       "and the cache, at the context of --ctx"},
	{"ctx", 'c', "N", "the context length for --cost (default 4096, or the\n"
	                  "config's position limit when smaller)"},
	{"ctx-size", 'c', "N", NULL},
	{"help", 'h', NULL, "this text"},
	{0},
};
static int plan_cost_on;
static long plan_ctx, plan_ranks;

static void plan_opt(int key, const char *val)
{
	char *end;
	if (key == O_COST) {
		plan_cost_on = 1;
		return;
	}
	if (key == O_RANKS) {
		plan_ranks = strtol(val, &end, 10);
		if (!*val || *end || plan_ranks < 1 || plan_ranks > 4096)
			lm_fail(NULL, "--ranks: '%s' is not an integer in [1, 4096]", val);
		return;
	}
	plan_ctx = strtol(val, &end, 10);
	if (!*val || *end || plan_ctx < 1 || plan_ctx > 1L << 30)
		lm_fail(NULL, "--ctx: '%s' is not an integer in [1, 2^30]", val);
}

/* The checkpoint of dir, or NULL when it has none. */
static lm_ckpt *open_if_there(const char *dir)
{
	char *single = lm_path(dir, "model.safetensors"), *index = lm_path(dir, "model.safetensors.index.json");
	struct stat st;
	lm_ckpt *ck = stat(dir, &st) || !S_ISDIR(st.st_mode) || (access(single, R_OK) && access(index, R_OK))
	              ? NULL : lm_ck_open(dir);
	free(single);
	free(index);
	return ck;
}

/* What the reference drops from the checkpoint, and what of it this
 * checkpoint holds. */
static void drops(const Plan *p, lm_ckpt *ck)
{
	for (int d = 0; d < p->ndrops; d++) {
		printf("%s %s (%s)", d ? "" : "\nthe reference drops:", p->drops[d].why, p->drops[d].glob);
		long i = 0, n = 0;
		const char *name;
		while (ck && (name = lm_ck_next(ck, &i)))
			if (!fnmatch(p->drops[d].glob, name, 0) && n++ < 3)
				printf("%s %s", n > 1 ? "," : ":", name);
		if (n > 3)
			printf(" and %ld more", n - 3);
		printf("%s", d + 1 < p->ndrops ? ";" : "\n");
	}
}

/* Of a checkpoint with an index, the shards each rank opens: those that
 * hold a tensor of its parts (a quantized module's scales and biases
 * too), as lm_ck_open_part opens them a part at a time.  A tied embedding
 * is read by the embedding's rank and the head's. */
static void print_shards(const Plan *p, lm_ckpt *ck, const char *dir, int ranks,
                         const int *first)
{
	char *index = lm_path(dir, "model.safetensors.index.json");
	int sharded = ck && access(index, R_OK) == 0;
	free(index);
	if (!sharded)
		return;
	const char **file = NULL;     /* the shards, as the tensors name them */
	int nf = 0;
	long i = 0;
	for (const char *name; (name = lm_ck_next(ck, &i));) {
		const char *f = lm_ck_file(ck, name);
		int k = 0;
		while (k < nf && strcmp(file[k], f))
			k++;
		if (k == nf) {
			file = lm_realloc(file, (nf + 1) * sizeof *file);
			file[nf++] = f;
		}
	}
	char *opens = lm_alloc((size_t)ranks * nf);
	for (int t = 0; t < p->nt; t++) {
		const Tensor *x = &p->t[t];
		int tied = t == p->embed.t && p->head_tied;
		size_t n = strlen(x->name);
		int stem = n > 7 && !strcmp(x->name + n - 7, ".weight") ? (int)n - 7 : (int)n;
		for (int w = 0; w < 3; w++) {
			char name[MAX_TENSOR_NAME + 16];
			snprintf(name, sizeof name, "%.*s%s", w ? stem : (int)n, x->name,
			         (const char *[]){"", ".scales", ".biases"}[w]);
			if (lm_ck_info(ck, name, NULL, NULL) == -1)
				continue;
			const char *f = lm_ck_file(ck, name);
			int k = 0;
			while (strcmp(file[k], f))
				k++;
			for (int r = 0; r < ranks; r++)
				if ((x->part >= first[r] && x->part < first[r + 1])
				    || (tied && first[r + 1] == p->nl + 2))
					opens[(size_t)r * nf + k] = 1;
		}
	}
	printf("the %d shards of model.safetensors.index.json each rank opens (the others' "
	       "tensors it takes on the index's word):\n", nf);
	for (int r = 0; r < ranks; r++) {
		int k = 0, shown = 0;
		for (int j = 0; j < nf; j++)
			k += opens[(size_t)r * nf + j];
		printf("rank %d maps %d of %d shards:", r, k, nf);
		for (int j = 0; j < nf; j++) {
			const char *base = strrchr(file[j], '/');
			if (opens[(size_t)r * nf + j])
				printf("%s %s", shown++ ? "," : "", base ? base + 1 : file[j]);
		}
		printf("\n");
	}
	free(opens);
	free(file);
}

/* --ranks N: the split the program makes under mpirun -np N, and the
 * shards each rank opens. */
static void print_ranks(const Plan *p, int ranks, lm_ckpt *ck, const char *dir)
{
	int n = p->nl + 2, *first = lm_alloc((ranks + 1) * sizeof(int));
	lm_part *parts = lm_alloc(n * sizeof *parts);
	plan_parts(p, parts);
	if (!lm_split(parts, n, ranks, first))
		lm_fail(NULL, "--ranks: %d stages of %s's embedding, %d layers and head are too many "
		        "(layers reading another's K/V stay with it)", ranks, p->name, p->nl);
	printf("\npipeline stages (mpirun -np %d), balanced by the bytes a token reads:\n", ranks);
	lm_split_print(stdout, "", parts, p->nl, ranks, first, p->hidden, p->vocab);
	print_shards(p, ck, dir, ranks, first);
	free(parts);
	free(first);
}

int cmd_plan(int argc, char **argv)
{
	Args a = model_args(argc, argv, plan_opts,
		"usage: lmcc plan MODEL_DIR [--cost [--ctx N]] [--ranks N] [--adapter ADAPTER_DIR]\n"
		"Print the layer schedule lmcc derives from MODEL_DIR/config.json, the\n"
		"parameter count, the weight bytes and the cache sizes.  With --adapter,\n"
		"also the modules it adapts in each layer, its rank and scale, and the\n"
		"bytes of it a token reads.  With --ranks N, the split into N pipeline\n"
		"stages: per rank its parts, weight bytes, bytes read and cache per token,\n"
		"and the bytes it sends per token.\n", plan_opt);
	Plan p;
	load_plan(&p, a.dir, a.adapter);
	long params = plan_params(&p), tok, fixed;
	plan_cache(&p, &tok, &fixed);
	printf("%s (%s): vocab %ld, hidden %ld, %d layers\n\n", p.title, p.arch,
	       p.vocab, p.hidden, p.nl);
	plan_print(&p, stdout, "");
	printf("\nparameters: %ld (read per token: %ld)\n", params, plan_active_params(&p));
	printf("weight bytes: %ld as BF16, %ld as F32\n", 2 * params, 4 * params);
	printf("weights a token reads: %ld bytes as stored%s\n", plan_read_bytes(&p),
	       p.t[p.embed.t].esize || p.t[p.embed.t].bits ? "" : " (BF16: no checkpoint beside the config)");
	printf("cache (float32): %ld bytes per token, %ld bytes whatever the length\n",
	       tok, fixed);
	lm_ckpt *ck = open_if_there(a.dir);
	drops(&p, ck);
	if (plan_cost_on) {
		long ctx = plan_ctx ? plan_ctx : 4096;
		if (!plan_ctx && p.max_ctx && p.max_ctx < ctx)
			ctx = p.max_ctx;
		printf("\n");
		plan_cost(&p, ctx, ck, stdout);
	}
	if (p.ad) {
		printf("\n");
		adapter_print(&p, stdout, "");
	}
	if (plan_ranks)
		print_ranks(&p, (int)plan_ranks, ck, a.dir);
	lm_ck_close(ck);
	plan_free(&p);
	return 0;
}

/* Emit a.dir into OUT/model.c (OUT: -o, or out/<name>); the path of the file. */
static char *emit_to(Args a, Plan *p, char **dir_out)
{
	load_plan(p, a.dir, a.adapter);
	p->fast = a.fast;
	char *out = a.out ? lm_strdup(a.out) : lm_path("out", p->name);
	char *weights = realpath(a.dir, NULL);
	char *src = emit_model(p, weights);
	make_dirs(out);
	char *path = lm_path(out, "model.c");
	write_text(path, src);
	free(src);
	free(weights);
	*dir_out = out;
	return path;
}

int cmd_emit(int argc, char **argv)
{
	Args a = model_args(argc, argv, out_opts,
		"usage: lmcc emit MODEL_DIR [-o DIR] [--adapter ADAPTER_DIR]\n"
		"Write the model's C source to DIR/model.c (default out/<name>/); with\n"
		"--adapter, the products it adapts carry its low-rank updates.\n", no_opt);
	Plan p;
	char *out, *path = emit_to(a, &p, &out);
	fprintf(stderr, "lmcc: wrote %s\n", path);
	free(path);
	free(out);
	plan_free(&p);
	return 0;
}

enum { O_MPI = LM_OPT_LONG + 1, O_FAST };
static const lm_opt build_opts[] = {
	{"output", 'o', "DIR", "where to write (default out/<name>/)"},
	ADAPTER_OPT,
	{"mpi", O_MPI, NULL, "link Open MPI's runtime (make MPI=1): the program started\n"
	                     "by mpirun -np N runs as N pipeline stages"},
	{"fast", O_FAST, NULL, "the program's --fast on by default (products with\n"
	                       "rounded activations; see its --help)"},
	{"help", 'h', NULL, "this text"},
	{0},
};
static int build_mpi, build_fast;

static void build_opt(int key, const char *val)
{
	if (key == O_MPI)
		build_mpi = 1;
	else
		build_fast = 1;
}

int cmd_build(int argc, char **argv)
{
	Args a = model_args(argc, argv, build_opts,
		"usage: lmcc build MODEL_DIR [-o DIR] [--adapter ADAPTER_DIR] [--mpi] [--fast]\n"
		"Write DIR/model.c (default out/<name>/) and compile it with gcc into\n"
		"DIR/<name>, a program taking the RUN OPTIONS (see its --help) whose\n"
		"checkpoint defaults to MODEL_DIR.  With --adapter the program applies\n"
		"that adapter by default, and its own --adapter takes any adapter of\n"
		"the same structure (modules, rank, scale).  With --mpi, `mpirun -np N\n"
		"DIR/<name> ...` splits the layers into N pipeline stages (lmcc plan\n"
		"MODEL_DIR --ranks N shows the split).  With --fast, its --fast is on\n"
		"by default.\n", build_opt);
	a.fast = build_fast;
	double t0 = lm_now();
	Plan p;
	char *out, *path = emit_to(a, &p, &out);
	char *exe = lm_path(out, p.name);
	compile_gcc(path, exe, build_mpi);
	fprintf(stderr, "lmcc: built %s in %.2f s\n", exe, lm_now() - t0);
	free(exe);
	free(path);
	free(out);
	plan_free(&p);
	return 0;
}

/* `lmcc run` takes the RUN OPTIONS anywhere around MODEL_DIR: one pass
 * finds MODEL_DIR (getopt moves it to the end), the model parses the rest. */
int cmd_run(int argc, char **argv)
{
	lm_optp o;
	const char *v;
	int k;
	const char *adapter = NULL;
	lm_opt_init(&o, argc, argv, lm_run_opts, "run");
	while ((k = lm_opt_next(&o, &v)) != -1)
		if (k == LM_RUN_ADAPTER)
			adapter = v;
		else if (k == 'h') {
			if (!strcmp(argv[0], "serve"))
				printf("usage: lmcc serve MODEL_DIR [--host H] [--port P] [--api-key KEY]\n"
				       "                  [--cache-bytes B] [RUN OPTIONS]\n"
				       "Compile the model in memory as lmcc run does and serve the OpenAI API\n"
				       "over HTTP (/v1/chat/completions, /v1/completions, /v1/models, /health,\n"
				       "/metrics) until SIGINT or SIGTERM; the RUN OPTIONS set the requests'\n"
				       "defaults.\n\nOPTIONS:\n");
			else
				printf("usage: lmcc run MODEL_DIR [RUN OPTIONS]\n"
				       "Generate the model's C, compile it in memory with libtcc and run it;\n"
				       "no file is written.\n\nRUN OPTIONS:\n");
			lm_opt_help(stdout, lm_run_opts);
			return 0;
		}
	if (o.npos == 0)
		lm_fail(NULL, "run: needs MODEL_DIR (see lmcc run --help)");
	if (o.npos > 1)
		lm_fail(NULL, "run: unexpected argument '%s' (see lmcc run --help)", o.pos[1]);
	const char *dir = o.pos[0];
	Plan p;
	load_plan(&p, dir, adapter);
	char *weights = realpath(dir, NULL);
	char *src = emit_model(&p, weights);
	argv[argc - 1] = NULL;   /* the model sees "run OPTIONS..." */
	int rc = run_tcc(src, argc - 1, argv);
	free(src);
	free(weights);
	plan_free(&p);
	return rc;
}

/* `lmcc serve MODEL_DIR ...` is `lmcc run MODEL_DIR ... --serve`. */
static int cmd_serve(int argc, char **argv)
{
	char **av = lm_alloc((argc + 2) * sizeof *av);
	memcpy(av, argv, argc * sizeof *av);
	av[argc] = "--serve";
	int rc = cmd_run(argc + 1, av);
	free(av);
	return rc;
}

int main(int argc, char **argv)
{
	static const struct { const char *name; int (*fn)(int, char **); } cmds[] = {
		{"plan", cmd_plan}, {"emit", cmd_emit}, {"build", cmd_build},
		{"run", cmd_run}, {"serve", cmd_serve}, {"init", cmd_init}, {"quantize", cmd_quantize},
		{"bench", cmd_bench},
		{"fuse", cmd_fuse},
		{"tokenize", lm_tok_cli}, {"detokenize", lm_tok_cli},
	};
	if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		fputs(usage, argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) {
		printf("%s\n", lm_version());
		return 0;
	}
	tmpl_dir(lmcc_layout()->templates);
	size_t i, n = sizeof cmds / sizeof cmds[0];
	for (i = 0; i < n; i++)
		if (!strcmp(argv[1], cmds[i].name))
			return cmds[i].fn(argc - 1, argv + 1);
	const char *best = NULL;
	for (i = 0; i < n && !best; i++)
		if (!strncmp(argv[1], cmds[i].name, 2))
			best = cmds[i].name;
	lm_fail(NULL, "unknown command '%s'%s%s%s (see lmcc --help)", argv[1],
	        best ? "; did you mean " : "", best ? best : "", best ? "?" : "");
}
