/* format.c: how each tensor of the plan is stored, read from the
 * checkpoint beside the config: its layout (compiler/layout.h), its dtype
 * and, for a quantized module, its bits and group size.
 *
 * The rule is mlx-lm's (utils.load_model): a module (the tensors
 * "<path>.weight", ".scales", ".biases") is quantized exactly when its
 * .scales tensor exists, with the config's `quantization` {bits,
 * group_size, mode}, unless `quantization` has an entry for the module's
 * path: false (not quantized) or its own {bits, group_size, mode}, whose
 * missing or null fields take the defaults of MLX's to_quantized, not the
 * global ones: mode affine, and the mode's bits and group size (affine 4
 * and 64, mxfp4 4 and 32, nvfp4 4 and 16, mxfp8 8 and 32).  Every mode of
 * MLX is read where mlx-lm can run it: not on AFM-7's fused qkv_proj,
 * whose FusedLinear.to_quantized takes no mode (always affine). */
#include "plan.h"
#include "layout.h"
#include "../runtime/rt.h"

#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A value Python would take as false: null, false, 0, "", {} or []. */
static int falsy(json_object *v)
{
	switch (json_object_get_type(v)) {
	case json_type_null: return 1;
	case json_type_boolean: return !json_object_get_boolean(v);
	case json_type_int: return json_object_get_int64(v) == 0;
	case json_type_double: return json_object_get_double(v) == 0;
	case json_type_string: return json_object_get_string_len(v) == 0;
	case json_type_object: return json_object_object_length(v) == 0;
	case json_type_array: return json_object_array_length(v) == 0;
	}
	return 0;
}

static json_object *legacy;   /* the quantization a legacy entry stands for */

/* The legacy `quantization_config` (another tool's record, read by
 * mlx-lm's load_model only when there is no `quantization`; from
 * text_config when the top level has none): quant_method "mxfp4" is
 * mxfp4 with groups of 32, "compressed-tensors" nvfp4 (groups of 16) for
 * the format "nvfp4-pack-quantized" and otherwise 4-bit affine in groups
 * of 32, in every module whose .scales exists; "awq" and "gptq" weights
 * mlx-lm repacks as it loads them, and "bitnet" it runs as BitLinear
 * layers, neither of which lmcc does; any other method quantizes
 * nothing.  Returns the quantization it means, or NULL
 * (with *ignored set to the field when it names a method that does
 * nothing). */
static json_object *legacy_quant(json_object *root, const char *cfg_file, const char **ignored)
{
	json_object *qc, *tc;
	const char *field = "quantization_config";
	if (!json_object_object_get_ex(root, "quantization_config", &qc)) {
		field = "text_config.quantization_config";
		if (!json_object_object_get_ex(root, "text_config", &tc)
		    || !json_object_is_type(tc, json_type_object)
		    || !json_object_object_get_ex(tc, "quantization_config", &qc))
			return NULL;
	}
	if (falsy(qc))
		return NULL;
	json_object *m, *f;
	if (!json_object_is_type(qc, json_type_object))
		lm_fail(cfg_file, "field '%s': expected an object, got %.40s", field,
		        json_object_to_json_string(qc));
	if (!json_object_object_get_ex(qc, "quant_method", &m))
		lm_fail(cfg_file, "field '%s.quant_method': missing", field);
	const char *qm = json_object_is_type(m, json_type_string) ? json_object_get_string(m) : "";
	const char *mode;
	int bits = 4, group = 32;
	if (!strcmp(qm, "mxfp4")) {
		mode = "mxfp4";
	} else if (!strcmp(qm, "compressed-tensors")) {
		int nv = json_object_object_get_ex(qc, "format", &f) && json_object_is_type(f, json_type_string)
		         && !strcmp(json_object_get_string(f), "nvfp4-pack-quantized");
		mode = nv ? "nvfp4" : "affine";
		group = nv ? 16 : 32;
	} else if (!strcmp(qm, "awq") || !strcmp(qm, "gptq")) {
		lm_fail(cfg_file, "field '%s.quant_method': \"%s\": lmcc does not repack %s weights "
		        "as mlx-lm does when it loads them (save them with mlx_lm.convert first)",
		        field, qm, qm);
	} else if (!strcmp(qm, "bitnet")) {
		lm_fail(cfg_file, "field '%s.quant_method': \"bitnet\": lmcc does not run mlx-lm's "
		        "BitLinear layers", field);
	} else {
		*ignored = field;
		return NULL;
	}
	json_object *q = json_object_new_object();
	json_object_object_add(q, "group_size", json_object_new_int(group));
	json_object_object_add(q, "bits", json_object_new_int(bits));
	json_object_object_add(q, "mode", json_object_new_string(mode));
	return q;
}

