/* qmat_c.c: qmat.c's portable kernels, in plain C for any CPU. */
#include "qmat.h"

static void seg_any_c(float *dst, const lm_mat *W, long r0, long nr, long c0, long kc)
{
	for (long r = r0; r < r0 + nr; r++, dst += kc)
		switch (FORMAT_KEY(W->bits, W->mode)) {
#define X(bits, mode) case FORMAT_KEY(bits, mode): row_c(dst, W, r, bits, mode, c0, c0 + kc); break;
		FORMAT_CASES(X)
#undef X
		default: lm_bug("quantized matrix with %d bits, mode %d", W->bits, W->mode);
		}
}

static void row_any_c(float *dst, const lm_mat *W, long r)
{
	seg_any_c(dst, W, r, 1, 0, W->cols);
}

/* y[t, r] for r in [r0, r1) and t < nt <= TOK.  Eight partial sums per
 * token let gcc keep the dot product in vector registers. */
INLINE void rows_c(const Job *j, const float *x, const float *sx, float *y,
                   long nt, long r0, long r1, int bits, int mode)
{
	const lm_mat *W = &j->W;
	long cols = W->cols, G = W->group, ng = cols / G;
	int two = G == 16;    /* nvfp4: 32 inputs hold two groups */
	for (long r = r0; r < r1; r++) {
		const uint32_t *w = (const uint32_t *)W->data + (size_t)r * W->ld;
		size_t g0 = (size_t)r * W->sld;
		float acc[TOK] = {0};
		for (long g = 0; g < ng; g += 1 + two) {
			float d[TOK][2][8] = {{{0}}};
			int pair = two && g + 1 < ng;
			for (long c = g * G; c < g * G + (pair ? 32 : G); c += 32, w += bits) {
				float q[32];
				int n = pair || G >= 32 ? 32 : 16;
				codes(q, w, bits, mode, n);
				for (long t = 0; t < nt; t++)
					for (int i = 0; i < n; i += 8)
						for (int l = 0; l < 8; l++)
							d[t][two && i >= 16][l] += q[i + l] * x[t * cols + c + i + l];
			}
			for (int h = 0; h <= pair; h++) {
				float s = scale_at(W, g0 + g + h, mode);
				float b = mode == LM_AFFINE ? lm_load_f32(W->biases, W->sdtype, g0 + g) : 0;
				for (long t = 0; t < nt; t++) {
					const float *e = d[t][h];
					float dot = ((e[0] + e[1]) + (e[2] + e[3])) + ((e[4] + e[5]) + (e[6] + e[7]));
					acc[t] += mode == LM_AFFINE ? s * dot + b * sx[t * ng + g] : s * dot;
				}
			}
		}
		for (long t = 0; t < nt; t++)
			y[t * W->rows + r] = acc[t];
	}
}

static void few_c(const Job *j, const float *x, const float *sx, float *y,
                  long nt, long r0, long r1)
{
	switch (FORMAT_KEY(j->W.bits, j->W.mode)) {
#define X(bits, mode) case FORMAT_KEY(bits, mode): rows_c(j, x, sx, y, nt, r0, r1, bits, mode); break;
	FORMAT_CASES(X)
#undef X
	default: lm_bug("quantized matrix with %d bits, mode %d", j->W.bits, j->W.mode);
	}
}

const lm_qpath lm_qpath_c = {few_c, row_any_c, seg_any_c, NULL};
