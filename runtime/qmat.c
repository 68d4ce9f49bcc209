/* qmat.c: products with weights in MLX's affine group format (LM_Q).
 *
 * What is stored (lmcc.h): per row, `bits`-bit unsigned integers q packed
 * LSB-first into 32-bit words, and per group of `group` inputs one scale s
 * and one bias b, so that w = s * q + b.  A group starts on a word
 * boundary (group * bits is a multiple of 32), and 32 inputs always fill
 * exactly `bits` words: the kernels read a row 32 inputs at a time.
 *
 * How a product reads it, without ever making a float copy of the matrix:
 *   - few tokens (decoding): the row is read once, packed.  Within a group
 *       sum_c w_c x_c = s * (q . x_g) + b * sum(x_g),
 *     and sum(x_g) is the same for every row, so it is computed once per
 *     call; a row costs one integer-times-float dot product per group plus
 *     two multiply-adds, and the bytes read are the packed words, the
 *     scales and the biases: the bandwidth bound.
 *   - many tokens (prefill): a panel of rows is dequantized to float32 into
 *     a per-thread buffer and multiplied by OpenBLAS sgemm, as matmul.c
 *     does with BF16 panels; the dequantizing costs 1/n of the product.
 * Activations are never rounded: q, s and b widen to float32 exactly, and
 * only the order of the sums differs from MLX's dequantize-then-multiply. */
#define _GNU_SOURCE
#include "rt.h"

#include <cblas.h>
#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

enum {
	FEW = 8,      /* up to this many tokens: the streaming kernels */
	TOK = 4,      /* tokens a streaming pass multiplies at once */
	PANEL = 64,   /* rows dequantized at once for sgemm */
};

typedef struct {
	float *y;
	const float *x;
	long n;
	lm_mat W;
	const float *sx;   /* [n, cols / group]: sum of x over each group */
} Job;

#define INLINE static inline __attribute__((always_inline))

/* The 32 integers held by the `bits` words at w, in order.  Element i sits
 * at bits [i * bits, (i + 1) * bits) of the words read as one little-endian
 * stream; for 3, 5 and 6 bits an element can straddle two words.  Inlined
 * with a constant `bits`, the straddle test folds away for 2, 4 and 8. */
INLINE void unpack32(float *q, const uint32_t *w, int bits)
{
	uint32_t m = (1u << bits) - 1;
	for (int i = 0; i < 32; i++) {
		int p = i * bits, k = p >> 5, s = p & 31;
		uint64_t v = (uint64_t)w[k] >> s;
		if (s + bits > 32)
			v |= (uint64_t)w[k + 1] << (32 - s);
		q[i] = (float)(uint32_t)(v & m);
	}
}

/* ---- one row to float32 ---- */

INLINE void row_c(float *dst, const lm_mat *W, long r, int bits)
{
	const uint32_t *w = (const uint32_t *)W->data + (size_t)r * W->ld;
	size_t g0 = (size_t)r * W->sld;
	for (long c = 0; c < W->cols; c += 32, w += bits) {
		float s = lm_load_f32(W->scales, W->sdtype, g0 + c / W->group);
		float b = lm_load_f32(W->biases, W->sdtype, g0 + c / W->group);
		float q[32];
		unpack32(q, w, bits);
		/* two roundings, as MLX's dequantize: s * q, then + b */
		for (int i = 0; i < 32; i++) {
			float p = s * q[i];
			dst[c + i] = p + b;
		}
	}
}

static void row_any_c(float *dst, const lm_mat *W, long r)
{
	switch (W->bits) {
	case 2: row_c(dst, W, r, 2); break;
	case 3: row_c(dst, W, r, 3); break;
	case 4: row_c(dst, W, r, 4); break;
	case 5: row_c(dst, W, r, 5); break;
	case 6: row_c(dst, W, r, 6); break;
	case 8: row_c(dst, W, r, 8); break;
	default: lm_bug("quantized matrix with %d bits", W->bits);
	}
}

void lm_qrow(float *dst, const lm_mat *W, long r)
{
	row_any_c(dst, W, r);
}

/* ---- few tokens, portable ---- */

/* y[t, r] for r in [r0, r1) and t < nt <= TOK.  Eight partial sums per
 * token let gcc keep the dot product in vector registers. */