void format_begin(Plan *p, json_object *root, const char *cfg_file, const char *dir)
{
	p->cfg_file = cfg_file;
	json_object *q;
	if (json_object_object_get_ex(root, "quantization", &q) && q) {
		if (!json_object_is_type(q, json_type_object))
			lm_fail(cfg_file, "field 'quantization': expected an object, got %.40s",
			        json_object_to_json_string(q));
		p->quant = q;
	}
	const char *field = NULL;
	if (!p->quant && (legacy = legacy_quant(root, cfg_file, &field)))
		p->quant = legacy;
	if (!dir || !(p->ck = lm_ck_try(dir)))
		return;
	long n = 0, cap = 0, i = 0;
	const char **names = NULL;
	for (const char *s; (s = lm_ck_next(p->ck, &i));) {
		if (n == cap)
			names = lm_realloc(names, (cap = cap ? 2 * cap : 1024) * sizeof *names);
		names[n++] = s;
	}
	p->layout = layout_detect(p->arch, names, n);
	/* a legacy method that quantizes nothing, beside packed tensors */
	if (!p->quant && field) {
		for (long j = 0; j < n; j++) {
			size_t len = strlen(names[j]);
			if (len > 7 && !strcmp(names[j] + len - 7, ".scales"))
				lm_fail(cfg_file, "field '%s': its quant_method quantizes nothing in mlx-lm, "
				        "and there is no field 'quantization', but tensor '%s' is packed",
				        field, names[j]);
		}
	}
	free(names);
}

void format_end(Plan *p)
{
	lm_ck_close(p->ck);
	p->ck = NULL;
	p->quant = NULL;
	json_object_put(legacy);
	legacy = NULL;
	p->cfg_file = NULL;
}

/* An integer field of a quantization entry, dflt when absent or null. */
static long qint(const Plan *p, json_object *o, const char *path, const char *key, long dflt)
{
	json_object *v;
	if (!json_object_object_get_ex(o, key, &v) || !v)
		return dflt;
	if (!json_object_is_type(v, json_type_int))
		lm_fail(p->cfg_file, "field 'quantization%s%s.%s': expected an integer, got %.40s",
		        path ? "." : "", path ? path : "", key, json_object_to_json_string(v));
	int64_t x = json_object_get_int64(v);
	return x < -1000 || x > 1000000 ? -1 : (long)x;
}

/* bits, group size and mode of an entry (global: path NULL), checked. */
static void entry(const Plan *p, json_object *o, const char *path, const char *module,
                  int *bits, int *group, int *mode)
{
	const char *at = path ? "." : "", *name = path ? path : "";
	json_object *m;
	const char *ms = "affine";
	if (json_object_object_get_ex(o, "mode", &m) && m) {
		if (!json_object_is_type(m, json_type_string))
			lm_fail(p->cfg_file, "field 'quantization%s%s.mode': expected a string", at, name);
		ms = json_object_get_string(m);
	}
	int md = lm_qmode_parse(ms);
	if (md < 0)
		lm_fail(p->cfg_file, "field 'quantization%s%s.mode': \"%.20s\" (module '%s'): MLX's "
		        "modes are affine, mxfp4, nvfp4 and mxfp8", at, name, ms, module);
	size_t ml = strlen(module);
	if (md != LM_AFFINE && !strcmp(p->arch, "afm7") && ml >= 9
	    && !strcmp(module + ml - 9, ".qkv_proj"))
		lm_fail(p->cfg_file, "field 'quantization%s%s.mode': %s (module '%s'): AFM-7's fused "
		        "projection is affine only (mlx-lm's FusedLinear.to_quantized takes no mode)",
		        at, name, ms, module);
	/* the reference indexes the global entry's bits and group_size; a
	 * module's entry falls back on the mode's defaults, and null means the
	 * default too */
	json_object *v;
	if (!path && !json_object_object_get_ex(o, "bits", &v))
		lm_fail(p->cfg_file, "field 'quantization.bits': missing");
	if (!path && !json_object_object_get_ex(o, "group_size", &v))
		lm_fail(p->cfg_file, "field 'quantization.group_size': missing");
	long b = qint(p, o, path, "bits", md == LM_MXFP8 ? 8 : 4);
	long g = qint(p, o, path, "group_size", md == LM_AFFINE ? 64 : md == LM_NVFP4 ? 16 : 32);
	int bad = lm_q_bad((int)b, (int)g, md);
	if (bad == 1 && md == LM_AFFINE)
		lm_fail(p->cfg_file, "field 'quantization%s%s.bits': %ld (module '%s'): MLX's affine mode "
		        "packs 2, 3, 4, 5, 6 or 8 bits", at, name, b, module);
	if (bad == 2 && md == LM_AFFINE)
		lm_fail(p->cfg_file, "field 'quantization%s%s.group_size': %ld (module '%s'): MLX's affine "
		        "mode has groups of 32, 64 or 128", at, name, g, module);
	if (bad == 1)
		lm_fail(p->cfg_file, "field 'quantization%s%s.bits': %ld (module '%s'): mode %s has %d bits",
		        at, name, b, module, ms, md == LM_MXFP8 ? 8 : 4);
	if (bad == 2)
		lm_fail(p->cfg_file, "field 'quantization%s%s.group_size': %ld (module '%s'): mode %s has "
		        "groups of %d", at, name, g, module, ms, md == LM_NVFP4 ? 16 : 32);
	*bits = (int)b;
	*group = (int)g;
	*mode = md;
}

