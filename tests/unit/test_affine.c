/* test_affine: lm_affine_quantize against a direct implementation of MLX's
 * rule, and against what MLX itself wrote.
 *
 *   test_affine                 the rule on random and edge-case rows, every
 *                               bits and group size, plus float16 rounding
 *   test_affine --against SRC OUT
 *                               what `lmcc quantize SRC -o OUT` wrote: every
 *                               module stored under its source name and shape
 *                               against naive() on the source's values
 *   test_affine --same-layout A B
 *                               A/model.safetensors holds the tensors of B's,
 *                               with the same dtypes and shapes, and no other
 *   test_affine CASE_DIR...     MLX-quantized checkpoints: every packed
 *                               module, dequantized and quantized again,
 *                               must give back MLX's integers, scales and
 *                               biases bit for bit
 * Prints PASS/FAIL lines; exit 1 on any failure. */
#define _GNU_SOURCE
#include "rt.h"

#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failed;

static void check(int ok, const char *what)
{
	printf("%s %s\n", ok ? "PASS" : "FAIL", what);
	failed |= !ok;
}

/* The rule as MLX's documentation of affine mode states it, one group at a
 * time, with the bits laid out one by one. */
static void naive(const float *w, int cols, int bits, int group,
                  uint32_t *q, float *s_out, float *b_out)
{
	int n = (1 << bits) - 1;
	unsigned char bit[1 << 14];
	for (int g = 0; g < cols / group; g++) {
		const float *x = w + g * group;
		float lo = x[0], hi = x[0];
		for (int i = 1; i < group; i++) {
			if (x[i] < lo) lo = x[i];
			if (x[i] > hi) hi = x[i];
		}
		float scale = (hi - lo) / (float)n;
		if (scale < 1e-7f)
			scale = 1e-7f;
		float edge = hi;
		if (fabsf(lo) > fabsf(hi))
			edge = lo;
		else
			scale = -scale;
		float bias = 0;
		float q0 = nearbyintf(edge / scale);
		if (q0 != 0) {
			scale = edge / q0;
			bias = edge;
		}
		for (int i = 0; i < group; i++) {
			float v = nearbyintf((x[i] - bias) / scale);
			int k = v < 0 ? 0 : v > n ? n : (int)v;
			for (int j = 0; j < bits; j++)
				bit[(g * group + i) * bits + j] = (k >> j) & 1;
		}
		s_out[g] = scale;
		b_out[g] = bias;
	}
	for (int wd = 0; wd < cols * bits / 32; wd++) {
		q[wd] = 0;
		for (int j = 0; j < 32; j++)
			q[wd] |= (uint32_t)bit[wd * 32 + j] << j;
	}
}

static uint64_t rng = 88172645463325252ull;
static double uniform(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (rng >> 11) * (1.0 / 9007199254740992.0);
}