INLINE void rows_c(const Job *j, const float *x, const float *sx, float *y,
                   long nt, long r0, long r1, int bits)
{
	const lm_mat *W = &j->W;
	long cols = W->cols, ng = cols / W->group;
	for (long r = r0; r < r1; r++) {
		const uint32_t *w = (const uint32_t *)W->data + (size_t)r * W->ld;
		size_t g0 = (size_t)r * W->sld;
		float acc[TOK] = {0};
		for (long g = 0; g < ng; g++) {
			float d[TOK][8] = {{0}};
			for (long c = g * W->group; c < (g + 1) * W->group; c += 32, w += bits) {
				float q[32];
				unpack32(q, w, bits);
				for (long t = 0; t < nt; t++)
					for (int i = 0; i < 32; i += 8)
						for (int l = 0; l < 8; l++)
							d[t][l] += q[i + l] * x[t * cols + c + i + l];
			}
			float s = lm_load_f32(W->scales, W->sdtype, g0 + g);
			float b = lm_load_f32(W->biases, W->sdtype, g0 + g);
			for (long t = 0; t < nt; t++) {
				float dot = ((d[t][0] + d[t][1]) + (d[t][2] + d[t][3]))
				          + ((d[t][4] + d[t][5]) + (d[t][6] + d[t][7]));
				acc[t] += s * dot + b * sx[t * ng + g];
			}
		}
		for (long t = 0; t < nt; t++)
			y[t * W->rows + r] = acc[t];
	}
}

static void few_c(const Job *j, const float *x, const float *sx, float *y,
                  long nt, long r0, long r1)
{
	switch (j->W.bits) {
	case 2: rows_c(j, x, sx, y, nt, r0, r1, 2); break;
	case 3: rows_c(j, x, sx, y, nt, r0, r1, 3); break;
	case 4: rows_c(j, x, sx, y, nt, r0, r1, 4); break;
	case 5: rows_c(j, x, sx, y, nt, r0, r1, 5); break;
	case 6: rows_c(j, x, sx, y, nt, r0, r1, 6); break;
	case 8: rows_c(j, x, sx, y, nt, r0, r1, 8); break;
	default: lm_bug("quantized matrix with %d bits", j->W.bits);
	}
}

typedef void (*Few)(const Job *, const float *, const float *, float *, long, long, long);
static Few few_k = few_c;
static void (*row_k)(float *, const lm_mat *, long) = row_any_c;

static void few(void *ctx, long r0, long r1)
{
	const Job *j = ctx;
	long ng = j->W.cols / j->W.group;
	for (long t = 0; t < j->n; t += TOK) {
		long nt = j->n - t < TOK ? j->n - t : TOK;
		few_k(j, j->x + t * j->W.cols, j->sx + t * ng, j->y + t * j->W.rows, nt, r0, r1);
	}
}

/* ---- many tokens ---- */

static void many(void *ctx, long r0, long r1)
{
	const Job *j = ctx;
	const lm_mat *W = &j->W;
	long cols = W->cols;
	for (long p0 = r0; p0 < r1; p0 += PANEL) {
		long p = r1 - p0 < PANEL ? r1 - p0 : PANEL;
		float *w = lm_scratch((size_t)p * cols);
		for (long r = 0; r < p; r++)
			row_k(w + r * cols, W, p0 + r);
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, j->n, p, cols, 1.0f,
		            j->x, cols, w, cols, 0.0f, j->y + p0, W->rows);
	}
}

void lm_qmatmul(float *y, const float *x, long n, lm_mat W)
{
	if (W.cols % W.group || W.group % 32)
		lm_bug("quantized matrix: %ld inputs in groups of %d", W.cols, W.group);
	Job j = {y, x, n, W, NULL};
	if (n <= FEW) {
		static float *sx;
		static long cap;
		long ng = W.cols / W.group;
		if (n * ng > cap) {
			free(sx);
			cap = n * ng;
			sx = lm_alloc_aligned(cap * sizeof(float));
		}
		for (long t = 0; t < n; t++)
			for (long g = 0; g < ng; g++) {
				double s = 0;
				for (long c = g * W.group; c < (g + 1) * W.group; c++)
					s += x[t * W.cols + c];
				sx[t * ng + g] = (float)s;
			}
		j.sx = sx;
	}
	lm_parallel(W.rows, 16, n <= FEW ? few : many, &j);
}
