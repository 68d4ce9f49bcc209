/* main.c: lmcc's command line.  Each subcommand lives in its own file;
 * this one dispatches and shares the steps they have in common. */
#define _GNU_SOURCE
#include "adapter.h"
#include "build.h"
#include "cmd.h"
#include "emit.h"
#include "plan.h"
#include "tmpl.h"
#include "../runtime/rt.h"
#include "../runtime/text/tok.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char usage[] =
	"usage: lmcc COMMAND ...\n"
	"lmcc compiles a language model's config.json into specialised C.\n"
	"\n"
	"  lmcc plan  MODEL_DIR               print the derived layer schedule\n"
	"  lmcc emit  MODEL_DIR [-o DIR]      write the C source (default out/<name>/)\n"
	"  lmcc build MODEL_DIR [-o DIR]      emit and compile with gcc: DIR/<name>\n"
	"  lmcc run   MODEL_DIR [RUN OPTIONS] emit, compile in memory with libtcc, run\n"
	"  lmcc init  CONFIG.json -o DIR      random-weight checkpoint for any config\n"
	"  lmcc tokenize   DIR [TEXT]         the ids of TEXT (or of JSON lines on stdin)\n"
	"  lmcc detokenize DIR IDS            the text of comma-separated ids\n"
	"\n"
	"MODEL_DIR holds config.json and the checkpoint (model.safetensors or\n"
	"shards with model.safetensors.index.json).  `lmcc COMMAND --help` tells\n"
	"more; `lmcc run MODEL_DIR --help` lists the RUN OPTIONS.\n";

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

/* argv[1] as MODEL_DIR, or help. */
static const char *model_arg(int argc, char **argv, const char *help)
{
	if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		fputs(help, argc < 2 ? stderr : stdout);
		exit(argc < 2 ? 2 : 0);
	}
	return argv[1];
}

/* "--adapter DIR" anywhere after MODEL_DIR, taken out of argv; or NULL. */
static const char *adapter_arg(int *argc, char **argv)
{
	const char *dir = NULL;
	for (int i = 2; i < *argc; i++) {
		if (strcmp(argv[i], "--adapter"))
			continue;
		if (i + 1 >= *argc)
			lm_fail(NULL, "%s: --adapter needs a directory", argv[0]);
		dir = argv[i + 1];
		memmove(argv + i, argv + i + 2, (*argc - i - 1) * sizeof *argv);
		*argc -= 2;
		i--;
	}
	return dir;
}

/* The plan of MODEL_DIR, with the adapter of --adapter laid onto it. */
static void load_plan(Plan *p, const char *dir, const char *adapter)
{
	char *cfg = config_of(dir);
	plan_read(p, cfg, dir);
	free(cfg);
	if (adapter)
		adapter_read(p, adapter);
}

int cmd_plan(int argc, char **argv)
{
	const char *dir = model_arg(argc, argv,
		"usage: lmcc plan MODEL_DIR [--adapter ADAPTER_DIR]\n"
		"Print the layer schedule lmcc derives from MODEL_DIR/config.json, the\n"
		"parameter count, the weight bytes and the cache sizes.  With --adapter\n"
		"(an mlx-lm LoRA/DoRA adapter directory), also the adapted modules of\n"
		"each layer, the adapter's rank and scale and its bytes per token.\n");
	const char *adapter = adapter_arg(&argc, argv);
	if (argc > 2)
		lm_fail(NULL, "plan: unexpected argument '%s'", argv[2]);
	Plan p;
	load_plan(&p, dir, adapter);
	long params = plan_params(&p), tok, fixed;
	plan_cache(&p, &tok, &fixed);
	printf("%s (%s): vocab %ld, hidden %ld, %d layers\n\n", p.title, p.arch,
	       p.vocab, p.hidden, p.nl);
	plan_print(&p, stdout, "");
	printf("\nparameters: %ld (read per token: %ld)\n", params, plan_active_params(&p));
	printf("weight bytes: %ld as BF16, %ld as F32\n", 2 * params, 4 * params);
	printf("cache (float32): %ld bytes per token, %ld bytes whatever the length\n",
	       tok, fixed);
	if (p.ignores)
		printf("not read from the checkpoint: %s\n", p.ignores);
	if (p.ad) {
		printf("\n");
		adapter_print(&p, stdout, "");
	}
	plan_free(&p);
	return 0;
}