void format_tensor(Plan *p, Tensor *t)
{
	if (!p->ck)
		return;
	int nd, dt = lm_ck_info(p->ck, t->name, &nd, NULL);
	t->esize = dt >= 0 ? (int)lm_dtype_size(dt) : 0;
	size_t len = strlen(t->name);
	if (len <= 7 || strcmp(t->name + len - 7, ".weight"))
		return;
	char path[MAX_TENSOR_NAME], sname[MAX_TENSOR_NAME + 8];
	snprintf(path, sizeof path, "%.*s", (int)(len - 7), t->name);
	snprintf(sname, sizeof sname, "%s.scales", path);
	int has = lm_ck_info(p->ck, sname, NULL, NULL) != -1, q = has;
	json_object *e = NULL;
	if (p->quant && json_object_object_get_ex(p->quant, path, &e) && e) {
		if (json_object_is_type(e, json_type_boolean)) {
			q = json_object_get_boolean(e);
			if (!q && has)
				lm_fail(lm_ck_file(p->ck, sname), "tensor '%s': config.json's field "
				        "'quantization.%s' is false: the module is not quantized", sname, path);
			e = NULL;
		} else if (json_object_is_type(e, json_type_object)) {
			q = 1;
		} else {
			lm_fail(p->cfg_file, "field 'quantization.%s': expected an object or false", path);
		}
	}
	if (!q)
		return;
	if (!has)
		lm_fail(lm_ck_file(p->ck, t->name), "tensor '%s' is missing: config.json's field "
		        "'quantization%s%s' quantizes module '%s'", sname, e ? "." : "", e ? path : "", path);
	if (!p->quant)
		lm_fail(lm_ck_file(p->ck, sname), "tensor '%s': a quantized module, but config.json has "
		        "no field 'quantization' to say how", sname);
	if (t->ndim < 2)
		lm_fail(lm_ck_file(p->ck, sname), "tensor '%s': lmcc reads '%s' as a vector, which "
		        "mlx-lm never quantizes", sname, t->name);
	int bits, group, mode;
	entry(p, e ? e : p->quant, e ? path : NULL, path, &bits, &group, &mode);
	char why[MAX_TENSOR_NAME + 96];
	snprintf(why, sizeof why, "config.json: %s, %d bits, group %d, from field 'quantization%s%s'",
	         lm_qmode_name(mode), bits, group, e ? "." : "", e ? path : "");
	lm_ck_qcheck(p->ck, path, t->ndim, t->shape, bits, group, mode, why);
	t->bits = bits;
	t->group = group;
	t->mode = mode;
	int sd = lm_ck_info(p->ck, sname, NULL, NULL);
	t->ssize = (int)lm_dtype_size(sd);
	t->esize = 0;
}

int format_shape(const Plan *p, const char *name, long *shape)
{
	int nd;
	if (!p->ck || lm_ck_info(p->ck, name, &nd, shape) < 0)
		return -1;
	return nd;
}

void plan_name(const Plan *p, char *out, size_t n, int part, const char *fmt, ...)
{
	char hf[MAX_TENSOR_NAME];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(hf, sizeof hf, fmt, ap);
	va_end(ap);
	if (p->layout != LAYOUT_MLX || !layout_name(p->arch, hf, part, out, n))
		snprintf(out, n, "%s", hf);
}
