/* arch.c: which config reader handles a model_type, and what every reader
 * shares (the model's name). */
#include "arch.h"
#include "../runtime/rt.h"

#include <ctype.h>
#include <math.h>
#include <string.h>

static const struct {
	const char *type, *title;
	void (*read)(Cfg *c, Plan *p);
} archs[] = {
	{"afm7", "AFM-7", read_afm7},
	{"baichuan_m1", "Baichuan-M1", read_baichuan_m1},
	{"llama4", "Llama 4", read_llama4},
	{"plamo2", "PLaMo-2", read_plamo2},
	{"kimi_linear", "Kimi-Linear", read_kimi_linear},
};

/* The base name of the model directory, reduced to [A-Za-z0-9_-]. */
static void model_name(char *out, size_t n, const char *dir)
{
	size_t len = strlen(dir);
	while (len > 1 && dir[len - 1] == '/')
		len--;
	size_t start = len;
	while (start > 0 && dir[start - 1] != '/')
		start--;
	size_t k = 0;
	for (size_t i = start; i < len && k + 1 < n; i++)
		if (isalnum((unsigned char)dir[i]) || dir[i] == '-' || dir[i] == '_')
			out[k++] = dir[i];
	out[k] = 0;
	if (!k || !strcmp(out, "-"))
		snprintf(out, n, "model");
}

static char *json_text(json_object *v)
{
	return v ? lm_strdup(json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN)) : NULL;
}

/* What the reader saw, for the program to check checkpoints against. */
static void keep_log(Plan *p, const CfgLog *l)
{
	p->cfg = lm_alloc((l->n ? l->n : 1) * sizeof *p->cfg);
	p->ncfg = l->n;
	for (int i = 0; i < l->n; i++)
		p->cfg[i] = (CfgField){lm_strdup(l->path[i]), json_text(l->val[i]), json_text(l->dflt[i])};
}

void plan_read(Plan *p, const char *config_path, const char *model_dir, int with_ckpt)
{
	Cfg c = cfg_load(config_path);
	memset(p, 0, sizeof *p);
	/* a config that fails frees the plan it began: the fuzzer reads many
	 * in one process.  c's log and root are set once, by cfg_load. */
	lm_err err;
	if (lm_catch(&err)) {
		lm_ck_close(p->ck);
		p->ck = NULL;
		plan_free(p);
		cfg_free(&c);
		lm_err_raise(&err);
	}
	const char *mt = cfg_str(&c, "model_type", NULL);
	if (!mt)
		cfg_error(&c, "model_type", "missing");
	size_t i, n = sizeof archs / sizeof archs[0];
	for (i = 0; i < n && strcmp(archs[i].type, mt); i++)
		;
	if (i == n) {
		char known[256] = "";
		for (size_t j = 0; j < n; j++)
			snprintf(known + strlen(known), sizeof known - strlen(known),
			         "%s%s", j ? ", " : "", archs[j].type);
		cfg_error(&c, "model_type", "unknown model type %s (lmcc knows %s)",
		          cfg_shown(&c, "model_type"), known);
	}
	p->arch = archs[i].type;
	p->title = archs[i].title;
	model_name(p->name, sizeof p->name, model_dir);
	format_begin(p, c.root, config_path, with_ckpt ? model_dir : NULL);
	archs[i].read(&c, p);
	/* made before the layers or after them, they are the last part */
	if (!p->head_tied)
		p->t[p->head.t].part = p->nl + 1;
	if (p->final.w.t >= 0)
		p->t[p->final.w.t].part = p->nl + 1;
	format_end(p);
	plan_check(p, config_path);
	keep_log(p, c.log);
	lm_err_pop(&err);
	cfg_free(&c);
}

void plan_begin(Plan *p, long V, long D, int L, const char *embed)
{
	p->vocab = V;
	p->hidden = D;
	p->nl = L;
	p->layers = lm_alloc(L * sizeof(Layer));
	p->embed = mat_of(p, t_matrix(p, V, D, "%s", embed));
	p->t[p->embed.t].fan_in = 1;     /* embeddings are not scaled by fan-in */
}

Layer *layer_begin(Plan *p, int i)
{
	p->part = i + 1;
	return &p->layers[i];
}

void attn_begin(Attn *a, long heads, long kv_heads, long hd)
{
	memset(a, 0, sizeof *a);
	a->heads = (int)heads;
	a->kv_heads = (int)kv_heads;
	a->hd = a->vd = (int)hd;
	a->scale = 1 / sqrt((double)hd);
	a->rope = -1;
	a->kv_from = -1;
	a->qn.t = a->kn.t = a->conv_k.t = a->conv_v.t = a->kscale.t = a->vscale.t = -1;
	a->wq.t = a->wk.t = a->wv.t = a->wo.t = -1;
	a->bq.t = a->bk.t = a->bv.t = a->bo.t = -1;
}

Mlp mlp_swiglu(Plan *p, long dim, long inter, const char *prefix)
{
	Mlp m = {.inter = inter};
	m.gate = mat_of(p, t_matrix(p, inter, dim, "%s.gate_proj.weight", prefix));
	m.up = mat_of(p, t_matrix(p, inter, dim, "%s.up_proj.weight", prefix));
	m.down = mat_of(p, t_matrix(p, dim, inter, "%s.down_proj.weight", prefix));
	return m;
}

/* A depthwise conv of C channels and K taps: [C, 1, K] as released, or
 * [C, K, 1] with MLX's axes (what mlx-lm's sanitize makes of it and
 * saves), whichever the checkpoint holds.  The two orders of the same
 * bytes read alike. */
int t_conv(Plan *p, long C, long K, const char *name)
{
	long hf[3] = {C, 1, K}, mlx[3] = {C, K, 1}, got[8];
	int mx = format_shape(p, name, got) == 3 && got[0] == C && got[1] == K && got[2] == 1;
	int t = tensor(p, INIT_MATRIX, 0, 0, 3, mx ? mlx : hf, "%s", name);
	p->t[t].fan_in = K;
	return t;
}

/* A scalar tensor (shape []), e.g. a quantisation scale. */
int t_scalar(Plan *p, double lo, double hi, const char *name)
{
	return tensor(p, INIT_UNIFORM, lo, hi, 0, NULL, "%s", name);
}