static void rule_tests(void)
{
	static const int bitss[] = {2, 3, 4, 5, 6, 8}, groups[] = {32, 64, 128};
	enum { COLS = 512 };
	float w[COLS], s1[COLS / 32], b1[COLS / 32], s2[COLS / 32], b2[COLS / 32], back[COLS];
	uint32_t q1[COLS / 4], q2[COLS / 4];
	for (int bi = 0; bi < 6; bi++)
		for (int gi = 0; gi < 3; gi++) {
			int bits = bitss[bi], group = groups[gi], bad = 0, worst = 0;
			for (int trial = 0; trial < 200; trial++) {
				int kind = trial % 8;
				for (int c = 0; c < COLS; c++) {
					double u = uniform();
					switch (kind) {
					case 0: w[c] = (float)(2 * u - 1); break;
					case 1: w[c] = (float)(u * 3 + 0.5); break;       /* all positive */
					case 2: w[c] = (float)(-u * 1e-3 - 2); break;    /* all negative */
					case 3: w[c] = 0.25f; break;                      /* constant */
					case 4: w[c] = 0; break;                          /* zero */
					case 5: w[c] = (float)((2 * u - 1) * 1e-9); break; /* below eps */
					case 6: w[c] = (float)((int)(u * 16) - 8) * 0.125f; break; /* ties */
					default: w[c] = (float)((2 * u - 1) * pow(10, 6 * u - 3)); break;
					}
				}
				lm_affine_quantize(w, COLS, bits, group, q1, s1, b1);
				naive(w, COLS, bits, group, q2, s2, b2);
				bad |= memcmp(q1, q2, COLS * bits / 8) || memcmp(s1, s2, COLS / group * 4)
				       || memcmp(b1, b2, COLS / group * 4);
				/* the edge, the end of the range of larger magnitude (hi
				 * on a tie), comes back exactly: it is the bias, at q = 0 */
				lm_affine_dequantize(q1, s1, b1, COLS, bits, group, back);
				for (int g = 0; g < COLS / group; g++) {
					long lo = g * group, hi = lo;
					for (int c = g * group; c < (g + 1) * group; c++) {
						lo = w[c] < w[lo] ? c : lo;
						hi = w[c] > w[hi] ? c : hi;
					}
					long at = fabsf(w[lo]) > fabsf(w[hi]) ? lo : hi;
					if (fabsf(w[at]) > 1e-6f && back[at] != w[at])
						worst = 1;
				}
			}
			char what[96];
			snprintf(what, sizeof what, "affine bits %d group %d: as the rule, the edge exact", bits, group);
			check(!bad && !worst, what);
		}
	/* a zero inside a group's range comes back exactly zero */
	int zero_ok = 1;
	for (int trial = 0; trial < 1000; trial++) {
		for (int c = 0; c < 64; c++)
			w[c] = (float)(uniform() * 2 - 0.5);
		w[trial % 64] = 0;
		lm_affine_quantize(w, 64, 4, 64, q1, s1, b1);
		lm_affine_dequantize(q1, s1, b1, 64, 4, 64, back);
		zero_ok &= fabsf(back[trial % 64]) <= 1e-6f * fabsf(b1[0]);
	}
	check(zero_ok, "affine: zero representable (to float32 rounding of s * q + b)");

	int f16 = 1;
	static const float v[] = {0, 1, -2.5f, 65504, 65519, 65520, 6.1035156e-05f,
	                          6.0975552e-05f, 5.9604645e-08f, 2.9802322e-08f,
	                          2.9802326e-08f, 1.0009765625f, 1.00048828125f,
	                          1.00146484375f};
	static const uint16_t h[] = {0, 0x3c00, 0xc100, 0x7bff, 0x7bff, 0x7c00, 0x0400,
	                             0x03ff, 0x0001, 0x0000, 0x0001, 0x3c01, 0x3c00, 0x3c02};
	for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
		if (lm_f32_to_f16(v[i]) != h[i]) {
			printf("  f16(%.10g) = %04x, expected %04x\n", v[i], lm_f32_to_f16(v[i]), h[i]);
			f16 = 0;
		}
	for (uint32_t x = 0; x < 0x7c00; x++)
		f16 &= lm_f32_to_f16(lm_f16_to_f32((uint16_t)x)) == x;
	check(f16, "float16 rounding: nearest even, subnormals, overflow");
}

/* ---- MLX's own output ---- */

typedef struct {
	unsigned char *data;       /* after the header */
	json_object *h;
} St;

static int st_open(St *st, const char *path)
{
	size_t len;
	char *b = lm_read_file(path, &len);
	if (!b || len < 8)
		return 0;
	uint64_t n = 0;
	for (int i = 0; i < 8; i++)
		n |= (uint64_t)(unsigned char)b[i] << (8 * i);
	char *js = strndup(b + 8, n);
	st->h = json_tokener_parse(js);
	free(js);
	st->data = (unsigned char *)b + 8 + n;
	return st->h != NULL;
}

