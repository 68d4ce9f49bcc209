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
#include "tmpl.h"
#include "../runtime/opt.h"
#include "../runtime/rt.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

typedef struct {
	FILE *f;
	const char *path;
	double t0, last;
	long done, total;
} Out;

static void progress(Out *o, long bytes)
{
	o->done += bytes;
	double now = lm_now();
	if (now - o->last > 1.0) {
		fprintf(stderr, "lmcc: init: %.2f of %.2f GB (%.0f%%)\r", o->done / 1e9,
		        o->total / 1e9, 100.0 * o->done / o->total);
		o->last = now;
	}
}

static void write_tensor(Out *o, const Tensor *t, int bf16, uint64_t seed)
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
		size_t w;
		if (bf16) {
			for (long j = 0; j < m; j++)
				h[j] = lm_f32_to_bf16(v[j]);
			w = fwrite(h, 2, m, o->f);
		} else {
			w = fwrite(v, 4, m, o->f);
		}
		if (w != (size_t)m)
			lm_fail(o->path, "write error: %s", strerror(errno));
		progress(o, m * (bf16 ? 2 : 4));
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
	plan_read(&p, config, dir);
	make_dirs(dir);
	char *cpath = lm_path(dir, "config.json"), *spath = lm_path(dir, "model.safetensors");
	if (!force && access(spath, F_OK) == 0)
		lm_fail(spath, "exists; use --force to replace it");

	size_t clen;
	char *ctext = lm_read_file(config, &clen);
	char *rc = realpath(config, NULL), *rd = realpath(cpath, NULL);
	if (!rd || strcmp(rc, rd)) {
		FILE *f = fopen(cpath, "wb");
		if (!f || fwrite(ctext, 1, clen, f) != clen || fclose(f))
			lm_fail(cpath, "cannot write: %s", strerror(errno));
	}
	free(rc);
	free(rd);
	free(ctext);

	/* the header: every tensor, its dtype, shape and place in the data */
	Buf h = {0};
	long off = 0;
	bprintf(&h, "{\"__metadata__\":{\"format\":\"pt\"}");
	for (int i = 0; i < p.nt; i++) {
		const Tensor *t = &p.t[i];
		int half = bf16 && !t->keep_f32;
		long bytes = plan_tensor_numel(t) * (half ? 2 : 4);
		bprintf(&h, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[", t->name, half ? "BF16" : "F32");
		for (int d = 0; d < t->ndim; d++)
			bprintf(&h, "%s%ld", d ? "," : "", t->shape[d]);
		bprintf(&h, "],\"data_offsets\":[%ld,%ld]}", off, off + bytes);
		off += bytes;
	}
	bprintf(&h, "}");
	while (h.n % 8)
		bput(&h, " ", 1);

	char *tmp = lm_path(dir, "model.safetensors.partial");
	Out o = {fopen(tmp, "wb"), tmp, lm_now(), 0, 0, off};
	o.last = o.t0;
	if (!o.f)
		lm_fail(tmp, "cannot create: %s", strerror(errno));
	unsigned char len[8];
	for (int i = 0; i < 8; i++)
		len[i] = (unsigned char)((uint64_t)h.n >> (8 * i));
	if (fwrite(len, 1, 8, o.f) != 8 || fwrite(h.s, 1, h.n, o.f) != h.n)
		lm_fail(tmp, "write error: %s", strerror(errno));
	for (int i = 0; i < p.nt; i++)
		write_tensor(&o, &p.t[i], bf16 && !p.t[i].keep_f32, (uint64_t)seed);
	if (fclose(o.f))
		lm_fail(tmp, "write error: %s", strerror(errno));
	if (rename(tmp, spath))
		lm_fail(spath, "cannot rename %s: %s", tmp, strerror(errno));
	if (o.last > o.t0)
		fputc('\n', stderr);     /* after the progress line */
	fprintf(stderr, "lmcc: init: wrote %s: %d tensors, %ld parameters, %.3f GB in %.1f s\n",
	        spath, p.nt, plan_params(&p), (8 + h.n + off) / 1e9, lm_now() - o.t0);
	free(h.s);
	free(tmp);
	free(cpath);
	free(spath);
	plan_free(&p);
	return 0;
}
