/* test_flip: weights stored [in, out] are transposed at load (st.c's
 * flip), and every view of them still reads the elements the file holds.
 *
 *   test_flip DIR     writes DIR/model.safetensors and checks it
 *
 * The file holds stacks [n, A, B] in F32, F16 and BF16 whose element
 * values encode their own index, so a view that reads one wrong element
 * says which.  Cases: a stack bound only through tr views (the experts of
 * Llama 4, gate and up halves of one fused tensor) is transposed and its
 * views come back tr 0; one first bound as stored, or through a view that
 * steps other than whole rows, stays as stored; so does one past the
 * budget. */
#include "rt.h"
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { NT = 7 };
static const struct { const char *name; int dtype; long n, A, B; } T[NT] = {
	/* whole squares of transpose.c's 64 and rests, and (f16: A odd) none */
	{"fused_f32", LM_F32, 3, 5, 14},
	{"fused_bf16", LM_BF16, 2, 72, 136},
	{"fused_f16", LM_F16, 2, 67, 134},
	{"plain_first", LM_BF16, 2, 6, 8},
	{"odd_ld", LM_F32, 1, 5, 8},
	{"over_budget", LM_BF16, 2, 6, 8},
	{"fused_f32_big", LM_F32, 1, 68, 130},
};

static int fails, checks;

/* The value stored at index i: exact in every dtype for i < 256. */
static float val(long i)
{
	return (float)(i % 251) - 125;
}

static void write_file(const char *path)
{
	char hdr[4096];
	size_t k = 0, off = 0, bytes[NT];
	k += snprintf(hdr + k, sizeof hdr - k, "{");
	for (int t = 0; t < NT; t++) {
		static const char *dn[] = {"F32", "F16", "BF16"};
		bytes[t] = T[t].n * T[t].A * T[t].B * lm_dtype_size(T[t].dtype);
		k += snprintf(hdr + k, sizeof hdr - k,
		              "%s\"%s\": {\"dtype\": \"%s\", \"shape\": [%ld, %ld, %ld], "
		              "\"data_offsets\": [%zu, %zu]}",
		              t ? ", " : "", T[t].name, dn[T[t].dtype], T[t].n, T[t].A, T[t].B, off,
		              off + bytes[t]);
		off += bytes[t];
	}
	k += snprintf(hdr + k, sizeof hdr - k, "}");
	while (k % 8)
		hdr[k++] = ' ';
	FILE *f = fopen(path, "wb");
	if (!f) {
		perror(path);
		exit(1);
	}
	uint64_t n = k;
	fwrite(&n, 8, 1, f);
	fwrite(hdr, 1, k, f);
	for (int t = 0; t < NT; t++) {
		unsigned char *d = malloc(bytes[t]);
		for (long i = 0; i < T[t].n * T[t].A * T[t].B; i++)
			store_elem(d, T[t].dtype, i, val(i));
		fwrite(d, 1, bytes[t], f);
		free(d);
	}
	fclose(f);
}

/* Every element (r, c) of view m of the tensor, as the file stored the
 * view (off, tr, ld); want_tr: the tr the view should come back with. */
static void check(const char *what, const lm_mat *m, long off, int tr, long ld, int want_tr)
{
	int bad = m->tr != want_tr;
	char why[200] = "";
	if (bad)
		snprintf(why, sizeof why, "tr %d, expected %d", m->tr, want_tr);
	for (long r = 0; r < m->rows && !bad; r++)
		for (long c = 0; c < m->cols && !bad; c++) {
			long got_i = m->tr ? c * m->ld + r : r * m->ld + c;
			float got = lm_load_f32(m->data, m->dtype, got_i);
			float want = val(off + (tr ? c * ld + r : r * ld + c));
			if (got != want) {
				bad = 1;
				snprintf(why, sizeof why, "(%ld, %ld) = %g, expected %g", r, c, got, want);
			}
		}
	checks++;
	fails += bad;
	printf("%s flip %s%s%s\n", bad ? "FAIL" : "PASS", what, bad ? ": " : "", why);
}

static size_t bytes_of(int t)
{
	return lm_dtype_size(T[t].dtype) * T[t].n * T[t].A * T[t].B;
}

static long shape_of(int t, long *s)
{
	s[0] = T[t].n;
	s[1] = T[t].A;
	s[2] = T[t].B;
	return T[t].A * T[t].B;
}

/* The experts of a fused [n, A, B] stack: halves of B as in Llama 4's
 * gate_up_proj (out = B / 2 outputs each, A inputs), tr views. */
static void experts(lm_ckpt *ck, int t, int want_tr)
{
	long s[3], AB = shape_of(t, s), half = T[t].B / 2;
	char what[96];
	for (long e = 0; e < T[t].n; e++)
		for (long h = 0; h < 2; h++) {
			long off = e * AB + h * half;
			lm_mat m = lm_ck_mat(ck, T[t].name, 3, s, off, LM_IN_OUT, half, T[t].A, T[t].B);
			snprintf(what, sizeof what, "%s expert %ld half %ld", T[t].name, e, h);
			check(what, &m, off, 1, T[t].B, want_tr);
		}
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: test_flip DIR\n");
		return 1;
	}
	char path[4096];
	snprintf(path, sizeof path, "%s/model.safetensors", argv[1]);
	write_file(path);
	lm_ckpt *ck = lm_ck_open_file(path);
	long s[3];

	experts(ck, 0, 0);
	experts(ck, 1, 0);
	experts(ck, 2, 0);
	experts(ck, 6, 0);
	/* once transposed, a view as stored comes back tr: rows 1..3 of expert 1 */
	long AB = shape_of(1, s);
	lm_mat m = lm_ck_mat(ck, T[1].name, 3, s, AB + 1 * T[1].B + 4, LM_OUT_IN, 3, 50, T[1].B);
	check("fused_bf16 as stored, after", &m, AB + T[1].B + 4, 0, T[1].B, 1);

	/* bound as stored first: the tr views read the file as it is */
	AB = shape_of(3, s);
	m = lm_ck_mat(ck, T[3].name, 3, s, AB, LM_OUT_IN, T[3].A, T[3].B, T[3].B);
	check("plain_first as stored", &m, AB, 0, T[3].B, 0);
	experts(ck, 3, 1);

	/* a tr view with ld 4 of rows of 8: no transposed form; so stays */
	shape_of(4, s);
	m = lm_ck_mat(ck, T[4].name, 3, s, 0, LM_IN_OUT, 4, 10, 4);
	check("odd_ld tr view", &m, 0, 1, 4, 1);

	/* past the budget: one byte short of the tensor; then room for
	 * fused_f32 exactly, and none left for fused_f16 after it */
	lm_ck_close(ck);
	ck = lm_ck_open_file(path);
	lm_ck_flip_room(ck, bytes_of(5) - 1);
	experts(ck, 5, 1);
	lm_ck_flip_room(ck, bytes_of(0));
	experts(ck, 0, 0);
	experts(ck, 2, 1);
	lm_ck_close(ck);
	printf("%s flip: %d of %d checks failed\n", fails ? "FAIL" : "PASS", fails, checks);
	return fails != 0;
}