static const void *st_get(St *st, const char *name, const char **dtype, long *shape, int *ndim)
{
	json_object *t, *o;
	if (!json_object_object_get_ex(st->h, name, &t))
		return NULL;
	json_object_object_get_ex(t, "dtype", &o);
	*dtype = json_object_get_string(o);
	json_object_object_get_ex(t, "shape", &o);
	*ndim = json_object_array_length(o);
	for (int d = 0; d < *ndim; d++)
		shape[d] = json_object_get_int64(json_object_array_get_idx(o, d));
	json_object_object_get_ex(t, "data_offsets", &o);
	return st->data + json_object_get_int64(json_object_array_get_idx(o, 0));
}

static float stored(const void *p, const char *dtype, long i)
{
	return lm_load_f32(p, !strcmp(dtype, "F32") ? LM_F32 : !strcmp(dtype, "BF16") ? LM_BF16 : LM_F16, i);
}

static float round_to(float f, const char *dtype)
{
	if (!strcmp(dtype, "BF16"))
		return lm_bf16_to_f32(lm_f32_to_bf16(f));
	if (!strcmp(dtype, "F16"))
		return lm_f16_to_f32(lm_f32_to_f16(f));
	return f;
}

/* Module parameters from a config's quantization (null group: 64). */
static void params_of(json_object *qc, const char *mod, int *bits, int *group)
{
	json_object *e = qc, *o;
	if (json_object_object_get_ex(qc, mod, &o) && json_object_is_type(o, json_type_object))
		e = o;
	*bits = json_object_object_get_ex(e, "bits", &o) ? json_object_get_int(o) : 0;
	*group = json_object_object_get_ex(e, "group_size", &o) ? json_object_get_int(o) : 0;
	if (!*group)
		*group = 64;
}

/* The module of a tensor named MODULE.scales, or 0. */
static int module_of(const char *key, char *mod, size_t n)
{
	size_t kl = strlen(key);
	if (kl < 7 || strcmp(key + kl - 7, ".scales"))
		return 0;
	snprintf(mod, n, "%.*s", (int)(kl - 7), key);
	return 1;
}

