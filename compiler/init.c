/* init.c: `lmcc init`, a random-weight checkpoint for any config.
 *
 * The tensors are the plan's, in the layout of the architecture's released
 * checkpoint, so that anyone can try an architecture at any size without
 * downloading weights.  Values are deterministic: each tensor's generator
 * is seeded from --seed and the tensor's name, so a tensor does not change
 * when others are added.  Matrices are uniform with standard deviation
 * 1/sqrt(fan_in), which keeps activations of order one through the layers. */
#define _GNU_SOURCE
#include "build.h"
#include "cmd.h"
#include "plan.h"
#include "stw.h"
#include "tmpl.h"
#include "../runtime/opt.h"
#include "../runtime/rt.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

static const char help[] =
	"usage: lmcc init CONFIG.json -o DIR [--seed S] [--dtype f32|bf16] [--force]\n"
	"Write DIR/config.json and a random-weight DIR/model.safetensors in the\n"
	"checkpoint layout of the config's architecture.\n";

enum { O_DTYPE = LM_OPT_LONG, O_FORCE };
static const lm_opt opts[] = {
	{"output", 'o', "DIR", "the model directory to create"},
	{"seed", 's', "S", "random seed (default 0)"},
	{"dtype", O_DTYPE, "T", "f32 (default) or bf16; a few small tensors stay f32 in\n"
	                        "bf16 checkpoints, as in the released ones"},
	{"force", O_FORCE, NULL, "replace an existing checkpoint in DIR"},
	{"help", 'h', NULL, "this text"},
	{0},
};

static uint64_t splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static uint64_t name_hash(const char *s)
{
	uint64_t h = 1469598103934665603ull;
	while (*s)
		h = (h ^ (unsigned char)*s++) * 1099511628211ull;
	return h;
}

static void write_tensor(Stw *o, const Tensor *t, int bf16, uint64_t seed)
{
	enum { CHUNK = 1 << 16 };
	static float v[CHUNK];
	static uint16_t h[CHUNK];
	uint64_t s = seed ^ name_hash(t->name);
	long n = plan_tensor_numel(t);
	double a = sqrt(3.0 / (t->fan_in > 0 ? t->fan_in : 1));
	for (long i = 0; i < n; i += CHUNK) {
		long m = n - i < CHUNK ? n - i : CHUNK;
		for (long j = 0; j < m; j++) {
			double u = (splitmix(&s) >> 11) * (1.0 / 9007199254740992.0);
			switch (t->init) {
			case INIT_MATRIX:
				v[j] = (float)((2 * u - 1) * a);
				break;
			case INIT_CONST:
				v[j] = (float)t->lo;
				break;
			case INIT_UNIFORM:
				v[j] = (float)(t->lo + (t->hi - t->lo) * u);
				break;
			}
		}
		if (bf16) {
			for (long j = 0; j < m; j++)
				h[j] = lm_f32_to_bf16(v[j]);
			stw_write(o, h, 2 * m);
		} else {
			stw_write(o, v, 4 * m);
		}
	}
}

int cmd_init(int argc, char **argv)
{
	const char *config = NULL, *dir = NULL, *v;
	long seed = 0;
	int bf16 = 0, force = 0, k;
	lm_optp op;
	lm_opt_init(&op, argc, argv, opts, "init");
	while ((k = lm_opt_next(&op, &v)) != -1) {
		char *end;
		switch (k) {
		case 'h':
			printf("%s\n", help);
			lm_opt_help(stdout, opts);
			return 0;
		case 'o':
			dir = v;
			break;
		case 's':
			seed = strtol(v, &end, 10);
			if (*end || !*v || seed < 0)
				lm_fail(NULL, "--seed: '%s' is not a non-negative integer", v);
			break;
		case O_DTYPE:
			if (strcmp(v, "f32") && strcmp(v, "bf16"))
				lm_fail(NULL, "--dtype: '%s' is not f32 or bf16", v);
			bf16 = !strcmp(v, "bf16");
			break;
		case O_FORCE:
			force = 1;
			break;
		}
	}
	if (op.npos > 1)
		lm_fail(NULL, "init: unexpected argument '%s' (see lmcc init --help)", op.pos[1]);
	config = op.npos ? op.pos[0] : NULL;
	if (!config || !dir)
		lm_fail(NULL, "init: needs CONFIG.json and -o DIR (see lmcc init --help)");

	Plan p;
	plan_read(&p, config, dir, 0);
	make_dirs(dir);
	char *cpath = lm_path(dir, "config.json"), *spath = lm_path(dir, "model.safetensors");
	if (!force && access(spath, F_OK) == 0)
		lm_fail(spath, "exists; use --force to replace it");

	size_t clen;
	char *ctext = lm_read_text(config, &clen);
	char *rc = realpath(config, NULL), *rd = realpath(cpath, NULL);
	if (!rd || strcmp(rc, rd)) {
		FILE *f = fopen(cpath, "wb");
		if (!f || fwrite(ctext, 1, clen, f) != clen || fclose(f))
			lm_fail(cpath, "cannot write: %s", strerror(errno));
	}
	free(rc);
	free(rd);
	free(ctext);

	StwTensor *st = lm_alloc(p.nt * sizeof *st);
	long total = 0;
	for (int i = 0; i < p.nt; i++) {
		const Tensor *t = &p.t[i];
		snprintf(st[i].name, sizeof st[i].name, "%s", t->name);
		st[i].dtype = bf16 && !t->keep_f32 ? "BF16" : "F32";
		st[i].ndim = t->ndim;
		memcpy(st[i].shape, t->shape, sizeof t->shape);
		total += stw_bytes(&st[i]);
	}
	/* a config within the maxima can ask for hundreds of TB: say so before
	 * writing the first byte */
	struct statvfs fs;
	if (statvfs(dir, &fs) == 0 && (unsigned long long)fs.f_bavail * fs.f_frsize < (unsigned long long)total)
		lm_fail(spath, "needs %ld bytes of weights, and the file system has %llu bytes free",
		        total, (unsigned long long)fs.f_bavail * fs.f_frsize);
	Progress prog;
	progress_start(&prog, "init", total);
	Stw *o = stw_create(spath, "pt", st, p.nt, &prog);
	for (int i = 0; i < p.nt; i++)
		write_tensor(o, &p.t[i], bf16 && !p.t[i].keep_f32, (uint64_t)seed);
	long size = stw_close(o);
	progress_end(&prog);
	fprintf(stderr, "lmcc: init: wrote %s: %d tensors, %ld parameters, %.3f GB in %.1f s\n",
	        spath, p.nt, plan_params(&p), size / 1e9, lm_now() - prog.t0);
	free(st);
	free(cpath);
	free(spath);
	plan_free(&p);
	return 0;
}