/* -o DIR after MODEL_DIR, or out/<name>. */
static char *out_dir(int argc, char **argv, const Plan *p)
{
	for (int i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "-o") && i + 1 < argc && i + 2 == argc)
			return lm_strdup(argv[i + 1]);
		lm_fail(NULL, "%s: unexpected argument '%s'", argv[0], argv[i]);
	}
	return lm_path("out", p->name);
}

/* Emit MODEL_DIR into OUT/model.c; the path of the file. */
static char *emit_to(int argc, char **argv, Plan *p, char **dir_out)
{
	const char *dir = argv[1];
	const char *adapter = adapter_arg(&argc, argv);
	load_plan(p, dir, adapter);
	char *out = out_dir(argc, argv, p);
	char *weights = realpath(dir, NULL);
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
	model_arg(argc, argv,
		"usage: lmcc emit MODEL_DIR [-o DIR] [--adapter ADAPTER_DIR]\n"
		"Write the model's C source to DIR/model.c (default out/<name>/);\n"
		"with --adapter, the products it adapts carry its low-rank updates.\n");
	Plan p;
	char *out, *path = emit_to(argc, argv, &p, &out);
	fprintf(stderr, "lmcc: wrote %s\n", path);
	free(path);
	free(out);
	plan_free(&p);
	return 0;
}

int cmd_build(int argc, char **argv)
{
	model_arg(argc, argv,
		"usage: lmcc build MODEL_DIR [-o DIR] [--adapter ADAPTER_DIR]\n"
		"Write DIR/model.c (default out/<name>/) and compile it with gcc into\n"
		"DIR/<name>, a program taking the RUN OPTIONS (see its --help) whose\n"
		"checkpoint defaults to MODEL_DIR.  With --adapter (an mlx-lm LoRA/DoRA\n"
		"adapter directory) the program applies it; its --adapter then takes\n"
		"any adapter of the same structure (modules, rank, scale).\n");
	double t0 = lm_now();
	Plan p;
	char *out, *path = emit_to(argc, argv, &p, &out);
	char *exe = lm_path(out, p.name);
	compile_gcc(path, exe);
	fprintf(stderr, "lmcc: built %s in %.2f s\n", exe, lm_now() - t0);
	free(exe);
	free(path);
	free(out);
	plan_free(&p);
	return 0;
}

int cmd_run(int argc, char **argv)
{
	const char *dir = model_arg(argc, argv,
		"usage: lmcc run MODEL_DIR [--adapter ADAPTER_DIR] [RUN OPTIONS]\n"
		"Generate the model's C, compile it in memory with libtcc and run it;\n"
		"no file is written.  --adapter applies an mlx-lm LoRA/DoRA adapter.\n"
		"`lmcc run MODEL_DIR --help` lists the RUN OPTIONS.\n");
	const char *adapter = adapter_arg(&argc, argv);
	Plan p;
	load_plan(&p, dir, adapter);
	char *weights = realpath(dir, NULL);
	char *src = emit_model(&p, weights);
	argv[1] = argv[0];       /* the model sees "run OPTIONS..." */
	int rc = run_tcc(src, argc - 1, argv + 1);
	free(src);
	free(weights);
	plan_free(&p);
	return rc;
}

int main(int argc, char **argv)
{
	static const struct { const char *name; int (*fn)(int, char **); } cmds[] = {
		{"plan", cmd_plan}, {"emit", cmd_emit}, {"build", cmd_build},
		{"run", cmd_run}, {"init", cmd_init},
		{"tokenize", lm_tok_cli}, {"detokenize", lm_tok_cli},
	};
	if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		fputs(usage, argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	char *tdir = lm_path(lmcc_home(), "templates");
	tmpl_dir(tdir);
	free(tdir);
	for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
		if (!strcmp(argv[1], cmds[i].name))
			return cmds[i].fn(argc - 1, argv + 1);
	lm_fail(NULL, "unknown command '%s' (see lmcc --help)", argv[1]);
}