static void golden_case(const char *dir)
{
	char *cpath = lm_path(dir, "config.json"), *spath = lm_path(dir, "model.safetensors");
	json_object *cfg = json_object_from_file(cpath), *qc;
	St st;
	if (!cfg || !json_object_object_get_ex(cfg, "quantization", &qc) || !st_open(&st, spath)) {
		printf("FAIL requantize %s: cannot read the case\n", dir);
		failed = 1;
		return;
	}
	long modules = 0, groups = 0, full = 0, s_same = 0, moved = 0;
	json_object_object_foreach(st.h, key, val) {
		(void)val;
		char mod[256], name[300];
		if (!module_of(key, mod, sizeof mod))
			continue;
		int bits, group;
		params_of(qc, mod, &bits, &group);
		const char *wd, *sd, *bd;
		long ws[8], ss[8], bs[8];
		int wn, sn, bn;
		snprintf(name, sizeof name, "%s.weight", mod);
		const uint32_t *q = st_get(&st, name, &wd, ws, &wn);
		const void *s = st_get(&st, key, &sd, ss, &sn);
		snprintf(name, sizeof name, "%s.biases", mod);
		const void *b = st_get(&st, name, &bd, bs, &bn);
		long cols = ws[wn - 1] * 32 / bits, rows = 1;
		for (int d = 0; d < wn - 1; d++)
			rows *= ws[d];
		long ng = cols / group;
		float *w = malloc(cols * 4), *rs = malloc(ng * 4), *rb = malloc(ng * 4);
		float *fs = malloc(ng * 4), *fb = malloc(ng * 4);
		uint32_t *rq = malloc(cols * bits / 8);
		for (long r = 0; r < rows; r++) {
			for (long g = 0; g < ng; g++) {
				fs[g] = stored(s, sd, r * ng + g);
				fb[g] = stored(b, bd, r * ng + g);
			}
			const uint32_t *qr = q + r * (cols * bits / 32);
			lm_affine_dequantize(qr, fs, fb, cols, bits, group, w);
			lm_affine_quantize(w, cols, bits, group, rq, rs, rb);
			for (long g = 0; g < ng; g++) {
				int qmin = 255, qmax = 0, qsame = 1;
				for (long c = g * group; c < (g + 1) * group; c++) {
					int v = lm_affine_q(qr, c, bits);
					qmin = v < qmin ? v : qmin;
					qmax = v > qmax ? v : qmax;
					qsame &= lm_affine_q(rq, c, bits) == (unsigned)v;
				}
				if (qmin != 0 || qmax != (1 << bits) - 1)
					continue;
				full++;
				int same = round_to(rs[g], sd) == fs[g] && round_to(rb[g], bd) == fb[g];
				/* MLX rounds with the float32 scale rs, the values came from the
				 * stored one fs: at 8 bits with 16-bit scales, q * rs / fs can
				 * round q to a neighbour, and only the scale and bias can be
				 * checked */
				if (fabsf(rs[g] - fs[g]) * ((1 << bits) - 1) < 0.5f * fabsf(fs[g]))
					same &= qsame;
				else
					moved++;
				s_same += same;
				if (!same && getenv("DBG"))
					printf("  %s r%ld g%ld: s %.9g b %.9g -> s %.9g b %.9g\n", mod, r, g,
					       fs[g], fb[g], rs[g], rb[g]);
			}
			groups += ng;
		}
		modules++;
		free(w); free(rs); free(rb); free(fs); free(fb); free(rq);
	}
	char what[512];
	snprintf(what, sizeof what, "requantize %s: %ld modules, %ld of %ld groups span every level, "
	         "%ld of those bit for bit (%ld of them scale and bias only)", dir, modules, full,
	         groups, s_same, moved);
	check(modules > 0 && full > groups / 2 && s_same == full, what);
	json_object_put(cfg);
	json_object_put(st.h);
	free(cpath);
	free(spath);
}

static void against(const char *src_dir, const char *out_dir)
{
	char *sp = lm_path(src_dir, "model.safetensors"), *op = lm_path(out_dir, "model.safetensors");
	char *cp = lm_path(out_dir, "config.json");
	json_object *cfg = json_object_from_file(cp), *qc;
	St src, out;
	if (!cfg || !json_object_object_get_ex(cfg, "quantization", &qc) || !st_open(&src, sp)
	    || !st_open(&out, op)) {
		printf("FAIL quantize against the rule: cannot read %s and %s\n", src_dir, out_dir);
		failed = 1;
		return;
	}
	long checked = 0, other = 0, bad = 0;
	json_object *mt;
	int head_l2 = json_object_object_get_ex(cfg, "model_type", &mt)
	              && !strcmp(json_object_get_string(mt), "baichuan_m1");
	json_object_object_foreach(out.h, key, val) {
		(void)val;
		char mod[256], name[300];
		if (!module_of(key, mod, sizeof mod))
			continue;
		snprintf(name, sizeof name, "%s.weight", mod);
		const char *wd, *sd, *bd, *fd;
		long ws[8], ss[8], bs[8], fs[8];
		int wn, sn, bn, fn;
		const void *f = st_get(&src, name, &fd, fs, &fn);
		const uint32_t *q = st_get(&out, name, &wd, ws, &wn);
		const void *s = st_get(&out, key, &sd, ss, &sn);
		snprintf(name, sizeof name, "%s.biases", mod);
		const void *b = st_get(&out, name, &bd, bs, &bn);
		if (!f || fn != wn || memcmp(fs, ws, (wn - 1) * sizeof(long))) {
			other++;          /* renamed, stacked or transposed by sanitize */
			continue;
		}
		int bits, group;
		params_of(qc, mod, &bits, &group);
		long cols = fs[fn - 1], rows = 1, ng = cols / group;
		for (int d = 0; d < fn - 1; d++)
			rows *= fs[d];
		int ok = ws[wn - 1] == cols * bits / 32 && ss[sn - 1] == ng && !strcmp(wd, "U32");
		float *w = malloc(cols * 4), *s2 = malloc(ng * 4), *b2 = malloc(ng * 4);
		uint32_t *q2 = malloc(cols * bits / 8);
		for (long r = 0; ok && r < rows; r++) {
			/* the cast to the dtype of the scales comes first */
			for (long c = 0; c < cols; c++)
				w[c] = stored(f, fd, r * cols + c);
			if (head_l2 && !strcmp(mod, "lm_head")) {
				/* Baichuan-M1's sanitize: rows / (|row| + 1e-7), float32 */
				double ss = 0;
				for (long c = 0; c < cols; c++)
					ss += (double)w[c] * w[c];
				float norm = (float)sqrt(ss) + 1e-7f;
				for (long c = 0; c < cols; c++)
					w[c] = round_to(w[c] / norm, fd);
			}
			for (long c = 0; c < cols; c++)
				w[c] = round_to(w[c], sd);
			naive(w, (int)cols, bits, group, q2, s2, b2);
			ok &= !memcmp(q2, q + r * (cols * bits / 32), cols * bits / 8);
			for (long g = 0; g < ng; g++)
				ok &= round_to(s2[g], sd) == stored(s, sd, r * ng + g)
				      && round_to(b2[g], bd) == stored(b, bd, r * ng + g);
		}
		if (!ok && bad++ < 3)
			printf("  %s (%d bits, group %d) differs from the rule\n", mod, bits, group);
		checked++;
		free(w); free(s2); free(b2); free(q2);
	}
	char what[512];
	snprintf(what, sizeof what, "quantize %s: %ld modules bit for bit as the rule says (%ld more moved by sanitize)",
	         out_dir, checked - bad, other);
	check(checked > 0 && !bad, what);
	json_object_put(cfg);
	free(sp); free(op); free(cp);
}

static void same_layout(const char *a_dir, const char *b_dir)
{
	char *ap = lm_path(a_dir, "model.safetensors"), *bp = lm_path(b_dir, "model.safetensors");
	St a, b;
	int ok = st_open(&a, ap) && st_open(&b, bp), n = 0;
	if (ok) {
		ok = json_object_object_length(a.h) == json_object_object_length(b.h);
		json_object_object_foreach(b.h, key, val) {
			(void)val;
			if (!strcmp(key, "__metadata__"))
				continue;
			const char *d1, *d2;
			long s1[8], s2[8];
			int n1, n2;
			int same = st_get(&a, key, &d1, s1, &n1) && st_get(&b, key, &d2, s2, &n2)
			           && !strcmp(d1, d2) && n1 == n2 && !memcmp(s1, s2, n1 * sizeof(long));
			if (!same && ok)
				printf("  %s: not as in %s\n", key, b_dir);
			ok &= same;
			n++;
		}
	}
	char what[512];
	snprintf(what, sizeof what, "quantize %s: the %d tensors of %s, dtypes and shapes", a_dir, n, b_dir);
	check(ok, what);
	free(ap);
	free(bp);
}

int main(int argc, char **argv)
{
	if (argc == 4 && !strcmp(argv[1], "--same-layout")) {
		same_layout(argv[2], argv[3]);
		return failed;
	}
	if (argc == 4 && !strcmp(argv[1], "--against")) {
		against(argv[2], argv[3]);
		return failed;
	}
	if (argc == 1)
		rule_tests();
	for (int i = 1; i < argc; i++)
		golden_case(argv[i]);
	return failed;
}
